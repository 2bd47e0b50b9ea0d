"""torch → ONNX → every ONNX precision, for a conv classifier and a GRU, checked through ``edge_sdk.load``.

The conversions themselves happen once per session in conftest (``conv_converted``, ``gru_converted``,
``conv_dynamic_fp32``); these tests read what they wrote and run it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

import edge_sdk

pytestmark = pytest.mark.torch
torch = pytest.importorskip("torch", reason="needs the torch extra (pip install 'edge-sdk[torch]')")
pytest.importorskip("onnxscript", reason="the torch ONNX exporter needs onnxscript (edge-sdk[torch])")

PRECISIONS = ("fp32", "fp16", "int8", "int8-dynamic")

# precision → (max abs error as a fraction of the largest reference output, min cosine similarity,
# min top-1 agreement for the classifier)
LIMITS = {
    "fp32": (1e-5, 0.99999, 1.0),
    "fp16": (1e-2, 0.9999, 1.0),
    "int8": (5e-2, 0.999, 0.9),
    "int8-dynamic": (5e-2, 0.999, 0.9),
}

MODELS = ("conv", "gru")


@pytest.fixture(params=MODELS)
def converted(request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue(f"{request.param}_converted")


def _manifest(artifact: edge_sdk.Artifact) -> dict[str, Any]:
    assert artifact.path is not None
    return json.loads((artifact.path / "artifact.json").read_text())


def _ops(artifact: edge_sdk.Artifact) -> set[str]:
    return {n.op_type for n in onnx.load(str(artifact.model_file)).graph.node}


def _initializer_types(artifact: edge_sdk.Artifact) -> set[int]:
    return {t.data_type for t in onnx.load(str(artifact.model_file)).graph.initializer}


def test_all_four_precisions_are_made(converted: Any) -> None:
    assert sorted(converted.by_precision) == sorted(PRECISIONS)
    for precision, art in converted.by_precision.items():
        assert art.format == "onnx"
        assert art.name.endswith(f"-onnx-{precision}")
        assert art.path is not None and art.path.name == art.name
        assert art.model_file.is_file()
        # What the function returned is what the manifest on disk says.
        on_disk = edge_sdk.load_artifact(art.path)
        assert on_disk == art


def test_each_precision_is_really_applied(converted: Any) -> None:
    """Parity figures mean little if every 'precision' were an fp32 copy: look inside the files."""
    arts = converted.by_precision
    assert onnx.TensorProto.FLOAT16 not in _initializer_types(arts["fp32"])
    assert not _ops(arts["fp32"]) & {"QuantizeLinear", "DynamicQuantizeLinear"}
    assert onnx.TensorProto.FLOAT16 in _initializer_types(arts["fp16"])
    assert {"QuantizeLinear", "DequantizeLinear"} <= _ops(arts["int8"])
    assert onnx.TensorProto.INT8 in _initializer_types(arts["int8"])
    assert "DynamicQuantizeLinear" in _ops(arts["int8-dynamic"])
    assert _ops(arts["int8-dynamic"]) & {"MatMulInteger", "ConvInteger"}


@pytest.mark.parametrize("precision", PRECISIONS)
def test_recorded_parity_is_within_limits(converted: Any, precision: str) -> None:
    parity = _manifest(converted.by_precision[precision])["parity"]
    rel, min_cos, min_top1 = LIMITS[precision]
    assert parity["inputs"] == "parity data"
    assert parity["samples"] == len(converted.parity)
    assert parity["reference"] == "torch source (fp32)"
    assert parity["backend"] == "onnxruntime/cpu"
    assert parity["passed"] is True and parity["max_error_limit"] is None
    (out,) = parity["outputs"].values()
    assert out["reference_max_abs"] > 0.1  # a model that outputs ~0 would make every error look small
    assert parity["max_abs_error"] <= rel * out["reference_max_abs"]
    assert parity["cosine_similarity"] >= min_cos
    if type(converted.module).__name__ == "TinyConvNet":
        assert parity["top1_agreement"] >= min_top1
    else:  # per-step scores [batch, time, classes] are not a classifier's [batch, classes]
        assert parity["top1_agreement"] is None


@pytest.mark.parametrize("precision", PRECISIONS)
def test_recorded_parity_matches_recomputation(converted: Any, precision: str, torch_forward: Any) -> None:
    """Run the same inputs through the artifact and the torch module here, and compare the figures with
    what conversion wrote into artifact.json."""
    art = converted.by_precision[precision]
    recorded = _manifest(art)["parity"]
    session = edge_sdk.load(art.path)
    (out_name,) = session.output_names
    ref = [torch_forward(converted.module, s["x"]) for s in converted.parity]
    got = [session.run(s)[out_name] for s in converted.parity]
    for r, g in zip(ref, got, strict=True):
        assert g.shape == r.shape and g.dtype == np.float32
    flat_r = np.concatenate([r.ravel() for r in ref]).astype(np.float64)
    flat_g = np.concatenate([g.ravel() for g in got]).astype(np.float64)
    max_err = float(np.abs(flat_r - flat_g).max())
    cosine = float(flat_r @ flat_g / (np.linalg.norm(flat_r) * np.linalg.norm(flat_g)))

    assert max_err == pytest.approx(recorded["max_abs_error"], rel=1e-3, abs=1e-6)
    assert recorded["outputs"][out_name]["reference_max_abs"] == pytest.approx(float(np.abs(flat_r).max()))
    assert cosine == pytest.approx(recorded["cosine_similarity"], abs=1e-6)
    if recorded["top1_agreement"] is not None:
        top1 = float(np.mean([(r.argmax(1) == g.argmax(1)).mean() for r, g in zip(ref, got, strict=True)]))
        assert top1 == pytest.approx(recorded["top1_agreement"])


@pytest.mark.parametrize("precision", PRECISIONS)
def test_dynamic_batch_runs_a_batch_of_three(gru_converted: Any, precision: str, torch_forward: Any) -> None:
    art = gru_converted.by_precision[precision]
    assert isinstance(art.inputs[0].shape[0], str), art.inputs[0].shape  # a symbolic batch dim
    assert art.inputs[0].shape[1:] == [10, 8]
    # Three calibration samples: static int8 clips what lies outside the calibrated range, and a fresh
    # random batch may hold such values, which would measure the clipping rather than the batching.
    x = np.concatenate([s["x"] for s in gru_converted.calibration[:3]])
    y = edge_sdk.load(art.path).run({"x": x})
    (got,) = y.values()
    ref = torch_forward(gru_converted.module, x)
    assert got.shape == ref.shape == (3, 10, 4)
    rel = LIMITS[precision][0]
    assert float(np.abs(got - ref).max()) <= rel * float(np.abs(ref).max())


def test_dynamic_batch_conv_runs_a_batch_of_three(
    conv_dynamic_fp32: edge_sdk.Artifact, conv_module: Any, torch_forward: Any, make_samples: Any
) -> None:
    art = conv_dynamic_fp32
    assert art.inputs[0].shape[1:] == [3, 16, 16] and isinstance(art.inputs[0].shape[0], str)
    assert art.source["export"]["dynamic_batch"] is True
    x = make_samples((3, 3, 16, 16), 1, seed=31)[0]["x"]
    (got,) = edge_sdk.load(art.path).run({"x": x}).values()
    ref = torch_forward(conv_module, x)
    assert got.shape == (3, 10)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5 * float(np.abs(ref).max()))


@pytest.mark.parametrize("precision", PRECISIONS)
def test_fixed_batch_rejects_a_batch_of_three(conv_converted: Any, precision: str, make_samples: Any) -> None:
    art = conv_converted.by_precision[precision]
    assert art.inputs[0].shape == [1, 3, 16, 16]
    assert art.source["export"]["dynamic_batch"] is False
    session = edge_sdk.load(art.path)
    x = make_samples((3, 3, 16, 16), 1, seed=32)[0]["x"]
    with pytest.raises(edge_sdk.BadInputError) as e:
        session.run({"x": x})
    assert "float32[1, 3, 16, 16]" in str(e.value)  # names the expected shape
    assert "axis 0" in str(e.value)


def test_manifest_records_source_recipe_and_versions(conv_converted: Any) -> None:
    arts = conv_converted.by_precision
    shas = {a.source["sha256"] for a in arts.values()}
    assert len(shas) == 1 and len(shas.pop()) == 64
    for precision, art in arts.items():
        assert art.source["framework"] == "torch"
        assert art.source["framework_version"] == torch.__version__
        assert art.source["path"] is None
        assert art.recipe["target"] == f"onnx:{precision}"
        assert art.recipe["simplify"]["status"] == "done"
        assert art.versions["torch"] == torch.__version__
        assert art.versions["edge_sdk"] == edge_sdk.__version__
        assert "onnxruntime" in art.versions
        assert [s.name for s in art.inputs] == ["x"]  # from forward(self, x)
        assert art.outputs[0].shape == [1, 10] and art.outputs[0].dtype == "float32"
    assert arts["int8"].recipe["calibration"] == {
        "samples": len(conv_converted.calibration),
        "from": "iterable",
    }
    assert "calibration" not in arts["int8-dynamic"].recipe


def test_export_leaves_the_module_in_the_mode_it_was_in(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    module = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5)).train()
    x = torch.randn(1, 4)
    (art,) = edge_sdk.convert(module, ["onnx:fp32"], example_inputs=(x,), out=tmp_path)
    assert module.training  # the user's module is theirs: still in training mode
    assert art.parity["max_abs_error"] < 1e-5  # and the export and reference ran with dropout off


def test_fixed_input_of_a_torch_module(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")

    class Scaled(torch.nn.Module):
        def forward(self, x: Any, gain: Any) -> Any:
            return torch.relu(x) * gain

    x, gain = torch.randn(1, 4), torch.tensor([3.0])
    (art,) = edge_sdk.convert(
        Scaled(), ["onnx:fp32"], example_inputs=(x, gain), fixed_inputs={"gain": 3.0}, out=tmp_path
    )
    session = edge_sdk.load(art.path)
    assert session.input_names == ["x"]
    assert art.parity["inputs"] == "example" and art.parity["max_abs_error"] < 1e-6
    np.testing.assert_allclose(
        session.run({"x": x.numpy()})[session.output_names[0]], (torch.relu(x) * 3).numpy(), rtol=1e-6
    )
