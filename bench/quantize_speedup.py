"""int8 vs fp32 latency of a conv model on onnxruntime, both measured in one process.

    .venv/bin/python bench/quantize_speedup.py [--threads 1 2] [--runs 200] [--json]

Builds a small image classifier (six conv-BN-ReLU blocks, 96×96 input), converts it with edge-sdk to
onnx:fp32 and onnx:int8 (static QDQ, per-channel, 32 calibration images), then times both sessions in
alternating rounds so that machine load affects them alike. Reports median latency and the ratio.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np
import onnxruntime
import torch

import edge_sdk

SHAPE = (1, 3, 96, 96)


def conv_model() -> torch.nn.Module:
    def block(cin: int, cout: int, stride: int) -> list[torch.nn.Module]:
        return [
            torch.nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
            torch.nn.BatchNorm2d(cout),
            torch.nn.ReLU(),
        ]

    torch.manual_seed(0)
    layers = [
        *block(3, 32, 2),
        *block(32, 64, 1),
        *block(64, 64, 2),
        *block(64, 128, 1),
        *block(128, 128, 2),
        *block(128, 256, 1),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(256, 10),
    ]
    return torch.nn.Sequential(*layers).eval()


def calibration_images(rng: np.random.Generator, count: int = 32) -> list[dict[str, np.ndarray]]:
    """Random normal input images for the conv model, as calibration and parity samples."""
    return [{"x": rng.standard_normal(SHAPE).astype(np.float32)} for _ in range(count)]


def median_ms(session: edge_sdk.Session, x: np.ndarray, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        session.run({"x": x})
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    calib = calibration_images(rng)
    with tempfile.TemporaryDirectory() as out:
        fp32, int8 = edge_sdk.convert(
            conv_model(),
            ["onnx:fp32", "onnx:int8"],
            example_inputs={"x": torch.from_numpy(calib[0]["x"])},
            calibration=calib,
            out=out,
        )
        x = rng.standard_normal(SHAPE).astype(np.float32)
        results = []
        for threads in args.threads:
            sessions = {
                "fp32": edge_sdk.load(fp32.path, threads=threads),
                "int8": edge_sdk.load(int8.path, threads=threads),
            }
            for s in sessions.values():  # warm-up: first runs allocate and pick kernels
                median_ms(s, x, 20)
            samples: dict[str, list[float]] = {"fp32": [], "int8": []}
            for _ in range(args.rounds):
                for name, s in sessions.items():
                    samples[name].append(median_ms(s, x, args.runs // args.rounds))
            fp32_ms, int8_ms = (float(np.median(samples[k])) for k in ("fp32", "int8"))
            results.append(
                {
                    "threads": threads,
                    "fp32_ms": fp32_ms,
                    "int8_ms": int8_ms,
                    "ratio": int8_ms / fp32_ms,
                    "int8_top1_agreement": int8.parity["top1_agreement"],
                    "fp32_bytes": fp32.size,
                    "int8_bytes": int8.size,
                }
            )
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"conv model {SHAPE}, onnxruntime {onnxruntime.__version__} CPU, median of {args.runs} runs")
    print(
        f"{'threads':>7} {'fp32 ms':>9} {'int8 ms':>9} {'int8/fp32':>10} {'size ratio':>10} "
        f"{'top-1 agree':>11}"
    )
    for r in results:
        print(
            f"{r['threads']:>7} {r['fp32_ms']:>9.3f} {r['int8_ms']:>9.3f} {r['ratio']:>10.2f}x "
            f"{r['int8_bytes'] / r['fp32_bytes']:>9.2f}x {r['int8_top1_agreement']:>11.1%}"
        )


if __name__ == "__main__":
    main()
