"""int8 that gives the same answers on every CPU: 8-bit weights that the Session computes exactly where
the CPU's fast int8 kernels would saturate them, or 7-bit weights that no kernel saturates.

``saturating_onnx`` is built so that 8-bit weights overflow the 16-bit pair sums of the x86 int8 kernels
without VNNI. The tests hold on every CPU: where this CPU saturates, the fast kernels must be visibly
wrong and edge-sdk must not use them; where it does not, fast and exact kernels must agree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

import edge_sdk
from edge_sdk.converters.quantize.int8_weights import choose
from edge_sdk.devices import load_profiles
from edge_sdk.devices.cpu import this_cpu
from edge_sdk.errors import BadInputError


def _int8_weights(model: Path) -> np.ndarray:
    """Every signed 8-bit weight of ``model`` (zero points, which are scalars, left out)."""
    proto = onnx.load(str(model))
    arrays = [
        numpy_helper.to_array(t).ravel()
        for t in proto.graph.initializer
        if t.data_type == onnx.TensorProto.INT8 and np.prod(t.dims) > 1
    ]
    assert arrays, "no int8 weights"
    return np.concatenate(arrays).astype(np.int32)


@pytest.mark.parametrize(
    ("asked", "device", "bits", "why"),
    [
        ("auto", None, 8, "computes 8-bit weights exactly on every CPU"),
        ("auto", "x86-64", 8, "CPU (x86-64 (any)) may need the exact kernels"),  # with or without VNNI
        ("auto", "raspberry-pi-4", 8, "runs Arm64 NEON, no dot-product: its fast int8 kernels are exact"),
        ("auto", "jetson-orin", 8, "runs Arm64 dot-product"),
        ("auto", "intel-core-ultra-npu", 8, "runs x86-64 AVX-VNNI"),
        ("7bit", "raspberry-pi-5", 7, "asked for"),
        ("8bit", None, 8, "asked for"),
    ],
)
def test_the_choice_and_its_reason_name_the_devices_cpu(
    asked: str, device: str | None, bits: int, why: str
) -> None:
    chosen = choose(asked, load_profiles()[device] if device else None)
    assert (chosen.bits, chosen.device) == (bits, device)
    assert why in chosen.why
    assert (chosen.record()["exact_kernels"] is not None) == (bits == 8)


def test_an_unknown_setting_is_refused_with_the_choices(tiny_onnx: Path, tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="int8_weights='portable' is not one of: auto, 8bit, 7bit"):
        edge_sdk.convert(tiny_onnx, "onnx:int8-dynamic", out=tmp_path, options={"int8_weights": "portable"})
    with pytest.raises(BadInputError, match="int8_kernels='slow' is not one of: auto, exact, fast"):
        edge_sdk.load(tiny_onnx, options={"int8_kernels": "slow"})


@pytest.mark.parametrize("target", ["onnx:int8", "onnx:int8-dynamic"])
def test_7bit_weights_stay_within_7_bits_and_the_default_uses_8(
    target: str, saturating_onnx: Path, saturating_samples: Any, tmp_path: Path
) -> None:
    (default,) = edge_sdk.convert(saturating_onnx, target, calibration=saturating_samples, out=tmp_path / "d")
    (seven,) = edge_sdk.convert(
        saturating_onnx,
        target,
        calibration=saturating_samples,
        out=tmp_path / "7",
        options={"int8_weights": "7bit"},
    )
    assert np.abs(_int8_weights(seven.model_file)).max() <= 64
    assert np.abs(_int8_weights(default.model_file)).max() > 64
    assert seven.recipe["int8_weights"]["bits"] == 7 and seven.recipe["int8_weights"]["exact_kernels"] is None
    assert default.recipe["int8_weights"]["bits"] == 8
    assert "session.x64quantprecision=1" in default.recipe["int8_weights"]["exact_kernels"]
    for art in (default, seven):  # both hold parity on this CPU, whatever it is
        assert art.parity["max_abs_error"] < 0.01 * art.parity["outputs"]["y"]["reference_max_abs"]


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_fast_kernels_saturate_where_this_cpu_says_and_are_not_used_there(
    backend: str, saturating_onnx: Path, saturating_samples: Any, tmp_path: Path
) -> None:
    """The CPU class edge-sdk reads from /proc/cpuinfo predicts what the backends' int8 kernels do: on a
    CPU it says saturates, the fast kernels are far off and ``auto`` takes the exact ones; elsewhere the
    fast kernels are exact too."""
    if backend == "openvino":
        pytest.importorskip("openvino", reason="needs the openvino extra")
    fmt = "onnx" if backend == "onnxruntime" else "openvino"
    (art,) = edge_sdk.convert(saturating_onnx, f"{fmt}:int8", calibration=saturating_samples, out=tmp_path)
    auto = edge_sdk.load(art.path)
    fast = edge_sdk.load(art.path, options={"int8_kernels": "fast"})
    exact = edge_sdk.load(art.path, options={"int8_kernels": "exact"})
    scale = art.parity["outputs"]["y"]["reference_max_abs"]
    worst = max(float(np.abs(fast.run(s)["y"] - exact.run(s)["y"]).max()) for s in saturating_samples)
    taken = next(c for c in auto.selection.candidates if c.status == "taken")
    if this_cpu().saturates_8bit_weights:
        assert worst > 0.02 * scale, "fast kernels did not saturate on a CPU classed as saturating"
        assert "int8: exact kernels, since this CPU" in taken.reason
        assert auto.numerics["int8_kernels"] != "default"
    else:
        assert worst < 1e-3 * scale
        assert auto.numerics["int8_kernels"] == "default"
    assert art.parity["measured_on"]["int8_kernels"] == auto.numerics["int8_kernels"]
    assert art.parity["max_abs_error"] < 0.01 * scale  # measured with what auto picks


@pytest.mark.openvino
def test_nncf_keeps_8bit_weights_by_default_and_halves_them_for_7bit(
    saturating_onnx: Path, saturating_samples: Any, tmp_path: Path
) -> None:
    pytest.importorskip("nncf", reason="needs the openvino extra")
    for asked, fix in (("auto", "disable"), ("7bit", "enable")):
        (art,) = edge_sdk.convert(
            saturating_onnx, "openvino:int8", calibration=saturating_samples, out=tmp_path / asked,
            options={"calibrator": "nncf", "int8_weights": asked},
        )  # fmt: skip
        assert art.recipe["overflow_fix"] == fix
        assert art.parity["max_abs_error"] < 0.01 * art.parity["outputs"]["y"]["reference_max_abs"]
