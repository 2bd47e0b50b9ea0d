"""``edge-sdk transcribe FILE...``: offline speech-to-text of WAV files, segment by segment.

Each file goes through the same stages as the live loop (VAD, then the ``asr.whisper`` stage), replayed
as fast as the CPU allows, so a transcript here is the one ``run audio --asr`` prints live. ``--vad
none`` transcribes the whole file in 30 s windows instead.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from edge_sdk.cli import console


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Register ``transcribe``."""
    p = subparsers.add_parser(
        "transcribe",
        parents=[common],
        help="speech to text of WAV files (Whisper, converted and run by the SDK), segment by segment",
        description="Transcribe WAV files offline: a VAD finds the speech, each segment is transcribed by "
        "the recogniser the live loop uses. The model is built from its source and converted once (then "
        "cached). --json gives every segment with its start and end (seconds) and its tokens.",
    )
    p.add_argument("files", nargs="+", metavar="FILE.wav")
    p.add_argument(
        "--model",
        default="zoo:whisper-tiny.en",
        metavar="zoo:whisper-tiny.en|FOLDER|CTC.onnx",
        help="a Whisper model (the zoo's, a CTranslate2 Whisper folder, or a folder edge-sdk built), a CTC "
        ".onnx, a sherpa-onnx transducer folder, or zoo:digits-asr (digits and command words)",
    )
    p.add_argument(
        "--target",
        default="onnx:int8-dynamic",
        help="which converted Whisper artifacts to run (default: onnx:int8-dynamic; also onnx:fp32)",
    )
    p.add_argument("--language", metavar="CODE", help="language of the speech (multilingual models only)")
    p.add_argument("--beam", type=int, default=1, metavar="N", help="beam width (default: 1, greedy)")
    p.add_argument(
        "--window",
        default="audio",
        choices=["audio", "full"],
        help="Whisper: encode only the audio there is (default, fast) or a full 30 s window as Whisper was "
        "trained (about a WER point better on real speech, five times the CPU)",
    )
    p.add_argument(
        "--vad",
        default="silero",
        choices=["silero", "energy", "none"],
        help="how speech is found (default: silero, which falls back to energy and says so; none: whole "
        "file in 30 s windows)",
    )
    p.add_argument("--threads", type=int, default=1, help="threads per model session (default: 1)")
    p.set_defaults(func=cmd_transcribe)


def transcribe_file(path: str, recognizer: Any, vad: str) -> dict[str, Any]:
    """One file's transcript: its segments (start, end, text, tokens), the whole text, and the CPU time
    it took against the audio's length."""
    from edge_sdk.devices.sources.audio import open_audio_source
    from edge_sdk.devices.sources.wav_file import read_wav
    from edge_sdk.live.audio import AudioLoop
    from edge_sdk.stages import Transcript
    from edge_sdk.stages.chain import audio_stages

    cpu = time.process_time()
    events: list[Any] = []
    notes: list[str] = []
    if vad == "none":
        audio, rate, _ = read_wav(path)
        t = recognizer.transcribe(audio, rate)
        duration = len(audio) / rate
        segments = [{"start": 0.0, "end": round(duration, 3), "text": t.text, "tokens": t.tokens}]
    else:
        with open_audio_source(path, sample_rate=16000, block_size=1600) as source:
            stages, notes = audio_stages(
                vad=vad, asr=recognizer.model, asr_options={"recognizer": recognizer}
            )
            summary = AudioLoop(source, stages, on_event=events.append, notes=notes).run()
        duration = summary.audio_seconds
        segments = [
            {"start": e.start, "end": e.end, "text": e.text, "tokens": list(e.tokens)}
            for e in events
            if isinstance(e, Transcript) and e.final
        ]
    cpu = time.process_time() - cpu
    return {
        "path": path,
        "duration": round(duration, 3),
        "text": " ".join(s["text"] for s in segments),
        "segments": segments,
        "cpu_seconds": round(cpu, 3),
        "rtf": round(cpu / duration, 4) if duration else None,
        "notes": notes,
    }


def cmd_transcribe(args: argparse.Namespace) -> int:
    from edge_sdk.asr import Recognizer

    recognizer = Recognizer.from_model(
        args.model,
        target=args.target,
        language=args.language,
        beam=args.beam,
        window=args.window,
        threads=args.threads,
    )
    results = []
    for path in args.files:
        result = transcribe_file(path, recognizer, args.vad)
        results.append(result)
        if not args.json:
            if len(args.files) > 1:
                console.out.print(f"{path}:", markup=False, highlight=False)
            for s in result["segments"]:
                line = f"[{s['start']:7.2f} - {s['end']:7.2f}] {s['text']}"
                console.out.print(line, markup=False, highlight=False)
            for note in result["notes"]:
                console.err.print(f"note: {note}", markup=False, highlight=False)
    if args.json:
        console.emit_json(
            {
                "model": str(args.model),
                "target": args.target,
                "beam": args.beam,
                "window": args.window,
                "files": results,
            }
        )
    return 0
