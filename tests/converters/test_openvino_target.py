"""The ``openvino`` target: the helper-built classifier and the torch conv and GRU models converted to IR in
fp32, fp16, int8 and int8-weights through ``edge_sdk.convert``, checked through ``edge_sdk.load``.

Each model is converted once per session (the fixtures below); tests treat the artifacts as read-only.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from onnx import TensorProto, helper

import edge_sdk

pytestmark = pytest.mark.openvino
ov = pytest.importorskip("openvino", reason="needs the openvino extra (pip install 'edge-sdk[openvino]')")
pytest.importorskip("nncf", reason="needs the openvino extra (pip install 'edge-sdk[openvino]')")

PRECISIONS = ("fp32", "fp16", "int8", "int8-weights")
TARGETS = [f"openvino:{p}" for p in PRECISIONS]

# precision → (max abs error as a fraction of the largest reference output, min cosine similarity, min
# top-1 agreement for the classifier). Measured on this CPU at f32 inference precision: fp32 ~1e-7,
# fp16 ~4e-4, int8 ~3-4e-2, int8-weights ~3-8e-3 of the output scale.
LIMITS = {
    "fp32": (1e-5, 0.99999, 1.0),
    "fp16": (1e-2, 0.9999, 1.0),
    "int8": (5e-2, 0.999, 0.9),
    "int8-weights": (2e-2, 0.9999, 1.0),
}


@dataclass
class Converted:
    """One model's OpenVINO artifacts by precision, with the data they were made and checked with."""

    module: Any
    by_precision: dict[str, edge_sdk.Artifact]
    calibration: list[dict[str, np.ndarray]]
    parity: list[dict[str, np.ndarray]]
    progress: list[tuple[str, int, int | None]]


def _convert(source: Any, tmp: Path, calibration: list, parity: list, **kwargs: Any) -> Converted:
    events: list[tuple[str, int, int | None]] = []
    arts = edge_sdk.convert(
        source,
        TARGETS,
        calibration=calibration,
        parity_data=parity,
        out=tmp,
        progress=lambda stage, done, total: events.append((stage, done, total)),
        **kwargs,
    )
    return Converted(source, {a.precision: a for a in arts}, calibration, parity, events)


@pytest.fixture(scope="session")
def ov_tiny(
    tiny_onnx: Path, tiny_calibration: list, make_samples: Any, tmp_path_factory: pytest.TempPathFactory
) -> Converted:
    parity = make_samples((1, 3, 8, 8), 8, seed=2)
    return _convert(tiny_onnx, tmp_path_factory.mktemp("ov-tiny"), tiny_calibration, parity)


@pytest.fixture(scope="session")
def ov_conv(conv_module: Any, make_samples: Any, tmp_path_factory: pytest.TempPathFactory) -> Converted:
    calibration = make_samples((1, 3, 16, 16), 16, seed=10)
    parity = make_samples((1, 3, 16, 16), 16, seed=11)
    return _convert(
        conv_module,
        tmp_path_factory.mktemp("ov-conv"),
        calibration,
        parity,
        example_inputs=calibration[0]["x"],
    )


@pytest.fixture(scope="session")
def ov_gru(gru_module: Any, make_samples: Any, tmp_path_factory: pytest.TempPathFactory) -> Converted:
    calibration = make_samples((1, 10, 8), 16, seed=20)
    parity = make_samples((1, 10, 8), 8, seed=21)
    return _convert(
        gru_module,
        tmp_path_factory.mktemp("ov-gru"),
        calibration,
        parity,
        example_inputs=calibration[0]["x"],
        dynamic_batch=True,
    )


@pytest.fixture(params=["tiny", "conv", "gru"])
def converted(request: pytest.FixtureRequest) -> Converted:
    return request.getfixturevalue(f"ov_{request.param}")


@pytest.fixture(params=["conv", "gru"])
def torch_converted(request: pytest.FixtureRequest) -> Converted:
    return request.getfixturevalue(f"ov_{request.param}")


def _constant_types(xml: Path) -> set[str]:
    model = ov.Core().read_model(str(xml))
    return {
        op.get_element_type().get_type_name() for op in model.get_ops() if op.get_type_name() == "Constant"
    }


def _op_types(xml: Path) -> set[str]:
    return {op.get_type_name() for op in ov.Core().read_model(str(xml)).get_ops()}


# -- what is written ----------------------------------------------------------------------------------


