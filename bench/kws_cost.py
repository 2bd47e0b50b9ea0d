"""What the listening loop costs: CPU seconds per audio second of the tiny denoiser, the VAD and the
keyword spotter together, one thread each, with the spotter gated by the VAD and without.

The chain is the one the CLI builds (``edge_sdk.stages.chain.audio_stages``: registry stages, a Silero VAD
that cannot be had replaced by the energy VAD with a warning and a note). The audio is real speech with
pauses, fed in 20 ms blocks as the capture loop does; each stage's ``process`` is timed in process CPU
seconds (``time.process_time``, so work on any helper thread counts too), not wall clock.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.stages.base import Block, KeywordDetected
from edge_sdk.stages.chain import audio_stages

SR = 16000
BLOCK = 320  # 20 ms, the loop's block
GAP = 1.0  # seconds of silence between the recordings


def cost_audio(recordings: Sequence[np.ndarray], seconds: float) -> np.ndarray:
    """The recordings at -6 dBFS peak with ``GAP`` s of silence after each, repeated as needed and cut to
    ``seconds``."""
    if not recordings:
        return np.zeros(int(seconds * SR), np.float32)
    parts, n, i = [], 0, 0
    while n < seconds * SR:
        x = recordings[i % len(recordings)]
        part = np.concatenate([x * (0.5 / (float(np.max(np.abs(x))) + 1e-12)), np.zeros(int(GAP * SR))])
        parts.append(part)
        n += len(part)
        i += 1
    return np.concatenate(parts)[: int(seconds * SR)].astype(np.float32)


def _run(chain: list, audio: np.ndarray) -> tuple[list[float], int]:
    """Each stage's process CPU seconds over ``audio`` from a fresh stream, and the keyword events."""
    for stage in chain:
        stage.reset()
    spent = [0.0] * len(chain)
    events = 0
    for i, start in enumerate(range(0, len(audio), BLOCK)):
        block = Block(audio[start : start + BLOCK], SR, start / SR, i)
        for k, stage in enumerate(chain):
            t0 = time.process_time()
            block = stage.process(block)
            spent[k] += time.process_time() - t0
        events += sum(isinstance(e, KeywordDetected) for e in block.events)
    return spent, events


def loop_cost(
    model: Path,
    recordings: Sequence[np.ndarray],
    seconds: float,
    *,
    denoise: str = "tiny",
    vad: str = "silero",
    verify: str | None = None,
) -> dict[str, Any]:
    """CPU seconds per audio second of ``denoise`` + ``vad`` + the spotter over ``seconds`` of the
    recordings, per stage and in all, ungated and gated by the VAD; and the share of windows the gate
    skipped."""
    audio = cost_audio(recordings, seconds)
    out: dict[str, Any] = {
        "audio_seconds": len(audio) / SR,
        "block": BLOCK,
        "gap": GAP,
        "runs": {},
        "notes": [],
    }
    for gate in (False, True):
        chain, notes = audio_stages(
            denoise=denoise, vad=vad, kws=str(model), kws_gate=gate, kws_verify=verify, threads=1
        )
        out["notes"] += [n for n in notes if n not in out["notes"]]
        try:
            _run(chain, audio[:SR])  # first runs allocate; not counted
            spent, events = _run(chain, audio)
        finally:
            for stage in chain:
                stage.close()
        kws = getattr(chain[-1], "spotter", chain[-1])  # a verifier's proposing spotter
        out["runs"]["gated" if gate else "ungated"] = {
            "stages": {st.name: t / out["audio_seconds"] for st, t in zip(chain, spent, strict=True)},
            "cpu_per_audio_second": sum(spent) / out["audio_seconds"],
            "kws_windows": kws.windows,
            "kws_skipped": kws.skipped,
            "keyword_events": events,
            "verifier": {k: getattr(chain[-1], k) for k in ("proposed", "confirmed", "transcripts")}
            if verify
            else None,
        }
    out["stage_names"] = list(out["runs"]["ungated"]["stages"])
    return out
