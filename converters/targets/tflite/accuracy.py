"""Accuracy-aware int8 for the ``tflite`` target: ai-edge-quantizer on the fp32 ``.tflite`` with per-op
recipes (an op kept float gets a ``no_quantize`` entry matching its scope), ranked by measured
sensitivity and searched with the shared greedy search (``converters/quantize/accuracy_aware.py``).

ai-edge-quantizer needs no TensorFlow, so it runs in this process; calibration runs once (the ranges
of every tensor), and each candidate only re-applies a recipe. Inputs and outputs stay float (the
recipe says so); should an integer one appear, its scale and zero point go into the manifest.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.converters.quantize.accuracy_aware import (
    Candidate,
    evaluate_session,
    open_candidate,
    search,
)
from edge_sdk.converters.quantize.sensitivity import one_at_a_time
from edge_sdk.converters.targets import BuildContext, BuildResult
from edge_sdk.errors import ConversionError
from edge_sdk.manifest import TensorSpec
from edge_sdk.runtimes.layout import to_stored

MODEL_FILE = "model.tflite"
# TFLite ops with weights: the layers the search may keep float (the others follow their inputs).
_WEIGHTED = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "BATCH_MATMUL", "CONV_3D")
SENSITIVITY_SAMPLES = 16


def weighted_ops(content: bytes) -> list[str]:
    """The first output tensor name (ai-edge-quantizer's scope) of every weighted op, in graph order."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=content)
    names = {t["index"]: t["name"] for t in interp.get_tensor_details()}
    return [names[op["outputs"][0]] for op in interp._get_ops_details() if op["op_name"] in _WEIGHTED]


def front_end_ops(content: bytes) -> list[str]:
    """Output tensor names (scopes) of the ops computed from the model's inputs (and constants) alone,
    before any weighted op: in-graph preprocessing such as a mean normalisation. They stay float, as in
    the OpenVINO target's rule (``targets/openvino._front_end``): quantising them quantises the raw input
    per tensor, and no choice of weighted layers to keep float can undo that."""
    from ai_edge_litert.interpreter import Interpreter

    from edge_sdk.converters.quantize.front_end import front_end

    interp = Interpreter(model_content=content)
    names = {t["index"]: t["name"] for t in interp.get_tensor_details()}
    ops = interp._get_ops_details()
    produced = {t for op in ops for t in op["outputs"]}
    return front_end(
        [
            (names[op["outputs"][0]], op["op_name"], [t for t in op["inputs"] if t >= 0], op["outputs"])
            for op in ops
        ],
        inputs=[d["index"] for d in interp.get_input_details()],
        constants=[t for t in names if t not in produced],
        weighted=_WEIGHTED,
    )


def _signature_samples(content: bytes, fp32: BuildResult, samples: list[dict]) -> dict[str, list[dict]]:
    """Calibration samples as the file's signature takes them (stored layout, signature input names)."""
    from ai_edge_litert.interpreter import Interpreter

    sigs = Interpreter(model_content=content).get_signature_list()
    key = next(iter(sigs))
    sig_inputs = sigs[key]["inputs"]
    specs = fp32.inputs or []
    feeds = []
    for sample in samples:
        stored = {s.stored_name or s.name: to_stored(s, np.asarray(sample[s.name]), None) for s in specs}
        # the signature names the inputs as the Keras model did; match by name, else by order
        if set(stored) == set(sig_inputs):
            feeds.append(stored)
        else:
            feeds.append(dict(zip(sig_inputs, stored.values(), strict=True)))
    return {key: feeds}


def _rows(samples: list[dict[str, np.ndarray]], specs: list[TensorSpec]) -> list[dict[str, np.ndarray]]:
    """Samples with several rows on a batch axis the file fixed to 1 become one sample per row."""
    fixed = [s.name for s in specs if s.shape and s.shape[0] == 1]
    out = []
    for sample in samples:
        rows = next((len(sample[n]) for n in fixed if np.ndim(sample[n]) and len(sample[n]) > 1), 0)
        if not rows:
            out.append(sample)
            continue
        out.extend({k: (v[r : r + 1] if k in fixed else v) for k, v in sample.items()} for r in range(rows))
    return out


def io_quantization(content: bytes, specs: list[TensorSpec]) -> dict[str, Any]:
    """Scale and zero point of the inputs and outputs the quantiser made integer, keyed by user name
    (the runtime (de)quantises them, so ``evaluate`` and users pass floats)."""
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_content=content).get_signature_runner()
    details = {**runner.get_input_details(), **runner.get_output_details()}
    quant: dict[str, Any] = {}
    for spec in specs:
        d = details.get(spec.stored_name or spec.name)
        if d is None or np.dtype(d["dtype"]).kind not in "iu" or np.dtype(spec.dtype).kind != "f":
            continue
        q = d["quantization_parameters"]
        quant[spec.name] = {
            "dtype": np.dtype(d["dtype"]).name,
            "scale": float(q["scales"][0]),
            "zero_point": int(q["zero_points"][0]),
        }
    return quant


