"""The demo's live-loop part: a bundled noisy clip through denoiser → VAD → recorder, as on a device.

The clip is the bundled LibriVox speech with pink noise at 5 dB SNR (see samples/README.md); because the
clean speech is bundled too, the demo can say how much each denoiser really improved it (SI-SDR).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.audio.mix import si_sdr
from edge_sdk.devices.sources.wav_file import WavFile, read_wav
from edge_sdk.errors import EdgeSDKError
from edge_sdk.live.audio import AudioLoop, LoopSummary
from edge_sdk.stages.chain import audio_stages

CLEAN = "librivox-sense-and-sensibility.wav"
NOISY = "librivox-pink-noise-5db.wav"
DENOISERS = ("tiny", "nsnet2")


def _sample(name: str) -> Path:
    with resources.as_file(resources.files("edge_sdk") / "samples" / name) as p:
        return Path(p)


def run_chain(denoise: str, out: Path, clean: np.ndarray, vad: str = "silero") -> tuple[LoopSummary, float]:
    """Replay the noisy clip through ``denoise`` + ``vad`` + a recorder as fast as possible; returns the
    loop's summary and the SI-SDR of the recording against ``clean`` (latency compensated)."""
    recording = out / f"denoised-{denoise}.wav"
    stages, notes = audio_stages(denoise=denoise, vad=vad, record=recording)
    latency = sum(int(getattr(s, "latency", 0) or 0) for s in stages)
    with WavFile(_sample(NOISY)) as source:
        summary = AudioLoop(source, stages, notes=notes).run()
    denoised = read_wav(recording)[0][latency : latency + len(clean)]
    return summary, si_sdr(denoised, clean[: len(denoised)])


def run(out: Path) -> tuple[dict[str, Any], dict[str, LoopSummary]]:
    """Every denoiser that can run here on the bundled noisy clip; a denoiser that cannot (its model is
    missing or cannot be fetched) is reported, not hidden. Returns a JSON-ready result and each loop's
    summary by denoiser."""
    out.mkdir(parents=True, exist_ok=True)
    clean = read_wav(_sample(CLEAN))[0]
    noisy = read_wav(_sample(NOISY))[0]
    baseline = si_sdr(noisy, clean)
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    summaries: dict[str, LoopSummary] = {}
    for name in DENOISERS:
        try:
            summary, score = run_chain(name, out, clean)
        except EdgeSDKError as e:
            notes.append(f"denoiser {name} did not run: {str(e).splitlines()[0]}")
            continue
        summaries[name] = summary
        rows.append(
            {
                "denoiser": name,
                "si_sdr_db": score,
                "si_sdr_gain_db": score - baseline,
                "rtf": summary.total.rtf,
                "speech_segments": summary.events.get("speech_segment", 0),
                "recording": str(out / f"denoised-{name}.wav"),
            }
        )
        notes += [n for n in summary.notes if n not in notes]
    result = {
        "clip": NOISY,
        "noisy_si_sdr_db": baseline,
        "rows": rows,
        "summaries": {k: v.to_dict() for k, v in summaries.items()},
        "notes": notes,
    }
    return result, summaries
