"""Layout transparency: one NCHW float array into the ONNX, OpenVINO and TFLite artifacts of one conv
model gives the same output from each, though TFLite stores the model channels-last."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import edge_sdk
from edge_sdk.converters import unavailable_formats

FORMATS = ("onnx", "openvino", "tflite")


@pytest.mark.openvino
@pytest.mark.tflite
@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_one_input_three_backends(conv_module: Any, tmp_path: Path, precision: str) -> None:
    torch = pytest.importorskip("torch")
    missing = {f: why for f, why in unavailable_formats().items() if f in FORMATS}
    if missing:
        pytest.skip(f"needs every format: {missing}")
    rng = np.random.default_rng(5)
    calib = [{"x": rng.standard_normal((1, 3, 16, 16)).astype(np.float32)} for _ in range(16)]
    arts = edge_sdk.convert(
        conv_module,
        [f"{f}:{precision}" for f in FORMATS],
        calibration=calib,
        example_inputs={"x": torch.from_numpy(calib[0]["x"])},
        out=tmp_path,
    )
    by_format = {a.format: a for a in arts}
    tfl = by_format["tflite"]
    assert (tfl.inputs[0].layout, tfl.inputs[0].stored_layout) == ("NCHW", "NHWC")  # stored another way
    x = rng.standard_normal((1, 3, 16, 16)).astype(np.float32)  # not a calibration sample
    with torch.no_grad():
        truth = conv_module(torch.from_numpy(x)).numpy()
    outputs = {f: next(iter(edge_sdk.load(a.path).run({"x": x}).values())) for f, a in by_format.items()}
    scale = float(np.abs(truth).max())
    for f, y in outputs.items():
        assert y.shape == truth.shape and y.dtype == np.float32, f
        # within each artifact's own recorded parity tolerance, with room for an unseen input
        limit = max(4 * by_format[f].parity["max_abs_error"], 1e-5 * scale)
        assert np.abs(y - truth).max() <= limit, (f, np.abs(y - truth).max(), limit)
        assert y.argmax() == truth.argmax(), f
