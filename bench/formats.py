"""One model, every installed format × precision: latency against ONNX fp32, measured in one process.

    .venv/bin/python bench/formats.py [--threads 1] [--runs 200] [--json]

The conv classifier of bench/quantize_speedup.py (six conv-BN-ReLU blocks, 1×3×96×96) is converted with
edge-sdk to every target the installed extras offer (32 random calibration images), then every
artifact is timed in alternating rounds through edge_sdk.load(), so machine load affects all alike.
Formats whose extra is missing are listed as skipped.
"""

from __future__ import annotations

import argparse
import json
import tempfile

import numpy as np
import torch
from quantize_speedup import SHAPE, calibration_images, conv_model, median_ms

import edge_sdk
from edge_sdk.converters import all_targets, unavailable_formats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    calib = calibration_images(rng)
    skipped = unavailable_formats()
    targets = [t for t in all_targets() if t.split(":")[0] not in skipped]
    with tempfile.TemporaryDirectory() as out:
        made, failed = [], {}
        for t in targets:  # one at a time, so that a failing target is reported and the rest go on
            try:
                made += edge_sdk.convert(
                    conv_model(),
                    [t],
                    example_inputs={"x": torch.from_numpy(calib[0]["x"])},
                    calibration=calib,
                    out=out,
                )
            except edge_sdk.EdgeSDKError as e:
                failed[t] = str(e).splitlines()[0][:200]
        x = rng.standard_normal(SHAPE).astype(np.float32)
        sessions = {a.recipe["target"]: edge_sdk.load(a.path, threads=args.threads) for a in made}
        for s in sessions.values():
            median_ms(s, x, 20)
        samples: dict[str, list[float]] = {t: [] for t in sessions}
        for _ in range(args.rounds):
            for t, s in sessions.items():
                samples[t].append(median_ms(s, x, args.runs // args.rounds))
    base = float(np.median(samples["onnx:fp32"]))
    rows = [
        {
            "target": a.recipe["target"],
            "backend": f"{sessions[a.recipe['target']].selection.backend}/"
            f"{sessions[a.recipe['target']].selection.accelerator}",
            "ms": float(np.median(samples[a.recipe["target"]])),
            "ratio_vs_onnx_fp32": float(np.median(samples[a.recipe["target"]])) / base,
            "size": a.size,
            "max_abs_error": a.parity["max_abs_error"],
            "top1_agreement": a.parity["top1_agreement"],
        }
        for a in made
    ]
    if args.json:
        print(json.dumps({"rows": rows, "failed": failed, "skipped": skipped}, indent=2))
        return
    print(f"conv model {SHAPE}, {args.threads} thread(s), median of {args.runs} runs per artifact")
    print(
        f"{'target':<22} {'backend':<18} {'ms':>8} {'vs onnx:fp32':>12} {'size KiB':>9} "
        f"{'max err':>9} {'top-1':>6}"
    )
    for r in rows:
        print(
            f"{r['target']:<22} {r['backend']:<18} {r['ms']:>8.3f} {r['ratio_vs_onnx_fp32']:>11.2f}x "
            f"{r['size'] / 1024:>9.0f} {r['max_abs_error']:>9.2e} {r['top1_agreement']:>6.0%}"
        )
    for t, why in failed.items():
        print(f"{t:<22} failed: {why}")
    for fmt, why in skipped.items():
        print(f"{fmt + ':*':<22} skipped: {why}")


if __name__ == "__main__":
    main()
