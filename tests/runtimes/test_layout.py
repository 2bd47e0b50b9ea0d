"""Layout transposition and integer I/O, done by Session.run for every backend, proven through the
onnxruntime backend on models that store their tensors the other way."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import edge_sdk
from edge_sdk.manifest import Artifact, TensorSpec, file_entry, write_manifest
from edge_sdk.runtimes.layout import dequantize, permutation, quantize


def _artifact(
    directory: Path,
    model: onnx.ModelProto,
    inputs: list[TensorSpec],
    outputs: list[TensorSpec],
    quantization: dict | None = None,
) -> Path:
    directory.mkdir()
    onnx.save(model, directory / "model.onnx")
    art = Artifact(
        name=directory.name,
        format="onnx",
        precision="test",
        files=[file_entry(directory, "model.onnx")],
        inputs=inputs,
        outputs=outputs,
        source={},
        recipe={},
        versions={},
        created="now",
        quantization=quantization or {},
    )
    write_manifest(art, directory)
    return directory


def test_permutation() -> None:
    assert permutation("NCHW", "NHWC") == (0, 2, 3, 1)
    assert permutation("NHWC", "NCHW") == (0, 3, 1, 2)
    assert permutation("NCW", "NWC") == (0, 2, 1)
    with pytest.raises(edge_sdk.BadInputError, match="same axes"):
        permutation("NCHW", "NHW")


def test_quantize_round_trip_and_saturation() -> None:
    q = {"dtype": "int8", "scale": 0.05, "zero_point": -3}
    x = np.linspace(-8, 8, 161, dtype=np.float32)
    stored = quantize(x, q)
    assert stored.dtype == np.int8
    assert stored.min() == -128 and stored.max() == 127  # saturates beyond the representable range
    back = dequantize(stored, q)
    representable = (x >= (-128 + 3) * 0.05) & (x <= (127 + 3) * 0.05)
    assert np.abs(back - x)[representable].max() <= 0.025 + 1e-6


def test_nhwc_stored_model_takes_and_returns_nchw(tmp_path: Path) -> None:
    """The file's model takes NHWC and gives NHWC (a 1x1 conv between transposes); the user passes and
    gets NCHW, exactly as from the NCHW model."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 3, 1, 1)).astype(np.float32)
    nodes = [
        helper.make_node("Transpose", ["x_nhwc"], ["x_nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["x_nchw", "w"], ["y_nchw"]),
        helper.make_node("Transpose", ["y_nchw"], ["y_nhwc"], perm=[0, 2, 3, 1]),
    ]
    graph = helper.make_graph(
        nodes,
        "nhwc",
        [helper.make_tensor_value_info("x_nhwc", TensorProto.FLOAT, [1, 5, 6, 3])],
        [helper.make_tensor_value_info("y_nhwc", TensorProto.FLOAT, [1, 5, 6, 4])],
        [numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    art = _artifact(
        tmp_path / "nhwc",
        model,
        [TensorSpec("x", [1, 3, 5, 6], "float32", "NCHW", "NHWC", stored_name="x_nhwc")],
        [TensorSpec("y", [1, 4, 5, 6], "float32", "NCHW", "NHWC", stored_name="y_nhwc")],
    )
    x = rng.standard_normal((1, 3, 5, 6)).astype(np.float32)
    y = edge_sdk.load(art).run({"x": x})["y"]
    expected = np.einsum("oc,nchw->nohw", w[:, :, 0, 0], x)
    assert y.shape == (1, 4, 5, 6)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_integer_io_is_quantised_and_dequantised(tmp_path: Path) -> None:
    """The file's model takes and gives uint8; the user passes and gets float32."""
    qin = {"dtype": "uint8", "scale": 0.02, "zero_point": 128}
    qout = {"dtype": "uint8", "scale": 0.01, "zero_point": 0}
    inits = [
        numpy_helper.from_array(np.array(v, dtype=d), n)
        for n, v, d in [
            ("si", 0.02, np.float32),
            ("zi", 128, np.uint8),
            ("so", 0.01, np.float32),
            ("zo", 0, np.uint8),
        ]
    ]
    nodes = [
        helper.make_node("DequantizeLinear", ["xq", "si", "zi"], ["x"]),
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("QuantizeLinear", ["r", "so", "zo"], ["yq"]),
    ]
    graph = helper.make_graph(
        nodes,
        "q",
        [helper.make_tensor_value_info("xq", TensorProto.UINT8, [1, 50])],
        [helper.make_tensor_value_info("yq", TensorProto.UINT8, [1, 50])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    art = _artifact(
        tmp_path / "q",
        model,
        [TensorSpec("x", [1, 50], "float32", stored_name="xq")],
        [TensorSpec("y", [1, 50], "float32", stored_name="yq")],
        {"x": qin, "y": qout},
    )
    session = edge_sdk.load(art)
    x = np.linspace(-2, 2, 50, dtype=np.float32)[None]
    y = session.run({"x": x})["y"]
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, np.maximum(x, 0), atol=0.01 + 0.005)
    with pytest.raises(edge_sdk.BadInputError, match="float32"):
        session.run({"x": x.astype(np.uint8)})  # the user-facing side is float