def test_every_precision_is_made_as_xml_and_bin(converted: Converted) -> None:
    assert sorted(converted.by_precision) == sorted(PRECISIONS)
    for precision, art in converted.by_precision.items():
        assert art.format == "openvino" and art.name.endswith(f"-openvino-{precision}")
        assert art.path is not None and art.path.name == art.name
        assert [f.path for f in art.files] == ["model.xml", "model.bin"]  # the xml is the model file
        assert art.model_file == art.path / "model.xml"
        manifest = json.loads((art.path / "artifact.json").read_text())
        for entry in manifest["files"]:
            data = (art.path / entry["path"]).read_bytes()
            assert entry["size"] == len(data) > 0 and len(entry["sha256"]) == 64
        assert edge_sdk.load_artifact(art.path) == art  # sizes and sha256 verified on load
        assert art.versions["openvino"] == ov.get_version()
        # static int8 is onnxruntime's QDQ model imported (calibrator=onnxruntime, the default)
        assert ("nncf" in art.versions) == (precision == "int8-weights")
        assert ("onnxruntime" in art.versions) == (precision == "int8")


def test_each_precision_is_really_applied(converted: Converted) -> None:
    """The parity figures would mean little if every precision were an fp32 copy: look inside the IR."""
    arts = converted.by_precision
    assert "f16" not in _constant_types(arts["fp32"].model_file)
    assert "f16" in _constant_types(arts["fp16"].model_file)
    assert "FakeQuantize" in _op_types(arts["int8"].model_file)
    assert {"i8", "u8"} & _constant_types(arts["int8"].model_file)
    assert "FakeQuantize" not in _op_types(arts["int8-weights"].model_file)
    assert "u8" in _constant_types(arts["int8-weights"].model_file)
    assert arts["int8"].recipe["quantized_weights"] >= 1
    assert arts["int8-weights"].recipe["quantized_weights"] >= 1
    assert arts["fp16"].recipe["compress_to_fp16"] is True
    assert arts["fp32"].recipe["compress_to_fp16"] is False


def test_recipe_records_the_inference_precision_parity_ran_at(converted: Converted) -> None:
    """The CPU would pick bf16 by itself where it has AMX; the artifacts ask for f32 and record it."""
    for art in converted.by_precision.values():
        assert art.recipe["inference_precision"] == "f32"
        assert art.parity is not None and art.parity["backend"] == "openvino/CPU"
        session = edge_sdk.load(art.path)
        assert session.inference_precision == "f32"  # type: ignore[attr-defined]
        taken = [c for c in session.selection.candidates if c.status == "taken"]
        assert [c.accelerator for c in taken] == ["CPU"]
        assert "inference precision f32" in taken[0].reason


def test_int8_recipe_and_calibration_progress(converted: Converted) -> None:
    art = converted.by_precision["int8"]
    samples = len(converted.calibration)
    assert art.recipe["calibration"] == {"samples": samples, "from": "iterable"}
    assert art.recipe["calibrator"] == "onnxruntime" and art.recipe["calibration_samples"] == samples
    assert art.recipe["quantizer"].startswith("onnxruntime.quantize_static")
    assert "calibration" not in converted.by_precision["int8-weights"].recipe
    calibrate = [e for e in converted.progress if e[0] == "calibrate"]
    assert calibrate[-1] == ("calibrate", samples, samples)
    assert [d for _, d, _ in calibrate[:samples]] == list(range(1, samples + 1))


def _gru_inputs(art: edge_sdk.Artifact) -> set[str]:
    model = ov.Core().read_model(str(art.model_file))
    (gru,) = [op for op in model.get_ops() if op.get_type_name() == "GRUSequence"]
    return {i.get_source_output().get_node().get_type_name() for i in gru.inputs()}


@pytest.mark.torch
def test_int8_keeps_recurrent_layers_in_float(ov_gru: Converted, ov_conv: Converted, tmp_path: Path) -> None:
    """A quantised GRU/LSTM quantises the state it carries; static int8 leaves those layers in float,
    whichever calibrator made it (onnxruntime's QDQ quantiser does not quantise them at all)."""
    feeding = _gru_inputs(ov_gru.by_precision["int8"])
    assert "FakeQuantize" not in feeding and "Convert" not in feeding  # float activations and weights
    (art,) = edge_sdk.convert(
        ov_gru.module, "openvino:int8", calibration=ov_gru.calibration, out=tmp_path,
        example_inputs=ov_gru.calibration[0]["x"], dynamic_batch=True, options={"calibrator": "nncf"},
    )  # fmt: skip
    assert art.recipe["kept_float"] == ["GRUSequence"] and art.recipe["quantize_recurrent"] is False
    feeding = _gru_inputs(art)
    assert "FakeQuantize" not in feeding and "Convert" not in feeding


