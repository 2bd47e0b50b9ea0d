"""Soak test of the live loops: a looping real file through the audio or video loop faster than real time
for ``--duration`` seconds of stream, with the process's memory, threads and open files sampled as it goes
and a straight line fitted to each, so a slow leak shows as a slope. Exits 1 when one is found.

    python bench/soak.py audio --duration 3600
    python bench/soak.py video --duration 1200 --scale 0.5

Audio: the bundled ``commands-demo.wav`` (24.5 s, replayed forever) through the chain the keyword part of
``make demo`` runs: tiny denoiser → Silero VAD → keyword spotter ``zoo:commands``, one thread per session.
Video: vtest.avi from opencv-doc (768×576, 10 fps) where installed, else the bundled ``chelsea-pan-3s.avi``,
replayed forever (the file is reopened at each end) through the bundled denoiser ``zoo:video``;
``--scale`` shrinks each frame first (OpenCV INTER_AREA) for a lighter run. Both run flat out; the run ends
after the stream time asked for (blocks or frames counted, not wall time).

Every ``--every`` seconds of stream (default: the duration / 240) a stage at the end of the chain reads
VmRSS and Threads from /proc/self/status and counts /proc/self/fd (Linux only). OUT/samples.csv holds the
series; OUT/summary.json and OUT/summary.md the start, end, minimum and maximum of each figure, its
least-squares slope per hour of stream and per hour of wall time over the samples after the ``--warmup``
fraction of the stream, its growth there (the minimum over the last tenth of those samples less the maximum
over the first tenth: a lasting rise, not a passing peak), and the loop's summary (overruns, drops, events).
Exit 0 when the RSS slope is at most ``--max-rss-slope`` MiB per stream hour and neither threads nor file
descriptors grew; 1 when not, or when the run was interrupted; 2 on bad input.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from edge_sdk import zoo  # noqa: E402
from edge_sdk.cli import console  # noqa: E402
from edge_sdk.errors import BadInputError  # noqa: E402
from edge_sdk.integrity import atomic_write  # noqa: E402
from edge_sdk.stages.base import Block, Frame, Stage  # noqa: E402

PROC = Path("/proc/self")
AUDIO_CLIP = "commands-demo.wav"
VIDEO_CLIP = "chelsea-pan-3s.avi"
VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
RATE = 16000
METRICS = ("rss_mib", "threads", "fds")
SAMPLES = 240  # samples per run when --every is not given
DEFAULT_MAX_RSS_SLOPE = 10.0  # MiB per hour of stream: 240 MiB a day, far above allocator noise over an hour


@dataclass
class Sample:
    """The process at one moment: seconds of stream and of wall time since the start, resident memory in
    MiB, threads, open file descriptors."""

    stream_s: float
    wall_s: float
    rss_mib: float
    threads: int
    fds: int


def read_process() -> tuple[float, int, int]:
    """(resident memory in MiB, threads, open file descriptors) of this process, from /proc."""
    fields = dict(line.split(":", 1) for line in (PROC / "status").read_text().splitlines() if ":" in line)
    rss_kib = int(fields["VmRSS"].split()[0])
    return rss_kib / 1024.0, int(fields["Threads"]), len(os.listdir(PROC / "fd"))


class Sampler(Stage):
    """The last stage of the chain: passes each block or frame on unchanged and samples the process every
    ``every`` seconds of stream, counted from the unit's index (``period`` seconds each), so the series is
    bounded by the stream, not by the wall clock; and once more at ``duration``. ``progress`` is told of
    every tenth of the duration."""

    name = "soak.sample"

    def __init__(self, every: float, period: float, duration: float, progress: Any = None) -> None:
        self.every, self.period, self.duration, self.progress = every, period, duration, progress
        self.samples: list[Sample] = []
        self._t0 = time.perf_counter()
        self._due = 1  # the next sample is due at _due * every seconds of stream
        self._tenth = 1
        self.sample(0.0)

    def sample(self, stream_s: float) -> None:
        rss, threads, fds = read_process()
        wall = time.perf_counter() - self._t0
        self.samples.append(Sample(round(stream_s, 6), round(wall, 6), round(rss, 3), threads, fds))

    def process(self, unit: Block | Frame) -> Block | Frame:  # type: ignore[override]
        stream = (unit.index + 1) * self.period
        end = stream >= self.duration - 1e-9
        if stream >= self._due * self.every - 1e-9 or end:
            self.sample(stream)
            while self._due * self.every <= stream + 1e-9:
                self._due += 1
            if self.progress is not None and stream >= self._tenth * self.duration / 10 - 1e-9:
                while self._tenth * self.duration / 10 <= stream + 1e-9:
                    self._tenth += 1
                self.progress(self.samples[-1])
        return unit


class Downscale(Stage):
    """Shrinks each frame by ``scale`` (OpenCV INTER_AREA) for a lighter soak run; ``raw`` stays full size."""

    name = "downscale"

    def __init__(self, scale: float) -> None:
        self.scale = scale

    def process(self, frame: Frame) -> Frame:  # type: ignore[override]
        import cv2

        h, w = frame.image.shape[:2]
        size = (max(1, round(w * self.scale)), max(1, round(h * self.scale)))
        return frame.with_image(cv2.resize(frame.image, size, interpolation=cv2.INTER_AREA))


def slope(t: Sequence[float], y: Sequence[float]) -> float | None:
    """The least-squares slope of ``y`` against ``t``; None with fewer than two distinct ``t``."""
    n = len(t)
    if n < 2:
        return None
    mt, my = sum(t) / n, sum(y) / n
    var = sum((a - mt) ** 2 for a in t)
    if var <= 0:
        return None
    return sum((a - mt) * (b - my) for a, b in zip(t, y, strict=True)) / var


def growth(y: Sequence[float]) -> float:
    """How much ``y`` rose and stayed up: the minimum over its last tenth less the maximum over its first
    tenth (at least one value each), so a passing peak counts for nothing and a lasting step does."""
    if not y:
        return 0.0
    k = max(1, len(y) // 10)
    return min(y[-k:]) - max(y[:k])


def figures(samples: Sequence[Sample], warmup_s: float) -> dict[str, dict[str, Any]]:
    """Per metric: start, end, min, max of the whole series; over the samples from ``warmup_s`` of stream
    on, the slope per hour of stream and per hour of wall time and the growth; and how many were fitted."""
    fitted = [s for s in samples if s.stream_s >= warmup_s]
    out: dict[str, dict[str, Any]] = {}
    for m in METRICS:
        y = [getattr(s, m) for s in samples]
        yf = [getattr(s, m) for s in fitted]
        per_stream = slope([s.stream_s / 3600 for s in fitted], yf)
        per_wall = slope([s.wall_s / 3600 for s in fitted], yf)
        out[m] = {
            "start": y[0],
            "end": y[-1],
            "min": min(y),
            "max": max(y),
            "slope_per_stream_hour": per_stream,
            "slope_per_wall_hour": per_wall,
            "growth": growth(yf),
            "fitted_samples": len(fitted),
        }
    return out


def verdict(figs: dict[str, dict[str, Any]], max_rss_slope: float, ending: str) -> list[str]:
    """What makes the run fail as a leak check (empty: it passes)."""
    failures = []
    if ending != "done":
        failures.append(f"the loop ended {ending} before the duration asked for")
    rss = figs["rss_mib"]["slope_per_stream_hour"]
    if rss is None:
        failures.append("too few samples after the warm-up to fit a slope (lower --every or --warmup)")
    elif rss > max_rss_slope:
        failures.append(f"RSS grows {rss:.2f} MiB per stream hour (limit {max_rss_slope:g})")
    for m, what in (("threads", "threads"), ("fds", "open file descriptors")):
        if figs[m]["growth"] > 0:
            failures.append(f"{what} grew by {figs[m]['growth']:g} after the warm-up")
    return failures


def sample_path(name: str) -> Path:
    """A file bundled in edge_sdk/samples (a real path: the package is installed from the source tree)."""
    return Path(str(resources.files("edge_sdk") / "samples" / name))


def shown(path: Path) -> str:
    """``path`` relative to the repository when inside it, so reports name no machine's checkout."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def run_audio(args: argparse.Namespace, progress: Any) -> tuple[Any, Sampler, dict[str, Any]]:
    """The audio loop over the looping WAV; returns (loop summary, sampler, what ran)."""
    from edge_sdk.devices.sources.wav_file import WavFile
    from edge_sdk.live.audio import AudioLoop
    from edge_sdk.stages.chain import audio_stages

    path = Path(args.wav) if args.wav else sample_path(AUDIO_CLIP)
    kws = args.kws if args.kws is not None else ("zoo:commands" if zoo.bundled("zoo:commands") else "none")
    source = WavFile(path, sample_rate=RATE, block_size=args.block_size, realtime=False, loop=True)
    stages, notes = audio_stages(
        denoise=args.denoise, vad=args.vad, kws=kws, sample_rate=RATE, threads=args.threads
    )
    sampler = Sampler(args.every, args.block_size / RATE, args.duration, progress)
    summary = AudioLoop(source, [*stages, sampler], notes=notes).run(max_seconds=args.duration)
    chain = {"source": shown(path), "denoise": args.denoise, "vad": args.vad, "kws": kws}
    return summary, sampler, chain


