"""``edge-sdk run video``: the live video loop (camera or video file), to a file or an MJPEG preview.

Errors are raised and mapped to exit codes by ``edge_sdk.cli.main``.
The video denoiser and the preview server are imported when asked for, so the loop runs without them.
"""

from __future__ import annotations

import argparse
from typing import Any

from edge_sdk.cli import console
from edge_sdk.cli.summary import print_summary
from edge_sdk.errors import BadInputError, InputLost
from edge_sdk.stages import Event


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Register ``run video`` on ``run``'s subcommands."""
    p = subparsers.add_parser(
        "video",
        parents=[common],
        help="the live video loop on a camera or video file: denoiser, video file, MJPEG preview",
        description="Run a live video loop: camera or file → denoiser → file / MJPEG preview, with a "
        "per-stage latency summary, frames per second, drops and camera reconnects at the end (also on "
        "Ctrl-C, SIGTERM or SIGHUP, which exit 0). Frames of a file that cannot be decoded are skipped and "
        "counted (frames_skipped, decode_errors); the run goes on past them and then exits 1.",
    )
    p.add_argument(
        "--source",
        default="camera",
        metavar="camera[:N]|/dev/videoN|gst:PIPELINE|picamera2|FILE",
        help="where frames come from (default: the first camera; 'edge-sdk devices --video' lists them)",
    )
    p.add_argument(
        "--denoise",
        default="none",
        metavar="zoo:video|MODEL|none",
        help="denoise each frame with an image-to-image model (the bundled one is zoo:video)",
    )
    p.add_argument("--out", metavar="OUT.mp4|OUT.avi|OUT.mkv", help="write the frames (.avi/.mkv lossless)")
    p.add_argument(
        "--preview",
        metavar="[HOST]:PORT",
        help="serve an MJPEG preview over HTTP (':8080' is 127.0.0.1:8080; '0.0.0.0:8080' for all)",
    )
    p.add_argument(
        "--preview-token",
        metavar="TOKEN",
        help="require this token of preview requests (?token= or Authorization: Bearer); beyond loopback "
        "one is generated when not given, and the URL with it is printed to stderr",
    )
    p.add_argument("--events", metavar="OUT.jsonl", help="write every event as a JSON line")
    limit = p.add_mutually_exclusive_group()
    limit.add_argument("--seconds", type=float, metavar="N", help="stop after N seconds of video")
    limit.add_argument("--frames", type=int, metavar="N", help="stop after N frames")
    pace = p.add_mutually_exclusive_group()
    pace.add_argument(
        "--realtime",
        dest="realtime",
        action="store_const",
        const=True,
        help="replay a file at its frame rate",
    )
    pace.add_argument(
        "--fast", dest="realtime", action="store_const", const=False, help="replay a file flat out (default)"
    )
    p.add_argument("--loop", action="store_true", help="replay a file forever")
    p.add_argument("--width", type=int, help="ask the camera for this width")
    p.add_argument("--height", type=int, help="ask the camera for this height")
    p.add_argument("--fps", type=float, help="ask the camera for this frame rate")
    p.add_argument("--fourcc", metavar="MJPG|YUYV|...", help="ask the camera for this pixel format")
    p.add_argument("--threads", type=int, default=1, help="threads per model session (default: 1)")
    p.set_defaults(func=cmd_run_video)


def parse_bind(text: str) -> tuple[str, int]:
    """``':8080'`` → ('127.0.0.1', 8080); ``'0.0.0.0:8080'`` → ('0.0.0.0', 8080); ``'8080'`` too."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "", text
    if not port.isdigit() or not 0 <= int(port) < 65536:  # 0: any free port (see the url printed)
        raise BadInputError(f"--preview takes [HOST]:PORT, e.g. :8080 or 0.0.0.0:8080, not {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def make_denoiser(model: str, threads: int) -> Any:
    """The video denoiser stage for ``model`` (``zoo:video`` or a model path)."""
    try:
        from edge_sdk.stages.video_denoise import VideoDenoiser
    except ImportError as e:
        raise BadInputError(
            f"--denoise {model}: this edge-sdk has no video denoiser stage (edge_sdk.stages.video_denoise "
            f"could not be imported: {e}); run with --denoise none"
        ) from None
    return VideoDenoiser(model, threads=threads)


def _make_preview(bind: str, token: str | None, stats: Any) -> Any:
    host, port = parse_bind(bind)
    try:
        from edge_sdk.live.preview import PreviewServer
    except ImportError as e:
        raise BadInputError(
            f"--preview: this edge-sdk has no preview server (edge_sdk.live.preview did not import: {e})"
        ) from None
    return PreviewServer(host, port, stats=stats, token=token)


def _event_line(e: Event) -> str:
    extra = "  ".join(f"{k}={v}" for k, v in e.to_dict().items() if k not in ("event", "stage", "time"))
    return f"{e.time:9.3f} s  {e.stage:<14} {e.kind:<16} {extra}".rstrip()


def cmd_run_video(args: argparse.Namespace) -> int:
    from edge_sdk.devices.sources.video import open_video_source
    from edge_sdk.live.sinks import VideoWriterSink
    from edge_sdk.live.video import VideoLoop

    live = not (args.json or args.quiet)

    def show(e: Event) -> None:
        console.out.print(_event_line(e), markup=False, highlight=False)

    if args.frames is not None and args.frames < 1:
        raise BadInputError(f"--frames must be at least 1, got {args.frames}")
    if args.preview is not None:
        parse_bind(args.preview)  # a bad address fails before the camera is opened
    if args.preview_token is not None and not args.preview_token:
        raise BadInputError("--preview-token must not be empty")
    if args.preview_token is not None and args.preview is None:
        raise BadInputError("--preview-token protects the preview: give --preview ADDRESS with it")
    # The source first: a wrong path or camera fails before any model is loaded or file written.
    source = open_video_source(
        args.source, width=args.width, height=args.height, fps=args.fps, fourcc=args.fourcc,
        realtime=args.realtime, loop=args.loop,
    )  # fmt: skip
    stages, sinks, notes = [], [], []
    loop: VideoLoop | None = None
    try:
        if args.denoise != "none":
            stages.append(make_denoiser(args.denoise, args.threads))
        if args.out:
            writer = VideoWriterSink(args.out, fps=source.fps or 30.0)
            sinks.append(writer)
            notes += writer.notes
        preview = None
        if args.preview:
            preview = _make_preview(
                args.preview, args.preview_token, lambda: loop.live_stats() if loop else {}
            )
            sinks.append(preview)
        loop = VideoLoop(
            source, stages, sinks, on_event=show if live else None, events_path=args.events, notes=notes
        )
        if preview is not None:
            # Served once the loop exists, so the first request already sees its figures.
            preview.start()
            if preview.token is not None:
                # Even with --json or --quiet: without the token the preview cannot be opened.
                console.err.print(f"preview: {preview.access_url}", markup=False, highlight=False)
            elif live:
                console.out.print(f"preview: {preview.url}", markup=False, highlight=False)
    except BaseException:
        for part in [*stages, *sinks, source]:
            part.close()
        raise
    summary = loop.run(max_frames=args.frames, max_seconds=args.seconds)
    print_summary(summary, "frame", args.json)
    if summary.input_lost:
        raise InputLost(
            f"{summary.source}: input lost: {summary.frames_skipped} frames of the file could not be decoded "
            f"and were skipped ({summary.decode_errors} decode errors mid-file); the other "
            f"{summary.frames} frames ran"
        )
    return 0
