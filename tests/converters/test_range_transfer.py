"""tflite:int8 with calibrator=onnxruntime: the ranges onnxruntime calibrated on the ONNX model are carried
onto the TFLite graph onnx2tf made (matched by value, or propagated through the ops onnx2tf adds), the
int8 model agrees with fp32, and a tensor no range reaches is an error naming it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import edge_sdk
from edge_sdk.converters.targets.tflite import range_transfer
from edge_sdk.errors import ConversionError

pytest.importorskip("onnx2tf", reason="needs the tflite extra")
pytest.importorskip("ai_edge_quantizer", reason="needs the tflite extra")


def _denoiser_like(path: Path) -> Path:
    """Conv → Relu → Conv, the input minus that, clipped to [0, 1]: onnx2tf splits the Clip into a Minimum
    and a Maximum whose first tensor has no ONNX counterpart."""
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.normal(0, 0.05, (3, 8, 3, 3)).astype(np.float32), "w2")
    lo = numpy_helper.from_array(np.array(0.0, np.float32), "lo")
    hi = numpy_helper.from_array(np.array(1.0, np.float32), "hi")
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["noise"], pads=[1, 1, 1, 1]),
        helper.make_node("Sub", ["x", "noise"], ["d"]),
        helper.make_node("Clip", ["d", "lo", "hi"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "denoiser",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 16, 16])],
        [w1, w2, lo, hi],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path.write_bytes(model.SerializeToString())
    return path


def test_carried_ranges_quantise_a_model_that_agrees_with_fp32(tmp_path: Path) -> None:
    model = _denoiser_like(tmp_path / "d.onnx")
    rng = np.random.default_rng(1)
    calib = [{"x": rng.random((1, 3, 16, 16), dtype=np.float32)} for _ in range(16)]
    fp32, int8 = edge_sdk.convert(
        model, ["tflite:fp32", "tflite:int8"], calibration=calib, out=tmp_path / "out",
        options={"calibrator": "onnxruntime"}, cache=False,  # the ranges pass through a temporary file
    )  # fmt: skip
    assert int8.recipe["calibrator"] == "onnxruntime" and int8.recipe["io"] == "float"
    x = {"x": rng.random((1, 3, 16, 16), dtype=np.float32)}
    ref = edge_sdk.load(fp32.path).run(x)["y"]
    got = edge_sdk.load(int8.path).run(x)["y"]
    assert np.abs(got - ref).max() < 0.05  # a few int8 steps of the [0, 1] output
    from ai_edge_litert.interpreter import Interpreter

    kinds = {d["dtype"] for d in Interpreter(str(int8.path / "model.tflite")).get_tensor_details()}
    assert np.int8 in kinds  # really quantised, not a float copy


def _op(name: str, ins: list[int], outs: list[int]) -> dict[str, Any]:
    return {"op_name": name, "inputs": ins, "outputs": outs}


def test_ranges_go_through_the_ops_onnx2tf_adds() -> None:
    x = np.linspace(-1, 2, 12, dtype=np.float32).reshape(1, 3, 4)
    onnx_vals = {"x": x, "y": np.clip(x, 0, 1)}
    ranges = {"x": (-1.5, 2.5), "y": (0.0, 1.0)}
    one, zero = np.array(1.0, np.float32), np.array(0.0, np.float32)
    tfl = {0: x.transpose(0, 2, 1), 1: one, 2: np.minimum(x, 1).transpose(0, 2, 1), 3: zero,
           4: np.clip(x, 0, 1).transpose(0, 2, 1)}  # fmt: skip
    ops = [_op("MINIMUM", [0, 1], [2]), _op("MAXIMUM", [2, 3], [4])]
    names = {0: "in", 1: "one", 2: "min", 3: "zero", 4: "out"}
    got = range_transfer.transfer(ranges, onnx_vals, ops, tfl, names, [0], set())
    assert got == {"in": (-1.5, 2.5), "min": (-1.5, 1.0), "out": (0.0, 1.0)}
    ops = [_op("TANH", [0], [2]), _op("MAXIMUM", [2, 3], [4])]
    tfl[2] = np.tanh(x)
    with pytest.raises(ConversionError, match=r"1 TFLite tensor\(s\) \(min\).*calibrator=tensorflow"):
        range_transfer.transfer(ranges, onnx_vals, ops, tfl, names, [0], set())
    assert "min" not in range_transfer.transfer(ranges, onnx_vals, ops, tfl, names, [0], {"min"})
