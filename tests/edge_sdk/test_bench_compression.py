"""Smoke test of bench/compression.py --quick: the keyword spotter and the digits CNN (pruned too, when
converters/prune.py is there) are converted, scored and timed, and the report carries its command and
table. Speed is the benchmark's business, not asserted here."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.torch


def test_quick_mode_runs(tmp_path: Path, bench_module: Callable[..., ModuleType]) -> None:
    compression = bench_module("compression", "torch", "sklearn")
    report, data = tmp_path / "bench.md", tmp_path / "bench.json"
    compression.main(["--quick", "--runs", "5", "--out", str(report), "--json", str(data)])
    text = report.read_text()
    assert text.startswith("# Compression benchmark")
    assert "`nice -n 10 .venv/bin/python bench/compression.py --quick" in text
    rows = json.loads(data.read_text())["rows"]
    digits = {(r["ratio"], r["target"]): r for r in rows if r["model"] == "digits"}
    fp32, int8 = digits[(0.0, "onnx:fp32")], digits[(0.0, "onnx:int8")]
    assert int8["size"] < fp32["size"]
    assert fp32["ratio_vs_fp32"] == 1.0 and int8["latency_ms"] > 0
    assert fp32["metric"] > 0.5 and abs(int8["metric"] - fp32["metric"]) < 0.1  # real held-out digits
    if (0.5, "onnx:fp32") in digits:  # pruning has landed
        assert digits[(0.5, "onnx:fp32")]["size"] < fp32["size"]
    for r in rows:
        assert r["note"].startswith("n/a") or 0.0 <= r["metric"] <= 1.0
    assert "| digits | 0% | onnx:int8 |" in text