def test_target_is_available_and_describes_its_options() -> None:
    from edge_sdk.converters import TARGETS

    target = TARGETS.get("openvino")
    assert target.available() == (True, "installed")
    assert target.calibrated == frozenset({"int8"})
    assert set(target.options) == {
        *("inference_precision", "preset", "quantize_recurrent", "converter", "calibrator", "int8_weights"),
        # onnxruntime's quantiser's: static int8 imports its QDQ model (calibrator=onnxruntime)
        *("per_channel", "activation_type", "weight_type", "calibrate_method", "exclude_nodes"),
        *("int4_mode", "group_size", "group_fallback"),  # int4-weights
    }


# -- parity -------------------------------------------------------------------------------------------


@pytest.mark.torch
@pytest.mark.parametrize("precision", PRECISIONS)
def test_recorded_parity_is_within_limits(torch_converted: Converted, precision: str) -> None:
    parity = torch_converted.by_precision[precision].parity
    assert parity is not None
    rel, min_cos, min_top1 = LIMITS[precision]
    assert parity["reference"] == "torch source (fp32)" and parity["inputs"] == "parity data"
    assert parity["samples"] == len(torch_converted.parity) and parity["passed"] is True
    (out,) = parity["outputs"].values()
    assert out["reference_max_abs"] > 0.1  # a model that outputs ~0 would make every error look small
    assert parity["max_abs_error"] <= rel * out["reference_max_abs"]
    assert parity["cosine_similarity"] >= min_cos
    if type(torch_converted.module).__name__ == "TinyConvNet":
        assert parity["top1_agreement"] >= min_top1
    else:  # per-step scores [batch, time, classes] are not a classifier's [batch, classes]
        assert parity["top1_agreement"] is None


@pytest.mark.torch
@pytest.mark.parametrize("precision", PRECISIONS)
def test_recorded_parity_matches_a_fresh_run(
    torch_converted: Converted, precision: str, torch_forward: Any
) -> None:
    """The parity report was measured the way the artifact runs: loading it again gives the same figures."""
    art = torch_converted.by_precision[precision]
    assert art.parity is not None
    session = edge_sdk.load(art.path)
    (name,) = session.output_names
    ref = np.concatenate(
        [torch_forward(torch_converted.module, s["x"]).ravel() for s in torch_converted.parity]
    )
    got = np.concatenate([session.run(s)[name].ravel() for s in torch_converted.parity])
    assert float(np.abs(ref - got).max()) == pytest.approx(art.parity["max_abs_error"], rel=1e-3, abs=1e-7)


@pytest.mark.torch
@pytest.mark.parametrize("precision", PRECISIONS)
def test_dynamic_batch_runs_a_batch_of_three(ov_gru: Converted, precision: str, torch_forward: Any) -> None:
    art = ov_gru.by_precision[precision]
    assert isinstance(art.inputs[0].shape[0], str)  # the symbolic batch dim survives the IR
    # Calibration samples: static int8 clips what lies outside the calibrated range.
    x = np.concatenate([s["x"] for s in ov_gru.calibration[:3]])
    (got,) = edge_sdk.load(art.path).run({"x": x}).values()
    ref = torch_forward(ov_gru.module, x)
    assert got.shape == ref.shape == (3, 10, 4)
    assert float(np.abs(got - ref).max()) <= LIMITS[precision][0] * float(np.abs(ref).max())


# -- options and refusals -----------------------------------------------------------------------------


def test_bf16_inference_precision_on_request(tiny_onnx: Path, tmp_path: Path) -> None:
    """Asked for bf16, the artifact records what the CPU reports (bf16 where it has it) and runs at that."""
    expected = (
        ov.Core()
        .compile_model(str(tiny_onnx), "CPU", {"INFERENCE_PRECISION_HINT": "bf16"})
        .get_property("INFERENCE_PRECISION_HINT")
        .get_type_name()
    )
    (art,) = edge_sdk.convert(
        tiny_onnx, "openvino:fp32", options={"inference_precision": "bf16"}, out=tmp_path
    )
    assert art.recipe["inference_precision"] == expected
    assert edge_sdk.load(art.path).inference_precision == expected  # type: ignore[attr-defined]


