"""Selection: the device profile's preference order over the artifacts given, with overrides, strict mode
and fall-backs recorded. Devices other than this machine come from recorded fingerprint trees."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import pytest

import edge_sdk
from edge_sdk.converters import unavailable_formats
from edge_sdk.devices import detect

FIXTURES = Path(__file__).resolve().parents[1] / "devices" / "fixtures"


@pytest.fixture(scope="module")
def folder(tiny_onnx: Path, tiny_calibration: list, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder holding the tiny classifier as onnx fp32/int8 and, where installed, openvino and tflite."""
    missing = unavailable_formats()
    targets = ["onnx:fp32", "onnx:int8"] + [
        t for t in ("openvino:fp32", "tflite:int8") if t.split(":")[0] not in missing
    ]
    out = tmp_path_factory.mktemp("selection")
    edge_sdk.convert(tiny_onnx, targets, calibration=tiny_calibration, out=out)
    return out


def _taken(session: edge_sdk.Session) -> tuple[str, str, str | None]:
    sel = session.selection
    return sel.backend, sel.accelerator, sel.artifact


def test_this_machine_prefers_onnx_fp32_on_the_cpu(folder: Path) -> None:
    session = edge_sdk.load(folder)
    if session.selection.device != "x86-64":
        pytest.skip(f"this host is a {session.selection.device}")
    assert _taken(session) == ("onnxruntime", "cpu", "tiny-onnx-fp32")
    assert not session.selection.fallback  # no GPU here: the CPU is the device, not a fall-back


def test_backend_and_accelerator_overrides(folder: Path) -> None:
    if "openvino" in unavailable_formats():
        pytest.skip("needs the openvino extra")
    assert _taken(edge_sdk.load(folder, backend="openvino")) == ("openvino", "CPU", "tiny-openvino-fp32")
    session = edge_sdk.load(folder, backend="onnxruntime", accelerator="cpu")
    assert _taken(session) == ("onnxruntime", "cpu", "tiny-onnx-fp32")
    skipped = [c for c in session.selection.candidates if c.status == "skipped"]
    assert skipped and all(c.reason for c in skipped)


def test_a_named_profile_orders_formats_and_precisions(folder: Path) -> None:
    """A Raspberry Pi 5 prefers int8 TFLite; the same folder loads as that on this machine."""
    if "tflite" in unavailable_formats():
        pytest.skip("needs the tflite extra")
    session = edge_sdk.load(folder, device="raspberry-pi-5")
    assert _taken(session) == ("tflite", "cpu", "tiny-tflite-int8")
    assert session.selection.device == "raspberry-pi-5"


def test_a_jetson_without_onnxruntime_gpu_falls_back_loudly(
    folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The recorded Orin has its GPU; this Python has no onnxruntime-gpu. Running on the CPU is a
    fall-back: warned, recorded, and refused with strict=True."""
    jetson = detect(FIXTURES / "jetson-orin", probe_backends=False)
    cuda = next(a for a in jetson.accelerators if a.accelerator == "cuda")
    assert not cuda.usable and cuda.hardware_present
    with caplog.at_level(logging.WARNING, logger="edge_sdk.runtimes"):
        session = edge_sdk.load(folder / "tiny-onnx-fp32", device=jetson)
    assert session.selection.fallback and session.selection.accelerator == "cpu"
    assert any("passed over onnxruntime/tensorrt" in r.message for r in caplog.records)
    with pytest.raises(edge_sdk.DeviceError, match="strict.*onnxruntime/(tensorrt|cuda)"):
        edge_sdk.load(folder / "tiny-onnx-fp32", device=jetson, strict=True)


def test_an_unknown_profile_and_no_runnable_artifact(folder: Path, tmp_path: Path) -> None:
    with pytest.raises(edge_sdk.BadInputError, match="unknown device profile 'toaster'"):
        edge_sdk.load(folder, device="toaster")
    only_onnx = tmp_path / "only"
    shutil.copytree(folder / "tiny-onnx-fp32", only_onnx / "tiny-onnx-fp32")
    if "openvino" in unavailable_formats():
        pytest.skip("needs the openvino extra")
    with pytest.raises(
        edge_sdk.DeviceError, match="nothing here can run(.|\n)*no artifact in a format it runs"
    ):
        edge_sdk.load(only_onnx, backend="openvino")


def test_a_detection_is_a_device(folder: Any) -> None:
    jetson = detect(FIXTURES / "jetson-orin", probe_backends=False)
    session = edge_sdk.load(folder / "tiny-onnx-fp32", device=jetson)
    assert session.selection.device == "jetson-orin"
    walked = [(c.backend, c.accelerator) for c in session.selection.candidates]
    assert walked[:2] == [("onnxruntime", "tensorrt"), ("onnxruntime", "cuda")]  # the Orin's own order
