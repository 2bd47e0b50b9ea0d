"""Keras and SavedModel sources (``sources/keras_model.py``) and Keras → TFLite directly
(``converters/targets/tflite/keras.py``): a small conv classifier trained for a moment on scikit-learn's
digits (real handwriting, 8×8), converted through ``edge_sdk.convert`` and checked against Keras itself."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import edge_sdk
from edge_sdk.errors import BadInputError

pytest.importorskip("tensorflow", reason="needs the keras extra (pip install 'edge-sdk[keras]')")
pytest.importorskip("tf2onnx", reason="needs the keras extra (pip install 'edge-sdk[keras]')")
keras = pytest.importorskip("keras")
datasets = pytest.importorskip("sklearn.datasets", reason="the digits data come with scikit-learn")

TARGETS = ["onnx:fp32", "onnx:int8", "openvino:fp32", "tflite:fp32", "tflite:int8"]
# precision → (max abs error as a share of the largest reference output, min top-1 agreement with Keras)
LIMITS = {"fp32": (1e-4, 1.0), "int8": (0.1, 0.9)}


def _digits() -> tuple[np.ndarray, np.ndarray]:
    d = datasets.load_digits()
    x = (d.images / 16.0).astype(np.float32)[..., None]  # N, 8, 8, 1 (channels-last, as Keras has it)
    return x, d.target.astype(np.int64)


@pytest.fixture(scope="module")
def digits_model() -> Any:
    """A seeded conv classifier trained for two epochs on 1500 digits (held out: the rest)."""
    keras.utils.set_random_seed(0)
    x, y = _digits()
    inp = keras.Input((8, 8, 1), name="image")
    h = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(inp)
    h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    out = keras.layers.Dense(10, name="logits")(h)
    model = keras.Model(inp, out, name="digits")
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x[:1500], y[:1500], epochs=2, batch_size=32, verbose=0)
    return model


@pytest.fixture(scope="module")
def samples() -> tuple[list[dict[str, np.ndarray]], list[dict[str, np.ndarray]]]:
    """(calibration from the training digits, parity samples from held-out digits), batch 1 each."""
    x, _ = _digits()
    return [{"image": x[i : i + 1]} for i in range(0, 1500, 50)], [
        {"image": x[i : i + 1]} for i in range(1500, 1797, 10)
    ]


@pytest.fixture(scope="module")
def converted(digits_model: Any, samples: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    calib, parity = samples
    arts = edge_sdk.convert(
        digits_model, TARGETS, calibration=calib, parity_data=parity, out=tmp_path_factory.mktemp("keras")
    )
    return {f"{a.format}:{a.precision}": a for a in arts}


def _keras_logits(model: Any, parity: list[dict[str, np.ndarray]]) -> np.ndarray:
    return np.concatenate([np.asarray(model(s["image"], training=False)) for s in parity])


@pytest.mark.parametrize("target", TARGETS)
def test_each_target_agrees_with_keras(
    converted: dict[str, Any], digits_model: Any, samples: Any, target: str
) -> None:
    art = converted[target]
    _, parity = samples
    report = art.parity
    assert report["reference"].startswith("keras source")
    assert report["samples"] == len(parity) and report["inputs"] == "parity data"
    rel, agree = LIMITS["int8" if target.endswith("int8") else "fp32"]
    assert report["max_abs_error"] <= rel * report["outputs"]["logits"]["reference_max_abs"]
    expected = _keras_logits(digits_model, parity)
    session = edge_sdk.load(art.path)
    got = np.concatenate([session.run(s)["logits"] for s in parity])
    assert np.mean(got.argmax(1) == expected.argmax(1)) >= agree
    assert art.source["framework"] == "keras"


def test_source_provenance_is_recorded(converted: dict[str, Any]) -> None:
    art = converted["onnx:fp32"]
    assert art.source["export"]["exporter"] == "tf2onnx.convert.from_keras"
    assert art.source["export"]["input_names"] == ["image"]
    assert art.inputs[0].shape == [1, 8, 8, 1]  # Keras's channels-last layout, batch fixed to 1
    assert "keras" in art.versions


@pytest.mark.parametrize("kind", ["keras", "h5", "saved_model"])
def test_files_and_saved_model_dirs_convert(
    digits_model: Any, samples: Any, tmp_path: Path, kind: str
) -> None:
    _, parity = samples
    if kind == "saved_model":
        path = tmp_path / "digits_sm"
        digits_model.export(str(path), verbose=False)
    else:
        path = tmp_path / f"digits.{kind}"
        digits_model.save(str(path))
    (art,) = edge_sdk.convert(path, "onnx:fp32", parity_data=parity[:8], out=tmp_path / "out")
    assert art.parity["max_abs_error"] < 1e-4
    assert art.source["path"] == str(path) and len(art.source["sha256"]) == 64
    assert art.source["framework"] == ("tensorflow" if kind == "saved_model" else "keras")
    expected = _keras_logits(digits_model, parity[:1])
    (got,) = edge_sdk.load(art.path).run(parity[0]).values()
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_corrupt_file_is_bad_input(tmp_path: Path) -> None:
    bad = tmp_path / "broken.keras"
    bad.write_bytes(b"this is not a zip archive")
    with pytest.raises(BadInputError, match="broken.keras: not a Keras model file"):
        edge_sdk.convert(bad, "onnx:fp32", out=tmp_path / "out")
    with pytest.raises(BadInputError, match="no such file"):
        edge_sdk.convert(tmp_path / "missing.h5", "onnx:fp32", out=tmp_path / "out")


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_keras_straight_to_tflite(digits_model: Any, samples: Any, tmp_path: Path, precision: str) -> None:
    """TFLiteConverter on the Keras model itself (no ONNX in between): same layout, Keras's answers."""
    import onnx

    from edge_sdk.converters.options import defaults
    from edge_sdk.converters.sources import open_source
    from edge_sdk.converters.targets import TARGETS, BuildContext
    from edge_sdk.converters.targets.tflite.keras import build

    calib, parity = samples
    src = open_source(digits_model)
    hub = tmp_path / "hub.onnx"
    onnx.save(src.model, str(hub))
    ctx = BuildContext(calibration_samples=calib, source=src, options=defaults(TARGETS.get("tflite")))
    result = build(hub, precision, tmp_path, ctx)
    assert result.recipe["converter"].startswith("TFLiteConverter.from_keras_model")
    assert result.inputs is not None and result.outputs is not None
    assert result.inputs[0].layout is None and result.inputs[0].shape[1:] == [8, 8, 1]
    assert result.outputs[0].name == "logits" and result.outputs[0].stored_name == "output_0"
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=str(tmp_path / "model.tflite")).get_signature_runner()
    got = []
    for s in parity:
        x = s["image"]
        if precision == "int8":
            q = result.quantization["image"]
            x = np.clip(np.round(x / q["scale"] + q["zero_point"]), -128, 127).astype(np.int8)
        y = runner(image=x)["output_0"]
        if precision == "int8":
            q = result.quantization["logits"]
            y = (y.astype(np.float32) - q["zero_point"]) * q["scale"]
        got.append(y)
    expected = _keras_logits(digits_model, parity)
    rel, agree = LIMITS[precision]
    assert np.abs(np.concatenate(got) - expected).max() <= rel * np.abs(expected).max()
    assert np.mean(np.concatenate(got).argmax(1) == expected.argmax(1)) >= agree


def test_missing_tensorflow_names_the_keras_extra(tmp_path: Path) -> None:
    model = tmp_path / "m.keras"
    model.write_bytes(b"")  # never read: the missing package is found first
    code = textwrap.dedent(
        f"""
        import sys
        sys.modules["tensorflow"] = None  # as if the keras extra were not installed
        import edge_sdk
        from edge_sdk.errors import MissingExtraError
        try:
            edge_sdk.convert({str(model)!r}, "onnx:fp32", out={str(tmp_path / "out")!r})
        except MissingExtraError as e:
            print("EXTRA", e.extra, e)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "EXTRA keras" in out.stdout and "pip install 'edge-sdk[keras]'" in out.stdout


def test_tflite_target_converts_keras_sources_directly(converted: dict[str, Any]) -> None:
    from edge_sdk.converters.targets.tflite import target as tflite

    assert "keras" in tflite.CONVERTERS
    for target in ("tflite:fp32", "tflite:int8"):
        recipe = converted[target].recipe
        assert recipe["converter"].startswith("TFLiteConverter.from_keras_model"), recipe["converter"]
        assert not converted[target].inputs[0].layout  # Keras's NHWC kept: nothing to transpose