def test_bad_option_values_are_refused(tiny_onnx: Path, tmp_path: Path) -> None:
    with pytest.raises(edge_sdk.BadInputError, match="inference precision 'f8'"):
        edge_sdk.convert(tiny_onnx, "openvino:fp32", options={"inference_precision": "f8"}, out=tmp_path)
    with pytest.raises(edge_sdk.BadInputError, match="preset='fast'"):
        edge_sdk.convert(tiny_onnx, "openvino:fp32", options={"preset": "fast"}, out=tmp_path)
    with pytest.raises(edge_sdk.BadInputError, match="quantize_recurrent='yes' must be true or false"):
        edge_sdk.convert(tiny_onnx, "openvino:fp32", options={"quantize_recurrent": "yes"}, out=tmp_path)
    with pytest.raises(edge_sdk.BadInputError, match="calibrator='ort' is not one of: onnxruntime, nncf"):
        edge_sdk.convert(tiny_onnx, "openvino:fp32", options={"calibrator": "ort"}, out=tmp_path)
    with pytest.raises(edge_sdk.BadInputError, match="use calibrator='nncf' with it"):
        options = {"calibrator": "onnxruntime", "converter": "torch"}
        edge_sdk.convert(tiny_onnx, "openvino:fp32", options=options, out=tmp_path)


def test_int8_without_calibration_is_refused(tiny_onnx: Path, tmp_path: Path) -> None:
    with pytest.raises(edge_sdk.BadInputError, match="openvino:int8 is static quantisation") as e:
        edge_sdk.convert(tiny_onnx, ["openvino:fp32", "openvino:int8"], out=tmp_path)
    assert "calibration" in str(e.value)
    assert not list(tmp_path.iterdir())  # refused before any work


def test_unknown_precision_lists_the_known_ones() -> None:
    with pytest.raises(edge_sdk.BadInputError) as e:
        edge_sdk.convert("unused.onnx", "openvino:int4")
    assert all(p in str(e.value) for p in PRECISIONS)


def test_op_openvino_cannot_import_is_a_conversion_error(
    onnx_file: Callable[..., Path], tmp_path: Path
) -> None:
    """onnxruntime runs ai.onnx.ml's Binarizer (so the reference works); OpenVINO has no rule for it."""
    model = onnx_file(
        "binarizer.onnx",
        [helper.make_node("Binarizer", ["x"], ["y"], domain="ai.onnx.ml", threshold=0.5)],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        opsets={"": 17, "ai.onnx.ml": 3},
    )
    with pytest.raises(edge_sdk.ConversionError) as e:
        edge_sdk.convert(model, "openvino:fp32", out=tmp_path)
    msg = str(e.value)
    assert "ov.convert_model" in msg and "Binarizer" in msg and "onnx format" in msg
    assert "Exception from src" not in msg  # OpenVINO's C++ locations are left out


