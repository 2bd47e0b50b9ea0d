"""What pruning buys and costs on a real (small) conv classifier: latency, ONNX file size and held-out
accuracy, before and after, with and without a short fine-tune.

The model: a 3-block CNN (32/64/128 channels, BatchNorm) trained on scikit-learn's digits (1797 real
handwritten 8×8 digits, upsampled to 32×32), a seeded stratified 75/25 split. Variants: the unpruned
model; 50% of channels removed (``edge_sdk.converters.prune``, torch-pruning, magnitude importance) with
no repair, with BatchNorm statistics re-estimated on training inputs (no gradients), and with a
3-epoch fine-tune, both through the ``finetune`` hook; 50% global magnitude sparsity
(weights zeroed, shapes unchanged). Each is exported with ``edge_sdk.convert`` to ``onnx:fp32``.

Latency: onnxruntime, 1 intra-op thread, batch 1, all variants in this one process, measured in
interleaved rounds (so background load hits every variant alike); the median over all runs is reported
and the ratio is against the unpruned model. Size: the ONNX file, and gzip'd (what sparsity can save).

    nice -n 10 .venv/bin/python bench/pruning.py [--epochs 8] [--runs 3000] [--json out.json] [--quick]
"""

from __future__ import annotations

import argparse
import gzip
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from digits_cnn import accuracy, data, model, recalibrate_bn, train

__all__ = ["accuracy", "data", "latencies", "main", "model", "recalibrate_bn", "train"]


def latencies(paths: dict[str, Path], x: np.ndarray, runs: int, rounds: int = 10) -> dict[str, float]:
    """Median ms per inference for each model, 1 thread, measured in interleaved rounds."""
    import onnxruntime as ort

    sessions = {}
    for name, path in paths.items():
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        feed = {sess.get_inputs()[0].name: x}
        for _ in range(50):
            sess.run(None, feed)
        sessions[name] = (sess, feed)
    times: dict[str, list[float]] = {n: [] for n in paths}
    per_round = max(runs // rounds, 1)
    for _ in range(rounds):
        for name, (sess, feed) in sessions.items():
            for _ in range(per_round):
                t = time.perf_counter()
                sess.run(None, feed)
                times[name].append(time.perf_counter() - t)
    return {n: float(np.median(t) * 1e3) for n, t in times.items()}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    import torch

    import edge_sdk
    from edge_sdk.converters.prune import PruneSpec, prune, prune_record

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--finetune-epochs", type=int, default=3)
    ap.add_argument("--runs", type=int, default=3000)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--quick", action="store_true", help="1 epoch, 200 runs: a smoke run")
    args = ap.parse_args(argv)
    if args.quick:
        args.epochs, args.finetune_epochs, args.runs = 1, 1, 200
    torch.manual_seed(0)
    torch.set_num_threads(1)
    x_tr, y_tr, x_te, y_te = data()
    base = model()
    t0 = time.time()
    train(base, x_tr, y_tr, args.epochs, 2e-3)
    train_s = time.time() - t0
    example = x_te[:1]
    variants: dict[str, tuple[Any, dict[str, Any] | None]] = {"unpruned": (base, None)}
    half = PruneSpec(ratio=0.5)
    pruned, res = prune(base, example, half)
    variants["channels 50%"] = (pruned, prune_record(res))
    pruned_ft, res_ft = prune(
        base, example, half, finetune=lambda m: train(m, x_tr, y_tr, args.finetune_epochs, 1e-3, seed=1)
    )
    pruned_bn, res_bn = prune(base, example, half, finetune=lambda m: recalibrate_bn(m, x_tr))
    variants["channels 50% + BN re-estimate"] = (pruned_bn, prune_record(res_bn))
    variants[f"channels 50% + fine-tune {args.finetune_epochs} ep"] = (pruned_ft, prune_record(res_ft))
    sparse, res_sp = prune(base, example, PruneSpec(method="sparsity", ratio=0.5, scope="global"))
    variants["sparsity 50% (global)"] = (sparse, prune_record(res_sp))

    rows: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for i, (name, (net, _)) in enumerate(variants.items()):
            (art,) = edge_sdk.convert(
                net, "onnx:fp32", example_inputs=example, name=f"v{i}", out=Path(tmp) / f"v{i}"
            )
            paths[name] = art.model_file
        lat = latencies(paths, example.numpy(), args.runs)
        for name, (net, record) in variants.items():
            raw = paths[name].read_bytes()
            rows[name] = {
                "accuracy": accuracy(net, x_te, y_te),
                "latency_ms": lat[name],
                "onnx_bytes": len(raw),
                "onnx_gzip_bytes": len(gzip.compress(raw, 9)),
                "pruning": record,
            }
    ref = rows["unpruned"]
    print(
        f"digits 32x32, {len(y_tr)} train / {len(y_te)} held-out; trained {args.epochs} epochs in "
        f"{train_s:.1f}s; onnxruntime 1 thread, median of {args.runs} runs"
    )
    print(
        "| variant | MACs | params | held-out acc | Δ acc | latency ms | ×lat | ONNX KiB | ×size | gzip KiB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        p = r["pruning"] or {}
        macs = p.get("macs_after", res.macs_before)
        params = p.get("params_after", res.params_before)
        print(
            f"| {name} | {macs / 1e6:.2f}M | {params / 1e3:.1f}k | {r['accuracy']:.4f} | "
            f"{(r['accuracy'] - ref['accuracy']) * 100:+.2f} pt | {r['latency_ms']:.3f} | "
            f"{r['latency_ms'] / ref['latency_ms']:.2f} | {r['onnx_bytes'] / 1024:.1f} | "
            f"{r['onnx_bytes'] / ref['onnx_bytes']:.2f} | {r['onnx_gzip_bytes'] / 1024:.1f} |"
        )
    report = {"epochs": args.epochs, "runs": args.runs, "train_s": train_s, "variants": rows}
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
