"""The usual chain of audio stages, built from registry names: what the CLI, the demo and the loop
benchmark all run."""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping
from typing import Any

from edge_sdk.errors import BadInputError
from edge_sdk.stages.base import Stage


def keyword_stage_kind(model: str | os.PathLike[str], cache_dir: Any = None) -> str:
    """Which spotter runs a keyword model: ``ctc`` for a CTC recogniser of keywords and filler
    (``kws.ctc``), else ``onnx`` (a window classifier, ``kws.onnx``)."""
    from edge_sdk.stages.kws import model_file
    from edge_sdk.stages.kws_ctc import is_ctc_model

    return "ctc" if is_ctc_model(model_file(model, cache_dir)) else "onnx"


def keyword_spotter(
    model: str | os.PathLike[str], *, verify: str | os.PathLike[str] | None = None, **options: Any
) -> Any:
    """The spotter stage a keyword model runs in (``kws.onnx`` or ``kws.ctc``), built with ``options``.
    With ``verify`` (a recogniser: ``zoo:whisper-tiny.en``) the spotter proposes, at ``threshold`` or
    else ``kws_verify.PROPOSAL_THRESHOLD``, and ``kws.verify`` confirms each proposal with the recogniser."""
    from edge_sdk.stages import stages as registry

    use_verify = verify is not None and os.fspath(verify) != "none"
    if use_verify and options.get("threshold") is None:
        from edge_sdk.stages.kws_verify import PROPOSAL_THRESHOLD

        options["threshold"] = PROPOSAL_THRESHOLD
    stage = registry.get(f"kws.{keyword_stage_kind(model, options.get('cache_dir'))}")(model, **options)
    if not use_verify:
        return stage
    try:
        return registry.get("kws.verify")(stage, verify, threads=options.get("threads", 1))
    except BaseException:
        stage.close()
        raise


def audio_stages(
    *,
    denoise: str | None = None,
    vad: str | None = None,
    kws: str | os.PathLike[str] | None = None,
    kws_threshold: float | Mapping[str, float] | None = None,
    kws_gate: bool = False,
    kws_verify: str | os.PathLike[str] | None = None,
    record: str | os.PathLike[str] | None = None,
    asr: str | os.PathLike[str] | None = None,
    asr_options: Mapping[str, Any] | None = None,
    sample_rate: int = 16000,
    threads: int | None = 1,
) -> tuple[list[Stage], list[str]]:
    """The usual chain from registry names ("none" or None leaves a stage out): denoiser, then VAD, then
    keyword spotter, then recogniser, then recorder (so the recording is the audio the stages judged).
    ``kws`` is a keyword model (ONNX path or ``zoo:NAME``) for ``kws.onnx`` (``kws.ctc`` when it is a
    CTC recogniser), with ``kws_threshold``
    overriding its thresholds and ``kws_gate`` classifying only while the VAD hears speech; with
    ``kws_verify`` (a recogniser, ``zoo:whisper-tiny.en``) it proposes and ``kws.verify`` confirms
    (``keyword_spotter``). ``asr`` is a
    Whisper model (``zoo:whisper-tiny.en``, a folder) for ``asr.whisper``, after the spotter, with
    ``asr_options`` (``partials``, ``beam``, ``language``, ``target``); it needs a VAD.
    ``sample_rate`` and ``threads`` go to the stages whose factories take them. A Silero VAD whose model
    cannot be fetched is replaced by the energy VAD, with a warning and a note. Returns (stages, notes)."""
    from edge_sdk.stages import stages as registry
    from edge_sdk.stages.vad import vad_with_fallback

    use_vad = bool(vad and vad != "none")
    use_kws = kws is not None and os.fspath(kws) != "none"
    if kws_gate and not (use_kws and use_vad):
        raise BadInputError("gating the keyword spotter by VAD needs both a keyword model and a VAD")
    if kws_verify is not None and os.fspath(kws_verify) != "none" and not use_kws:
        raise BadInputError("verifying keywords needs a keyword model to propose them (--kws)")
    use_asr = asr is not None and os.fspath(asr) != "none"
    if use_asr and not use_vad:
        raise BadInputError(
            "speech recognition transcribes the segments a VAD finds: give a VAD (--vad silero)"
        )

    def options(kind: str, name: str) -> dict[str, Any]:
        params = inspect.signature(registry.get(f"{kind}.{name}")).parameters
        return {k: v for k, v in (("sample_rate", sample_rate), ("threads", threads)) if k in params}

    chain: list[Stage] = []
    notes: list[str] = []
    try:
        if denoise and denoise != "none":
            chain.append(registry.get(f"denoise.{denoise}")(**options("denoise", denoise)))
        if use_vad:
            stage, notes = vad_with_fallback(str(vad), **options("vad", str(vad)))
            chain.append(stage)
        if use_kws:
            gate = "vad" if kws_gate else None
            kind = keyword_stage_kind(kws)
            chain.append(
                keyword_spotter(
                    kws, verify=kws_verify, threshold=kws_threshold, gate=gate, **options("kws", kind)
                )
            )
        if use_asr:
            asr_stage = registry.get("asr.whisper")
            chain.append(asr_stage(asr, **dict(asr_options or {}), **options("asr", "whisper")))
        if record is not None:
            chain.append(registry.get("record.wav")(record, sample_rate=sample_rate))
    except BaseException:
        for stage in chain:
            stage.close()
        raise
    return chain, notes
