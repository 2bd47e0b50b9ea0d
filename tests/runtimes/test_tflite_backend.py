"""The TFLite backend: ``edge_sdk.load`` on tflite artifacts and plain ``.tflite`` files, accelerator
selection (Edge TPU and GPU delegates, XNNPACK on and off), threads, integer I/O, and broken files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import edge_sdk
from edge_sdk.converters.targets import TARGETS
from edge_sdk.runtimes import BACKENDS

pytestmark = pytest.mark.tflite
_ok, _why = BACKENDS.get("tflite").available()
if not _ok:
    pytest.skip(f"no TFLite interpreter here: {_why}", allow_module_level=True)
_ok, _why = TARGETS.get("tflite").available()
if not _ok:
    pytest.skip(f"the tflite target (to make the models) cannot run here: {_why}", allow_module_level=True)


@pytest.fixture(scope="module")
def arts(tiny_onnx: Path, tiny_calibration: list, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The helper-built classifier as tflite:fp32 and tflite:int8 (integer I/O); read-only."""
    made = edge_sdk.convert(
        tiny_onnx,
        ["tflite:fp32", "tflite:int8"],
        calibration=tiny_calibration,
        out=tmp_path_factory.mktemp("tfl"),
    )
    return {a.precision: a for a in made}


@pytest.fixture(scope="module")
def x(tiny_x: np.ndarray) -> np.ndarray:
    return tiny_x


@pytest.fixture(scope="module")
def expected(tiny_expected: np.ndarray) -> np.ndarray:
    return tiny_expected


def _candidates(session: edge_sdk.Session) -> dict[str, tuple[str, str]]:
    return {c.accelerator: (c.status, c.reason) for c in session.selection.candidates}


def test_artifact_takes_the_onnx_layout(arts: dict, x: np.ndarray, expected: np.ndarray) -> None:
    session = edge_sdk.load(arts["fp32"].path)
    assert session.input_names == ["x"] and session.inputs[0].shape == [1, 3, 8, 8]
    assert session.inference_precision is None  # LiteRT computes in the types the model file has
    (got,) = session.run({"x": x}).values()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


def test_plain_file_shows_what_the_file_stores(arts: dict, x: np.ndarray, expected: np.ndarray) -> None:
    """A .tflite without a manifest has no layout to undo: its specs are the file's (NHWC here)."""
    session = edge_sdk.load(arts["fp32"].model_file)
    assert session.artifact is None
    assert [(s.name, s.shape, s.dtype) for s in session.inputs] == [("x", [1, 8, 8, 3], "float32")]
    assert [(s.name, s.shape) for s in session.outputs] == [("logits", [1, 10])]
    got = session.run({"x": np.ascontiguousarray(x.transpose(0, 2, 3, 1))})["logits"]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


def test_selection_records_runtime_and_every_accelerator(arts: dict) -> None:
    session = edge_sdk.load(arts["fp32"].path)
    sel = session.selection
    assert (sel.backend, sel.accelerator) == ("tflite", "cpu")
    seen = _candidates(session)
    assert seen["runtime:ai-edge-litert"][0] == "taken"
    # this x86-64 profile lists no TFLite delegate; the ONNX and OpenVINO entries cannot run a .tflite
    assert seen["cpu"][0] == "taken" and seen["cpu"][1].startswith(
        "builtin kernels with the XNNPACK delegate"
    )
    assert "tflite/cpu" in str(sel)


