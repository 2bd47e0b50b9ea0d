"""The OpenVINO backend: ``edge_sdk.load`` on openvino artifacts and plain IR files, device selection, the
inference precision, performance hint and threads it sets, and what it says about broken files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import edge_sdk
from edge_sdk.manifest import sha256_file

pytestmark = pytest.mark.openvino
ov = pytest.importorskip("openvino", reason="needs the openvino extra (pip install 'edge-sdk[openvino]')")

DEVICES = ov.Core().available_devices


@pytest.fixture(scope="session")
def ov_tiny_fp32(tiny_onnx: Path, tmp_path_factory: pytest.TempPathFactory) -> edge_sdk.Artifact:
    """The helper-built classifier as an openvino:fp32 artifact (read-only)."""
    (art,) = edge_sdk.convert(tiny_onnx, "openvino:fp32", out=tmp_path_factory.mktemp("ov-backend"))
    return art


@pytest.fixture(scope="module")
def x(tiny_x: np.ndarray) -> np.ndarray:
    return tiny_x


@pytest.fixture(scope="module")
def expected(tiny_expected: np.ndarray) -> np.ndarray:
    return tiny_expected


def _ir_copy(art: edge_sdk.Artifact, dest: Path) -> Path:
    """The artifact's xml/bin pair copied to ``dest`` as a plain IR file, so a test may damage it."""
    assert art.path is not None
    shutil.copyfile(art.path / "model.bin", dest / "model.bin")
    return Path(shutil.copyfile(art.path / "model.xml", dest / "model.xml"))


def _taken(session: edge_sdk.Session) -> Any:
    (taken,) = [c for c in session.selection.candidates if c.status in ("taken", "fallback")]
    return taken


# -- loading and running ------------------------------------------------------------------------------


def test_artifact_runs_on_cpu_with_a_selection_record(
    ov_tiny_fp32: edge_sdk.Artifact, x: np.ndarray, expected: np.ndarray
) -> None:
    session = edge_sdk.load(ov_tiny_fp32.path)
    assert session.selection.backend == "openvino"
    if not any(d.startswith(("NPU", "GPU")) for d in DEVICES):
        assert session.selection.accelerator == "CPU"
        # The device profile's walk: what is absent or cannot run this format is skipped, with the reason.
        record = session.selection.to_dict()["candidates"]
        assert [(c["backend"], c["accelerator"]) for c in record if c["status"] == "taken"] == [
            ("openvino", "CPU")
        ]
        gpu = next(c for c in record if (c["backend"], c["accelerator"]) == ("openvino", "GPU"))
        assert gpu["status"] == "skipped" and "no Intel GPU" in gpu["reason"]
        assert all(c["reason"] for c in record)
    assert "inference precision f32" in _taken(session).reason
    assert "performance hint latency" in _taken(session).reason
    assert "openvino/" in str(session.selection)
    assert session.inputs == ov_tiny_fp32.inputs and session.outputs == ov_tiny_fp32.outputs
    out = session.run({"x": x})
    assert list(out) == ["logits"] and out["logits"].dtype == np.float32
    np.testing.assert_allclose(out["logits"], expected, rtol=1e-5, atol=1e-6)


def test_plain_xml_file_loads_with_specs_from_the_model(
    ov_tiny_fp32: edge_sdk.Artifact, x: np.ndarray, expected: np.ndarray
) -> None:
    session = edge_sdk.load(ov_tiny_fp32.model_file)
    assert session.artifact is None and session.selection.backend == "openvino"
    assert [(s.name, s.shape, s.dtype) for s in session.inputs] == [("x", [1, 3, 8, 8], "float32")]
    assert [(s.name, s.shape, s.dtype) for s in session.outputs] == [("logits", [1, 10], "float32")]
    assert session.inference_precision == "f32"  # a default, not the CPU's bf16
    np.testing.assert_allclose(session.run({"x": x})["logits"], expected, rtol=1e-5, atol=1e-6)


def test_outputs_do_not_change_under_the_next_run(ov_tiny_fp32: edge_sdk.Artifact, x: np.ndarray) -> None:
    session = edge_sdk.load(ov_tiny_fp32.path)
    first = session.run({"x": x})["logits"]
    kept = first.copy()
    session.run({"x": -x})
    np.testing.assert_array_equal(first, kept)


