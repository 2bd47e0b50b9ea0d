"""The steps of an ONNX → TFLite conversion, as the ``tflite`` target's worker process runs them.

``to_keras`` runs onnx2tf; ``find_layouts`` runs the Keras model and onnxruntime on the same input to find
which inputs and outputs onnx2tf stored channels-last; ``to_tflite`` converts the Keras model with
TensorFlow's TFLite converter at a precision; ``describe`` reads back the I/O of the file it made.
TensorFlow is imported inside the functions: only the worker process (``worker.py``) calls them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import itertools
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

# onnx2tf validates its conversion on sample images that it downloads from GitHub unless a file of this
# name is in the working directory. Nothing is downloaded at conversion time, so the worker writes it.
_ONNX2TF_SAMPLE_FILE = "calibration_image_sample_data_20x128x128x3_float32.npy"

# How far the Keras model may differ from onnxruntime on the probe input and still count as the same
# model, relative to the output's scale. Both run float32; the slack covers a different summation order.
_SAME_MODEL_RTOL = 1e-3
_WRONG_MODEL_RTOL = 5e-2


class StepError(Exception):
    """A failure with the stage it happened in and, when known, the ONNX op and node."""

    def __init__(self, stage: str, message: str, op: str | None = None, node: str | None = None) -> None:
        super().__init__(message)
        self.info: dict[str, str | None] = {"stage": stage, "message": message, "op": op, "node": node}


def channels_last(rank: int) -> list[int]:
    """The axes order onnx2tf gives a rank-3..5 tensor: channels (axis 1) moved last (NCHW → NHWC)."""
    return [0, *range(2, rank), 1]


# -- onnx2tf --------------------------------------------------------------------------------------------


def _unsupported_ops(model: Any) -> list[tuple[str, str]]:
    """(op, node) for each node whose op onnx2tf has no converter module for; checked up front because
    onnx2tf itself stops at the first one with a bare ModuleNotFoundError."""
    missing = []
    for i, node in enumerate(model.graph.node):
        if importlib.util.find_spec(f"onnx2tf.ops.{node.op_type}") is None:
            missing.append((node.op_type, node.name or f"#{i}"))
    return missing


def to_keras(model_path: Path, workdir: Path, rnn_unroll: bool) -> tuple[Any, list[str]]:
    """Run onnx2tf on ``model_path``; returns its Keras model and the inputs whose shape it was told to
    keep. A failure names the op and node.

    onnx2tf moves the channels of every rank-3..5 input last, which is right for images and feature
    maps but breaks recurrent state inputs (Silero VAD's [2, 1, 128] LSTM state). When the default
    fails, it runs once more with those inputs kept as they are.
    """
    import onnx

    model = onnx.load(str(model_path))
    missing = _unsupported_ops(model)
    if missing:
        more = "".join(f", also op '{op}' (node '{node}')" for op, node in missing[1:5])
        raise StepError("onnx2tf", f"it has no converter for this op{more}", missing[0][0], missing[0][1])
    samples = np.random.default_rng(0).standard_normal((20, 32, 32, 3), np.float32)
    np.save(workdir / _ONNX2TF_SAMPLE_FILE, samples)
    try:
        return _onnx2tf_once(model, model_path, workdir, rnn_unroll, []), []
    except StepError as first:
        inits = {i.name for i in model.graph.initializer}
        keep = [
            v.name
            for v in model.graph.input
            if v.name not in inits and 3 <= len(v.type.tensor_type.shape.dim) <= 5
        ]
        if not keep:
            raise
        print(
            f"onnx2tf failed with channels-last inputs; trying again keeping the shape of {keep}", flush=True
        )
        try:
            return _onnx2tf_once(model, model_path, workdir, rnn_unroll, keep), keep
        except StepError as second:
            node, message = second.info["node"], str(second)
            again = f"at node '{node}'" if node else message[:200]
            first.info["message"] = f"{first} (and with the shape of {keep} kept, it fails {again})"
            raise first from None


def _onnx2tf_once(model: Any, model_path: Path, workdir: Path, rnn_unroll: bool, keep: list[str]) -> Any:
    import onnx2tf
    import tf_keras

    tf_keras.backend.clear_session()  # nothing left over from a failed first attempt
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            keras_model = onnx2tf.convert(
                input_onnx_file_path=str(model_path),
                output_folder_path=str(workdir / "onnx2tf"),
                # The hub model is already simplified (onnxslim); onnxsim would be a second, heavier pass.
                not_use_onnxsim=True,
                # We make the .tflite ourselves from the Keras model, with our calibration data and names.
                disable_model_save=True,
                keep_shape_absolutely_input_names=keep or None,
                # Unrolled GRU/LSTM steps are plain ops the int8 quantiser handles; TensorFlow 2.21's
                # quantiser crashes (SIGSEGV) on the While loop of a rolled one.
                enable_rnn_unroll=rnn_unroll,
                verbosity="error",
            )
    except BaseException as e:  # onnx2tf also calls sys.exit() on some errors
        text = printed.getvalue()
        node = _last(r"onnx_op_name: (\S+)", text)
        op = next((n.op_type for n in model.graph.node if n.name == node), None)
        message = _last(r"(\w+(?:Error|Exception): .+)", text) or f"{type(e).__name__}: {e}"
        raise StepError("onnx2tf", message, op, node) from None
    finally:
        sys.stdout.write(printed.getvalue())  # into the log the parent captures
    if keras_model is None:
        raise StepError("onnx2tf", "onnx2tf returned no model")
    return keras_model


def _last(pattern: str, text: str) -> str | None:
    found = re.findall(pattern, re.sub(r"\x1b\[[0-9;]*m", "", text))
    return found[-1].strip() if found else None


# -- which tensors onnx2tf transposed -------------------------------------------------------------------


def _input_perm(onnx_shape: tuple[int, ...], tf_shape: tuple[int, ...], kept: bool) -> list[int]:
    """The axes order of a Keras input relative to its ONNX input. onnx2tf moves the channels of every
    rank-3..5 input last unless told to keep its shape; anything else keeps its shape."""
    rank = len(onnx_shape)
    if 3 <= rank <= 5 and not kept:
        perm = channels_last(rank)
        if tuple(onnx_shape[p] for p in perm) == tf_shape:
            return perm
    if onnx_shape == tf_shape:
        return list(range(rank))
    raise StepError("layout", f"onnx2tf made an input of shape {list(tf_shape)} from {list(onnx_shape)}")


def output_perm(
    name: str,
    ref: np.ndarray,
    got: np.ndarray,
    *,
    made_by: str = "onnx2tf's TensorFlow model",
    source: str = "the ONNX model",
) -> tuple[list[int], float]:
    """The axes order ``p`` with ``got.transpose(p)`` closest to ``ref``, and its max abs error. Among
    equally good orders (size-1 or equal dims) the identity wins, then channels-last. Both TFLite
    converters (onnx2tf, litert-torch) find their outputs' stored layout with it."""
    rank = ref.ndim
    preferred = [list(range(rank))] + ([_inverse(channels_last(rank))] if 3 <= rank <= 5 else [])
    others = [list(p) for p in itertools.permutations(range(rank))] if rank <= 5 else []
    scale = max(float(np.abs(ref).max()), 1e-6) if ref.size else 1.0
    best: tuple[list[int], float] | None = None
    for perm in preferred + [p for p in others if p not in preferred]:
        moved = got.transpose(perm)
        if moved.shape != ref.shape:
            continue
        err = float(np.abs(moved.astype(np.float64) - ref).max()) if ref.size else 0.0
        if best is None or err < best[1]:
            best = (perm, err)
        if err <= _SAME_MODEL_RTOL * scale:
            return perm, err
    if best is None:
        raise StepError(
            "layout", f"{made_by} made output '{name}' of shape {list(got.shape)} from {list(ref.shape)}"
        )
    if best[1] > _WRONG_MODEL_RTOL * scale:
        raise StepError(
            "layout",
            f"{made_by} gives different results from {source} at output '{name}' "
            f"(max abs error {best[1]:.3g} where the output reaches {scale:.3g})",
        )
    return best


def _inverse(perm: list[int]) -> list[int]:
    return [perm.index(i) for i in range(len(perm))]


def find_layouts(
    keras_model: Any, model_path: Path, probe: dict[str, np.ndarray], kept: list[str]
) -> tuple[dict[str, list[int]], dict[str, list[int]], float]:
    """Run onnxruntime on ``probe`` and the Keras model on the same data transposed as onnx2tf laid out
    its inputs, then find each output's axes order. Returns input perms (user → stored), output perms
    (stored → user) and the largest difference seen."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    reference = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, probe), strict=True))
    in_perms = {}
    for t in keras_model.inputs:
        if t.name not in probe:
            raise StepError(
                "onnx2tf", f"onnx2tf's model has input '{t.name}', the ONNX model {sorted(probe)}"
            )
        in_perms[t.name] = _input_perm(probe[t.name].shape, tuple(t.shape), t.name in kept)
    feeds = [np.ascontiguousarray(probe[t.name].transpose(in_perms[t.name])) for t in keras_model.inputs]
    outs = keras_model(feeds if len(feeds) > 1 else feeds[0], training=False)
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    names = list(keras_model.output_names)
    if sorted(names) != sorted(reference):
        raise StepError("onnx2tf", f"onnx2tf's model has outputs {names}, the ONNX model {sorted(reference)}")
    out_perms: dict[str, list[int]] = {}
    worst = 0.0
    for name, tensor in zip(names, outs, strict=True):
        out_perms[name], err = output_perm(name, reference[name], np.asarray(tensor))
        worst = max(worst, err)
    return in_perms, out_perms, worst


# -- TFLite ---------------------------------------------------------------------------------------------


def to_tflite(
    keras_model: Any,
    precision: str,
    io_type: str,
    calibration: list[dict[str, np.ndarray]],
    in_perms: dict[str, list[int]],
    onnx_model: Any,
    workdir: Path,
) -> tuple[bytes, dict[str, Any]]:
    """Convert the Keras model to TFLite at ``precision``; returns the flatbuffer and the settings used."""
    names = [t.name for t in keras_model.inputs]
    conv, by_name = _tflite_converter(keras_model, workdir)

    def representative() -> Iterator[Any]:
        for sample in calibration:
            stored = {n: np.ascontiguousarray(sample[n].transpose(in_perms[n])) for n in names}
            yield stored if by_name else [stored[n] for n in names]

    used = converter_settings(conv, precision, io_type, representative, len(calibration))
    try:
        return conv.convert(), used
    except Exception as e:
        raise _converter_error(str(e), onnx_model) from None


def _tflite_converter(keras_model: Any, workdir: Path) -> tuple[Any, bool]:
    """TensorFlow's TFLite converter for onnx2tf's Keras model, and whether its representative dataset is
    keyed by input name.

    Usually that is ``from_keras_model``. But onnx2tf builds some layers (grouped or 1×k convolutions
    among them, e.g. DeepFilterNet3's) with ``tf.Variable``s that the Keras model does not track, named
    after their ONNX nodes ("/erb_conv1/0/Conv/kernel", and a leading "/" is no valid SavedModel name).
    The Keras model then cannot be saved, and TensorFlow's converter falls back, without a word, to a
    route that writes a model with no signature. For such a model the variables are frozen into
    constants and the model is saved here with one named signature, which is what the converter reads.
    """
    import tensorflow as tf

    outputs = list(keras_model.output_names)
    specs = [tf.TensorSpec(t.shape, t.dtype, name=t.name) for t in keras_model.inputs]

    @tf.function(input_signature=specs)
    def serve(*args: Any) -> tuple[Any, ...]:
        outs = keras_model(list(args) if len(args) > 1 else args[0], training=False)
        return tuple(outs) if isinstance(outs, (list, tuple)) else (outs,)

    traced = serve.get_concrete_function()
    tracked = {id(v) for v in keras_model.variables}
    untracked = [v.name for v in traced.graph.variables if id(v) not in tracked]
    if not untracked:
        return tf.lite.TFLiteConverter.from_keras_model(keras_model), False
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    print(
        f"onnx2tf's model holds {len(untracked)} variable(s) Keras does not track ({', '.join(untracked[:3])}"
        f"{', ...' if len(untracked) > 3 else ''}): converting from a frozen SavedModel instead",
        flush=True,
    )
    frozen = convert_variables_to_constants_v2(traced)

    @tf.function(input_signature=specs)
    def named(*args: Any) -> dict[str, Any]:
        return dict(zip(outputs, frozen(*args), strict=True))

    saved = workdir / "frozen_saved_model"
    signature = named.get_concrete_function()
    tf.saved_model.save(tf.Module(), str(saved), signatures={"serving_default": signature})
    return tf.lite.TFLiteConverter.from_saved_model(str(saved)), True


def converter_settings(
    conv: Any, precision: str, io_type: str, representative: Any, samples: int
) -> dict[str, Any]:
    """Set up TensorFlow's TFLite converter ``conv`` for ``precision`` (builtin ops only; fp16 weights;
    int8 from the ``representative`` dataset of ``samples`` samples, with ``io_type`` I/O unless
    "float"); returns the settings used, for the recipe. Both TFLite routes (onnx2tf and Keras) use it."""
    import tensorflow as tf

    # Builtin ops only: the LiteRT runtimes on devices have no TensorFlow (Flex) kernels.
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    used: dict[str, Any] = {"supported_ops": "TFLITE_BUILTINS"}
    if precision != "fp32":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        used["optimizations"] = ["DEFAULT"]
    if precision == "fp16":
        conv.target_spec.supported_types = [tf.float16]
        used["supported_types"] = ["float16"]
    elif precision == "int8":
        conv.representative_dataset = representative
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        used["supported_ops"] = "TFLITE_BUILTINS_INT8"
        used["representative_samples"] = samples
        if io_type != "float":
            conv.inference_input_type = getattr(tf, io_type)
            conv.inference_output_type = getattr(tf, io_type)
        used["inference_io_type"] = io_type
    return used


def _converter_error(message: str, onnx_model: Any) -> StepError:
    """The TFLite converter's failure in the user's terms: which TensorFlow ops lack a TFLite builtin
    kernel and, when an ONNX op of the same name exists, its nodes (the exception names no layer)."""
    select = re.search(r"TF Select ops: (.+)", message)
    ops = [o.strip() for o in select.group(1).split(",")] if select else []
    ops = ops or sorted(set(re.findall(r"'tf\.(\w+)' op", message)))
    if ops:
        text = f"TFLite has no builtin kernel for TensorFlow op(s) {', '.join(ops)}"
        wanted = {o.lower() for o in ops}
        nodes = [n for n in onnx_model.graph.node if n.op_type.lower() in wanted]
        if not nodes:
            return StepError("tflite", text)
        names = ", ".join(n.name or "?" for n in nodes[:3]) + (", ..." if len(nodes) > 3 else "")
        return StepError("tflite", text, nodes[0].op_type, names)
    lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
    first = next((ln for ln in lines if "error:" in ln), lines[0] if lines else "unknown error")
    return StepError("tflite", first[:500])


def interpreter(content: bytes) -> Any:
    """A TFLite interpreter on the flatbuffer ``content``: LiteRT's, else TensorFlow's."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # tf.lite.Interpreter still works, with a deprecation warning
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter  # noqa: N806
    return Interpreter(model_content=content)


def describe(content: bytes, inputs: list[str], outputs: list[str]) -> dict[str, Any]:
    """Stored name, shape, dtype and integer scale/zero point of each signature input and output, and
    how many tensors of rank > 1 it stores as 8-bit integers."""
    interp = interpreter(content)
    signatures = interp.get_signature_list()
    if len(signatures) != 1:
        raise StepError("tflite", f"the TFLite model has {len(signatures)} signatures, expected one")
    runner = interp.get_signature_runner()
    report: dict[str, Any] = {}
    for part, details, names in (
        ("inputs", runner.get_input_details(), inputs),
        ("outputs", runner.get_output_details(), outputs),
    ):
        if sorted(details) != sorted(names):
            raise StepError("tflite", f"the TFLite {part} are {sorted(details)}, expected {sorted(names)}")
        report[part] = []
        for name in names:
            d = details[name]
            scales, zeros = (
                d["quantization_parameters"]["scales"],
                d["quantization_parameters"]["zero_points"],
            )
            report[part].append(
                {
                    "name": name,
                    "shape": [int(x) for x in d.get("shape_signature", d["shape"])],
                    "dtype": np.dtype(d["dtype"]).name,
                    "quantization": (
                        {"scale": float(scales[0]), "zero_point": int(zeros[0])} if len(scales) == 1 else None
                    ),
                }
            )
    # For int8-dynamic these are the quantised weights; TFLite leaves tensors under 1024 elements in
    # float, so a small model may have none.
    report["int8_tensors"] = sum(
        1
        for t in interp.get_tensor_details()
        if np.dtype(t["dtype"]) in (np.int8, np.uint8) and t["shape"].size > 1
    )
    return report
