"""What int8 that gives the same answers on every CPU costs: the bundled models' int8 with the default 8-bit
weights on the exact kernels edge-sdk's Session picks where the CPU's fast ones would saturate (x86
without VNNI), against the same model on the fast kernels (the fastest, and there the ones that
saturate) and against 7-bit weights, which no kernel saturates.

    .venv/bin/python bench/int8_portability.py [--report docs/int8-portability.md] [--json out.json]

Models: ``zoo:commands-mfcc`` (keyword spotter, one 1 s window) and ``zoo:video`` (denoiser, one 320×240
frame). Quality is measured on data neither was calibrated on: the keyword spotter's decisions against
its fp32 decisions on held-out Asterisk prompts (the test split), the denoiser's PSNR against its fp32
output on held-out images with Gaussian noise (σ 25). Latency: single-inference median, measured in
alternating blocks so that load affects every variant alike; 1 and 2 threads.
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

import edge_sdk
from edge_sdk.devices.cpu import this_cpu

Case = dict[str, Any]
# variant → (target precision options, load options)
VARIANTS: dict[str, tuple[dict[str, str], dict[str, str]]] = {
    "8-bit weights, as loaded (default)": ({"int8_weights": "8bit"}, {}),
    "8-bit weights, exact kernels": ({"int8_weights": "8bit"}, {"int8_kernels": "exact"}),
    "8-bit weights, fast kernels": ({"int8_weights": "8bit"}, {"int8_kernels": "fast"}),
    "7-bit weights": ({"int8_weights": "7bit"}, {}),
}


def kws_case() -> Case:
    from edge_sdk.audio.features import KwsFeatureConfig, kws_features
    from edge_sdk.train import speech_data

    def windows(split: str, n: int, hop: int) -> np.ndarray:
        audio = np.concatenate([u.audio for u in speech_data.asterisk_prompts(split)[:n]])
        w = np.stack([audio[i : i + 16000] for i in range(0, len(audio) - 16000, hop)])
        return kws_features(w, KwsFeatureConfig())[:, None].astype(np.float32)

    calib = windows("train", 40, 8000)[:150]
    held = windows("test", 60, 4000)

    def quality(run: Callable[[np.ndarray], np.ndarray], ref: list[np.ndarray]) -> float:
        got = [run(held[i : i + 1]).argmax(1) for i in range(len(held))]
        return 100.0 * float(np.mean([g == r.argmax(1) for g, r in zip(got, ref, strict=True)]))

    return {
        "name": "zoo:commands-mfcc",
        "input": "features",
        "calibration": [{"features": w[None]} for w in calib],
        "held": [held[i : i + 1] for i in range(len(held))],
        "timing": held[:1],
        "quality": quality,
        "quality_name": "decisions = fp32's (% of held-out windows)",
        "shapes": None,
    }


def video_case() -> Case:
    from edge_sdk.train import image_data

    train, held = image_data.split()
    rng = np.random.default_rng(5)

    def feed(img: Any, sigma: float) -> np.ndarray:
        pixels = img.pixels[:240, :320]
        if pixels.shape[:2] != (240, 320):
            import cv2

            pixels = cv2.resize(img.pixels, (320, 240), interpolation=cv2.INTER_AREA)
        return image_data.gaussian(pixels, sigma, rng).transpose(2, 0, 1)[None].copy()

    calib = [{"input": feed(i, s)} for i, s in zip(train[:16], rng.uniform(0, 55, 16), strict=False)]
    frames = [feed(i, 25.0) for i in held[:5]]

    def quality(run: Callable[[np.ndarray], np.ndarray], ref: list[np.ndarray]) -> float:
        psnr = []
        for x, r in zip(frames, ref, strict=True):
            mse = float(np.mean((np.clip(run(x), 0, 1) - np.clip(r, 0, 1)) ** 2))
            psnr.append(10 * np.log10(1.0 / max(mse, 1e-12)))
        return float(np.mean(psnr))

    return {
        "name": "zoo:video",
        "input": "input",
        "calibration": calib,
        "held": frames,
        "timing": frames[0],
        "quality": quality,
        "quality_name": "PSNR of int8 vs fp32 output (dB, held-out images, σ 25)",
        "shapes": {"input": [1, 3, 240, 320]},
    }


def block_ms(session: edge_sdk.Session, name: str, x: np.ndarray, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        session.run({name: x})
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)


def measure(
    case: Case, formats: list[str], threads: list[int], rounds: int, work: Path
) -> list[dict[str, Any]]:
    """Every format × variant: quality against fp32 on held-out data and median latency per thread count."""
    name = case["input"]
    (fp32,) = edge_sdk.convert(case["name"], "onnx:fp32", out=work, input_shapes=case["shapes"], name="m")
    ref_session = edge_sdk.load(fp32.path, threads=1)
    out = ref_session.output_names[0]
    ref = [ref_session.run({name: x})[out] for x in case["held"]]
    rows: list[dict[str, Any]] = []
    for fmt in formats:
        for variant, (options, load_options) in VARIANTS.items():
            (art,) = edge_sdk.convert(
                case["name"], f"{fmt}:int8", calibration=case["calibration"], input_shapes=case["shapes"],
                out=work / options["int8_weights"], options=options, name="m",
            )  # fmt: skip
            one = edge_sdk.load(art.path, threads=1, options=load_options)
            quality = case["quality"](lambda x, s=one: s.run({name: x})[out], ref)
            rows.append(
                {
                    "format": fmt,
                    "variant": variant,
                    "kernels": one.numerics.get("int8_kernels"),
                    "quality": quality,
                    "ms": {},
                    "art": art,
                    "load": load_options,
                }
            )
    for t in threads:
        sessions = [edge_sdk.load(r["art"].path, threads=t, options=r["load"]) for r in rows]
        sessions.append(edge_sdk.load(fp32.path, threads=t))
        runs = 200 if case["name"] == "zoo:commands-mfcc" else 10
        for s in sessions:
            block_ms(s, name, case["timing"], 5)  # warm-up: first runs allocate and pick kernels
        samples: list[list[float]] = [[] for _ in sessions]
        for _ in range(rounds):
            for i, s in enumerate(sessions):
                samples[i].append(block_ms(s, name, case["timing"], runs))
        for r, sample in zip(rows, samples, strict=False):
            r["ms"][str(t)] = float(np.median(sample))
        for r in rows:
            r.setdefault("fp32_ms", {})[str(t)] = float(np.median(samples[-1]))
    for r in rows:
        del r["art"], r["load"]
    return rows


def report(results: dict[str, Any], command: str) -> str:
    cpu = results["cpu"]
    flags = ", ".join(cpu["features"]) or "none"
    lines = [
        "# int8 with the same answers on every CPU: what it costs",
        "",
        f"Generated by `{command}` in {results['minutes']:.1f} min. Do not edit by hand.",
        "",
        f"CPU: {cpu['model']} ({cpu['int8_class']}; int8-relevant flags: {flags}), {results['cores']} cores, "
        f"1-minute load average {results['load']:.1f} at the start; {results['versions']}.",
        "",
        "- **8-bit weights, as loaded**: the default (`int8_weights=auto`), run as `edge_sdk.load` runs it "
        "here: on a CPU whose fast int8 kernels would saturate them, the exact ones (the kernels column).",
        "- **8-bit weights, exact kernels**: onnxruntime's u8×u8 kernels (`session.x64quantprecision=1`), "
        "OpenVINO's quantised layers in f32 (`LP_TRANSFORMS_MODE=NO`): the answers of every CPU class.",
        "- **8-bit weights, fast kernels**: the backends' own choice, the fastest; on x86 without VNNI they "
        "add pairs of products in 16 bits and saturate, and the quality column shows what that costs.",
        "- **7-bit weights**: `int8_weights=7bit`: no CPU's fast kernels saturate them, in any runtime.",
        "",
    ]
    for case in results["cases"]:
        threads = sorted({t for r in case["rows"] for t in r["ms"]}, key=int)
        lines += [f"## {case['name']}", "", f"Quality: {case['quality_name']}.", ""]
        lines.append(
            "| format | weights and kernels | kernels run | quality | "
            + " | ".join(f"ms, {t} thr" for t in threads)
            + " | "
            + " | ".join(f"vs fastest, {t} thr" for t in threads)
            + " |"
        )
        lines.append("|---|---|---|---:|" + "---:|" * (2 * len(threads)))
        for fmt in dict.fromkeys(r["format"] for r in case["rows"]):
            rows = [r for r in case["rows"] if r["format"] == fmt]
            fastest = {t: min(r["ms"][t] for r in rows) for t in threads}
            for r in rows:
                cells = [f"{r['ms'][t]:.3f}" for t in threads]
                cells += [f"{r['ms'][t] / fastest[t]:.2f}×" for t in threads]
                lines.append(
                    f"| {fmt} | {r['variant']} | {r['kernels']} | {r['quality']:.2f} | "
                    + " | ".join(cells)
                    + " |"
                )
        fp32 = case["rows"][0]["fp32_ms"]
        cells = [f"{fp32[t]:.3f}" for t in threads] + [""] * len(threads)
        lines += ["| onnx | fp32, for scale | | | " + " | ".join(cells) + " |", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--formats", nargs="+", default=["onnx", "openvino"])
    p.add_argument("--models", nargs="+", default=["commands", "video"])
    p.add_argument("--report", type=Path, help="write the Markdown report here")
    p.add_argument("--json", type=Path, help="write the figures here")
    args = p.parse_args(argv)
    import onnxruntime

    versions = f"onnxruntime {onnxruntime.__version__}"
    if "openvino" in args.formats:
        import openvino

        versions += f", openvino {openvino.get_version().split('-')[0]}"
    t0 = time.time()
    load = os.getloadavg()[0]
    cases = {"commands": kws_case, "video": video_case}
    results: dict[str, Any] = {
        "cpu": this_cpu().to_dict(),
        "cores": os.cpu_count(),
        "load": load,
        "versions": versions,
        "cases": [],
    }
    with tempfile.TemporaryDirectory(prefix="int8-portability-") as tmp:
        for m in args.models:
            case = cases[m]()
            rows = measure(case, args.formats, args.threads, args.rounds, Path(tmp) / m)
            results["cases"].append(
                {"name": case["name"], "quality_name": case["quality_name"], "rows": rows}
            )
            print(json.dumps(rows), file=sys.stderr, flush=True)
    results["minutes"] = (time.time() - t0) / 60
    command = "python bench/int8_portability.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    text = report(results, command.strip())
    if args.report:
        args.report.write_text(text + "\n")
    print(text)
    return results


if __name__ == "__main__":
    main()
