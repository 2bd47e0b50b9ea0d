"""The ``tflite`` target with ``converter=litert-torch``: the torch conv classifier and GRU converted straight
from the module (no ONNX in between), run back through ``edge_sdk.load`` with the arrays the module takes.

The conversions run in the tflite worker process (torch, litert-torch and JAX start there, seconds), so
the conv model is converted once, in every precision this path makes, and the tests read what that wrote.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import edge_sdk
from edge_sdk.errors import BadInputError

pytestmark = pytest.mark.tflite
needs_litert_torch = pytest.mark.skipif(
    importlib.util.find_spec("litert_torch") is None,
    reason="needs litert-torch (pip install 'edge-sdk[litert-torch]')",
)

PRECISIONS = ("fp32", "fp16", "int8-dynamic")
LITERT = {"converter": "litert-torch"}
# precision → (max abs error as a fraction of the largest reference output, min cosine similarity)
LIMITS = {"fp32": (1e-5, 0.999999), "fp16": (1e-2, 0.9999), "int8-dynamic": (5e-2, 0.999)}


def _torch() -> Any:
    torch = pytest.importorskip("torch", reason="needs the torch extra (pip install 'edge-sdk[torch]')")
    pytest.importorskip("onnxscript", reason="the torch ONNX exporter needs onnxscript (edge-sdk[torch])")
    return torch


def _manifest(art: edge_sdk.Artifact) -> dict[str, Any]:
    assert art.path is not None
    return json.loads((art.path / "artifact.json").read_text())


@pytest.fixture(scope="module")
def conv(conv_module: Any, make_samples: Any, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The conv classifier as onnx:fp32 and, with litert-torch, every precision it makes."""
    _torch()
    parity = make_samples((1, 3, 16, 16), 8, seed=61)
    arts = edge_sdk.convert(
        conv_module,
        ["onnx:fp32", *(f"tflite:{p}" for p in PRECISIONS)],
        example_inputs=parity[0]["x"],
        parity_data=parity,
        options=LITERT,
        out=tmp_path_factory.mktemp("litert-conv"),
    )
    return {**{a.recipe["target"]: a for a in arts}, "parity": parity}


@needs_litert_torch
def test_every_precision_is_made_by_litert_torch(conv: dict) -> None:
    for p in PRECISIONS:
        m = _manifest(conv[f"tflite:{p}"])
        assert m["format"] == "tflite" and m["precision"] == p
        assert m["recipe"]["converter"].startswith("torch.export → litert-torch")
        assert m["recipe"]["litert_torch"]
        assert m["versions"]["litert-torch"] != "?" and m["versions"]["torch"]
        assert (conv[f"tflite:{p}"].path / "model.tflite").stat().st_size > 0


@needs_litert_torch
def test_each_precision_is_really_applied(conv: dict) -> None:
    int8 = {p: _manifest(conv[f"tflite:{p}"])["recipe"]["int8_tensors"] for p in PRECISIONS}
    assert int8["fp32"] == 0 and int8["fp16"] == 0 and int8["int8-dynamic"] > 0
    size = {p: (conv[f"tflite:{p}"].path / "model.tflite").stat().st_size for p in PRECISIONS}
    assert size["int8-dynamic"] < size["fp16"] < size["fp32"]


@needs_litert_torch
@pytest.mark.parametrize("precision", PRECISIONS)
def test_recorded_parity_is_within_limits(conv: dict, precision: str) -> None:
    parity = _manifest(conv[f"tflite:{precision}"])["parity"]
    rel, cos = LIMITS[precision]
    assert parity["inputs"] == "parity data" and parity["samples"] == 8
    assert parity["reference"] == "torch source (fp32)"
    for name, entry in parity["outputs"].items():
        assert entry["max_abs_error"] <= rel * entry["reference_max_abs"], (name, entry)
        assert entry["cosine_similarity"] >= cos, (name, entry)
    assert parity["top1_agreement"] == 1.0


@needs_litert_torch
def test_the_module_keeps_its_nchw_layout(conv: dict) -> None:
    m = _manifest(conv["tflite:fp32"])
    (x,) = m["inputs"]
    assert x["shape"] == [1, 3, 16, 16]
    assert x.get("layout") is None and x.get("stored_layout") is None  # nothing to transpose
    assert m["recipe"]["layouts"] == {}
    assert m["recipe"]["layout_check_max_abs_error"] < 1e-5


@needs_litert_torch
@pytest.mark.parametrize("precision", PRECISIONS)
def test_gives_what_the_onnx_artifact_gives_on_the_same_nchw_array(conv: dict, precision: str) -> None:
    x = conv["parity"][3]
    want = edge_sdk.load(conv["onnx:fp32"].path).run(x)
    got = edge_sdk.load(conv[f"tflite:{precision}"].path).run(x)
    assert got.keys() == want.keys()
    for name in want:
        rel, _ = LIMITS[precision]
        assert np.abs(got[name] - want[name]).max() <= rel * max(float(np.abs(want[name]).max()), 1e-6)


@needs_litert_torch
def test_gru_with_a_dynamic_batch_is_fixed_to_1_and_prints_nothing(
    gru_module: Any, make_samples: Any, tmp_path: Path, capfd: Any
) -> None:
    torch = _torch()
    x = make_samples((1, 10, 8), 1, seed=62)[0]["x"]
    (art,) = edge_sdk.convert(
        gru_module, "tflite:fp32", example_inputs=x, dynamic_batch=True, options=LITERT, out=tmp_path
    )
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    m = _manifest(art)
    assert m["recipe"]["fixed_dims"] == {"x": {"axis": 0, "was": "batch", "size": 1}}
    assert m["inputs"][0]["shape"] == [1, 10, 8] and m["outputs"][0]["shape"] == [1, 10, 4]
    with torch.no_grad():
        want = gru_module(torch.from_numpy(x)).numpy()
    got = edge_sdk.load(art.path).run({"x": x})
    (name,) = got
    assert np.abs(got[name] - want).max() < 1e-5
    assert gru_module.training is False  # left in the mode it was in


def test_an_onnx_source_is_refused(tiny_onnx: Path, tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="converts a PyTorch module; this source is onnx"):
        edge_sdk.convert(tiny_onnx, "tflite:fp32", options=LITERT, out=tmp_path)


def test_an_unknown_converter_is_refused(tiny_onnx: Path, tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="converter='tf2' is not one of: onnx2tf, litert-torch"):
        edge_sdk.convert(tiny_onnx, "tflite:fp32", options={"converter": "tf2"}, out=tmp_path)


def test_calibrated_int8_is_refused(conv_module: Any, make_samples: Any, tmp_path: Path) -> None:
    _torch()
    calibration = make_samples((1, 3, 16, 16), 2, seed=63)
    with pytest.raises(BadInputError, match="litert-torch makes fp32, fp16, int8-dynamic"):
        edge_sdk.convert(
            conv_module,
            "tflite:int8",
            example_inputs=calibration[0]["x"],
            calibration=calibration,
            options=LITERT,
            out=tmp_path,
        )