def test_threads_share_a_session(ov_tiny_fp32: edge_sdk.Artifact, tiny_calibration: list) -> None:
    session = edge_sdk.load(ov_tiny_fp32.path)
    want = [session.run(s)["logits"] for s in tiny_calibration]
    got: dict[int, list[np.ndarray]] = {}

    def work(i: int) -> None:
        got[i] = [session.run(s)["logits"] for s in tiny_calibration * 5]

    workers = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    for outs in got.values():
        for a, b in zip(outs, want * 5, strict=True):
            np.testing.assert_array_equal(a, b)


def test_input_checks_are_the_sessions(ov_tiny_fp32: edge_sdk.Artifact, x: np.ndarray) -> None:
    session = edge_sdk.load(ov_tiny_fp32.path)
    with pytest.raises(edge_sdk.BadInputError, match="astype"):
        session.run({"x": x.astype(np.float64)})


# -- accelerator, threads, hints ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["CPU", "cpu"])
def test_explicit_cpu(ov_tiny_fp32: edge_sdk.Artifact, name: str) -> None:
    session = edge_sdk.load(ov_tiny_fp32.path, accelerator=name)
    assert session.selection.accelerator == "CPU"
    assert [(c.accelerator, c.status) for c in session.selection.candidates if c.status == "taken"] == [
        ("CPU", "taken")
    ]


def test_absent_accelerator_lists_the_devices(ov_tiny_fp32: edge_sdk.Artifact) -> None:
    if any(d.startswith("NPU") for d in DEVICES):
        pytest.skip("this machine has an NPU")
    with pytest.raises(edge_sdk.DeviceError) as e:
        edge_sdk.load(ov_tiny_fp32.path, accelerator="NPU")
    assert "'NPU'" in str(e.value) and f"available devices: {', '.join(DEVICES)}" in str(e.value)


def test_one_thread(ov_tiny_fp32: edge_sdk.Artifact, x: np.ndarray, expected: np.ndarray) -> None:
    session = edge_sdk.load(ov_tiny_fp32.path, threads=1)
    assert session.compiled.threads == 1  # type: ignore[attr-defined]
    assert "1 thread" in _taken(session).reason
    np.testing.assert_allclose(session.run({"x": x})["logits"], expected, rtol=1e-5, atol=1e-6)


