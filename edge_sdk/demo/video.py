"""The demo's video part: the bundled clip (a pan over a held-out photograph, see samples/README.md) with
Gaussian noise added, through the bundled video denoiser, as a camera feed would go on a device; prints
the PSNR before and after and the frame rate, and writes the denoised video."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from edge_sdk.devices.sources.video_file import VideoFile
from edge_sdk.live.sinks import VideoWriterSink
from edge_sdk.live.video import VideoLoop, VideoSummary
from edge_sdk.stages.video_denoise import VideoDenoiser
from edge_sdk.stages.video_measure import AddNoise, PsnrMeter

CLIP = "chelsea-pan-3s.avi"
SIGMA = 25.0
MODEL = "zoo:video"


def run(
    out: Path, *, sigma: float = SIGMA, model: str = MODEL, threads: int = 2
) -> tuple[dict[str, Any], VideoSummary]:
    """Replay the clip as fast as possible through noise → denoiser, scoring both against the clean
    frames; returns a JSON-ready result and the loop's summary."""
    out.mkdir(parents=True, exist_ok=True)
    noisy, denoised = PsnrMeter("psnr-noisy"), PsnrMeter("psnr-denoised")
    stages = [AddNoise(sigma, seed=0), noisy, VideoDenoiser(model, threads=threads), denoised]
    with resources.as_file(resources.files("edge_sdk") / "samples" / CLIP) as clip:
        source = VideoFile(clip)
        recording = out / "denoised.mkv"
        sink = VideoWriterSink(recording, source.fps, (source.width, source.height))
        summary = VideoLoop(source, stages, [sink]).run()
    denoise = next(s for s in summary.stages if s.name == stages[2].name)
    result = {
        "clip": CLIP,
        "model": model,
        "sigma": sigma,
        "frames": summary.frames,
        "size": f"{summary.width}x{summary.height}",
        "psnr_noisy_db": noisy.mean_db,
        "psnr_denoised_db": denoised.mean_db,
        "psnr_gain_db": denoised.mean_db - noisy.mean_db,
        "loop_fps": summary.fps,
        "denoiser_ms_p50": denoise.p50_ms,
        "denoiser_fps": 1000.0 / denoise.mean_ms if denoise.mean_ms else 0.0,
        "threads": threads,
        "recording": str(recording),
    }
    return result, summary


def lines(result: dict[str, Any]) -> list[str]:
    """The result in three lines for the console."""
    return [
        f"PSNR against the clean frames: noisy {result['psnr_noisy_db']:.2f} dB → denoised "
        f"{result['psnr_denoised_db']:.2f} dB ({result['psnr_gain_db']:+.2f} dB)",
        f"denoiser: {result['denoiser_fps']:.1f} fps at {result['size']} ({result['denoiser_ms_p50']:.1f} ms "
        f"per frame median, {result['threads']} threads); whole loop {result['loop_fps']:.1f} fps",
        f"denoised video: {result['recording']}",
    ]
