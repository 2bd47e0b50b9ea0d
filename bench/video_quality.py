"""Video denoiser quality and speed: our model (fp32/int8, ONNX/OpenVINO) against OpenCV's non-local means,
BM3D and a bilateral filter, on the held-out images and on frames of vtest.avi, with Gaussian noise.

    python bench/video_quality.py --report docs/video-quality.md

PSNR and SSIM (scikit-image) per method and σ, and frames per second at 640×480 on ``--threads`` threads.
Each baseline is tuned per σ on *training* images (never on what is scored), by a coordinate search
(each parameter swept in turn with the others held, two rounds): NLM's ``h`` over 0.3-1.2 σ and
``hColor`` over 0.5-1.5 h, the bilateral filter's ``sigmaColor`` over 1-6 σ and ``sigmaSpace`` over 2-8 px.
BM3D is slow, so it is scored on the first ``--bm3d-frames`` images of each set only (its table rows say
how many). ``--quick`` is a smoke run on a few small frames.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from edge_sdk.devices.cpu import this_cpu  # noqa: E402
from edge_sdk.train import image_data  # noqa: E402

Method = Callable[[np.ndarray, float], np.ndarray]  # (noisy BGR uint8, σ) → denoised BGR uint8
NLM_H = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0, 1.2)  # × σ
NLM_COLOR = (1.0, 0.5, 0.75, 1.5)  # hColor ÷ h; the first value is where the search starts
BILATERAL_COLOR = (2.0, 1.0, 1.5, 3.0, 4.0, 6.0)  # sigmaColor ÷ σ
BILATERAL_SPACE = (5.0, 2.0, 3.0, 8.0)  # sigmaSpace, pixels (window diameter 9)
LUMA_BOUND = "bound: clean luma + filtered chroma"


def noisy_of(clean: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    """``clean`` BGR uint8 plus Gaussian noise of ``sigma``, seeded, rounded and clipped to uint8."""
    rng = np.random.default_rng(seed)
    return np.clip(clean + rng.normal(0, sigma, clean.shape) + 0.5, 0, 255).astype(np.uint8)


def to_bgr8(img: np.ndarray) -> np.ndarray:
    """An RGB float image in [0, 1] as BGR uint8, cropped to multiples of 8."""
    h, w = (s - s % 8 for s in img.shape[:2])
    return np.ascontiguousarray((img[:h, :w, ::-1] * 255 + 0.5).astype(np.uint8))


def nlm(h: float, color: float = 1.0) -> Method:
    """OpenCV's colour NLM with ``h`` and ``hColor`` = ``color`` × ``h``."""
    import cv2

    return lambda x, s: cv2.fastNlMeansDenoisingColored(x, None, h, color * h, 7, 21)


def bilateral(sigma_color: float, sigma_space: float = 5.0) -> Method:
    import cv2

    return lambda x, s: cv2.bilateralFilter(x, 9, sigma_color, sigma_space)


def bm3d_method(x: np.ndarray, sigma: float) -> np.ndarray:
    import bm3d

    rgb = x[:, :, ::-1].astype(np.float32) / 255.0
    out = bm3d.bm3d_rgb(rgb, sigma / 255.0)
    return np.clip(out[:, :, ::-1] * 255 + 0.5, 0, 255).astype(np.uint8)


