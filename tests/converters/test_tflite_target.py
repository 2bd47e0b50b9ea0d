"""The ``tflite`` target: the tiny classifier, the torch conv classifier and the GRU converted with onnx2tf
to every TFLite precision, run back through ``edge_sdk.load`` with the arrays the ONNX model takes.

Each conversion starts TensorFlow in a child process (seconds), so every model is converted once per
module, all precisions in one ``convert`` call, and the tests read what that wrote.
"""

from __future__ import annotations

import collections
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import edge_sdk
from edge_sdk.converters.targets import TARGETS

pytestmark = pytest.mark.tflite
_ok, _why = TARGETS.get("tflite").available()
if not _ok:
    pytest.skip(f"the tflite target cannot run here: {_why}", allow_module_level=True)
pytest.importorskip("ai_edge_litert", reason="needs the LiteRT runtime (pip install 'edge-sdk[tflite]')")

PRECISIONS = ("fp32", "fp16", "int8", "int8-dynamic")
TARGETS_ALL = [f"tflite:{p}" for p in PRECISIONS]

# precision → (max abs error as a fraction of the largest reference output, min cosine similarity)
LIMITS = {
    "fp32": (1e-4, 0.99999),
    "fp16": (1e-2, 0.9999),
    "int8": (0.1, 0.999),
    "int8-dynamic": (5e-2, 0.999),
}


def _torch() -> Any:
    torch = pytest.importorskip("torch", reason="needs the torch extra (pip install 'edge-sdk[torch]')")
    pytest.importorskip("onnxscript", reason="the torch ONNX exporter needs onnxscript (edge-sdk[torch])")
    return torch


def _by_target(arts: list[edge_sdk.Artifact]) -> dict[str, edge_sdk.Artifact]:
    return {a.recipe["target"]: a for a in arts}


