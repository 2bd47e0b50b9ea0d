"""Activation ranges calibrated once, on the ONNX model by onnxruntime, carried onto the TFLite graph that
onnx2tf made from it, so ``tflite:int8`` with ``calibrator=onnxruntime`` quantises with the very ranges
``onnx:int8`` and ``openvino:int8`` use and does not calibrate again.

onnx2tf names its tensors after TensorFlow ops, fuses (Conv + Add + Relu is one tensor) and lays
activations out NHWC, so names cannot pair the tensors. Values can: one calibration sample is run through
both float models, and a TFLite activation takes the range of the ONNX tensor that holds the same values
(compared sorted, which no layout change alters). Tensors onnx2tf adds of its own (a Clip split into
Minimum and Maximum, a Pad) get their range from their inputs' ranges through the op (interval
arithmetic). A tensor neither way reaches is a ConversionError naming it: a guessed range would be a
silent loss of accuracy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.errors import ConversionError

Range = tuple[float, float]
# ops whose output values are a subset or rearrangement of their first input's
_SAME_AS_INPUT = (
    "RESHAPE",
    "TRANSPOSE",
    "SQUEEZE",
    "EXPAND_DIMS",
    "STRIDED_SLICE",
    "SLICE",
    "GATHER",
    "SPLIT",
    "SPLIT_V",
    "MAX_POOL_2D",
    "AVERAGE_POOL_2D",
    "MEAN",
    "DEPTH_TO_SPACE",
    "SPACE_TO_DEPTH",
    "BROADCAST_TO",
    "TILE",
)


def onnx_values(model: Path, names: list[str], sample: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The values of the float tensors ``names`` of ``model`` (and its inputs) on ``sample``."""
    import onnx
    import onnxruntime as ort

    m = onnx.load(str(model))
    have = {o.name for o in m.graph.output}
    m.graph.output.extend(
        onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None) for n in names if n not in have
    )
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {i.name: np.asarray(sample[i.name]) for i in sess.get_inputs()}
    outs = [o.name for o in sess.get_outputs()]
    return {**feeds, **dict(zip(outs, sess.run(outs, feeds), strict=True))}


def tflite_tensors(content: bytes, feeds: dict[str, np.ndarray]) -> tuple[list[dict], dict[int, Any]]:
    """(ops, values): the ops of the first signature's graph in order (name, inputs, outputs) and every
    tensor's value after one run on ``feeds`` (signature input names, stored layout)."""
    import warnings

    from ai_edge_litert.interpreter import Interpreter

    with warnings.catch_warnings():  # keeping every tensor is for debugging, it says: one run is what we want
        warnings.simplefilter("ignore", UserWarning)
        interp = Interpreter(model_content=content, experimental_preserve_all_tensors=True)
    runner = interp.get_signature_runner()
    runner(**feeds)
    values: dict[int, Any] = {}
    for t in interp.get_tensor_details():
        try:
            values[t["index"]] = interp.get_tensor(t["index"])
        except ValueError:  # a tensor with no data (an optional input left empty)
            continue
    return list(interp._get_ops_details()), values


def _fingerprints(values: dict[str, np.ndarray]) -> dict[int, list[tuple[str, np.ndarray]]]:
    by_size: dict[int, list[tuple[str, np.ndarray]]] = {}
    for name, v in values.items():
        a = np.asarray(v)
        if a.dtype.kind == "f" and a.size:
            by_size.setdefault(a.size, []).append((name, np.sort(a, axis=None)))
    return by_size


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    scale = max(float(np.abs(a).max()), 1e-6)
    return bool(np.allclose(a, b, rtol=1e-3, atol=1e-4 * scale))


def _propagate(op: str, ins: list[Range | None], consts: list[np.ndarray | None]) -> Range | None:
    """The output range of ``op`` from its inputs' ranges (None: unknown); None if the op is not one of
    the few this knows."""
    spans = [
        r if r is not None or c is None or not c.size else (float(c.min()), float(c.max()))
        for r, c in zip(ins, consts, strict=True)
    ]
    if not spans or spans[0] is None:
        return None
    lo, hi = spans[0]
    if op in _SAME_AS_INPUT:
        return lo, hi
    if op == "RELU":
        return max(lo, 0.0), max(hi, 0.0)
    if op == "RELU6":
        return min(max(lo, 0.0), 6.0), min(max(hi, 0.0), 6.0)
    if len(spans) < 2 or spans[1] is None:
        return None
    lo2, hi2 = spans[1]
    if op == "MINIMUM":
        return min(lo, lo2), min(hi, hi2)
    if op == "MAXIMUM":
        return max(lo, lo2), max(hi, hi2)
    if op in ("PAD", "PADV2"):
        pad = 0.0 if op == "PAD" or len(spans) < 3 or spans[2] is None else spans[2][0]
        return min(lo, pad), max(hi, pad)
    if op == "CONCATENATION":
        known = [s for s in spans if s is not None]
        return (min(s[0] for s in known), max(s[1] for s in known)) if len(known) == len(spans) else None
    return None


def transfer(
    ranges: dict[str, Range], onnx_vals: dict[str, np.ndarray], ops: list[dict], tfl_vals: dict[int, Any],
    names: dict[int, str], inputs: list[int], stay_float: set[str],
) -> dict[str, Range]:  # fmt: skip
    """The range of every TFLite activation (tensor name → (low, high)): matched by value to a calibrated
    ONNX tensor, or propagated through its op. Raises ConversionError naming the tensors left over, save
    those in ``stay_float`` (the float inputs and the front-end's outputs), which need none."""
    index = _fingerprints({k: v for k, v in onnx_vals.items() if k in ranges})
    produced = [t for op in ops for t in op["outputs"]]
    activations = [t for t in [*inputs, *produced] if np.asarray(tfl_vals.get(t, ())).dtype.kind == "f"]
    constants = set(tfl_vals) - set(produced) - set(inputs)
    out: dict[int, Range] = {}
    for t in activations:
        key = np.sort(np.asarray(tfl_vals[t]), axis=None)
        match = next((n for n, fp in index.get(key.size, []) if _same(key, fp)), None)
        if match is not None:
            out[t] = ranges[match]
    todo = set(activations) - set(out)
    for op in ops:  # graph order: an op's inputs are settled before its outputs
        for t in op["outputs"]:
            if t not in todo:
                continue
            ins = [t_in for t_in in op["inputs"] if t_in >= 0]
            got = _propagate(
                op["op_name"],
                [out.get(i) for i in ins],
                [np.asarray(tfl_vals[i]) if i in constants and i in tfl_vals else None for i in ins],
            )
            if got is not None:
                out[t] = got
    missing = sorted({names[t] for t in activations if t not in out} - stay_float)
    if missing:
        raise ConversionError(
            f"no onnxruntime range reaches {len(missing)} TFLite tensor(s) ({', '.join(missing[:5])}"
            f"{', ...' if len(missing) > 5 else ''}): use calibrator=tensorflow (the default) for this model"
        )
    return {names[t]: r for t, r in out.items()}


def as_qsvs(ranges: dict[str, Range], rank: dict[str, int]) -> dict[str, dict[str, np.ndarray]]:
    """Ranges in ai-edge-quantizer's calibration-result form: per-tensor min/max kept at the tensor's rank."""
    return {
        n: {
            "min": np.full((1,) * rank[n], lo, np.float32),
            "max": np.full((1,) * rank[n], hi, np.float32),
        }
        for n, (lo, hi) in ranges.items()
    }