def quantize_static(
    content: bytes, calibration: dict, keep_float: set[str] | frozenset[str], label: str
) -> bytes:
    """``content`` (an fp32 .tflite) as static int8 by ai-edge-quantizer with ``calibration`` (its
    calibration-result form: tensor name → min/max), every op whose first output is in ``keep_float`` left
    float, and float inputs and outputs."""
    from ai_edge_quantizer import quantizer, recipe_manager
    from ai_edge_quantizer.algorithm_manager import AlgorithmName
    from ai_edge_quantizer.qtyping import TFLOperationName

    manager = recipe_manager.RecipeManager()
    manager.add_static_config(".*", TFLOperationName.ALL_SUPPORTED, activation_num_bits=8, weight_num_bits=8)
    # Float inputs and outputs: an int8 model input would quantise the input per tensor whatever the
    # first layer does, and keeping that layer float could not help.
    for io_op in (TFLOperationName.INPUT, TFLOperationName.OUTPUT):
        manager.add_quantization_config(".*", io_op, algorithm_key=AlgorithmName.NO_QUANTIZE)
    for name in sorted(keep_float):  # later scopes win over '.*'
        manager.add_quantization_config(
            f"^{re.escape(name)};", TFLOperationName.ALL_SUPPORTED, algorithm_key=AlgorithmName.NO_QUANTIZE
        )
    try:
        # it prints a size summary on stdout, which is the CLI's (--json)
        with contextlib.redirect_stdout(io.StringIO()):
            result = quantizer.Quantizer(bytearray(content), manager.get_quantization_recipe()).quantize(
                calibration
            )
    except Exception as e:
        raise ConversionError(f"{label}: ai-edge-quantizer failed: {type(e).__name__}: {e}") from None
    return bytes(result.quantized_model)


