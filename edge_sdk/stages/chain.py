"""The usual chain of audio stages, built from registry names: what the CLI, the demo and the loop
benchmark all run."""

from __future__ import annotations

import inspect
import os
from typing import Any

from edge_sdk.stages.base import Stage


def audio_stages(
    *,
    denoise: str | None = None,
    vad: str | None = None,
    record: str | os.PathLike[str] | None = None,
    sample_rate: int = 16000,
    threads: int | None = 1,
) -> tuple[list[Stage], list[str]]:
    """The usual chain from registry names ("none" or None leaves a stage out): denoiser, then VAD, then
    recorder (so the recording is the audio the VAD judged). ``sample_rate`` and ``threads`` go to the
    stages whose factories take them. A Silero VAD whose model cannot be fetched is replaced by the
    energy VAD, with a warning and a note. Returns (stages, notes)."""
    from edge_sdk.stages import stages as registry
    from edge_sdk.stages.vad import vad_with_fallback

    def options(kind: str, name: str) -> dict[str, Any]:
        params = inspect.signature(registry.get(f"{kind}.{name}")).parameters
        return {k: v for k, v in (("sample_rate", sample_rate), ("threads", threads)) if k in params}

    chain: list[Stage] = []
    notes: list[str] = []
    try:
        if denoise and denoise != "none":
            chain.append(registry.get(f"denoise.{denoise}")(**options("denoise", denoise)))
        if vad and vad != "none":
            stage, notes = vad_with_fallback(vad, **options("vad", vad))
            chain.append(stage)
        if record is not None:
            chain.append(registry.get("record.wav")(record, sample_rate=sample_rate))
    except BaseException:
        for stage in chain:
            stage.close()
        raise
    return chain, notes