@pytest.fixture(scope="module")
def tiny(tiny_onnx: Path, tiny_calibration: list, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The helper-built classifier in every TFLite precision, plus int8 with float I/O (read-only)."""
    out = tmp_path_factory.mktemp("tflite-tiny")
    arts = edge_sdk.convert(tiny_onnx, TARGETS_ALL, calibration=tiny_calibration, out=out)
    (float_io,) = edge_sdk.convert(
        tiny_onnx, "tflite:int8", calibration=tiny_calibration, options={"io": "float"}, out=out / "float-io"
    )
    return {**_by_target(arts), "tflite:int8/float-io": float_io}


@pytest.fixture(scope="module")
def conv(conv_module: Any, make_samples: Any, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The torch conv classifier as onnx:fp32 and every TFLite precision, from one export."""
    _torch()
    calibration = make_samples((1, 3, 16, 16), 16, seed=40)
    parity = make_samples((1, 3, 16, 16), 16, seed=41)
    arts = edge_sdk.convert(
        conv_module,
        ["onnx:fp32", *TARGETS_ALL],
        example_inputs=calibration[0]["x"],
        calibration=calibration,
        parity_data=parity,
        out=tmp_path_factory.mktemp("tflite-conv"),
    )
    return {**_by_target(arts), "parity": parity}


@pytest.fixture(scope="module")
def gru(gru_module: Any, make_samples: Any, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The GRU exported with a dynamic batch, in every TFLite precision (the batch is fixed to 1)."""
    _torch()
    calibration = make_samples((1, 10, 8), 16, seed=50)
    arts = edge_sdk.convert(
        gru_module,
        TARGETS_ALL,
        example_inputs=calibration[0]["x"],
        calibration=calibration,
        dynamic_batch=True,
        out=tmp_path_factory.mktemp("tflite-gru"),
    )
    return _by_target(arts)


@pytest.fixture(scope="module")
def two_in_three_out(tmp_path_factory: pytest.TempPathFactory) -> edge_sdk.Artifact:
    """A model with an NCHW and an NCW input and 2-D, 4-D and 3-D outputs, named as exporters name them
    ('input.1', 'scores/out', '845'), converted to tflite:fp32."""
    rng = np.random.default_rng(0)
    w2 = numpy_helper.from_array((rng.standard_normal((4, 3, 3, 3)) * 0.3).astype(np.float32), "w2")
    w1 = numpy_helper.from_array((rng.standard_normal((5, 2, 3)) * 0.3).astype(np.float32), "w1")
    nodes = [
        helper.make_node("Conv", ["input.1", "w2"], ["845"], pads=[1, 1, 1, 1], name="conv2d"),
        helper.make_node("GlobalAveragePool", ["845"], ["pooled"], name="pool"),
        helper.make_node("Flatten", ["pooled"], ["scores/out"], name="flatten"),
        helper.make_node("Conv", ["seq", "w1"], ["y1d"], pads=[1, 1], name="conv1d"),
    ]
    f = TensorProto.FLOAT
    graph = helper.make_graph(
        nodes,
        "g",
        [
            helper.make_tensor_value_info("input.1", f, [1, 3, 8, 6]),
            helper.make_tensor_value_info("seq", f, [1, 2, 7]),
        ],
        [
            helper.make_tensor_value_info("scores/out", f, [1, 4]),
            helper.make_tensor_value_info("845", f, [1, 4, 8, 6]),
            helper.make_tensor_value_info("y1d", f, [1, 5, 7]),
        ],
        [w2, w1],
    )
    tmp = tmp_path_factory.mktemp("tflite-multi")
    path = tmp / "multi.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9), str(path))
    (art,) = edge_sdk.convert(path, "tflite:fp32", out=tmp)
    return art


def _manifest(art: edge_sdk.Artifact) -> dict[str, Any]:
    assert art.path is not None
    return json.loads((art.path / "artifact.json").read_text())


# -- what is made ---------------------------------------------------------------------------------------


def test_every_precision_is_made_for_every_model(tiny: dict, conv: dict, gru: dict) -> None:
    for arts in (tiny, conv, gru):
        for target in TARGETS_ALL:
            art = arts[target]
            assert art.format == "tflite" and art.model_file.name == "model.tflite"
            assert edge_sdk.load_artifact(art.path) == art
            assert art.versions["onnx2tf"] and art.versions["tensorflow"]
            assert art.parity["backend"].startswith("tflite/")


def _tensor_types(art: edge_sdk.Artifact) -> collections.Counter[str]:
    from ai_edge_litert.interpreter import Interpreter

    details = Interpreter(model_path=str(art.model_file)).get_tensor_details()
    return collections.Counter(np.dtype(d["dtype"]).name for d in details)


def test_each_precision_is_really_applied(conv: dict) -> None:
    """Parity figures mean little if every 'precision' were an fp32 copy: look inside the files."""
    types = {p: _tensor_types(conv[f"tflite:{p}"]) for p in PRECISIONS}
    assert types["fp32"]["float16"] == 0 and types["fp32"]["int8"] == 0
    assert types["fp16"]["float16"] > 0  # weights, dequantised to float32 when the model loads
    assert types["int8-dynamic"]["int8"] > 0 and types["int8-dynamic"]["float32"] > 0
    assert types["int8"]["int8"] > types["int8"]["float32"]  # activations are integer too
    recipes = {p: conv[f"tflite:{p}"].recipe for p in PRECISIONS}
    assert recipes["fp32"]["int8_tensors"] == 0 < recipes["int8-dynamic"]["int8_tensors"]
    assert recipes["fp16"]["tflite_converter"]["supported_types"] == ["float16"]
    assert recipes["int8"]["tflite_converter"]["representative_samples"] == 16
    assert recipes["int8"]["calibration"] == {"samples": 16, "from": "iterable"}


@pytest.mark.parametrize("model", ["tiny", "conv", "gru"])
@pytest.mark.parametrize("precision", PRECISIONS)
def test_recorded_parity_is_within_limits(model: str, precision: str, request: pytest.FixtureRequest) -> None:
    if model != "tiny":
        _torch()
    parity = _manifest(request.getfixturevalue(model)[f"tflite:{precision}"])["parity"]
    rel, min_cos = LIMITS[precision]
    (out,) = parity["outputs"].values()
    assert out["reference_max_abs"] > 0.1
    assert parity["max_abs_error"] <= rel * out["reference_max_abs"], parity
    assert parity["cosine_similarity"] >= min_cos


# -- layouts --------------------------------------------------------------------------------------------


def test_conv_input_is_stored_nhwc_and_its_2d_output_as_is(conv: dict) -> None:
    for target in TARGETS_ALL:
        art = conv[target]
        (x,) = art.inputs
        assert (x.name, x.shape, x.dtype, x.layout, x.stored_layout) == (
            "x",
            [1, 3, 16, 16],
            "float32",
            "NCHW",
            "NHWC",
        )
        (y,) = art.outputs
        assert y.shape == [1, 10] and y.layout is None and y.stored_layout is None
        assert art.recipe["layouts"] == {"x": "NCHW→NHWC"}


def test_gru_input_is_stored_nwc_and_its_batch_fixed_to_1(gru: dict) -> None:
    """onnx2tf treats any rank-3 input as NCW, a [batch, time, features] sequence too; its output keeps
    the ONNX order. The symbolic batch becomes 1, and the recipe says so."""
    for target in TARGETS_ALL:
        art = gru[target]
        (x,) = art.inputs
        assert (x.shape, x.layout, x.stored_layout) == ([1, 10, 8], "NCW", "NWC")
        (y,) = art.outputs
        assert (y.shape, y.layout) == ([1, 10, 4], None)
        assert art.recipe["fixed_dims"] == {"x": {"axis": 0, "was": "batch", "size": 1}}
    assert gru["tflite:int8"].recipe["onnx2tf"]["enable_rnn_unroll"] is True
    assert gru["tflite:fp32"].recipe["onnx2tf"]["enable_rnn_unroll"] is False


def test_a_batch_of_three_is_refused_with_the_fixed_shape(gru: dict, make_samples: Any) -> None:
    session = edge_sdk.load(gru["tflite:fp32"].path)
    with pytest.raises(edge_sdk.BadInputError, match=r"float32\[1, 10, 8\]"):
        session.run(make_samples((3, 10, 8), 1, seed=51)[0])


def test_outputs_of_rank_3_and_4_are_stored_channels_last(two_in_three_out: edge_sdk.Artifact) -> None:
    art = two_in_three_out
    ins = {s.name: (s.layout, s.stored_layout, s.stored_name) for s in art.inputs}
    outs = {s.name: (s.shape, s.layout, s.stored_layout, s.stored_name) for s in art.outputs}
    assert ins == {"input.1": ("NCHW", "NHWC", "input_1"), "seq": ("NCW", "NWC", None)}
    assert outs == {
        "scores/out": ([1, 4], None, None, "scores_out"),
        "845": ([1, 4, 8, 6], "NCHW", "NHWC", "t845"),
        "y1d": ([1, 5, 7], "NCW", "NWC", None),
    }
    assert art.parity["max_abs_error"] < 1e-5  # every output, back in the ONNX layout


# -- the same arrays as the ONNX artifact ---------------------------------------------------------------


@pytest.mark.parametrize("precision", PRECISIONS)
def test_conv_gives_what_the_onnx_artifact_gives_on_the_same_nchw_array(conv: dict, precision: str) -> None:
    onnx_session = edge_sdk.load(conv["onnx:fp32"].path)
    tflite_session = edge_sdk.load(conv[f"tflite:{precision}"].path)
    rel, _ = LIMITS[precision]
    for sample in conv["parity"]:
        ref = onnx_session.run(sample)["linear"]
        got = tflite_session.run(sample)["linear"]
        assert got.shape == ref.shape == (1, 10) and got.dtype == np.float32
        assert float(np.abs(got - ref).max()) <= rel * max(float(np.abs(ref).max()), 0.1)


# -- integer I/O ----------------------------------------------------------------------------------------


def test_int8_records_scale_and_zero_point_of_its_integer_io(tiny: dict) -> None:
    art = tiny["tflite:int8"]
    assert art.recipe["io"] == "int8"
    assert set(art.quantization) == {"x", "logits"}
    for q in art.quantization.values():
        assert q["dtype"] == "int8" and q["scale"] > 0 and -128 <= q["zero_point"] <= 127
    # The user-facing specs stay float32; the file itself takes and gives int8.
    assert [s.dtype for s in art.inputs + art.outputs] == ["float32", "float32"]
    raw = edge_sdk.load(art.model_file)
    assert [s.dtype for s in raw.inputs + raw.outputs] == ["int8", "int8"]
    assert raw.inputs[0].shape == [1, 8, 8, 3]


def test_int8_with_float_io_keeps_float_io(tiny: dict, tiny_calibration: list) -> None:
    art = tiny["tflite:int8/float-io"]
    assert art.recipe["io"] == "float" and art.quantization == {}
    raw = edge_sdk.load(art.model_file)
    assert [s.dtype for s in raw.inputs + raw.outputs] == ["float32", "float32"]
    # Quantised inside; float I/O skips the output's rounding, so it is at least as close as int8 I/O.
    assert art.recipe["int8_tensors"] > 0
    assert art.parity["max_abs_error"] <= tiny["tflite:int8"].parity["max_abs_error"] * 1.5


def test_unknown_io_type_is_refused(tiny_onnx: Path, tiny_calibration: list, tmp_path: Path) -> None:
    with pytest.raises(edge_sdk.BadInputError, match="io='int4'"):
        edge_sdk.convert(
            tiny_onnx, "tflite:int8", calibration=tiny_calibration, options={"io": "int4"}, out=tmp_path
        )


# -- failures -------------------------------------------------------------------------------------------


def test_a_symbolic_non_batch_dim_is_refused_clearly(onnx_file: Any, tmp_path: Path) -> None:
    path = onnx_file(
        "relu.onnx",
        [helper.make_node("Relu", ["x"], ["y"], name="r")],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "time"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "time"])],
    )
    with pytest.raises(edge_sdk.ConversionError) as e:
        edge_sdk.convert(path, "tflite:fp32", out=tmp_path / "out")
    msg = str(e.value)
    assert "tflite:fp32" in msg and "'time' on axis 1" in msg and "fixed" in msg
    assert not (tmp_path / "out" / "relu-tflite-fp32").exists()


def test_an_op_onnx2tf_cannot_convert_is_named_with_its_node(onnx_file: Any, tmp_path: Path) -> None:
    like = numpy_helper.from_array(np.zeros(1, np.float64), "like")
    path = onnx_file(
        "castlike.onnx",
        [helper.make_node("CastLike", ["x", "like"], ["y"], name="cast_like_1")],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, [1, 4])],
        [like],
    )
    with pytest.raises(edge_sdk.ConversionError) as e:
        edge_sdk.convert(path, "tflite:fp32", out=tmp_path)
    msg = str(e.value)
    assert "op 'CastLike'" in msg and "node 'cast_like_1'" in msg
    assert "onnx or openvino target" in msg  # what the user can do


def test_a_failing_target_does_not_stop_the_others(onnx_file: Any, tmp_path: Path) -> None:
    path = onnx_file(
        "erf.onnx",
        [helper.make_node("Erf", ["x"], ["y"], name="erf_1")],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    with pytest.raises(edge_sdk.ConversionFailed) as e:
        edge_sdk.convert(path, ["onnx:fp32", "tflite:fp32"], out=tmp_path)
    assert [a.name for a in e.value.artifacts] == ["erf-onnx-fp32"]
    msg = e.value.failures["tflite:fp32"]
    assert "no builtin kernel for TensorFlow op(s) Erf" in msg and "node 'erf_1'" in msg
    assert "converter log" in msg  # the converter's own words come along


def test_a_converter_crash_says_where_it_happened() -> None:
    from edge_sdk.converters.targets.tflite.process import crash
    from edge_sdk.converters.targets.tflite.worker import STAGE_MARK

    log = f"{STAGE_MARK}onnx2tf\n{STAGE_MARK}layout\n{STAGE_MARK}tflite\nFatal Python error\n"
    error = crash(-11, log)
    assert error["stage"] == "tflite"
    assert (
        error["message"] == "the converter process crashed (signal SIGSEGV) in TensorFlow's TFLite conversion"
    )


def test_the_worker_is_reused_ends_when_idle_and_comes_back(tmp_path: Path) -> None:
    """One worker serves a series of jobs; after its idle time it exits by itself, and the next job
    starts a new one. A job whose model is missing fails fast, before TensorFlow is imported."""
    import time

    from edge_sdk.converters.targets.tflite.process import Worker, run_job

    worker = Worker(idle_s=1.0)
    job = {"model": str(tmp_path / "missing.onnx"), "inputs": ["x"], "outputs": ["y"], "precision": "fp32"}
    try:
        pids = []
        for i in range(3):
            workdir = tmp_path / f"job{i}"
            workdir.mkdir()
            report, log = run_job(job, workdir, worker)
            assert report["error"]["stage"] == "worker" and "missing.onnx" in report["error"]["message"]
            assert "missing.onnx" in log  # the traceback went to the job's log, not to a terminal
            pids.append(worker.pid)
            if i == 1:
                time.sleep(2.5)
        assert pids[0] == pids[1] != pids[2]
    finally:
        worker.stop()
    assert worker.pid is None


def test_conversion_prints_nothing(tiny_onnx: Path, tmp_path: Path, capfd: Any) -> None:
    """TensorFlow and onnx2tf talk a lot; all of it stays in the worker's log."""
    edge_sdk.convert(tiny_onnx, "tflite:fp32", out=tmp_path)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_a_relative_out_directory(tiny_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker runs in its own directory; a relative --out must still land where the user meant."""
    monkeypatch.chdir(tmp_path)
    (art,) = edge_sdk.convert(tiny_onnx, ["tflite:fp32"], out="rel")
    assert (tmp_path / "rel" / "tiny-tflite-fp32" / "model.tflite").is_file()
    assert art.parity["cosine_similarity"] > 0.9999


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_strided_depthwise_conv_named_like_a_torch_export_converts(
    onnx_file: Any, make_samples: Any, tmp_path: Path, precision: str
) -> None:
    # DeepFilterNet3's encoder in small: a depthwise 1x3 conv with stride 2, its node named as torch's
    # exporter names nodes. onnx2tf builds it with a tf.Variable its Keras model does not track (named
    # "/enc/0/Conv/kernel", not a valid SavedModel name), and TensorFlow's converter then fell back, without
    # a word, to a model with no signature: "the TFLite model has 0 signatures".
    rng = np.random.default_rng(5)
    w = numpy_helper.from_array(rng.standard_normal((4, 1, 1, 3)).astype(np.float32), "w")
    conv = helper.make_node(
        "Conv", ["x", "w"], ["y"], name="/enc/0/Conv", group=4, kernel_shape=[1, 3], pads=[0, 1, 0, 1],
        strides=[1, 2],
    )  # fmt: skip
    path = onnx_file(
        "dw.onnx",
        [conv],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 1, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 1, 8])],
        [w],
    )
    samples = make_samples((1, 4, 1, 16), 8, seed=6)
    (art,) = edge_sdk.convert(path, f"tflite:{precision}", calibration=samples, out=tmp_path / "out")
    assert art.parity["passed"] is not False, art.parity
    session = edge_sdk.load(art.path)
    ref = edge_sdk.load(path).run(samples[0])["y"]
    got = session.run(samples[0])["y"]
    assert got.shape == ref.shape == (1, 4, 1, 8)
    scale = float(np.abs(ref).max())
    assert float(np.abs(got - ref).max()) <= (1e-4 if precision == "fp32" else 0.05) * scale