def test_xnnpack_can_be_switched_off(arts: dict, x: np.ndarray, expected: np.ndarray) -> None:
    session = edge_sdk.load(arts["fp32"].path, accelerator="cpu-builtin", threads=1)
    assert session.selection.accelerator == "cpu-builtin"
    assert _candidates(session)["cpu-builtin"] == ("taken", "builtin kernels without XNNPACK, threads=1")
    np.testing.assert_allclose(session.run({"x": x})["logits"], expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("threads", [1, 2])
def test_threads_give_the_same_answer(arts: dict, x: np.ndarray, expected: np.ndarray, threads: int) -> None:
    session = edge_sdk.load(arts["fp32"].path, threads=threads)
    assert f"threads={threads}" in _candidates(session)["cpu"][1]
    np.testing.assert_allclose(session.run({"x": x})["logits"], expected, rtol=0, atol=1e-5)


def test_absent_delegates_asked_for_by_name_are_device_errors(arts: dict) -> None:
    with pytest.raises(edge_sdk.DeviceError, match="libtensorflowlite_gpu_delegate.so"):
        edge_sdk.load(arts["fp32"].path, accelerator="gpu")
    with pytest.raises(edge_sdk.DeviceError, match="edgetpu.* not compiled for the Edge TPU"):
        edge_sdk.load(arts["fp32"].path, accelerator="edgetpu")
    with pytest.raises(edge_sdk.BadInputError, match="known: edgetpu, gpu, cpu, cpu-builtin"):
        edge_sdk.load(arts["fp32"].path, accelerator="npu")


def test_int8_artifact_takes_and_gives_float(arts: dict, x: np.ndarray, expected: np.ndarray) -> None:
    art = arts["int8"]
    assert {q["dtype"] for q in art.quantization.values()} == {"int8"}
    got = edge_sdk.load(art.path).run({"x": x})["logits"]
    assert got.dtype == np.float32
    assert float(np.abs(got - expected).max()) < 0.1 * float(np.abs(expected).max())
    # The file itself takes int8: the Session quantised with the recorded scale and zero point.
    raw = edge_sdk.load(art.model_file)
    q = art.quantization["x"]
    xq = np.clip(np.round(x.transpose(0, 2, 3, 1) / q["scale"]) + q["zero_point"], -128, 127).astype(np.int8)
    yq = raw.run({"x": xq})["logits"]
    qo = art.quantization["logits"]
    np.testing.assert_allclose(
        (yq.astype(np.float32) - qo["zero_point"]) * qo["scale"], got, rtol=0, atol=1e-6
    )


def test_runs_from_threads_are_serialised(arts: dict, x: np.ndarray, expected: np.ndarray) -> None:
    import concurrent.futures

    session = edge_sdk.load(arts["fp32"].path)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: session.run({"x": x})["logits"], range(16)))
    for got in results:
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


def test_runtime_noise_stays_out_of_the_terminal(arts: dict, x: np.ndarray, capfd: Any) -> None:
    edge_sdk.load(arts["fp32"].path).run({"x": x})
    out, err = capfd.readouterr()
    assert "XNNPACK" not in err and "XNNPACK" not in out


def test_a_corrupt_file_is_a_bad_input(arts: dict, tmp_path: Path) -> None:
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(arts["fp32"].model_file.read_bytes()[:200])
    with pytest.raises(edge_sdk.BadInputError, match="broken.tflite: not a valid TFLite file"):
        edge_sdk.load(broken)
    text = tmp_path / "text.tflite"
    text.write_text("not a model")
    with pytest.raises(edge_sdk.BadInputError, match="text.tflite: not a valid TFLite file"):
        edge_sdk.load(text)


def test_falls_back_to_tensorflow_lite_and_says_so(arts: dict, x: np.ndarray, tmp_path: Path) -> None:
    """With LiteRT unimportable the interpreter comes from tensorflow.lite; run in a child process so
    TensorFlow stays out of this one."""
    pytest.importorskip("tensorflow", reason="the fallback needs tensorflow")
    np.save(tmp_path / "x.npy", x)
    script = (
        "import sys, json, numpy as np\n"
        "sys.modules['ai_edge_litert'] = None  # as if not installed\n"
        "import edge_sdk\n"
        f"s = edge_sdk.load({str(arts['fp32'].path)!r})\n"
        f"y = s.run({{'x': np.load({str(tmp_path / 'x.npy')!r})}})['logits']\n"
        "print(json.dumps({'selection': s.selection.to_dict(), 'y': y.tolist()}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    runtimes = {
        c["accelerator"]: c
        for c in result["selection"]["candidates"]
        if c["accelerator"].startswith("runtime:")
    }
    assert runtimes["runtime:ai-edge-litert"]["status"] == "skipped"
    assert runtimes["runtime:tensorflow"]["status"] == "taken"
    assert result["selection"]["accelerator"] == "cpu"
    expected = edge_sdk.load(arts["fp32"].path).run({"x": x})["logits"]
    np.testing.assert_allclose(np.array(result["y"], np.float32), expected, rtol=0, atol=1e-5)