def run_video(args: argparse.Namespace, progress: Any) -> tuple[Any, Sampler, dict[str, Any]]:
    """The video loop over the looping video file; returns (loop summary, sampler, what ran)."""
    from edge_sdk.devices.sources.video_file import VideoFile
    from edge_sdk.live.video import VideoLoop

    path = Path(args.video) if args.video else VTEST if VTEST.is_file() else sample_path(VIDEO_CLIP)
    source = VideoFile(path, realtime=False, loop=True)
    stages: list[Stage] = []
    try:
        if args.scale != 1.0:
            stages.append(Downscale(args.scale))
        if args.denoise != "none":
            from edge_sdk.stages.video_denoise import VideoDenoiser

            stages.append(VideoDenoiser(args.denoise, threads=args.threads))
    except BaseException:
        source.close()
        raise
    sampler = Sampler(args.every, 1.0 / source.fps, args.duration, progress)
    frames = max(1, math.ceil(args.duration * source.fps - 1e-9))
    size = f"{max(1, round(source.width * args.scale))}x{max(1, round(source.height * args.scale))}"
    summary = VideoLoop(source, [*stages, sampler]).run(max_frames=frames)
    chain = {"source": shown(path), "denoise": args.denoise, "scale": args.scale, "processed_size": size}
    return summary, sampler, chain


