"""``edge-sdk run audio``: the live audio loop (microphone or WAV file), events printed as they happen.

Errors are raised and mapped to exit codes by ``edge_sdk.cli.main``.
"""

from __future__ import annotations

import argparse

from edge_sdk.cli import console
from edge_sdk.cli.summary import print_summary
from edge_sdk.stages import Event, KeywordDetected, Transcript, names_of


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Register ``run audio`` on ``run``'s subcommands; the --denoise and --vad choices come from the stage
    registry."""
    p = subparsers.add_parser(
        "audio",
        parents=[common],
        help="the live audio loop on a microphone or WAV file: denoiser, VAD, keyword spotter, speech "
        "recogniser, recorder",
        description="Run a live audio loop: source → denoiser → VAD → keyword spotter → speech recogniser → "
        "recorder, events "
        "printed as they happen and a per-stage latency summary at the end (also on Ctrl-C, SIGTERM or "
        "SIGHUP, which exit 0).",
    )
    p.add_argument(
        "--source",
        default="mic",
        metavar="mic|mic:NAME|FILE.wav",
        help="where audio comes from (default: mic)",
    )
    p.add_argument("--denoise", default="none", choices=[*names_of("denoise"), "none"])
    p.add_argument(
        "--vad",
        default="silero" if "silero" in names_of("vad") else "none",
        choices=[*names_of("vad"), "none"],
        help="voice activity detector (silero falls back to energy, and says so, if its model cannot "
        "be fetched)",
    )
    p.add_argument(
        "--kws",
        metavar="zoo:commands|MODEL.onnx",
        help="spot keywords with this model (the bundled one is zoo:commands); detections are printed "
        "live with their score and window",
    )
    p.add_argument(
        "--kws-threshold",
        type=float,
        metavar="P",
        help="fire when a keyword's smoothed posterior reaches P, for every word (default: the thresholds "
        "stored in the model, else 0.5)",
    )
    p.add_argument(
        "--kws-gate",
        action="store_true",
        help="classify only while the VAD hears speech (saves compute; needs --vad)",
    )
    p.add_argument(
        "--kws-verify",
        metavar="zoo:whisper-tiny.en",
        help="confirm each keyword with this speech recogniser before it fires: the spotter proposes at a "
        "low threshold (--kws-threshold, default 0.3) and the recogniser checks the word in the 1.6 s "
        "around it (more real words heard, far fewer false alarms; 0.4 s more latency)",
    )
    p.add_argument(
        "--asr",
        metavar="zoo:whisper-tiny.en|FOLDER|CTC.onnx",
        help="transcribe each speech segment the VAD finds with this model: Whisper (built and converted "
        "once, then cached), a CTC .onnx or a sherpa-onnx transducer folder; transcripts are printed live",
    )
    p.add_argument(
        "--asr-partials",
        action="store_true",
        help="also print partial transcripts while speech goes on (re-decoded every second; the words "
        "two successive partials agree on are committed)",
    )
    p.add_argument("--asr-beam", type=int, default=1, metavar="N", help="beam width (default: 1, greedy)")
    p.add_argument("--asr-language", metavar="CODE", help="language of the speech (multilingual models)")
    p.add_argument(
        "--asr-window",
        default="audio",
        choices=["audio", "full"],
        help="Whisper: encode only the segment's audio (default, fast) or a full 30 s window (more accurate)",
    )
    p.add_argument(
        "--asr-target",
        default="onnx:int8-dynamic",
        metavar="TARGET",
        help="which converted artifacts to run (default: onnx:int8-dynamic; also onnx:fp32)",
    )
    p.add_argument("--record", metavar="OUT.wav", help="record the (denoised) audio to a 16-bit WAV")
    p.add_argument("--events", metavar="OUT.jsonl", help="write every event as a JSON line")
    p.add_argument("--seconds", type=float, metavar="N", help="stop after N seconds of audio")
    pace = p.add_mutually_exclusive_group()
    pace.add_argument(
        "--realtime", dest="realtime", action="store_const", const=True, help="replay a file at real speed"
    )
    pace.add_argument(
        "--fast", dest="realtime", action="store_const", const=False, help="replay a file flat out (default)"
    )
    p.add_argument("--sample-rate", type=int, default=16000)
    p.add_argument("--block-size", type=int, default=320, help="samples per block (default: 320, 20 ms)")
    p.add_argument("--threads", type=int, default=1, help="threads per model session (default: 1)")
    p.set_defaults(func=cmd_run_audio)


def _event_line(e: Event) -> str:
    if isinstance(e, Transcript):
        what = "transcript" if e.final else "partial"
        return f"{e.time:9.3f} s  {e.stage:<14} {what:<16} [{e.start:.2f}-{e.end:.2f} s] {e.text}"
    if isinstance(e, KeywordDetected):
        return (
            f"{e.time:9.3f} s  {e.stage:<14} {e.kind:<16} {e.word.upper():<8} score={e.score:.3f}  "
            f"window {e.start:.3f}-{e.end:.3f} s"
        )
    d = e.to_dict()
    extra = "  ".join(
        f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
        for k, v in d.items()
        if k not in ("event", "stage", "time")
    )
    return f"{e.time:9.3f} s  {e.stage:<14} {e.kind:<16} {extra}".rstrip()


def cmd_run_audio(args: argparse.Namespace) -> int:
    from edge_sdk.devices.sources.audio import open_audio_source
    from edge_sdk.live.audio import AudioLoop
    from edge_sdk.stages.chain import audio_stages

    live = not (args.json or args.quiet)

    def show(e: Event) -> None:
        console.out.print(_event_line(e), markup=False, highlight=False)

    # The source first: a wrong path or microphone fails before any model is loaded or file written.
    with open_audio_source(
        args.source, sample_rate=args.sample_rate, block_size=args.block_size, realtime=args.realtime
    ) as source:
        stages, notes = audio_stages(
            denoise=args.denoise,
            vad=args.vad,
            kws=args.kws,
            kws_threshold=args.kws_threshold,
            kws_gate=args.kws_gate,
            kws_verify=args.kws_verify,
            record=args.record,
            asr=args.asr,
            asr_options={
                "partials": args.asr_partials,
                "beam": args.asr_beam,
                "language": args.asr_language,
                "window": args.asr_window,
                "target": args.asr_target,
            },
            sample_rate=args.sample_rate,
            threads=args.threads,
        )
        loop = AudioLoop(
            source, stages, on_event=show if live else None, events_path=args.events, notes=notes
        )
        summary = loop.run(max_seconds=args.seconds)
    print_summary(summary, "block", args.json)
    return 0
