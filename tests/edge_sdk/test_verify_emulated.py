"""``edge-sdk verify --emulate``: an artifact's reference set re-measured on a board's CPU under QEMU user
mode — Cortex-A72 (Raspberry Pi 4: no dot-product), Cortex-A76 (Pi 5: dot-product) and an x86 Haswell
(AVX2 without VNNI, the class whose fast int8 kernels saturate 8-bit weights).

The first run fetches what emulation needs (QEMU 10 from Debian's bookworm-backports, Debian's arm64
Python 3.11, aarch64 wheels from PyPI: about 150 MB) into the emulation cache; later runs reuse it.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import edge_sdk
from edge_sdk.devices.emulation import Emulator, prepare
from edge_sdk.errors import BadInputError

pytestmark = [
    pytest.mark.network,
    pytest.mark.skipif(platform.machine() != "x86_64", reason="the emulators fetched are x86-64 builds"),
]
EXE = shutil.which("edge-sdk", path=str(Path(sys.executable).parent)) or "edge-sdk"


@pytest.fixture(scope="module")
def arm() -> Emulator:
    return prepare("raspberry-pi-4")


@pytest.fixture(scope="module")
def artifacts(
    saturating_onnx: Path, saturating_samples: Any, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, edge_sdk.Artifact]:
    """The saturating conv in int8 with 7-bit weights, and with the default 8-bit ones, made for a Pi 5."""
    out = tmp_path_factory.mktemp("emulated")
    (seven,) = edge_sdk.convert(
        saturating_onnx,
        "onnx:int8",
        calibration=saturating_samples,
        out=out / "7",
        options={"int8_weights": "7bit"},
    )
    (eight,) = edge_sdk.convert(
        saturating_onnx, "onnx:int8", calibration=saturating_samples, out=out / "8", device="raspberry-pi-5"
    )
    return {"7bit": seven, "8bit": eight}


def test_7bit_int8_on_an_emulated_pi4(arm: Emulator, artifacts: dict[str, edge_sdk.Artifact]) -> None:
    art = artifacts["7bit"]
    r = subprocess.run(
        [EXE, "verify", str(art.path), "--emulate", "raspberry-pi-4", "--prepare", "-q"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "PASSED on Cortex-A72 (Arm64 NEON, no dot-product), emulated by qemu-aarch64 10." in r.stdout
    report = edge_sdk.verify(art.path, emulate="raspberry-pi-4")  # type: ignore[arg-type]
    assert report.passed and report.measured_on["backend"] == art.parity["measured_on"]["backend"]  # type: ignore[index]
    # integer sums are exact on both CPUs, so the Arm answers are the x86 answers to within float rounding
    scale = art.parity["outputs"]["y"]["reference_max_abs"]  # type: ignore[index]
    assert report.difference_from_converted["y"] <= 1e-4 * scale


def test_8bit_int8_on_an_emulated_pi5_with_dot_product(
    arm: Emulator, artifacts: dict[str, edge_sdk.Artifact]
) -> None:
    report = edge_sdk.verify(artifacts["8bit"].path, emulate="raspberry-pi-5")  # type: ignore[arg-type]
    assert report.passed, report.text()
    assert report.measured_on["cpu"]["int8_class"] == "Arm64 dot-product"
    assert report.measured_on["emulator"].endswith("-cpu cortex-a76")


def test_8bit_int8_on_an_emulated_haswell_runs_exact_kernels(artifacts: dict[str, edge_sdk.Artifact]) -> None:
    """On a VNNI machine this is the one place the suite meets saturating kernels: the runtime under
    emulation must see the Haswell, not the host, and take the exact kernels for 8-bit weights."""
    prepare("x86-64")
    report = edge_sdk.verify(artifacts["8bit"].path, emulate="x86-64")  # type: ignore[arg-type]
    assert report.passed, report.text()
    assert report.measured_on["cpu"]["int8_class"] == "x86-64 AVX2, no VNNI"
    assert report.measured_on["int8_kernels"] == "exact u8×u8"
    scale = artifacts["8bit"].parity["outputs"]["y"]["reference_max_abs"]  # type: ignore[index]
    assert report.difference_from_converted["y"] <= 1e-4 * scale  # the answers of VNNI and Arm CPUs


def test_openvino_is_not_emulated_on_arm(
    arm: Emulator, artifacts: dict[str, edge_sdk.Artifact], tmp_path: Path
) -> None:
    pytest.importorskip("openvino", reason="needs the openvino extra")
    (art,) = edge_sdk.convert(artifacts["7bit"].source["path"], "openvino:fp32", out=tmp_path)
    with pytest.raises(BadInputError, match="runs onnx, tflite artifacts"):
        edge_sdk.verify(art.path, emulate="raspberry-pi-4")  # type: ignore[arg-type]


@pytest.mark.tflite
def test_tflite_int8_on_an_emulated_pi4(
    arm: Emulator, saturating_onnx: Path, saturating_samples: Any, tmp_path: Path
) -> None:
    pytest.importorskip("onnx2tf", reason="needs the tflite extra")
    (art,) = edge_sdk.convert(saturating_onnx, "tflite:int8", calibration=saturating_samples, out=tmp_path)
    assert art.recipe["int8_weights"]["bits"] == 8
    report = edge_sdk.verify(art.path, emulate="raspberry-pi-4")  # type: ignore[arg-type]
    assert report.passed, report.text()
    # int8 output: at most one quantisation step from the x86 answer
    step = art.quantization["y"]["scale"]
    assert report.difference_from_converted["y"] <= step * 1.001
