"""``edge-sdk demo``: the Silero VAD format matrix, then the live audio loop on the bundled noisy clip, then
keyword spotting on the bundled commands clip (skipped, with a note, when zoo:commands is not bundled),
then speech recognition of the bundled LibriVox clip, then the video loop: the bundled clip with noise
through the bundled video denoiser."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from edge_sdk.cli import console


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Register ``demo``."""
    d = subparsers.add_parser(
        "demo",
        parents=[common],
        help="Silero VAD in every format, then the live audio loop on a bundled noisy clip",
    )
    d.add_argument("--out", default="demo-out", help="where the demo's artifacts go (default: demo-out)")
    d.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    """Run every part of the demo, then print its tables (or all of it as JSON)."""
    from edge_sdk.demo import asr as demo_asr
    from edge_sdk.demo import audio as demo_audio
    from edge_sdk.demo import formats as demo_formats
    from edge_sdk.demo import kws as demo_kws
    from edge_sdk.demo import video as demo_video

    with console.progress_bars(not args.quiet) as progress:
        result = demo_formats.run(Path(args.out), progress=progress)
    audio, summaries = demo_audio.run(Path(args.out) / "audio")
    kws, kws_summary = demo_kws.run()
    # the same clip without the denoiser, to show what the denoiser in front of the spotter changes
    kws_raw, _ = demo_kws.run(denoise="none")
    asr = demo_asr.run()
    video, video_summary = demo_video.run(Path(args.out) / "video")
    if args.json:
        console.emit_json(
            {
                **result,
                "audio_loop": audio,
                "keyword_spotting": kws,
                "keyword_spotting_no_denoise": kws_raw,
                "speech_recognition": asr,
                "video_loop": {**video, "summary": video_summary.to_dict()},
            }
        )
        return 0
    _print_formats(result)
    _print_audio(audio, summaries)
    _print_kws(kws, kws_summary, kws_raw)
    _print_asr(asr)
    _print_video(video, video_summary)
    return 0


def _print_asr(asr: dict[str, Any]) -> None:
    """Each transcript of the bundled clip beside the real one, with its word error rate."""
    from edge_sdk.demo import asr as demo_asr

    console.out.print(
        f"\nSpeech recognition on {asr['clip']}: [--denoise] → Silero VAD → {asr['model']} (converted "
        "by edge-sdk, onnx int8), one thread",
        markup=False,
        highlight=False,
    )
    console.out.print(f"reference: {asr['reference']}", markup=False, highlight=False)
    if asr["rows"]:
        console.table("transcripts against the reference", demo_asr.COLUMNS, demo_asr.table_rows(asr))
    for note in asr["notes"]:
        console.out.print(f"note: {note}", markup=False, highlight=False)


def _print_formats(result: dict[str, Any]) -> None:
    """The Silero VAD table: every installed format and precision against the original."""
    from edge_sdk.demo import formats as demo_formats

    console.out.print(
        f"Silero VAD ({result['model']}) on {result['clip']} ({result['seconds']:.1f} s, "
        f"{result['chunks']} chunks of {result['chunk_ms']} ms)"
    )
    console.table(
        "Silero VAD in every installed format and precision, CPU",
        demo_formats.COLUMNS,
        [r["cells"] for r in result["rows"]],
    )
    for note in result["notes"]:
        console.out.print(f"note: {note}")


def _print_audio(audio: dict[str, Any], summaries: dict[str, Any]) -> None:
    """The live audio loop with each denoiser, and the speech quality it kept."""
    console.out.print(f"\nLive audio loop on {audio['clip']}: denoiser → Silero VAD → recorder, one thread")
    for name, summary in summaries.items():
        console.out.print(summary.headline(), markup=False, highlight=False)
        console.table(f"--denoise {name}: per stage (latency per block)", summary.COLUMNS, summary.rows())
    rows = [["noisy input", f"{audio['noisy_si_sdr_db']:.2f} dB", "", "", ""]] + [
        [
            r["denoiser"],
            f"{r['si_sdr_db']:.2f} dB",
            f"{r['si_sdr_gain_db']:+.2f} dB",
            f"{r['rtf']:.4f}",
            r["recording"],
        ]
        for r in audio["rows"]
    ]
    console.table(
        "speech quality against the clean recording", ["audio", "SI-SDR", "gain", "RTF", "recording"], rows
    )
    for note in audio["notes"]:
        console.out.print(f"note: {note}", markup=False, highlight=False)


def _print_kws(kws: dict[str, Any], kws_summary: Any, kws_raw: dict[str, Any]) -> None:
    """Keyword spotting against the clip's truth, with and without the denoiser."""
    from edge_sdk.demo import kws as demo_kws

    console.out.print(
        f"\nKeyword spotting on {kws['clip']} (held-out voices, {kws['snr_db']:g} dB SNR): "
        f"--denoise {kws['denoise']} → VAD → {kws['model']}, one thread"
    )
    if kws_summary is not None:
        console.out.print(kws_summary.headline(), markup=False, highlight=False)
        rows = demo_kws.table_rows(kws)
        if rows:
            console.table("keyword detections against the truth", demo_kws.COLUMNS, rows)
        else:
            console.out.print("no keyword detected")
    for line in demo_kws.lines(kws):
        console.out.print(line, markup=False, highlight=False)
    for note in kws["notes"]:
        console.out.print(f"note: {note}", markup=False, highlight=False)
    if "latency" in kws_raw:
        raw = kws_raw["latency"]
        console.out.print(
            f"the same clip with --denoise none: {raw['hits']} of {raw['keywords']} keywords heard, "
            f"{raw['false_alarms']} false alarms",
            markup=False,
            highlight=False,
        )


def _print_video(video: dict[str, Any], video_summary: Any) -> None:
    """The live video loop: per-stage latency and what the denoiser did."""
    from edge_sdk.demo import video as demo_video

    console.out.print(
        f"\nLive video loop on {video['clip']} ({video['frames']} frames {video['size']}, Gaussian noise "
        f"sigma {video['sigma']:g}): noise → {video['model']} → writer",
        markup=False,
        highlight=False,
    )
    console.out.print(video_summary.headline(), markup=False, highlight=False)
    console.table("video loop: per stage (latency per frame)", video_summary.COLUMNS, video_summary.rows())
    for line in demo_video.lines(video):
        console.out.print(line, markup=False, highlight=False)