def quantize_with_onnx_ranges(
    hub: Path, fp32_dir: Path, fp32: BuildResult, out_dir: Path, ctx: BuildContext, tmp: Path
) -> tuple[dict, dict]:
    """Static int8 of the fp32 .tflite in ``fp32_dir`` with the activation ranges onnxruntime calibrated
    on ``hub`` (the ones ``onnx:int8`` uses, read from the calibration cache when there), carried over by
    ``range_transfer``; writes ``out_dir/model.tflite`` and returns (manifest record, I/O quantisation)."""
    from ai_edge_litert.interpreter import Interpreter

    from edge_sdk.converters.targets.onnx.target import activation_ranges
    from edge_sdk.converters.targets.tflite import range_transfer

    assert fp32.inputs is not None and fp32.outputs is not None
    label = "tflite:int8"
    samples = _rows(list(ctx.calibration_samples or []), fp32.inputs)  # convert() refused an empty set
    pre, ranges = activation_ranges(hub, ctx, tmp)
    content = (fp32_dir / MODEL_FILE).read_bytes()
    onnx_vals = range_transfer.onnx_values(pre, list(ranges), samples[0])
    (feeds,) = _signature_samples(content, fp32, samples[:1]).values()
    ops, tfl_vals = range_transfer.tflite_tensors(content, feeds[0])
    interp = Interpreter(model_content=content)
    details = interp.get_tensor_details()
    names = {t["index"]: t["name"] for t in details}
    inputs = [d["index"] for d in interp.get_input_details()]
    front = front_end_ops(content)
    # the inputs stay float, and so do the front-end ops: they need no range
    front_outputs = {names[t] for op in ops if names[op["outputs"][0]] in front for t in op["outputs"]}
    try:
        carried = range_transfer.transfer(
            ranges, onnx_vals, ops, tfl_vals, names, inputs, {names[t] for t in inputs} | front_outputs
        )
    except ConversionError as e:
        raise ConversionError(f"{label}: {e}") from None
    rank = {t["name"]: len(t["shape"]) for t in details}
    result = quantize_static(content, range_transfer.as_qsvs(carried, rank), set(front), label)
    (out_dir / MODEL_FILE).write_bytes(result)
    record = {"calibrator": "onnxruntime", "ranges_carried": len(carried), "front_end_float": front}
    return record, io_quantization(result, [*fp32.inputs, *fp32.outputs])


def quantize_with_search(
    fp32_dir: Path, fp32: BuildResult, out_dir: Path, ctx: BuildContext, tmp: Path
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Search for the int8 model that meets ``ctx.accuracy_goal``; write it to ``out_dir`` and return the
    manifest record and the chosen model's integer I/O quantisation. A goal that cannot be met is a
    ConversionError saying the best reached."""
    from ai_edge_quantizer import quantizer, recipe

    goal = ctx.accuracy_goal
    assert ctx.evaluate is not None and goal is not None
    assert fp32.inputs is not None and fp32.outputs is not None
    label = "tflite:int8"
    content = (fp32_dir / MODEL_FILE).read_bytes()
    base = open_candidate(fp32_dir, "tflite", "fp32", [MODEL_FILE], fp32.inputs, fp32.outputs)
    baseline = evaluate_session(ctx.evaluate, base, label)
    samples = _rows(list(ctx.calibration_samples or []), fp32.inputs)
    ctx.report("calibrate", 0, 1)
    with (
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()),
    ):  # its progress bar
        calibration = quantizer.Quantizer(bytearray(content), recipe.static_wi8_ai8()).calibrate(
            _signature_samples(content, fp32, samples)
        )
    ctx.report("calibrate", 1, 1)
    made = iter(range(1 << 30))
    front = front_end_ops(content)

    def quantise(kept: frozenset[str]) -> Candidate:
        result = quantize_static(content, calibration, kept | set(front), label)
        d = tmp / f"candidate{next(made)}"
        d.mkdir()
        (d / MODEL_FILE).write_bytes(result)
        quant = io_quantization(result, [*fp32.inputs, *fp32.outputs])
        session = open_candidate(d, "tflite", "int8", [MODEL_FILE], fp32.inputs, fp32.outputs, quant)
        return Candidate(d, session, quant)

    plain = quantise(frozenset())
    plain_metric = evaluate_session(ctx.evaluate, plain.session, label)
    ranking: list[tuple[str, float]] = []
    if not goal.met(baseline, plain_metric):
        few = samples[:SENSITIVITY_SAMPLES]
        reference = [base.run(s) for s in few]
        ranking = one_at_a_time(weighted_ops(content), quantise, few, reference, ctx.report)
    best, outcome = search(
        quantise, ctx.evaluate, baseline, goal, ranking, ctx.report, plain=(plain, plain_metric), label=label
    )
    outcome.evaluations += 2  # fp32 and plain int8
    if not outcome.met:
        raise outcome.failure(label)
    (out_dir / MODEL_FILE).write_bytes((best.directory / MODEL_FILE).read_bytes())
    return {**outcome.record(), "front_end_float": front}, best.result
