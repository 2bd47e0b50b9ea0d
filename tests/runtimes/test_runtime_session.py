"""``edge_sdk.load`` and the onnxruntime ``Session``: specs, input checks, threads, accelerator selection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

import edge_sdk
from edge_sdk.runtimes import Candidate, Selection

PRECISIONS = ("fp32", "fp16", "int8", "int8-dynamic")


@pytest.fixture(scope="module")
def session(tiny_artifacts: dict[str, Any]) -> edge_sdk.Session:
    return edge_sdk.load(tiny_artifacts["fp32"].path)


@pytest.fixture(scope="module")
def x(tiny_calibration: list) -> np.ndarray:
    return tiny_calibration[0]["x"]


def _direct(model: Path, feeds: dict[str, np.ndarray], exact_int8: bool = False) -> list[np.ndarray]:
    options = ort.SessionOptions()
    if exact_int8:  # what the Session sets where this CPU's fast int8 kernels would saturate
        options.add_session_config_entry("session.x64quantprecision", "1")
    return ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"]).run(None, feeds)


# -- specs and running --------------------------------------------------------------------------------


def test_specs_come_from_the_manifest(session: edge_sdk.Session, tiny_artifacts: dict[str, Any]) -> None:
    assert session.inputs == tiny_artifacts["fp32"].inputs
    assert [(s.name, s.shape, s.dtype) for s in session.inputs] == [("x", [1, 3, 8, 8], "float32")]
    assert [(s.name, s.shape, s.dtype) for s in session.outputs] == [("logits", [1, 10], "float32")]
    assert session.input_names == ["x"] and session.output_names == ["logits"]
    assert session.artifact is not None and session.artifact.name == "tiny-onnx-fp32"
    assert "x: float32[1, 3, 8, 8]" in repr(session)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_every_precision_takes_and_gives_float32(
    tiny_artifacts: dict[str, Any], precision: str, x: np.ndarray
) -> None:
    art = tiny_artifacts[precision]
    session = edge_sdk.load(art.path)
    out = session.run({"x": x})
    assert list(out) == ["logits"]
    assert out["logits"].shape == (1, 10) and out["logits"].dtype == np.float32
    exact = session.numerics["int8_kernels"] != "default"
    assert session.inference_precision is None  # onnxruntime computes in the types the graph has
    (direct,) = _direct(art.model_file, {"x": x}, exact_int8=exact)
    # The session may set other graph optimisations than plain onnxruntime (fp16 turns one off), so the
    # last bits may differ; anything beyond float32 rounding would be a different model.
    np.testing.assert_allclose(out["logits"], direct, rtol=1e-6, atol=1e-6)


def test_run_selected_outputs(session: edge_sdk.Session, x: np.ndarray) -> None:
    out = session.run({"x": x}, outputs=["logits"])
    assert list(out) == ["logits"]
    np.testing.assert_array_equal(out["logits"], session.run({"x": x})["logits"])


def test_unknown_output_name(session: edge_sdk.Session, x: np.ndarray) -> None:
    with pytest.raises(edge_sdk.BadInputError) as e:
        session.run({"x": x}, outputs=["probs"])
    assert "'probs'" in str(e.value) and "'logits'" in str(e.value)


def test_load_accepts_artifact_json_and_artifact_object(
    tiny_artifacts: dict[str, Any], x: np.ndarray
) -> None:
    art = tiny_artifacts["fp32"]
    want = edge_sdk.load(art.path).run({"x": x})["logits"]
    for target in (art.path / "artifact.json", art, str(art.path)):
        np.testing.assert_array_equal(edge_sdk.load(target).run({"x": x})["logits"], want)


def test_plain_onnx_file(tiny_onnx: Path, x: np.ndarray) -> None:
    session = edge_sdk.load(tiny_onnx)
    assert session.artifact is None
    assert [(s.name, s.shape, s.dtype) for s in session.inputs] == [("x", [1, 3, 8, 8], "float32")]
    assert [(s.name, s.shape, s.dtype) for s in session.outputs] == [("logits", [1, 10], "float32")]
    (direct,) = _direct(tiny_onnx, {"x": x})
    np.testing.assert_array_equal(session.run({"x": x})["logits"], direct)
    assert session.selection.backend == "onnxruntime"


def test_plain_fp16_onnx_file(tiny_artifacts: dict[str, Any], x: np.ndarray) -> None:
    art = tiny_artifacts["fp16"]
    plain = edge_sdk.load(art.model_file).run({"x": x})["logits"]
    np.testing.assert_array_equal(plain, edge_sdk.load(art.path).run({"x": x})["logits"])


def test_threads_1(tiny_artifacts: dict[str, Any], session: edge_sdk.Session, x: np.ndarray) -> None:
    one = edge_sdk.load(tiny_artifacts["fp32"].path, threads=1)
    # The onnxruntime backend's own session options: the one place the thread count is visible.
    assert one._ort.get_session_options().intra_op_num_threads == 1  # type: ignore[attr-defined]
    np.testing.assert_allclose(
        one.run({"x": x})["logits"], session.run({"x": x})["logits"], rtol=1e-6, atol=1e-6
    )


# -- input checking -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("feeds", "words"),
    [
        ({}, ["missing input(s) ['x']", "x: float32[1, 3, 8, 8]"]),
        ({"x": "X", "extra": "E"}, ["unknown input(s) ['extra']"]),
        ({"X": "X"}, ["missing input(s) ['x']", "unknown input(s) ['X']"]),
        ({"x": "X64"}, ["'x'", "float64", "expected float32"]),
        ({"x": "X3"}, ["'x'", "rank 3", "rank 4", "float32[1, 3, 8, 8]"]),
        ({"x": "X_narrow"}, ["'x'", "axis 3", "expected 8", "[1, 3, 8, 7]"]),
        ({"x": "X_batch2"}, ["'x'", "axis 0", "expected 1"]),
        ({"x": "X_int"}, ["'x'", "int32", "expected float32"]),
    ],
    ids=["missing", "unknown", "misnamed", "float64", "rank", "fixed-dim", "batch", "int32"],
)
def test_run_checks_feeds(session: edge_sdk.Session, x: np.ndarray, feeds: dict, words: list[str]) -> None:
    arrays = {
        "X": x,
        "E": x,
        "X64": x.astype(np.float64),
        "X3": x[0],
        "X_narrow": x[..., :7],
        "X_batch2": np.concatenate([x, x]),
        "X_int": x.astype(np.int32),
    }
    with pytest.raises(edge_sdk.BadInputError) as e:
        session.run({k: arrays[v] for k, v in feeds.items()})
    for word in words:
        assert word in str(e.value), str(e.value)


def test_run_takes_a_dict(session: edge_sdk.Session, x: np.ndarray) -> None:
    with pytest.raises(edge_sdk.BadInputError, match="dict of input name"):
        session.run([x])  # type: ignore[arg-type]


def test_python_lists_are_checked_like_arrays(session: edge_sdk.Session, x: np.ndarray) -> None:
    with pytest.raises(edge_sdk.BadInputError, match="expected float32"):
        session.run({"x": x.tolist()})  # a nested list becomes float64


def test_symbolic_dims_must_agree_across_inputs(onnx_file: Any) -> None:
    path = onnx_file(
        "add.onnx",
        [helper.make_node("Add", ["a", "b"], ["y"], name="add")],
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", 4]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, ["N", 4]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
    )
    session = edge_sdk.load(path)
    assert session.inputs[0].shape == ["N", 4]
    a = np.ones((3, 4), np.float32)
    np.testing.assert_array_equal(session.run({"a": a, "b": a})["y"], 2 * a)
    with pytest.raises(edge_sdk.BadInputError) as e:
        session.run({"a": a, "b": np.ones((2, 4), np.float32)})
    assert "'N'" in str(e.value) and "'a'" in str(e.value) and "'b'" in str(e.value)


# -- accelerator selection ----------------------------------------------------------------------------


def test_selection_records_every_candidate(session: edge_sdk.Session) -> None:
    sel = session.selection
    assert isinstance(sel, Selection)
    assert sel.backend == "onnxruntime"
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA; the CPU-only record below does not apply")
    assert sel.accelerator == "cpu"
    assert all(isinstance(c, Candidate) and c.backend == "onnxruntime" for c in sel.candidates)
    assert [(c.accelerator, c.status) for c in sel.candidates] == [
        ("tensorrt", "skipped"),
        ("cuda", "skipped"),
        ("cpu", "taken"),
    ]
    reasons = {c.accelerator: c.reason for c in sel.candidates}
    assert (
        "onnxruntime-gpu not installed" in reasons["tensorrt"]
        and "pip install onnxruntime-gpu" in reasons["cuda"]
    )
    assert "CPUExecutionProvider" in reasons["cpu"]
    text = str(sel)
    assert text.splitlines()[0].startswith("running ") and "on onnxruntime/cpu" in text.splitlines()[0]
    assert "skipped" in text and "taken" in text
    d = sel.to_dict()
    assert d["backend"] == "onnxruntime" and len(d["candidates"]) == 3
    assert set(d["candidates"][0]) == {"backend", "accelerator", "status", "reason"}


def test_explicit_cpu(tiny_artifacts: dict[str, Any]) -> None:
    sel = edge_sdk.load(tiny_artifacts["fp32"].path, accelerator="cpu").selection
    assert sel.accelerator == "cpu"
    assert [(c.accelerator, c.status) for c in sel.candidates if c.status == "taken"] == [("cpu", "taken")]


def test_explicit_cuda_without_cuda_is_a_device_error(tiny_artifacts: dict[str, Any]) -> None:
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    with pytest.raises(edge_sdk.DeviceError) as e:
        edge_sdk.load(tiny_artifacts["fp32"].path, accelerator="cuda")
    msg = str(e.value)
    assert "'cuda'" in msg
    for provider in ort.get_available_providers():
        assert provider in msg


def test_unknown_accelerator_lists_known_ones(tiny_artifacts: dict[str, Any]) -> None:
    with pytest.raises(edge_sdk.BadInputError) as e:
        edge_sdk.load(tiny_artifacts["fp32"].path, accelerator="warpdrive")
    assert "'warpdrive'" in str(e.value)
    for known in ("cpu", "cuda", "tensorrt"):
        assert known in str(e.value)


def test_backend_options_reach_the_backend_and_unknown_ones_are_refused(tiny_artifacts: dict) -> None:
    with pytest.raises(edge_sdk.BadInputError, match="unknown load option.*colour"):
        edge_sdk.load(tiny_artifacts["fp32"].path, options={"colour": "red"})
    # CUDA's options are accepted (and only used when CUDA is chosen)
    assert edge_sdk.load(tiny_artifacts["fp32"].path, options={"device_id": 0}).selection.accelerator == "cpu"


def test_gpu_provider_options(tiny_artifacts: dict, tmp_path: Path) -> None:
    from edge_sdk.runtimes.onnxruntime import provider_options_for

    fp16, fp32 = tiny_artifacts["fp16"], tiny_artifacts["fp32"]
    assert provider_options_for("cpu", fp32, {}) == {}
    assert provider_options_for("cuda", fp32, {"device_id": 1}) == {"device_id": 1}
    trt = provider_options_for("tensorrt", fp16, {"trt_engine_cache": str(tmp_path)})
    assert trt == {
        "device_id": 0,
        "trt_fp16_enable": True,
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(tmp_path),
    }
    assert provider_options_for("tensorrt", fp32, {})["trt_fp16_enable"] is False


def test_a_runtime_failure_names_the_model_the_node_and_the_inputs() -> None:
    """The bundled video denoiser cannot convolve a 1x1 image: onnxruntime's own error becomes a RunFailed
    that says which model, where and on what."""
    session = edge_sdk.load(Path(edge_sdk.__file__).parent / "zoo" / "video" / "model.onnx")
    name = session.inputs[0].name
    with pytest.raises(edge_sdk.RunFailed) as e:
        session.run({name: np.zeros((1, 3, 1, 1), np.float32)})
    text = str(e.value)
    assert "onnxruntime/cpu" in text and "at node '" in text and f"{name} [1, 3, 1, 1] float32" in text
