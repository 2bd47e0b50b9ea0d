"""TFLite straight from a Keras or SavedModel source with TensorFlow's own ``TFLiteConverter``, skipping the
ONNX → onnx2tf round trip: the model keeps its Keras layouts (NHWC stays NHWC) and TensorFlow ops map to
TFLite builtins one to one.

The ``tflite`` target calls ``build`` when the source is Keras (``converter=keras``, the default for such
sources); precisions as the target's: fp32, fp16 (weights), int8 (full integer, representative dataset
from the calibration samples; integer I/O unless ``io=float``) and int8-dynamic. It runs in the caller's
process, where the Keras source already imported TensorFlow.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.converters.targets import BuildContext, BuildResult
from edge_sdk.errors import BadInputError, ConversionError
from edge_sdk.manifest import TensorSpec

MODEL_FILE = "model.tflite"


def is_keras_source(ctx: BuildContext) -> bool:
    """Whether the conversion's source is a Keras model or SavedModel (see ``sources/keras_model.py``)."""
    native = None if ctx.source is None else ctx.source.native
    return isinstance(native, dict) and native.get("kind") in ("keras", "saved_model")


def _converter(native: dict[str, Any]) -> tuple[Any, str]:
    import tensorflow as tf

    if native["kind"] == "keras":
        return tf.lite.TFLiteConverter.from_keras_model(native["model"]), "TFLiteConverter.from_keras_model"
    conv = tf.lite.TFLiteConverter.from_saved_model(native["path"], signature_keys=[native["signature"]])
    return conv, f"TFLiteConverter.from_saved_model({native['signature']})"


def _representative(samples: list[dict[str, np.ndarray]], names: list[str]) -> Any:
    """Calibration samples in input order, one row at a time (the TFLite model has batch 1)."""

    def gen() -> Iterator[list[np.ndarray]]:
        for sample in samples:
            arrays = [np.asarray(sample[n], np.float32) for n in names]
            for r in range(len(arrays[0]) if arrays[0].ndim else 1):
                yield [a[r : r + 1] if a.ndim else a for a in arrays]

    return gen


def _settings(conv: Any, precision: str, io_type: str, ctx: BuildContext, names: list[str]) -> dict[str, Any]:
    from edge_sdk.converters.targets.tflite.onnx2tflite import converter_settings

    samples = ctx.calibration_samples or []
    return converter_settings(conv, precision, io_type, _representative(samples, names), len(samples))


def _out_order(names: list[str]) -> list[str]:
    """Signature output names in the model's output order (``output_10`` after ``output_9``)."""
    return sorted(names, key=lambda n: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", n)])


def _specs(
    hub: list[TensorSpec], stored: list[str], described: list[dict[str, Any]]
) -> tuple[list[TensorSpec], dict[str, Any]]:
    """Manifest specs: the hub's names and dtypes, the TFLite file's stored names, shapes and integer I/O."""
    by_name = {d["name"]: d for d in described}
    specs, quant = [], {}
    for spec, name in zip(hub, stored, strict=True):
        d = by_name[name]
        specs.append(
            TensorSpec(
                name=spec.name,
                shape=[s if s > 0 else None for s in d["shape"]],
                dtype=spec.dtype,
                stored_name=name if name != spec.name else None,
            )
        )
        if d["dtype"] != spec.dtype and d["quantization"] and np.dtype(spec.dtype).kind == "f":
            quant[spec.name] = {"dtype": d["dtype"], **d["quantization"]}
    return specs, quant


def build(hub: Path, precision: str, out_dir: Path, ctx: BuildContext) -> BuildResult:
    """Convert the Keras source of ``ctx`` to ``out_dir/model.tflite`` at ``precision`` and describe it."""
    import onnx
    import tensorflow as tf

    from edge_sdk.converters.graph.onnx_model import tensor_specs
    from edge_sdk.converters.sources.keras_model import quiet
    from edge_sdk.converters.targets.tflite.onnx2tflite import StepError, describe, interpreter
    from edge_sdk.converters.targets.tflite.target import tflite_result

    label = f"tflite:{precision}"
    if not is_keras_source(ctx):
        raise BadInputError(f"{label}: converter=keras needs a Keras or SavedModel source")
    assert ctx.source is not None
    native = ctx.source.native
    io_type = str(ctx.options["io"]) if precision == "int8" else "float"
    in_specs, out_specs = tensor_specs(onnx.load(str(hub), load_external_data=False))
    in_names = [s.name for s in in_specs]
    ctx.report("convert", 0, 1)
    try:
        with quiet():
            conv, how = _converter(native)
            used = _settings(conv, precision, io_type, ctx, in_names)
            content = conv.convert()
    except Exception as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        first = next((ln for ln in lines if "error:" in ln), lines[0] if lines else type(e).__name__)
        raise ConversionError(
            f"{label}: TensorFlow's TFLite converter failed on the Keras model: {first[:300]}; try "
            f"converter=onnx2tf, or the onnx or openvino target"
        ) from None
    (out_dir / MODEL_FILE).write_bytes(content)
    sig = interpreter(content).get_signature_list()
    (only,) = sig.values()
    stored_in = in_names if sorted(only["inputs"]) == sorted(in_names) else list(only["inputs"])
    if native["kind"] == "saved_model":
        stored_out = [s.name for s in out_specs]
    else:
        stored_out = _out_order(list(only["outputs"]))
    try:
        described = describe(content, stored_in, stored_out)
    except StepError as e:
        raise ConversionError(f"{label}: {e.info.get('message', e)}") from None
    ctx.report("convert", 1, 1)
    inputs, q_in = _specs(in_specs, stored_in, described["inputs"])
    outputs, q_out = _specs(out_specs, stored_out, described["outputs"])
    recipe: dict[str, Any] = {
        "converter": f"{how} (direct from the {native['kind']} source; no ONNX in between)",
        "tflite_converter": used,
        "renamed": {s.name: s.stored_name for s in inputs + outputs if s.stored_name},
        "int8_tensors": described["int8_tensors"],
    }
    return tflite_result(
        recipe, precision, io_type, {**q_in, **q_out}, {"tensorflow": tf.__version__}, inputs, outputs
    )
