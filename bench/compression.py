"""What compression buys and costs: precision × pruning ratio → size, latency and held-out quality, for
the bundled keyword spotter and a small conv classifier trained here on real handwriting.

Models:

* ``kws``: the bundled ``zoo/commands-mfcc`` spotter (MFCC windows in). Calibrated on Asterisk prompts of the
  train split, measured on the held-out test split; its metric is agreement of the top-1 decision with
  the fp32 model (the prompts carry no keyword labels), so fp32 scores 100 % by definition.
* ``digits``: a 3-block CNN trained in seconds on scikit-learn's ``load_digits`` (1797 real 8×8
  handwritten digits, upsampled to 16×16), a seeded stratified 75/25 split; metric: held-out accuracy.
  Pruned by ``edge_sdk.converters.prune`` (structured channels, magnitude) at each ratio with a short
  fine-tune through its ``finetune`` hook, then converted.

Every artifact is made by ``edge_sdk.convert``. Latency: batch 1, 1 thread, every artifact of a model
loaded in this one process and timed in interleaved rounds (background load hits all alike); the median
is reported, and the ratio is against the unpruned fp32 artifact of the same format. Size: the
artifact's model files.

    nice -n 10 .venv/bin/python bench/compression.py [--quick] [--runs 400] [--formats onnx,openvino]
        [--out docs/compression-bench.md] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import digits_cnn
import numpy as np

import edge_sdk
from edge_sdk.converters import ConversionFailed
from edge_sdk.converters.targets import TARGETS

ROOT = Path(__file__).resolve().parents[1]
PRECISIONS = ("fp32", "fp16", "int8", "int8-dynamic", "int8-weights", "int4-weights")
QUICK_PRECISIONS = ("fp32", "int8", "int8-dynamic")


@dataclass
class Case:
    """One model at one pruning ratio: what to convert and how to score it."""

    model: str
    ratio: float
    source: Any
    calibration: list[dict[str, np.ndarray]]
    x: np.ndarray  # held-out inputs, one sample per row (each with its batch axis of 1)
    y: np.ndarray | None  # labels; None: score agreement with the fp32 artifact
    metric: str
    example_inputs: Any = None
    note: str = ""
    params: int | None = None


@dataclass
class Row:
    model: str
    ratio: float
    target: str
    size: int | None = None
    latency_ms: float | None = None
    ratio_vs_fp32: float | None = None
    metric: float | None = None
    note: str = ""
    path: Path | None = field(default=None, repr=False)


# -- the models --------------------------------------------------------------------------------------


def kws_case(quick: bool) -> Case | None:
    """The bundled spotter on Asterisk prompts (train split calibrates, test split scores)."""
    from edge_sdk.audio.features import KwsFeatureConfig, kws_features
    from edge_sdk.train import speech_data

    def windows(split: str, n_prompts: int, hop: int) -> np.ndarray:
        prompts = speech_data.asterisk_prompts(split)[:n_prompts]
        if not prompts:
            return np.zeros((0, 1, 1, 49, 10), np.float32)
        audio = np.concatenate([u.audio for u in prompts])
        w = np.stack([audio[i : i + 16000] for i in range(0, len(audio) - 16000, hop)])
        return kws_features(w, KwsFeatureConfig())[:, None, None].astype(np.float32)

    calib = windows("train", 10 if quick else 40, 8000)[: 16 if quick else 150]
    x = windows("test", 8 if quick else 60, 8000 if quick else 4000)[: 40 if quick else None]
    if not len(calib) or not len(x):
        return None  # asterisk-core-sounds-en-wav is not installed
    model = ROOT / "edge_sdk" / "zoo" / "commands-mfcc" / "model.onnx"
    return Case("kws", 0.0, str(model), [{"features": c} for c in calib], x, None, "agreement with fp32")


def _train(net: Any, x: Any, y: Any, epochs: int, seed: int = 0) -> None:
    import torch

    torch.manual_seed(seed)
    digits_cnn.train(net, x, y, epochs, 3e-3, seed, cosine=False, recalibrate=False)


def digits_cases(quick: bool, ratios: list[float]) -> list[Case]:
    """The digits CNN, trained here, and its pruned copies (each fine-tuned briefly after pruning)."""
    import torch

    # One thread: this net is tiny, and torch's default of a thread per core made training 18x slower on a
    # machine busy with other work.
    torch.set_num_threads(1)
    torch.manual_seed(0)
    x_tr, y_tr, x_te, y_te = digits_cnn.data(size=16)
    net = digits_cnn.model(widths=(16, 32, 64))
    _train(net, x_tr, y_tr, epochs=2 if quick else 12)
    example = x_tr[:1]
    calib = [{"input": x_tr[i : i + 1].numpy()} for i in range(0, 64 if quick else 256, 2)]
    held_x, held_y = x_te.numpy()[:, None], y_te.numpy()
    cases = []
    for ratio in ratios:
        module, note = net, ""
        if ratio > 0:
            try:
                from edge_sdk.converters.prune import prune
            except ImportError:
                continue  # converters/prune.py has not landed here
            epochs = 1 if quick else 3
            module, result = prune(net, example, ratio, finetune=lambda m, e=epochs: _train(m, x_tr, y_tr, e))
            note = (
                f"pruned {result.params_before:,} → {result.params_after:,} params, {epochs} epoch fine-tune"
            )
        params = sum(p.numel() for p in module.parameters())
        cases.append(
            Case("digits", ratio, module, calib, held_x, held_y, "held-out accuracy", example, note, params)
        )
    return cases


# -- measuring ---------------------------------------------------------------------------------------


def _targets(formats: list[str], precisions: tuple[str, ...]) -> list[str]:
    names = TARGETS.names()
    out = []
    for fmt in formats:
        if fmt not in names or not TARGETS.get(fmt).available()[0]:
            continue
        out += [f"{fmt}:{p}" for p in precisions if p in TARGETS.get(fmt).precisions]
    return out


def _convert(case: Case, targets: list[str], out: Path) -> list[Row]:
    """All targets in one call (one export); a precision that does not apply fails alone."""
    rows = {t: Row(case.model, case.ratio, t) for t in targets}
    try:
        made = edge_sdk.convert(
            case.source,
            targets,
            out=out / f"{case.model}-{int(case.ratio * 100)}",
            calibration=case.calibration,
            example_inputs=case.example_inputs,
        )
        failures: dict[str, str] = {}
    except ConversionFailed as e:
        made, failures = e.artifacts, e.failures
    for art in made:
        row = rows[art.recipe["target"]]
        row.size, row.path = art.size, art.path
    for target, message in failures.items():
        rows[target].note = f"n/a: {message.splitlines()[0][:90]}"
    return list(rows.values())


def _predict(session: Any, x: np.ndarray) -> np.ndarray:
    (name,) = [s.name for s in session.inputs]
    out = session.output_names[0]
    return np.array([int(session.run({name: s})[out].argmax()) for s in x])


def _latencies(sessions: dict[int, tuple[Any, dict[str, np.ndarray]]], runs: int) -> dict[int, float]:
    times: dict[int, list[float]] = {k: [] for k in sessions}
    rounds = 10
    for sess, feed in sessions.values():
        for _ in range(10):
            sess.run(feed)  # warm-up
    for _ in range(rounds):
        for k, (sess, feed) in sessions.items():
            for _ in range(max(runs // rounds, 1)):
                t = time.perf_counter()
                sess.run(feed)
                times[k].append(time.perf_counter() - t)
    return {k: float(np.median(v) * 1e3) for k, v in times.items()}


def measure(cases: list[Case], targets: list[str], runs: int, out: Path, log: Any = print) -> list[Row]:
    """Convert every case to every target and score each artifact; then time all artifacts of a model
    (every pruning ratio and precision) together, in interleaved rounds, so they share the same load."""
    rows: list[Row] = []
    sessions: dict[str, dict[int, tuple[Any, dict[str, np.ndarray]]]] = {}
    for case in cases:
        log(f"converting {case.model} (pruned {case.ratio:.0%}) to {', '.join(targets)}")
        reference = None
        for row in _convert(case, targets, out):
            rows.append(row)
            if row.path is None:
                continue
            session = edge_sdk.load(row.path, threads=1)
            pred = _predict(session, case.x)
            if case.y is None and reference is None:
                reference = pred  # the first target is the format's fp32
            row.metric = float((pred == (case.y if case.y is not None else reference)).mean())
            row.note = row.note or case.note
            sessions.setdefault(case.model, {})[len(rows) - 1] = (
                session,
                {session.inputs[0].name: case.x[0]},
            )
    for model, group in sessions.items():
        log(f"timing {len(group)} {model} artifacts, {runs} runs each")
        for i, ms in _latencies(group, runs).items():
            rows[i].latency_ms = ms
    for row in rows:  # ratio vs the unpruned fp32 of the same model and format
        fmt = row.target.split(":")[0]
        base = next(
            (r for r in rows if r.model == row.model and r.ratio == 0 and r.target == f"{fmt}:fp32"), None
        )
        if base and base.latency_ms and row.latency_ms:
            row.ratio_vs_fp32 = row.latency_ms / base.latency_ms
    return rows


def markdown(rows: list[Row], cases: list[Case], command: str, runs: int) -> str:
    """The report, with the command that regenerates it at the top."""
    metrics = {c.model: c.metric for c in cases}
    lines = [
        "# Compression benchmark",
        "",
        f"Generated by `{command}` (bench/compression.py; its docstring says how each figure is measured).",
        "",
        f"Latency: batch 1, 1 thread, median of {runs} runs per artifact in interleaved rounds, on this "
        "machine's CPU; the ratio is against the unpruned fp32 artifact of the same format. Metric: "
        + "; ".join(f"{m}: {t}" for m, t in metrics.items())
        + ".",
        "",
        "Reading it: at batch 1 these models take tens to hundreds of microseconds, so per-call overhead "
        "(the runtime's and edge_sdk's Session) is a large share of each figure and pruning shows more in "
        "size than in time. A precision that does not apply to a model is listed with the converter's "
        "reason (n/a).",
        "",
        "| model | pruned | target | size | latency (ms) | vs fp32 | metric | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        size = "" if r.size is None else f"{r.size / 1024:.1f} KiB"
        lat = "" if r.latency_ms is None else f"{r.latency_ms:.3f}"
        rat = "" if r.ratio_vs_fp32 is None else f"{r.ratio_vs_fp32:.2f}×"
        met = "" if r.metric is None else f"{r.metric:.1%}"
        lines.append(
            f"| {r.model} | {r.ratio:.0%} | {r.target} | {size} | {lat} | {rat} | {met} | {r.note} |"
        )
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str) -> None:
    """Write through a temp file and a rename, so a crash never leaves half a report."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a smoke run: small data, onnx only, few runs")
    p.add_argument("--runs", type=int, default=None, help="timed runs per artifact (default 400; quick 20)")
    p.add_argument(
        "--formats", default=None, help="comma-separated formats (default onnx,openvino; quick onnx)"
    )
    p.add_argument("--ratios", default=None, help="pruning ratios (default 0,0.25,0.5; quick 0,0.5)")
    p.add_argument("--out", default=str(ROOT / "docs" / "compression-bench.md"), help="the markdown report")
    p.add_argument("--json", help="also write the rows as JSON here")
    args = p.parse_args(argv)
    runs = args.runs or (20 if args.quick else 400)
    formats = (args.formats or ("onnx" if args.quick else "onnx,openvino")).split(",")
    ratios = [float(r) for r in (args.ratios or ("0,0.5" if args.quick else "0,0.25,0.5")).split(",")]
    targets = _targets(formats, QUICK_PRECISIONS if args.quick else PRECISIONS)
    cases = [c for c in [kws_case(args.quick)] if c] + digits_cases(args.quick, ratios)
    with tempfile.TemporaryDirectory() as tmp:
        rows = measure(cases, targets, runs, Path(tmp), log=lambda m: print(m, file=sys.stderr))
    given = sys.argv[1:] if argv is None else argv
    command = "nice -n 10 .venv/bin/python bench/compression.py " + " ".join(given)
    text = markdown(rows, cases, command.strip(), runs)
    _write(Path(args.out), text)
    result = {"rows": [{k: v for k, v in r.__dict__.items() if k != "path"} for r in rows], "runs": runs}
    if args.json:
        _write(Path(args.json), json.dumps(result, indent=2))
    print(text)
    return result


if __name__ == "__main__":
    main()