def test_nothing_to_quantise_fails_that_target_only(onnx_file: Callable[..., Path], tmp_path: Path) -> None:
    model = onnx_file(
        "relu.onnx",
        [helper.make_node("Relu", ["x"], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    calibration = [{"x": np.full((1, 4), i, np.float32)} for i in range(4)]
    targets = ["openvino:fp32", "openvino:int8", "openvino:int8-weights"]
    with pytest.raises(edge_sdk.ConversionFailed) as e:
        edge_sdk.convert(model, targets, calibration=calibration, out=tmp_path)
    assert sorted(e.value.failures) == ["openvino:int8", "openvino:int8-weights"]
    assert "keep fp32" in e.value.failures["openvino:int8"]
    assert [a.precision for a in e.value.artifacts] == ["fp32"]


def test_nncf_prints_nothing(tiny_onnx: Path, tiny_calibration: list, tmp_path: Path, capfd: Any) -> None:
    """NNCF draws progress bars and tables on stdout; they would break ``edge-sdk convert --json``."""
    edge_sdk.convert(
        tiny_onnx, ["openvino:int8", "openvino:int8-weights"], calibration=tiny_calibration, out=tmp_path
    )
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_without_openvino_installed(tiny_onnx: Path, tmp_path: Path) -> None:
    """``import edge_sdk`` and registration never import OpenVINO; converting without it names the extra."""
    script = f"""
import sys
sys.modules["openvino"] = None  # as if not installed: importing it raises ImportError
import edge_sdk
from edge_sdk.converters import all_targets
assert "openvino:int8-weights" in all_targets()
try:
    edge_sdk.convert({str(tiny_onnx)!r}, "openvino:fp32", out={str(tmp_path)!r})
except edge_sdk.MissingExtraError as e:
    print(e)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "pip install 'edge-sdk[openvino]'" in done.stdout

    check = (
        "import sys, edge_sdk; edge_sdk.converters.all_targets(); edge_sdk.runtimes.BACKENDS.names(); "
        "print(sorted({'openvino', 'nncf'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_ir_straight_from_the_torch_module(conv_module: Any, tmp_path: Path) -> None:
    """converter=torch: OpenVINO's PyTorch front end on the module itself, named and shaped as the ONNX
    route would be, with its parity against the module."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    calib = [{"x": rng.standard_normal((1, 3, 16, 16)).astype(np.float32)} for _ in range(8)]
    fp32, int8 = edge_sdk.convert(
        conv_module,
        ["openvino:fp32", "openvino:int8"],
        calibration=calib,
        example_inputs={"x": torch.from_numpy(calib[0]["x"])},
        options={"converter": "torch"},
        out=tmp_path,
    )
    assert fp32.recipe["converter"] == "openvino.convert_model(torch.nn.Module)"
    assert fp32.parity["max_abs_error"] < 1e-5 and int8.parity["cosine_similarity"] > 0.999
    session = edge_sdk.load(fp32.path)
    assert session.input_names == ["x"] and session.output_names == [fp32.outputs[0].name]
    assert session.run({"x": calib[0]["x"]})[fp32.outputs[0].name].shape == (1, 10)


def test_converter_torch_needs_a_torch_source(tiny_onnx: Path, tmp_path: Path) -> None:
    with pytest.raises(edge_sdk.BadInputError, match="needs a PyTorch module"):
        edge_sdk.convert(tiny_onnx, ["openvino:fp32"], options={"converter": "torch"}, out=tmp_path)


def _front_end_model(residual: bool) -> Any:
    """Features whose first column is 60x the others, mean-normalised over time inside the graph (as the
    keyword spotter does), then a conv classifier; with ``residual``, the conv's output is added back to
    the normalised input."""
    torch = pytest.importorskip("torch")
    nn = torch.nn

    class Normalised(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 1 if residual else 8, 3, padding=1)
            self.fc = nn.Linear(49 * 10 if residual else 8, 6)

        def forward(self, x: Any) -> Any:
            z = (x - x.mean(dim=2, keepdim=True)) * 0.2
            h = torch.relu(self.conv(z))
            if residual:
                return self.fc(torch.flatten(h + z, 1))
            return self.fc(h.mean(dim=(2, 3)))

    torch.manual_seed(0)
    return Normalised().eval()


def _mfcc_like(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, (n, 1, 49, 10)).astype(np.float32)
    x[..., 0] = rng.normal(-250.0, 60.0, (n, 1, 49))
    return x


@pytest.mark.parametrize("calibrator", ["nncf", "onnxruntime"])
def test_int8_keeps_the_input_front_end_float(calibrator: str, tmp_path: Path) -> None:
    """NNCF would quantise the raw input per tensor, and the small coefficients would drown in the steps
    that the large one needs; the normalisation before the first conv stays float, and int8 agrees.
    onnxruntime's QDQ quantiser starts at the first weighted layer's input, so it agrees as well."""
    module = _front_end_model(residual=False)
    calibration = [{"x": s[None]} for s in _mfcc_like(64, 1)]
    x = _mfcc_like(400, 2)
    (fp32, int8) = edge_sdk.convert(
        module, ["openvino:fp32", "openvino:int8"], calibration=calibration, out=tmp_path,
        example_inputs={"x": __import__("torch").from_numpy(x[:1])}, options={"calibrator": calibrator},
    )  # fmt: skip
    if calibrator == "nncf":
        front = int8.recipe["front_end_float"]
        assert any("mean" in n.lower() for n in front) and any("sub" in n.lower() for n in front), front
    f, q = edge_sdk.load(fp32.path), edge_sdk.load(int8.path)
    ref = np.concatenate([next(iter(f.run({"x": s[None]}).values())) for s in x]).argmax(1)
    got = np.concatenate([next(iter(q.run({"x": s[None]}).values())) for s in x]).argmax(1)
    assert (got == ref).mean() >= 0.97


def test_front_end_stops_at_what_a_weighted_layer_feeds() -> None:
    """A residual add of the input after the conv is the network, not preprocessing."""
    from edge_sdk.converters.targets.openvino.target import _front_end

    module = _front_end_model(residual=True)
    model = ov.convert_model(module, example_input=np.zeros((1, 1, 49, 10), np.float32))
    kinds = {op.get_friendly_name(): op.get_type_name() for op in model.get_ordered_ops()}
    front = _front_end(model)
    assert {kinds[n] for n in front} >= {"ReduceMean", "Subtract", "Multiply"}, front
    assert not any(kinds[n] in ("Add", "Relu", "MatMul", "Convolution") for n in front), front