def test_throughput_hint_from_the_environment(
    ov_tiny_fp32: edge_sdk.Artifact, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGE_SDK_OPENVINO_PERFORMANCE_HINT", "throughput")
    session = edge_sdk.load(ov_tiny_fp32.path)
    assert "performance hint throughput" in _taken(session).reason
    monkeypatch.setenv("EDGE_SDK_OPENVINO_PERFORMANCE_HINT", "fastest")
    with pytest.raises(edge_sdk.BadInputError, match="latency, throughput"):
        edge_sdk.load(ov_tiny_fp32.path)


def test_bf16_on_request(
    ov_tiny_fp32: edge_sdk.Artifact, monkeypatch: pytest.MonkeyPatch, x: np.ndarray, expected: np.ndarray
) -> None:
    """Without an explicit hint this CPU may pick bf16 by itself; the backend only does when asked."""
    monkeypatch.setenv("EDGE_SDK_OPENVINO_INFERENCE_PRECISION", "bf16")
    session = edge_sdk.load(ov_tiny_fp32.path)
    used = session.inference_precision
    if "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        assert used == "bf16" and "inference precision bf16" in _taken(session).reason
    # bf16 keeps 8 bits of mantissa: close to f32, not equal.
    np.testing.assert_allclose(session.run({"x": x})["logits"], expected, atol=0.05 * np.abs(expected).max())
    monkeypatch.setenv("EDGE_SDK_OPENVINO_INFERENCE_PRECISION", "int3")
    with pytest.raises(edge_sdk.BadInputError, match="f32, bf16, f16"):
        edge_sdk.load(ov_tiny_fp32.path)


# -- broken files -------------------------------------------------------------------------------------


def test_corrupt_bin_inside_an_artifact(ov_tiny_fp32: edge_sdk.Artifact, copy_artifact: Any) -> None:
    directory = copy_artifact(ov_tiny_fp32)
    weights = directory / "model.bin"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size: only the recorded sha256 can tell
    weights.write_bytes(bytes(data))
    with pytest.raises(edge_sdk.BadInputError, match="'model.bin' does not match its recorded sha256"):
        edge_sdk.load(directory)


def test_truncated_bin_beside_a_plain_xml(ov_tiny_fp32: edge_sdk.Artifact, tmp_path: Path) -> None:
    xml = _ir_copy(ov_tiny_fp32, tmp_path)
    weights = tmp_path / "model.bin"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(edge_sdk.BadInputError) as e:
        edge_sdk.load(xml)
    msg = str(e.value)
    assert str(xml) in msg and "model.bin is missing, truncated or corrupt" in msg
    assert "Exception from src" not in msg


def test_truncated_bin_inside_an_artifact(ov_tiny_fp32: edge_sdk.Artifact, copy_artifact: Any) -> None:
    """The manifest is rewritten to match the truncated file, so it is OpenVINO that meets it."""
    directory = copy_artifact(ov_tiny_fp32)
    weights = directory / "model.bin"
    weights.write_bytes(weights.read_bytes()[:100])
    manifest = json.loads((directory / "artifact.json").read_text())
    manifest["files"][1].update(sha256=sha256_file(weights), size=weights.stat().st_size)
    (directory / "artifact.json").write_text(json.dumps(manifest))
    with pytest.raises(edge_sdk.BadInputError, match="model.bin is missing, truncated or corrupt"):
        edge_sdk.load(directory)


def test_missing_bin(ov_tiny_fp32: edge_sdk.Artifact, tmp_path: Path) -> None:
    xml = _ir_copy(ov_tiny_fp32, tmp_path)
    (tmp_path / "model.bin").unlink()
    with pytest.raises(edge_sdk.BadInputError, match="model.bin is missing, truncated or corrupt"):
        edge_sdk.load(xml)


def test_xml_that_is_not_ir(tmp_path: Path, capfd: Any) -> None:
    path = tmp_path / "layout.xml"
    path.write_text("<?xml version='1.0'?><LinearLayout/>")
    with pytest.raises(edge_sdk.BadInputError, match="not an OpenVINO IR file"):
        edge_sdk.load(path)
    assert capfd.readouterr().err == ""  # OpenVINO's other front ends were not asked to parse it


def test_manifest_naming_a_tensor_the_model_lacks(
    ov_tiny_fp32: edge_sdk.Artifact, copy_artifact: Any
) -> None:
    directory = copy_artifact(ov_tiny_fp32)
    manifest = json.loads((directory / "artifact.json").read_text())
    manifest["inputs"][0]["name"] = "image"
    (directory / "artifact.json").write_text(json.dumps(manifest))
    with pytest.raises(edge_sdk.BadInputError, match="names input 'image'.*its inputs: x"):
        edge_sdk.load(directory)


def test_without_openvino_installed(ov_tiny_fp32: edge_sdk.Artifact) -> None:
    script = f"""
import sys
sys.modules["openvino"] = None  # as if not installed: importing it raises ImportError
import edge_sdk
try:
    edge_sdk.load({str(ov_tiny_fp32.model_file)!r})
except edge_sdk.BadInputError as e:
    print(e)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "no installed backend runs format 'openvino'" in done.stdout
    assert "pip install 'edge-sdk[openvino]'" in done.stdout


def test_unlisted_bin_linking_out_of_the_artifact_is_refused(
    ov_tiny_fp32: edge_sdk.Artifact, copy_artifact: Any, tmp_path: Path
) -> None:
    # OpenVINO reads the .bin beside the .xml even when the manifest does not list it.
    directory = copy_artifact(ov_tiny_fp32)
    manifest = directory / "artifact.json"
    data = json.loads(manifest.read_text())
    data["files"] = [f for f in data["files"] if f["path"] != "model.bin"]
    manifest.write_text(json.dumps(data))
    outside = Path(shutil.move(directory / "model.bin", tmp_path / "elsewhere.bin"))
    (directory / "model.bin").symlink_to(outside)
    with pytest.raises(edge_sdk.BadInputError, match="'model.bin' must be a file inside the artifact folder"):
        edge_sdk.load(directory)
