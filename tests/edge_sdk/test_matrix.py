"""The conversion matrix, on a fast subset: every installed format at fp32 and int8 for our tiny model,
and the real third-party models at the precisions that once broke."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_sdk import zoo
from edge_sdk.bench.matrix import MatrixModel, run_matrix, to_markdown
from edge_sdk.converters import TARGETS


def test_tiny_model_through_every_installed_format(
    tiny_onnx: Path, tiny_calibration: list, tmp_path: Path
) -> None:
    model = MatrixModel("tiny", str(tiny_onnx), tiny_calibration, "8 random inputs")
    targets = [f"{name}:{p}" for name, t in TARGETS for p in t.precisions if p in ("fp32", "int8")]
    cells = run_matrix([model], tmp_path, targets=targets, runs=2)
    assert [c.target for c in cells] == targets
    for c in cells:
        if c.error and c.error.startswith("not installed"):
            continue
        assert c.ok, c.error
        assert c.cosine > 0.99 and c.latency_ms > 0 and c.size > 0
    doc = to_markdown(cells, [model], "python bench/conversion_matrix.py")
    assert "| onnx:int8 | converted |" in doc and "python bench/conversion_matrix.py" in doc


def test_a_failing_cell_is_recorded_not_raised(tiny_onnx: Path, tmp_path: Path) -> None:
    wrong = [{"y": np.zeros((1, 3, 8, 8), np.float32)}]  # no such input: every conversion refuses it
    cells = run_matrix([MatrixModel("tiny", str(tiny_onnx), wrong, "wrong")], tmp_path, targets=["onnx:fp32"])
    assert not cells[0].ok and "'y'" in cells[0].error
    assert "**failed**" in to_markdown(cells, [MatrixModel("tiny", None, [], "wrong")], "cmd")


@pytest.mark.network
def test_nsnet2_int8(tmp_path: Path) -> None:
    """NSNet2 is opset 11: per-channel int8 needs the upgrade to opset 13 to load at all."""
    source = zoo.resolve(
        "nsnet2-16k", cache_dir=Path(__file__).resolve().parents[2] / ".cache" / "test-models"
    )
    rng = np.random.default_rng(0)
    samples = [{"input": rng.normal(-5, 3, (1, 50, 161)).astype(np.float32)} for _ in range(4)]
    (cell,) = run_matrix(
        [MatrixModel("nsnet2", str(source), samples, "random")], tmp_path, targets=["onnx:int8"], runs=1
    )
    assert cell.ok, cell.error
    assert cell.cosine > 0.99
