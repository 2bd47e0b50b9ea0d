"""The demo's speech-recognition part: the bundled LibriVox clip, clean and in pink noise at 5 dB (raw and
through the tiny denoiser), transcribed live by VAD → Whisper tiny.en (converted by the SDK, int8) and
scored against the recording's real transcript.

The transcript is pocketsphinx-testdata's (``samples/librivox-sense-and-sensibility.json``). Word error
rate counts substitutions, deletions and insertions after ``edge_sdk.asr.text.normalize``.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from edge_sdk.errors import EdgeSDKError

MODEL = "zoo:whisper-tiny.en"
TRANSCRIPT = "librivox-sense-and-sensibility.json"
RUNS = (
    ("clean", "librivox-sense-and-sensibility.wav", "none"),
    ("pink noise 5 dB", "librivox-pink-noise-5db.wav", "none"),
    ("pink noise 5 dB, tiny denoiser", "librivox-pink-noise-5db.wav", "tiny"),
)
COLUMNS = ["audio", "WER", "ASR RTF", "transcript"]


def _sample(name: str) -> Path:
    with resources.as_file(resources.files("edge_sdk") / "samples" / name) as p:
        return Path(p)


def reference() -> str:
    """The clip's real transcript, its utterances joined."""
    data = json.loads(_sample(TRANSCRIPT).read_text(encoding="utf-8"))
    return " ".join(u["text"] for u in data["utterances"])


def run(model: str = MODEL) -> dict[str, Any]:
    """Each run of ``RUNS`` through denoiser → Silero VAD → ``asr.whisper``; a model that cannot be had
    (offline, first run) is a note, not a failure of the demo."""
    from edge_sdk.asr import Recognizer
    from edge_sdk.asr.text import wer
    from edge_sdk.devices.sources.wav_file import WavFile
    from edge_sdk.live.audio import AudioLoop
    from edge_sdk.stages import Transcript
    from edge_sdk.stages.chain import audio_stages

    ref = reference()
    out: dict[str, Any] = {"clip": RUNS[0][1], "model": model, "reference": ref, "rows": [], "notes": []}
    try:
        recognizer = Recognizer.from_whisper(model)
    except EdgeSDKError as e:
        out["notes"].append(f"speech recognition did not run: {str(e).splitlines()[0]}")
        return out
    for name, clip, denoise in RUNS:
        events: list[Any] = []
        stages, notes = audio_stages(
            denoise=denoise, vad="silero", asr=model, asr_options={"recognizer": recognizer}
        )
        with WavFile(_sample(clip)) as source:
            summary = AudioLoop(source, stages, on_event=events.append, notes=notes).run()
        text = " ".join(e.text for e in events if isinstance(e, Transcript) and e.final)
        asr = next(s for s in summary.stages if s.name == "asr.whisper")
        out["rows"].append(
            {
                "audio": name,
                "denoise": denoise,
                "wer": round(wer([ref], [text]).wer, 4),
                "asr_rtf": round(asr.rtf, 4),
                "transcript": text,
            }
        )
        out["notes"] += notes
    return out


def table_rows(result: dict[str, Any]) -> list[list[str]]:
    return [
        [r["audio"], f"{100 * r['wer']:.1f} %", f"{r['asr_rtf']:.3f}", r["transcript"]]
        for r in result["rows"]
    ]
