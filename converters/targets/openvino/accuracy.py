"""Accuracy-aware int8 for the ``openvino`` target: NNCF's own accuracy control
(``nncf.quantize_with_accuracy_control``) driven by the user's ``evaluate(session)``.

NNCF ranks the quantised layers by how much reverting each one to float recovers the metric (it calls
the metric once per group: sensitivity measured, not guessed) and reverts them greedily until the drop
holds. Its ``validation_fn`` gets a compiled model; here it is wrapped in an ``OpenVinoSession`` so the
user's function sees the same Session it would on the finished artifact. NNCF does not return the
layers it reverted, so they are read off the result: weighted layers whose input no FakeQuantize feeds.
"""

from __future__ import annotations

from typing import Any

from edge_sdk.converters.quantize.accuracy_aware import Outcome, evaluate_session
from edge_sdk.converters.targets import BuildContext
from edge_sdk.manifest import TensorSpec

_WEIGHTED = ("Convolution", "GroupConvolution", "MatMul", "ConvolutionBackpropData")


def _session(compiled: Any, inputs: list[TensorSpec], outputs: list[TensorSpec]) -> Any:
    from edge_sdk.runtimes.openvino import Compiled, OpenVinoSession
    from edge_sdk.runtimes.session import Selection

    wrapped = Compiled(compiled, "CPU", "f32", "LATENCY", 0)
    selection = Selection("openvino", "CPU")
    selection.add("openvino", "CPU", "taken", "NNCF accuracy-control candidate")
    return OpenVinoSession(wrapped, inputs, outputs, selection, None)


def float_layers(model: Any) -> list[str]:
    """Friendly names of the weighted layers whose data input is not quantised (no FakeQuantize)."""
    kept = []
    for op in model.get_ordered_ops():
        if op.get_type_name() in _WEIGHTED:
            src = op.input_value(0).get_node()
            if src.get_type_name() != "FakeQuantize":
                kept.append(op.get_friendly_name())
    return kept


def quantize_with_accuracy_control(
    nncf: Any,
    model: Any,
    ctx: BuildContext,
    dataset: Any,
    io: tuple[list[TensorSpec], list[TensorSpec]],
    label: str,
    **quantize_args: Any,
) -> tuple[Any, dict[str, Any]]:
    """Run NNCF's accuracy control with the user's metric; returns the model and the manifest record
    (the same shape as the onnx/tflite search's). A goal it cannot reach is a ConversionError."""
    goal = ctx.accuracy_goal
    assert ctx.evaluate is not None and goal is not None
    inputs, outputs = io
    metrics: list[float] = []
    first: list[Any] = []  # the first model NNCF validates: the fp32 one
    plain: list[float] = []  # the metric of the first other model: fully quantised
    weighted = sum(1 for op in model.get_ops() if op.get_type_name() in _WEIGHTED)

    def validation_fn(compiled: Any, _items: Any) -> tuple[float, None]:
        value = evaluate_session(ctx.evaluate, _session(compiled, inputs, outputs), label)  # type: ignore[arg-type]
        metrics.append(value)
        if not first:
            first.append(compiled)
        elif compiled is not first[0] and not plain:
            plain.append(value)
        ctx.report("accuracy search", len(metrics), None)
        return value, None

    # The user's evaluate holds its own data; NNCF gets one placeholder item, so each of its validations
    # (and each ranking of a layer group) is one call of evaluate on the whole evaluation set.
    quantized = nncf.quantize_with_accuracy_control(
        model,
        dataset,
        nncf.Dataset([0]),
        validation_fn,
        max_drop=goal.max_drop,
        drop_type=nncf.DropType.RELATIVE if goal.relative else nncf.DropType.ABSOLUTE,
        advanced_accuracy_restorer_parameters=nncf.AdvancedAccuracyRestorerParameters(ranking_subset_size=1),
        **quantize_args,
    )
    import openvino as ov

    final = evaluate_session(
        ctx.evaluate, _session(ov.Core().compile_model(quantized, "CPU"), inputs, outputs), label
    )
    kept = float_layers(quantized)
    # NNCF validates fp32 first, then the fully quantised model, then each step of its search.
    outcome = Outcome(
        goal=goal,
        metric_fp32=metrics[0],
        metric_int8_plain=plain[0] if plain else final,
        metric=final,
        kept_float=kept,
        evaluations=len(metrics) + 1,
        met=goal.met(metrics[0], final),
        method="nncf.quantize_with_accuracy_control (NNCF ranks layer groups by metric recovery)",
        history=[{"metric": m, "drop": goal.drop(metrics[0], m)} for m in metrics],
    )
    if not outcome.met or len(kept) >= weighted:
        # Every layer reverted is fp32 in all but name: as much a failure as a missed goal.
        outcome.met = False
        raise outcome.failure(label)
    return quantized, outcome.record()