def markdown(report: dict[str, Any]) -> str:
    """The summary for people: what ran, the table of figures, the loop's headline and the verdict."""

    def num(x: Any, fmt: str) -> str:
        return "n/a" if x is None else format(x, fmt)

    chain = ", ".join(f"{k} {v}" for k, v in report["chain"].items())
    lines = [
        f"# Soak: {report['kind']} loop, {report['duration_s']:g} s of stream",
        "",
        f"Command: `{report['command']}`",
        "",
        f"{chain}; {report['threads']} thread(s) per session. {report['wall_s']:.0f} s wall "
        f"(x{report['speed']:.1f} real time). Sampled every {report['every_s']:g} s of stream "
        f"({report['samples']} samples); slopes and growth fitted after {report['warmup']:.0%} of the "
        "stream.",
        "",
        "| figure | start | end | min | max | slope / stream h | slope / wall h | growth |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m, f in report["figures"].items():
        fmt = ".1f" if m == "rss_mib" else "g"
        cells = [num(f[k], fmt) for k in ("start", "end", "min", "max")]
        cells += [num(f[k], "+.2f") for k in ("slope_per_stream_hour", "slope_per_wall_hour")]
        lines.append(f"| {m} | " + " | ".join(cells) + f" | {num(f['growth'], fmt)} |")
    loop = report["loop"]
    lines += [
        "",
        f"Loop: {report['headline']}",
        f"Overruns {loop.get('overruns', 0)}, drops {loop.get('drops', 0)}.",
        "",
    ]
    if report["failures"]:
        lines += ["Verdict: LEAK CHECK FAILED", *[f"- {f}" for f in report["failures"]]]
    else:
        lines.append(f"Verdict: passed (RSS slope limit {report['max_rss_slope']:g} MiB per stream hour)")
    return "\n".join(lines) + "\n"


def write_reports(out: Path, report: dict[str, Any], samples: Sequence[Sample]) -> None:
    """OUT/samples.csv, OUT/summary.json and OUT/summary.md, each written atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(asdict(samples[0])), lineterminator="\n")
    writer.writeheader()
    writer.writerows(asdict(s) for s in samples)
    atomic_write(out / "samples.csv", buf.getvalue())
    atomic_write(out / "summary.json", json.dumps(report, indent=2) + "\n")
    atomic_write(out / "summary.md", markdown(report))


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("kind", choices=["audio", "video"])
    p.add_argument("--duration", type=float, required=True, help="seconds of stream (audio or video) to run")
    p.add_argument("--every", type=float, help="sample every N seconds of stream (default: duration / 240)")
    p.add_argument("--warmup", type=float, default=0.2, help="fraction of the stream left out of the fits")
    p.add_argument(
        "--max-rss-slope",
        type=float,
        default=DEFAULT_MAX_RSS_SLOPE,
        help=f"fail above this RSS slope, MiB per hour of stream (default {DEFAULT_MAX_RSS_SLOPE:g})",
    )
    p.add_argument("--out", type=Path, help="where the reports go (default: out/soak-KIND)")
    p.add_argument("--threads", type=int, default=1, help="threads per model session (default 1)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    a = p.add_argument_group("audio")
    a.add_argument("--wav", help=f"the WAV file to loop (default: the bundled {AUDIO_CLIP})")
    a.add_argument("--vad", default="silero", help="VAD stage name or none (default silero)")
    a.add_argument("--kws", help="keyword model, zoo:NAME or .onnx, or none (default zoo:commands)")
    a.add_argument("--block-size", type=int, default=320, help="samples per block (default 320, 20 ms)")
    v = p.add_argument_group("video")
    v.add_argument(
        "--video", help=f"the video file to loop (default: vtest.avi if installed, else {VIDEO_CLIP})"
    )
    v.add_argument("--scale", type=float, default=1.0, help="shrink frames by this factor first (default 1)")
    p.add_argument(
        "--denoise", help="denoiser: audio tiny|nsnet2|none (default tiny), video zoo:video|MODEL|none"
    )
    args = p.parse_args(argv)
    if args.denoise is None:
        args.denoise = "tiny" if args.kind == "audio" else "zoo:video"
    return args


def check(args: argparse.Namespace) -> None:
    """Bad settings and a system without /proc fail before anything is loaded."""
    if not (PROC / "status").is_file() or not (PROC / "fd").is_dir():
        raise BadInputError("bench/soak.py reads /proc/self/status and /proc/self/fd: it runs on Linux only")
    if not args.duration > 0:
        raise BadInputError(f"--duration must be positive, got {args.duration}")
    if args.every is None:
        args.every = args.duration / SAMPLES
    if not args.every > 0:
        raise BadInputError(f"--every must be positive, got {args.every}")
    if not 0 <= args.warmup < 1:
        raise BadInputError(f"--warmup is a fraction in [0, 1), got {args.warmup}")
    if not 0 < args.scale <= 1:
        raise BadInputError(f"--scale shrinks frames: it must be in (0, 1], got {args.scale}")
    if args.block_size <= 0 or args.threads <= 0:
        raise BadInputError("--block-size and --threads must be positive")


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    console.setup_logging(verbose=False, quiet=args.json)
    try:
        check(args)
    except BadInputError as e:
        console.err.print(f"error: {e}", markup=False, highlight=False)
        return 2
    out = args.out or Path("out") / f"soak-{args.kind}"

    def progress(s: Sample) -> None:
        if not args.json:
            console.err.print(
                f"soak {args.kind}: {s.stream_s:g}/{args.duration:g} s of stream, {s.wall_s:.0f} s wall, "
                f"RSS {s.rss_mib:.1f} MiB, threads {s.threads}, fds {s.fds}",
                markup=False,
                highlight=False,
            )

    run = run_audio if args.kind == "audio" else run_video
    try:
        summary, sampler, chain = run(args, progress)
    except BadInputError as e:
        console.err.print(f"error: {e}", markup=False, highlight=False)
        return 2
    samples = sampler.samples
    stream = samples[-1].stream_s
    figs = figures(samples, args.warmup * args.duration)
    given = sys.argv[1:] if argv is None else argv
    report: dict[str, Any] = {
        "kind": args.kind,
        "command": "python bench/soak.py " + shlex.join(given),
        "chain": chain,
        "threads": args.threads,
        "duration_s": args.duration,
        "stream_s": stream,
        "wall_s": samples[-1].wall_s,
        "speed": stream / samples[-1].wall_s if samples[-1].wall_s > 0 else 0.0,
        "every_s": args.every,
        "warmup": args.warmup,
        "samples": len(samples),
        "max_rss_slope": args.max_rss_slope,
        "figures": figs,
        "ending": summary.ending,
        "headline": summary.headline(),
        "loop": summary.to_dict(),
        "failures": verdict(figs, args.max_rss_slope, summary.ending),
    }
    report["ok"] = not report["failures"]
    write_reports(out, report, samples)
    if args.json:
        console.emit_json(report)
    else:
        console.out.print(markdown(report), markup=False, highlight=False)
        console.out.print(f"reports: {out}/summary.md, summary.json, samples.csv", markup=False)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
