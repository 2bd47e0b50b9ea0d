"""The ``onnx`` target: fp32, fp16 (float I/O kept), static int8 (QDQ, per-channel) and dynamic int8,
made with onnxruntime's own quantisation tools so the result runs well on onnxruntime."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk import integrity
from edge_sdk.converters.options import Conflict, Option, declare
from edge_sdk.converters.quantize.accuracy_aware import wanted
from edge_sdk.converters.quantize.int4 import GROUP_SIZE, INT4_MODE, onnx_int4, size_ratio
from edge_sdk.converters.quantize.int8_weights import INT8_WEIGHTS
from edge_sdk.converters.targets import TARGETS, BuildContext, BuildResult
from edge_sdk.errors import BadInputError, ConversionError
from edge_sdk.manifest import owned_tempdir

log = logging.getLogger("edge_sdk.converters.onnx")

MODEL_FILE = "model.onnx"

_QTYPES = {"uint8": "QUInt8", "int8": "QInt8"}
_METHODS = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}
# onnxruntime's static int8 quantiser's options. openvino:int8 imports this quantiser's QDQ model, so it
# reads them too, and tflite:int8 with calibrator=onnxruntime reads the calibration method.
# Unsigned activations with signed weights (U8S8) is what onnxruntime's x86 and Arm int8 kernels are
# fastest at.
PER_CHANNEL = Option("per_channel", bool, True, "int8: one scale per output channel (default true)")
ACTIVATION_TYPE = Option(
    "activation_type", str, "uint8", "int8: uint8 (default) or int8 activations", choices=tuple(_QTYPES)
)
WEIGHT_TYPE = Option(
    "weight_type", str, "int8", "int8: int8 (default) or uint8 weights", choices=tuple(_QTYPES)
)
CALIBRATE_METHOD = Option(
    "calibrate_method",
    str,
    "minmax",
    "int8: minmax (default), entropy or percentile",
    choices=tuple(_METHODS),
)
EXCLUDE_NODES = Option(
    "exclude_nodes", list, (), "int8: node names kept in float (';'-separated on the command line)"
)
QUANTISER_OPTIONS = (PER_CHANNEL, ACTIVATION_TYPE, WEIGHT_TYPE, CALIBRATE_METHOD, EXCLUDE_NODES)
# Nodes the accuracy-aware search may keep in float, and how many calibration samples rank them.
_WEIGHTED = ("Conv", "ConvTranspose", "MatMul", "Gemm")
SENSITIVITY_SAMPLES = 16


def _quantiser_options(opts: dict[str, Any]) -> dict[str, Any]:
    """The static quantiser's options out of a target's (the int8 recipe records exactly these)."""
    return {o.name: opts[o.name] for o in QUANTISER_OPTIONS}


class _Reader:
    """Feeds calibration samples to onnxruntime's calibrator and reports progress as it goes (unless
    ``quiet``: the accuracy-aware search calibrates once per candidate and reports its own progress)."""

    def __init__(self, ctx: BuildContext, quiet: bool = False) -> None:
        self._samples = ctx.calibration_samples or []
        self._ctx = ctx
        self._quiet = quiet
        self._i = 0

    def get_next(self) -> dict | None:
        if self._i >= len(self._samples):
            return None
        sample = self._samples[self._i]
        self._i += 1
        if not self._quiet:
            self._ctx.report("calibrate", self._i, len(self._samples))
        return sample

    def rewind(self) -> None:
        self._i = 0


def _fp16(hub: Path, out: Path) -> dict[str, Any]:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(hub)), keep_io_types=True)
    onnx.save(model, str(out))
    return {"keep_io_types": True, "converter": "onnxruntime.transformers.float16"}


def _at_least_opset_13(hub: Path, tmp: Path, recipe: dict[str, Any]) -> Path:
    """Per-channel QuantizeLinear/DequantizeLinear (their ``axis``) exist from opset 13 on; onnxruntime's
    quantiser writes them into older models anyway (NSNet2 is opset 11), which then do not load."""
    import onnx
    from onnx import version_converter

    from edge_sdk.converters.graph.onnx_model import onnx_opset

    model = onnx.load(str(hub))
    opset = onnx_opset(model)
    if opset >= 13:
        return hub
    try:
        upgraded = version_converter.convert_version(model, 13)
    except Exception as e:
        raise ConversionError(
            f"int8 needs opset 13 or later for per-channel quantisation and converting this opset-{opset} "
            f"model failed ({e}); re-export it at opset 13+, or use --option per_channel=false"
        ) from None
    path = tmp / "opset13.onnx"
    onnx.save(upgraded, str(path))
    recipe["opset_upgraded"] = f"{opset} → 13"
    return path


def _preprocess(hub: Path, tmp: Path, recipe: dict[str, Any]) -> Path:
    """onnxruntime's recommended pre-quantisation pass: ONNX shape inference and graph optimisation.

    Its symbolic shape inference is skipped on purpose: when it gives up (it does on Silero VAD) it
    dumps ``sym_shape_infer_temp.onnx`` and a ``*.data`` file into the current directory, the user's.
    """
    from onnxruntime.quantization.shape_inference import quant_pre_process

    hub = _at_least_opset_13(hub, tmp, recipe)
    pre = tmp / "pre.onnx"
    try:
        quant_pre_process(str(hub), str(pre), skip_symbolic_shape=True)
        recipe["preprocess"] = "quant_pre_process (onnx shape inference, graph optimisation)"
    except Exception as e:
        log.warning("int8: onnxruntime pre-processing failed (%r); quantising the model as it is", e)
        recipe["preprocess"] = f"skipped: {e!r:.200}"
        shutil.copyfile(hub, pre)
    return pre


def _quantize_static(
    pre: Path, out: Path, ctx: BuildContext, opts: dict[str, Any], quiet: bool, ranges: Path | None = None
) -> None:
    """Static QDQ int8 of ``pre``. The activation ranges depend on the model, the samples and the method
    only, so they are calibrated once and kept in the conversion cache (``cache.calibration_ranges_file``):
    another int8 variant, a candidate of the accuracy-aware search, or another format, reads them.
    ``ranges`` names the file to use instead (with the cache off, none is kept)."""
    from onnxruntime import quantization as q

    from edge_sdk.converters.cache import calibration_ranges_file

    def run(cache_path: Path | None) -> None:
        q.quantize_static(
            str(pre),
            str(out),
            _Reader(ctx, quiet),  # type: ignore[arg-type]
            quant_format=q.QuantFormat.QDQ,
            per_channel=opts["per_channel"],
            activation_type=getattr(q.QuantType, _QTYPES[opts["activation_type"]]),
            weight_type=getattr(q.QuantType, _QTYPES[opts["weight_type"]]),
            calibrate_method=getattr(q.CalibrationMethod, _METHODS[opts["calibrate_method"]]),
            nodes_to_exclude=opts["exclude_nodes"],
            calibration_cache_path=None if cache_path is None else str(cache_path),
            # 7-bit weights (int8_weights=7bit) never saturate the 16-bit sums of x86 without VNNI;
            # activation ranges do not depend on it, so the cached ranges serve both widths.
            reduce_range=ctx.int8_weights.reduce_range,
        )

    if ranges is None and ctx.cache:
        ranges = calibration_ranges_file(pre, ctx.calibration_samples or [], opts["calibrate_method"])
    if ranges is None:
        run(None)
        return
    if integrity.reusable(ranges, "int8: calibration cache"):
        try:
            run(ranges)
            log.info("int8: activation ranges read from the calibration cache %s", ranges)
            return
        except (ValueError, KeyError, OSError) as e:  # a foreign file: calibrate again
            log.warning("int8: calibration cache %s unusable (%s); calibrating again", ranges, e)
            ranges.unlink(missing_ok=True)
    # onnxruntime writes the ranges in place: calibrate into a temporary name and move it over when whole,
    # so a crash never leaves a half file that a later run would load.
    integrity.write_checked(ranges, run)


def activation_ranges(hub: Path, ctx: BuildContext, tmp: Path) -> tuple[Path, dict[str, tuple[float, float]]]:
    """The pre-processed model that onnx:int8 quantises and its activation ranges (tensor name → (low,
    high)) from ``ctx.calibration_samples``: read from the calibration cache, or calibrated by onnxruntime
    once and cached, so the int8 of another format can reuse what onnx:int8 measured."""
    from onnxruntime.quantization.calibrate import load_tensors_data

    from edge_sdk.converters.cache import calibration_ranges_file

    # The ranges depend on the calibration method alone; the quantiser's other options shape only the
    # calibrated model this pass throws away, so they stay at their defaults.
    method = ctx.options["calibrate_method"]
    opts = {**{o.name: o.default_value() for o in QUANTISER_OPTIONS}, "calibrate_method": method}
    pre = _preprocess(hub, tmp, {})
    # with the cache off the ranges still go through a file: it is how onnxruntime hands them out
    samples = ctx.calibration_samples or []
    ranges = calibration_ranges_file(pre, samples, method) if ctx.cache else tmp / "ranges.json"
    if not integrity.reusable(ranges, "int8: calibration cache"):
        _quantize_static(pre, tmp / "calibrated.onnx", ctx, opts, quiet=False, ranges=ranges)
    data = load_tensors_data(ranges).data
    return pre, {k: (float(np.min(v.lowest)), float(np.max(v.highest))) for k, v in data.items()}


def static_int8(hub: Path, out: Path, ctx: BuildContext) -> dict[str, Any]:
    """Static QDQ int8 of ``hub`` written to ``out``; returns the recipe. The activation ranges go to (or
    come from) the calibration cache, and the openvino target imports this same QDQ model, so asking for
    the other format after one of them does not calibrate again."""
    opts = _quantiser_options(ctx.options)
    recipe: dict[str, Any] = {
        **opts,
        "quant_format": "QDQ",
        "calibration_samples": len(ctx.calibration_samples or []),
        "int8_weights": ctx.int8_weights.record(),
    }
    with owned_tempdir("onnx") as tmp:
        if wanted(ctx, "int8"):
            pre = _preprocess(hub, tmp, recipe)
            recipe["accuracy_aware"] = _accuracy_aware(hub, pre, out, ctx, opts, tmp)
            recipe["exclude_nodes"] = opts["exclude_nodes"] + recipe["accuracy_aware"]["kept_float"]
        else:
            _quantize_static(_preprocess(hub, tmp, recipe), out, ctx, opts, quiet=False)
    return recipe


def _accuracy_aware(
    hub: Path, pre: Path, out: Path, ctx: BuildContext, opts: dict[str, Any], tmp: Path
) -> dict[str, Any]:
    """Quantise, evaluate, and keep the most sensitive weighted nodes float until ``ctx.accuracy_goal``
    holds (the shared greedy search); the chosen candidate becomes ``out``."""
    import onnx

    from edge_sdk.converters.graph.onnx_model import tensor_specs
    from edge_sdk.converters.quantize.accuracy_aware import Candidate, evaluate_session, open_candidate
    from edge_sdk.converters.quantize.accuracy_aware import search as aa_search
    from edge_sdk.converters.quantize.sensitivity import one_at_a_time

    label = "onnx:int8"
    goal = ctx.accuracy_goal
    assert ctx.evaluate is not None and goal is not None
    ins, outs = tensor_specs(onnx.load(str(hub), load_external_data=False))
    base_dir = tmp / "fp32"
    base_dir.mkdir()
    shutil.copyfile(hub, base_dir / MODEL_FILE)
    fp32 = open_candidate(base_dir, "onnx", "fp32", [MODEL_FILE], ins, outs)
    baseline = evaluate_session(ctx.evaluate, fp32, label)
    made = iter(range(1 << 30))

    def quantise(kept: frozenset[str]) -> Candidate:
        d = tmp / f"candidate{next(made)}"
        d.mkdir()
        _quantize_static(
            pre, d / MODEL_FILE, ctx, {**opts, "exclude_nodes": [*opts["exclude_nodes"], *kept]}, True
        )
        return Candidate(d, open_candidate(d, "onnx", "int8", [MODEL_FILE], ins, outs))

    plain = quantise(frozenset())
    plain_metric = evaluate_session(ctx.evaluate, plain.session, label)
    ranking: list[tuple[str, float]] = []
    if not goal.met(baseline, plain_metric):
        # Only weighted nodes are candidates: the others follow them (a Relu after a float Gemm is float).
        skip = set(opts["exclude_nodes"])
        layers = [
            n.name for n in onnx.load(str(pre)).graph.node if n.op_type in _WEIGHTED and n.name not in skip
        ]
        samples = (ctx.calibration_samples or [])[:SENSITIVITY_SAMPLES]
        reference = [fp32.run(s) for s in samples]
        ranking = one_at_a_time(layers, quantise, samples, reference, ctx.report)
    best, outcome = aa_search(
        quantise, ctx.evaluate, baseline, goal, ranking, ctx.report, plain=(plain, plain_metric), label=label
    )
    outcome.evaluations += 2  # fp32 and plain int8
    if not outcome.met:
        raise outcome.failure(label)
    shutil.copyfile(best.directory / MODEL_FILE, out)
    return outcome.record()


def _int8_dynamic(hub: Path, out: Path, ctx: BuildContext) -> dict[str, Any]:
    from onnxruntime import quantization as q

    opts = ctx.options
    recipe: dict[str, Any] = {
        "per_channel": opts["per_channel"],
        "weight_type": opts["weight_type"],
        "exclude_nodes": opts["exclude_nodes"],
        "activations": "dynamic",
        "int8_weights": ctx.int8_weights.record(),
    }
    with owned_tempdir("onnx") as tmp:
        q.quantize_dynamic(
            str(_preprocess(hub, tmp, recipe)),
            str(out),
            per_channel=opts["per_channel"],
            weight_type=getattr(q.QuantType, _QTYPES[opts["weight_type"]]),
            nodes_to_exclude=opts["exclude_nodes"],
            reduce_range=ctx.int8_weights.reduce_range,
        )
    return recipe


def _tidy(model_path: Path) -> str:
    """Sort the nodes the converters left out of order, then run the ONNX checker; other tools (OpenVINO,
    onnx2tf) load only checker-valid models. A failure is recorded and logged, not hidden."""
    import onnx

    from edge_sdk.converters.graph.onnx_model import toposort

    model = onnx.load(str(model_path))
    if toposort(model):
        onnx.save(model, str(model_path))
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as e:
        first = str(e).strip().splitlines()[0][:300]
        log.warning("%s: the ONNX checker rejects the converted model: %s", model_path.parent.name, first)
        return f"failed: {first}"
    return "passed"


def _check_quantized(model_path: Path, precision: str) -> int:
    """Count int8 weight tensors; none means the quantiser found nothing it could reach."""
    import onnx

    model = onnx.load(str(model_path))
    count = sum(
        1 for t in model.graph.initializer if t.data_type in (onnx.TensorProto.INT8, onnx.TensorProto.UINT8)
    )
    if count == 0:
        subgraphs = sorted({n.op_type for n in model.graph.node if n.op_type in ("If", "Loop", "Scan")})
        where = (
            f"the model's compute sits inside {'/'.join(subgraphs)} subgraphs, which the quantiser does not "
            f"enter: fix the inputs that choose the branch (fixed_inputs= / --fix NAME=VALUE)"
            if subgraphs
            else "it has no Conv, MatMul, Gemm or recurrent weights to quantise"
        )
        raise ConversionError(
            f"onnx:{precision}: onnxruntime's quantiser changed nothing; {where}, or keep fp32"
        )
    return count


class OnnxTarget:
    name = "onnx"
    precisions = {
        "fp32": "float32, simplified",
        "fp16": "float16 weights and compute, float32 inputs and outputs",
        "int8": "static int8, QDQ, per-channel weights, calibrated",
        "int8-dynamic": "int8 weights, activations quantised at run time; no calibration",
        "int4-weights": "4-bit MatMul weights in groups (MatMulNBits), float activations; no calibration",
    }
    calibrated = frozenset({"int8"})
    options = declare(
        *QUANTISER_OPTIONS[:4],
        Option(
            "calibrator",
            str,
            "onnxruntime",
            "int8: onnxruntime, the only calibrator here (openvino:int8 and tflite:int8 given calibrator="
            "onnxruntime reuse the ranges it calibrates and caches)",
            choices=("onnxruntime",),
        ),
        EXCLUDE_NODES,
        INT8_WEIGHTS,
        INT4_MODE,
        GROUP_SIZE,
    )
    conflicts: tuple[Conflict, ...] = ()
    tools = ("onnx", "onnxruntime", "onnxslim")

    def available(self) -> tuple[bool, str]:
        return True, "onnxruntime is a core dependency"

    def build(self, hub: Path, precision: str, out_dir: Path, ctx: BuildContext) -> BuildResult:
        import onnxruntime

        out = out_dir / MODEL_FILE
        try:
            if precision == "fp32":
                shutil.copyfile(hub, out)
                recipe: dict[str, Any] = {}
            elif precision == "fp16":
                recipe = _fp16(hub, out)
            elif precision == "int8":
                recipe = static_int8(hub, out, ctx)
            elif precision == "int4-weights":
                recipe = onnx_int4(hub, out, ctx.options)
                recipe["size_ratio_vs_fp32"] = size_ratio([out], hub)
            else:
                recipe = _int8_dynamic(hub, out, ctx)
        except BadInputError:
            raise
        except ConversionError as e:
            if str(e).startswith(f"onnx:{precision}:"):
                raise
            raise ConversionError(f"onnx:{precision}: {e}") from None
        except Exception as e:
            raise ConversionError(
                f"onnx:{precision}: onnxruntime's converter failed: {type(e).__name__}: {e}; "
                f"try another precision for this model"
            ) from None
        recipe["onnx_checker"] = _tidy(out)
        if precision.startswith("int8"):
            recipe["quantized_weights"] = _check_quantized(out, precision)
        return BuildResult(
            files=[MODEL_FILE], recipe=recipe, versions={"onnxruntime": onnxruntime.__version__}
        )


TARGETS.register("onnx")(OnnxTarget())