def scores(clean: np.ndarray, out: np.ndarray) -> tuple[float, float]:
    """(PSNR dB, SSIM) of ``out`` against ``clean``, both uint8."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    return (
        float(peak_signal_noise_ratio(clean, out, data_range=255)),
        float(structural_similarity(clean, out, data_range=255, channel_axis=2)),
    )


def tune(
    make: Callable[..., Method], grids: list[tuple[float, ...]], sigma: float, images: list, rounds: int = 2
) -> tuple[float, ...]:
    """The arguments of ``make`` (one value from each grid) with the best mean PSNR on ``images`` (training
    images, seeded noise), by coordinate search from the first value of each grid: each argument swept in
    turn with the others held, ``rounds`` times over."""
    cache: dict[tuple[float, ...], float] = {}

    def score(a: tuple[float, ...]) -> float:
        if a not in cache:
            m = make(*a)
            cache[a] = float(
                np.mean([scores(c, m(noisy_of(c, sigma, 99 + i), sigma))[0] for i, c in enumerate(images)])
            )
        return cache[a]

    best = tuple(g[0] for g in grids)
    for _ in range(rounds):
        for k, grid in enumerate(grids):
            best = max((best[:k] + (v,) + best[k + 1 :] for v in grid), key=score)
    return best


def model_variants(model: str, names: list[str], threads: int, work: Path, quick: bool) -> dict[str, Method]:
    """Our denoiser as stages: ``fp32-onnx`` on ``model`` itself, the others converted from it here."""
    from edge_sdk import convert, zoo
    from edge_sdk.stages.video_denoise import VideoDenoiser

    src = zoo.resolve(model) if model.startswith("zoo:") else Path(model)
    paths: dict[str, Path] = {"onnx-fp32": src}
    targets = {"onnx-int8": "onnx:int8", "openvino-fp32": "openvino:fp32", "openvino-int8": "openvino:int8"}
    wanted = [targets[n] for n in names if n in targets]
    if wanted:
        train, held = image_data.split()
        rng = np.random.default_rng(5)
        size = 64 if quick else 128

        def feeds(imgs: list[image_data.Image], sig: list[float]) -> list[dict[str, np.ndarray]]:
            return [
                {"input": image_data.gaussian(i.pixels[:size, :size], s, rng).transpose(2, 0, 1)[None].copy()}
                for i, s in zip(imgs, sig, strict=False)
            ]

        sigmas = [float(s) for s in rng.uniform(0, 55, 16)]
        arts = convert(
            str(src), wanted, calibration=feeds(train[:16], sigmas), parity_data=feeds(held[:2], [25, 50]),
            out=work, name="video",
        )  # fmt: skip
        for art in arts:
            paths[f"{art.format}-{art.precision}"] = art.path
    stages = {n: VideoDenoiser(paths[n], threads=threads) for n in names if n in paths}
    return {f"ours {n}": _as_method(st) for n, st in stages.items()}


def _as_method(stage: Any) -> Method:
    return lambda x, s: stage.denoise(x)


def fps(method: Method, frame: np.ndarray, sigma: float, seconds: float, max_runs: int) -> float:
    """Frames per second of ``method`` on ``frame``: one warm-up, then runs until ``seconds`` pass."""
    method(frame, sigma)
    n, t0 = 0, time.perf_counter()
    while n < max_runs and (n == 0 or time.perf_counter() - t0 < seconds):
        method(frame, sigma)
        n += 1
    return n / (time.perf_counter() - t0)


def run(args: argparse.Namespace) -> dict:
    """Score every method on both sets at every σ and time them; returns the results as a dict."""
    import cv2

    cv2.setNumThreads(args.threads)
    train, held = image_data.split()
    size = (160, 120) if args.quick else (640, 480)
    sets = {
        "held-out images": [to_bgr8(i.pixels) for i in held][: args.images],
        "vtest.avi": image_data.vtest_frames(args.frames, size=size),
    }
    if args.quick:
        sets["held-out images"] = [f[:96, :128] for f in sets["held-out images"]]
    tune_imgs = [
        to_bgr8(i.pixels[:256, :256])
        for i in train[:: max(len(train) // args.tune_images, 1)][: 1 if args.quick else args.tune_images]
    ]
    with tempfile.TemporaryDirectory() as work:
        ours = model_variants(args.model, args.variants.split(","), args.threads, Path(work), args.quick)
        results: dict = {"sigmas": args.sigmas, "sets": {k: len(v) for k, v in sets.items()}, "params": {}}
        table: dict = {}
        timing_frame = sets["vtest.avi"][0]
        speed: dict[str, float] = {}
        for sigma in args.sigmas:
            h, color = tune(nlm, [tuple(f * sigma for f in NLM_H), NLM_COLOR], sigma, tune_imgs)
            sc, ss = tune(
                bilateral, [tuple(f * sigma for f in BILATERAL_COLOR), BILATERAL_SPACE], sigma, tune_imgs
            )
            results["params"][str(sigma)] = {
                "nlm_h": h, "nlm_h_color": color * h, "bilateral_sigma_color": sc, "bilateral_sigma_space": ss
            }  # fmt: skip
            methods: dict[str, Method] = {"noisy": lambda x, s: x, **ours, "OpenCV NLM": nlm(h, color)}
            if args.bm3d_frames > 0:
                methods["BM3D"] = bm3d_method
            methods["bilateral"] = bilateral(sc, ss)
            for set_name, frames in sets.items():
                for name, m in methods.items():
                    count = min(args.bm3d_frames, len(frames)) if name == "BM3D" else len(frames)
                    rows = [
                        scores(c, m(noisy_of(c, sigma, 1000 * sigma + i), sigma))
                        for i, c in enumerate(frames[:count])
                    ]
                    _put(table, set_name, name, sigma, rows)
                bound = [
                    scores(c, luma_bound(c, noisy_of(c, sigma, 1000 * sigma + i)))
                    for i, c in enumerate(frames)
                ]
                _put(table, set_name, LUMA_BOUND, sigma, bound)
            if sigma == 25:
                noisy = noisy_of(timing_frame, 25, 7)
                for name, m in methods.items():
                    if name != "noisy":
                        slow = name == "BM3D"
                        speed[name] = fps(m, noisy, 25, 0.5 if slow else args.seconds, 1 if slow else 500)
        results["quality"], results["fps"] = table, speed
        results["fps_size"] = f"{timing_frame.shape[1]}x{timing_frame.shape[0]}"
        results["threads"] = args.threads
        results["tune_images"] = len(tune_imgs)
        results["load_average"] = os.getloadavg()[0]
        # int8 speed depends on the CPU's int8 kernels (with or without VNNI): name them
        results["cpu"] = this_cpu().describe()
    return results


def _put(table: dict, set_name: str, name: str, sigma: float, rows: list[tuple[float, float]]) -> None:
    table.setdefault(set_name, {}).setdefault(name, {})[str(sigma)] = {
        "psnr": float(np.mean([r[0] for r in rows])),
        "ssim": float(np.mean([r[1] for r in rows])),
        "n": len(rows),
    }


def luma_bound(clean: np.ndarray, noisy: np.ndarray) -> np.ndarray:
    """The best a luma-only model could do with the stage's chroma filter: the clean Y with the noisy
    chroma smoothed as ``video.denoise`` smooths it: is the chroma filter what limits a Y-only model?"""
    import cv2

    from edge_sdk.stages.video_denoise import _smooth_chroma

    y = cv2.cvtColor(clean.astype(np.float32) / 255, cv2.COLOR_BGR2YCrCb)[:, :, :1]
    ycc = cv2.cvtColor(noisy.astype(np.float32) / 255, cv2.COLOR_BGR2YCrCb)
    out = cv2.cvtColor(np.dstack([y, _smooth_chroma(ycc[:, :, 1:])]), cv2.COLOR_YCrCb2BGR)
    return np.clip(out * 255 + 0.5, 0, 255).astype(np.uint8)


def report(results: dict, command: str) -> str:
    """The results as the markdown of ``docs/video-quality.md``."""
    sig = results["sigmas"]
    out = [
        "# Video denoiser: quality and speed",
        "",
        "Generated by:",
        "",
        "```",
        command,
        "```",
        "",
        f"fps: one {results['fps_size']} vtest frame at σ 25, {results['threads']} threads "
        f"(`cv2.setNumThreads`, session threads), this machine ({results.get('cpu', 'CPU not recorded')}, "
        f"{os.cpu_count()} cores), shared with other jobs "
        f"(1-minute load average {results['load_average']:.1f} at the end); ours runs as the "
        "`video.denoise` stage "
        "(BGR uint8 in and out, conversions included).",
        "Noise: Gaussian, seeded per frame and σ. "
        "NLM: `cv2.fastNlMeansDenoisingColored(x, None, h, hColor, 7, 21)`; "
        "bilateral: `cv2.bilateralFilter(x, 9, sigmaColor, sigmaSpace)`; both tuned per σ on training images "
        f"({results['tune_images']}, 256×256 crops) by coordinate search (two rounds) over h 0.3-1.2 σ, "
        "hColor 0.5-1.5 h, sigmaColor 1-6 σ, sigmaSpace 2-8 px:",
        "",
        "| σ | NLM h | NLM hColor | bilateral sigmaColor | bilateral sigmaSpace |",
        "|---|---|---|---|---|",
        *[
            f"| {s} | {p['nlm_h']:.1f} | {p['nlm_h_color']:.1f} | {p['bilateral_sigma_color']:.1f} "
            f"| {p['bilateral_sigma_space']:.0f} |"
            for s, p in results["params"].items()
        ],
        "",
    ]
    for set_name, rows in results["quality"].items():
        out += [
            f"## {set_name} ({results['sets'][set_name]} frames)",
            "",
            "| method | fps | " + " | ".join(f"PSNR σ{s} | SSIM σ{s}" for s in sig) + " |",
            "|---|---|" + "---|---|" * len(sig),
        ]
        for name, per in rows.items():
            n = next(iter(per.values()))["n"]
            label = f"{name} (first {n})" if n < results["sets"][set_name] else name
            f = results["fps"].get(name)
            cells = " | ".join(f"{per[str(s)]['psnr']:.2f} | {per[str(s)]['ssim']:.3f}" for s in sig)
            out.append(f"| {label} | {'' if f is None else f'{f:.1f}'} | {cells} |")
        out.append("")
    out += targets(results)
    return "\n".join(out) + "\n"


def targets(results: dict) -> list[str]:
    """The three targets, checked against the measurements (vtest set, each σ)."""
    q, speed = results["quality"]["vtest.avi"], results["fps"]
    nlm_fps = speed.get("OpenCV NLM", float("nan"))
    lines = ["## Targets", ""]
    for name in [n for n in q if n.startswith("ours")]:
        f = speed.get(name, float("nan"))
        margin = [q[name][str(s)]["psnr"] - q["OpenCV NLM"][str(s)]["psnr"] for s in results["sigmas"]]
        lines.append(
            f"- {name}: {f:.1f} fps ({'holds' if f >= 30 else 'misses'} ≥ 30); "
            f"{f / nlm_fps:.1f}× NLM's speed ({'holds' if f >= 10 * nlm_fps else 'misses'} ≥ 10×); "
            "PSNR − NLM on vtest: "
            + ", ".join(f"σ{s} {m:+.2f} dB" for s, m in zip(results["sigmas"], margin, strict=True))
            + f" ({'holds' if min(margin) >= 1 else 'misses'} ≥ +1 dB at every σ)"
        )
    if LUMA_BOUND in q:
        bound = ", ".join(f"σ{s} {q[LUMA_BOUND][str(s)]['psnr']:.2f} dB" for s in results["sigmas"])
        lines.append(
            f"- Y-only vs RGB: a luma-only model with the stage's chroma filter could reach at most {bound} "
            "on vtest (the `bound` row: clean luma, filtered noisy chroma); the shipped model is RGB, "
            "and the stage takes 1-channel (luma) models too."
        )
    return lines


def main(argv: list[str] | None = None) -> dict:
    """Command line; prints the JSON results and writes ``--report`` and ``--json`` when given."""
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--model", default="zoo:video")
    p.add_argument("--variants", default="onnx-fp32,onnx-int8,openvino-fp32,openvino-int8")
    p.add_argument("--sigmas", type=lambda s: [int(x) for x in s.split(",")], default=[15, 25, 50])
    p.add_argument("--frames", type=int, default=20, help="vtest.avi frames, evenly spaced")
    p.add_argument("--images", type=int, default=len(image_data.HELD_OUT), help="held-out images scored")
    p.add_argument(
        "--bm3d-frames", dest="bm3d_frames", type=int, default=1, help="BM3D takes minutes a frame"
    )
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--tune-images", dest="tune_images", type=int, default=6, help="training crops for tuning")
    p.add_argument("--seconds", type=float, default=3.0, help="timing budget per method")
    p.add_argument("--quick", action="store_true", help="smoke run: small frames")
    p.add_argument("--report", type=Path)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    results = run(args)
    command = "python bench/video_quality.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    if args.report:
        args.report.write_text(report(results, command), encoding="utf-8")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(json.dumps(results["fps"], indent=2))
    return results


if __name__ == "__main__":
    main()
