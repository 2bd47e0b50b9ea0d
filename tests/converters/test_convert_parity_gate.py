"""The parity gate (``max_error``, the CLI's --max-error) and how one failing target is isolated."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import edge_sdk


def _visible(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if not p.name.startswith("."))


def test_missed_max_error_raises_with_the_figures_and_leaves_nothing(
    tiny_onnx: Path, tiny_calibration: list, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    with pytest.raises(edge_sdk.ConversionError) as e:
        edge_sdk.convert(tiny_onnx, "onnx:int8", calibration=tiny_calibration, max_error=1e-9, out=out)
    assert not isinstance(e.value, edge_sdk.ConversionFailed)  # one target: the plain error
    assert e.value.exit_code == 1
    msg = str(e.value)
    assert "tiny-onnx-int8" in msg
    m = re.search(r"max abs error ([0-9.e+-]+) > limit ([0-9.e+-]+)", msg)
    assert m, msg
    assert float(m.group(1)) > 1e-9 and float(m.group(2)) == pytest.approx(1e-9)
    assert "cosine" in msg and "'logits'" in msg and f"{len(tiny_calibration)} samples" in msg
    # Neither the artifact nor a partial one (hidden or not) is left.
    assert not out.exists() or list(out.iterdir()) == []


def test_met_max_error_is_recorded(tiny_onnx: Path, tiny_calibration: list, tmp_path: Path) -> None:
    (art,) = edge_sdk.convert(
        tiny_onnx, "onnx:int8", calibration=tiny_calibration, max_error=0.5, out=tmp_path / "out"
    )
    manifest = json.loads((art.path / "artifact.json").read_text())
    assert manifest["parity"]["passed"] is True
    assert manifest["parity"]["max_error_limit"] == 0.5
    assert 0 < manifest["parity"]["max_abs_error"] <= 0.5
    assert manifest["recipe"]["max_error"] == 0.5


def test_failed_gate_keeps_the_previous_artifact(
    tiny_onnx: Path, tiny_calibration: list, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    (first,) = edge_sdk.convert(tiny_onnx, "onnx:int8", calibration=tiny_calibration, out=out)
    before = (first.path / "artifact.json").read_bytes()
    with pytest.raises(edge_sdk.ConversionError):
        edge_sdk.convert(tiny_onnx, "onnx:int8", calibration=tiny_calibration, max_error=1e-9, out=out)
    assert (first.path / "artifact.json").read_bytes() == before
    assert edge_sdk.load_artifact(first.path).name == first.name  # files still match their sha256
    assert [p.name for p in out.iterdir()] == [first.name]


def test_one_failing_target_does_not_stop_the_others(
    tiny_onnx: Path, tiny_calibration: list, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    targets = ["onnx:fp32", "onnx:int8", "onnx:fp16"]
    with pytest.raises(edge_sdk.ConversionFailed) as e:
        # fp32 and fp16 of this model stay far below 1e-2; int8 does not.
        edge_sdk.convert(tiny_onnx, targets, calibration=tiny_calibration, max_error=1e-2, out=out)
    failed = e.value
    assert isinstance(failed, edge_sdk.ConversionError)
    assert [a.precision for a in failed.artifacts] == ["fp32", "fp16"]
    assert list(failed.failures) == ["onnx:int8"]
    assert "parity check failed" in failed.failures["onnx:int8"]
    assert "onnx:int8" in str(failed) and "1 of 3 targets failed" in str(failed)
    assert _visible(out) == ["tiny-onnx-fp16", "tiny-onnx-fp32"]
    assert list(out.iterdir()) == [p for p in out.iterdir() if not p.name.startswith(".")]
    for art in failed.artifacts:
        assert art.path is not None and art.path.parent == out
        session = edge_sdk.load(art.path)
        assert session.artifact is not None and session.artifact.parity["passed"] is True


def test_parity_sample_count_is_capped(tiny_onnx: Path, tiny_calibration: list, tmp_path: Path) -> None:
    (art,) = edge_sdk.convert(
        tiny_onnx, "onnx:fp32", calibration=tiny_calibration, parity_samples=3, out=tmp_path / "out"
    )
    assert art.parity["inputs"] == "calibration" and art.parity["samples"] == 3
