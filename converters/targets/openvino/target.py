"""The ``openvino`` target: OpenVINO IR (``model.xml`` + ``model.bin``) made from the ONNX hub model with
``ov.convert_model``, in fp32, fp16 (compressed weights), static int8 and int8/int4 weight-only (NNCF
weight compression).
Static int8 is calibrated once for every format: by default it is the onnx target's QDQ model (activation
ranges from onnxruntime's calibrator, kept in the calibration cache), which OpenVINO imports as int8, so
asking for ``openvino:int8`` after ``onnx:int8`` (or the other way round) reads the ranges instead of
calibrating again. ``calibrator=nncf`` uses NNCF's post-training quantisation instead (its presets, bias
correction and front-end rule); the accuracy-aware build always does, through NNCF's accuracy control.

Each artifact is compiled once for this machine's CPU with the inference precision it is meant to run
at (``f32`` unless the ``inference_precision`` option says otherwise), and the precision the device
reports back is recorded in the recipe; the OpenVINO backend runs the artifact at that precision, so
the parity check and later runs compute alike. OpenVINO and NNCF are imported inside functions only.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import itertools
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edge_sdk.converters.calibration import HOW_TO_GIVE
from edge_sdk.converters.options import Conflict, Option, declare
from edge_sdk.converters.quantize.accuracy_aware import wanted
from edge_sdk.converters.quantize.int4 import GROUP_FALLBACK, GROUP_SIZE, INT4_MODE, openvino_int4, size_ratio
from edge_sdk.converters.quantize.int8_weights import INT8_WEIGHTS
from edge_sdk.converters.targets import TARGETS, BuildContext, BuildResult
from edge_sdk.converters.targets.onnx.target import QUANTISER_OPTIONS
from edge_sdk.errors import BadInputError, ConversionError, EdgeSDKError, MissingExtraError
from edge_sdk.runtimes.openvino import (
    DEFAULT_INFERENCE_PRECISION,
    compile_model,
    core,
    import_openvino,
    normalise_precision,
    ov_message,
)

log = logging.getLogger("edge_sdk.converters.openvino")

XML_FILE, BIN_FILE = "model.xml", "model.bin"

# Static int8 keeps these in float unless quantize_recurrent is set: quantising a recurrent layer's inputs
# quantises the state it carries across steps, and the error compounds. Silero VAD's speech decisions
# agree with fp32 on 25% of a clip's chunks with its LSTM quantised, on 99.5% with it left in float.
_RECURRENT = ("LSTMSequence", "GRUSequence", "RNNSequence", "LSTMCell", "GRUCell", "RNNCell")
_INT8_TYPES = ("i8", "u8")
# Layers with weights: static int8 starts at their inputs. Arithmetic between a model input and the first
# of them (an in-graph normalisation such as cepstral mean subtraction) stays float: NNCF would otherwise
# quantise the raw input per tensor, and features whose coefficients differ in scale by 20x (MFCC c0 and
# the rest) lose the small ones. The commands keyword spotter's decisions agreed with fp32 on 91.6% of
# held-out clips with its front-end quantised and on 98.1% with it in float (onnx int8: 98.4%).
_WEIGHTED = (
    "Convolution",
    "GroupConvolution",
    "MatMul",
    "ConvolutionBackpropData",
    "GroupConvolutionBackpropData",
)


@contextlib.contextmanager
def _step(label: str, what: str, advice: str) -> Iterator[None]:
    """Turn any failure of an OpenVINO or NNCF call into a ConversionError naming the step and the way
    out; edge-sdk's own errors pass through unchanged."""
    try:
        yield
    except EdgeSDKError:
        raise
    except Exception as e:
        raise ConversionError(f"{label}: {what} failed: {ov_message(e)}; {advice}") from None


@contextlib.contextmanager
def _nncf_to_logging() -> Iterator[None]:
    """NNCF logs through its own stdout handler and draws rich progress bars on stdout, which would
    break ``--json`` output and bypass the CLI's logging set-up. For the duration of a call its logger
    goes through standard logging instead, and what it prints goes to the debug log."""
    nncf_log = logging.getLogger("nncf")
    saved = nncf_log.handlers[:], nncf_log.propagate, nncf_log.level
    nncf_log.handlers[:], nncf_log.propagate = [], True
    # Ancestors' levels do not filter propagated records, so NNCF's own level decides: its INFO tables
    # only when edge_sdk itself logs at debug (the CLI's --verbose).
    nncf_log.setLevel(logging.DEBUG if log.isEnabledFor(logging.DEBUG) else logging.WARNING)
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            yield
    finally:
        nncf_log.handlers[:], nncf_log.propagate = saved[:2]
        nncf_log.setLevel(saved[2])
        if printed.getvalue().strip():
            log.debug("NNCF printed:\n%s", printed.getvalue().rstrip())


def _import_nncf(label: str) -> Any:
    try:
        import nncf
    except ImportError:
        raise MissingExtraError("nncf", "openvino", f"{label} (NNCF quantisation)") from None
    return nncf


def _count(model: Any, op_type: str) -> int:
    return sum(1 for op in model.get_ops() if op.get_type_name() == op_type)


def _int8_weights(model: Any) -> int:
    """Weights stored as 8-bit integers: an int8/uint8 Constant that, through a Convert, is the first
    operand of the Subtract or Multiply that scales it back (zero points are second operands)."""
    count = 0
    for op in model.get_ops():
        if op.get_type_name() != "Constant" or op.get_element_type().get_type_name() not in _INT8_TYPES:
            continue
        converts = [i.get_node() for i in op.output(0).get_target_inputs()]
        uses = [
            u for c in converts if c.get_type_name() == "Convert" for u in c.output(0).get_target_inputs()
        ]
        count += any(
            u.get_node().get_type_name() in ("Subtract", "Multiply") and u.get_index() == 0 for u in uses
        )
    return count


def _front_end(model: Any) -> list[str]:
    """Friendly names of the ops computed from the model's inputs (and constants) alone, before any
    weighted layer: the in-graph preprocessing. An op that also takes a weighted layer's output (a
    residual add of the input) is not front-end, nor is anything after it."""
    from edge_sdk.converters.quantize.front_end import front_end

    # a node's outputs are named by the node: the walk needs only which nodes feed which
    ops = [
        (
            op.get_friendly_name(),
            op.get_type_name(),
            [v.get_node().get_friendly_name() for v in op.input_values()],
        )
        for op in model.get_ordered_ops()
    ]
    return front_end(
        [(name, kind, srcs, [name]) for name, kind, srcs in ops if kind not in ("Parameter", "Constant")],
        inputs=[name for name, kind, _ in ops if kind == "Parameter"],
        constants=[name for name, kind, _ in ops if kind == "Constant"],
        weighted=(*_WEIGHTED, "Result"),
        unlisted=("ShapeOf",),
    )


def _quantize(
    model: Any, hub: Path, ctx: BuildContext, opts: dict[str, Any], label: str
) -> tuple[Any, dict[str, Any]]:
    """Static int8 with NNCF: activation ranges from the calibration samples, weights per channel; with
    ``ctx.evaluate`` and a goal, NNCF's accuracy control keeps the most sensitive layers float."""
    nncf = _import_nncf(label)
    samples = ctx.calibration_samples or []
    if not samples:
        raise BadInputError(f"{label} is static quantisation and needs calibration data: {HOW_TO_GIVE}")
    calls = itertools.count(1)

    def feed(sample: dict[str, Any]) -> dict[str, Any]:
        # NNCF reads the dataset once per statistics pass; progress is the share of samples seen.
        ctx.report("calibrate", min(next(calls), len(samples)), len(samples))
        return sample

    preset = getattr(nncf.QuantizationPreset, opts["preset"].upper())
    recurrent = sorted({op.get_type_name() for op in model.get_ops()} & set(_RECURRENT))
    kept_float = [] if opts["quantize_recurrent"] else recurrent
    front = _front_end(model)
    if front:
        log.info("%s: the input front-end stays float: %s", label, ", ".join(front))
    ignored = (
        nncf.IgnoredScope(types=kept_float, names=front, validate=False) if kept_float or front else None
    )
    # 7-bit weights (int8_weights=7bit) do not saturate the 16-bit sums of x86 without VNNI; 8-bit ones
    # are computed exactly there by the Session (runtimes/numerics.py), so NNCF need not halve any.
    overflow_fix = nncf.OverflowFix.ENABLE if ctx.int8_weights.reduce_range else nncf.OverflowFix.DISABLE
    advanced = nncf.AdvancedQuantizationParameters(overflow_fix=overflow_fix)
    accuracy: dict[str, Any] = {}
    with (
        _nncf_to_logging(),
        _step(label, "NNCF post-training quantisation", "try int8-weights, which needs no calibration"),
    ):
        if wanted(ctx, "int8"):
            from edge_sdk.converters.targets.openvino.accuracy import quantize_with_accuracy_control

            quantized, accuracy = quantize_with_accuracy_control(
                nncf,
                model,
                ctx,
                nncf.Dataset(samples, feed),
                _io_specs(hub),
                label,
                preset=preset,
                subset_size=len(samples),
                ignored_scope=ignored,
                advanced_quantization_parameters=advanced,
            )
        else:
            quantized = nncf.quantize(
                model,
                nncf.Dataset(samples, feed),
                preset=preset,
                subset_size=len(samples),
                ignored_scope=ignored,
                advanced_parameters=advanced,
            )
    fake_quantize = _count(quantized, "FakeQuantize")
    if fake_quantize == 0:
        raise ConversionError(
            f"{label}: NNCF found nothing to quantise (no Conv, MatMul or similar layer it handles); "
            f"keep fp32 or fp16"
        )
    return quantized, {
        "quantizer": "nncf.quantize",
        "preset": opts["preset"],
        "quantize_recurrent": opts["quantize_recurrent"],
        "kept_float": kept_float,
        "front_end_float": front,
        "subset_size": len(samples),
        "fast_bias_correction": True,
        "overflow_fix": overflow_fix.value,
        "int8_weights": ctx.int8_weights.record(),
        "calibration_samples": len(samples),
        "fake_quantize_nodes": fake_quantize,
        "quantized_weights": _int8_weights(quantized),
        **({"accuracy_aware": accuracy} if accuracy else {}),
    }


def _from_qdq(ov: Any, hub: Path, tmp: Path, ctx: BuildContext, label: str) -> tuple[Any, dict[str, Any]]:
    """Static int8 calibrated by onnxruntime: the onnx target's QDQ model, imported by OpenVINO, which
    turns each QuantizeLinear/DequantizeLinear pair into a FakeQuantize and runs the layers between in
    int8. The ranges are the ones ``onnx:int8`` calibrates and caches, so neither format redoes them."""
    from edge_sdk.converters.targets.onnx.target import static_int8

    qdq = tmp / "qdq.onnx"
    with _step(label, "onnxruntime's static quantisation", "try the option calibrator=nncf"):
        ort_recipe = static_int8(hub, qdq, ctx)
    with _step(label, "OpenVINO's import of the QDQ model", "try the option calibrator=nncf"):
        model = ov.convert_model(str(qdq))
    fake_quantize = _count(model, "FakeQuantize")
    if fake_quantize == 0:
        raise ConversionError(
            f"{label}: onnxruntime found nothing to quantise (no Conv, MatMul or similar layer it handles); "
            f"keep fp32 or fp16"
        )
    shared = ("per_channel", "activation_type", "weight_type", "calibrate_method", "exclude_nodes")
    return model, {
        "quantizer": "onnxruntime.quantize_static (QDQ), imported by ov.convert_model",
        "calibrator": "onnxruntime",
        **{k: ort_recipe[k] for k in shared},
        "int8_weights": ort_recipe["int8_weights"],
        "preprocess": ort_recipe.get("preprocess", ""),
        "calibration_samples": ort_recipe["calibration_samples"],
        "fake_quantize_nodes": fake_quantize,
        "quantized_weights": _int8_weights(model),
    }


def _io_specs(hub: Path) -> tuple[list[Any], list[Any]]:
    import onnx

    from edge_sdk.converters.graph.onnx_model import tensor_specs

    return tensor_specs(onnx.load(str(hub), load_external_data=False))


def _compress_weights(model: Any, label: str) -> tuple[Any, dict[str, Any]]:
    """int8 weights, asymmetric per output channel; activations stay float, so no calibration."""
    nncf = _import_nncf(label)
    with _nncf_to_logging(), _step(label, "NNCF weight compression", "keep fp16, which also halves the size"):
        compressed = nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_ASYM)
    count = _int8_weights(compressed)
    if count == 0:
        raise ConversionError(
            f"{label}: NNCF compressed no weights (it handles MatMul, Conv and embedding weights); keep fp16"
        )
    return compressed, {
        "weight_compression": "nncf.compress_weights",
        "mode": "int8_asym",
        "quantized_weights": count,
    }


def _from_torch(ov: Any, hub: Path, ctx: BuildContext, label: str) -> Any:
    """The IR made by OpenVINO's own PyTorch front end from the user's module, with the hub model's
    tensor names and shapes, so the manifest (and parity) describe it exactly as the ONNX route would."""
    import onnx

    from edge_sdk.converters.graph.onnx_model import tensor_specs
    from edge_sdk.converters.sources.torch_module import eval_mode

    src = ctx.source
    if src is None or src.framework != "torch" or src.native is None:
        raise BadInputError("openvino option converter=torch needs a PyTorch module as the source")
    module, args = src.native
    ins, outs = tensor_specs(onnx.load(str(hub), load_external_data=False))
    if len(ins) != len(args):
        raise BadInputError(
            "openvino option converter=torch converts the module as it is; fixed_inputs and input_shapes "
            "apply to the ONNX route (converter=onnx)"
        )
    with _step(label, "OpenVINO's PyTorch import (ov.convert_model)", "use converter=onnx for this model"):
        with eval_mode(module):
            model = ov.convert_model(module, example_input=tuple(args))
        model.reshape(
            {
                i: ov.PartialShape([d if isinstance(d, int) else -1 for d in s.shape])
                for i, s in enumerate(ins)
            }
        )
    if len(model.outputs) != len(outs):
        raise ConversionError(
            f"{label}: the PyTorch import gives {len(model.outputs)} outputs, ONNX {len(outs)}"
        )
    for port, spec in [*zip(model.inputs, ins, strict=True), *zip(model.outputs, outs, strict=True)]:
        port.get_tensor().set_names({spec.name})
    return model


class OpenVinoTarget:
    """Registers as ``openvino``: IR for the OpenVINO runtime, in four precisions."""

    name = "openvino"
    precisions = {
        "fp32": "OpenVINO IR, float32",
        "fp16": "OpenVINO IR, float16 weights (run at the recorded inference precision)",
        "int8": "static int8 (NNCF post-training quantisation), calibrated",
        "int8-weights": "int8 weights (NNCF weight compression), float activations; no calibration",
        "int4-weights": "4-bit weights in groups (NNCF weight compression), float activations",
    }
    calibrated = frozenset({"int8"})
    options = declare(
        Option(
            "inference_precision",
            str,
            DEFAULT_INFERENCE_PRECISION,
            "precision it runs and is checked at: f32 (default), bf16, f16, device",
            choices=("f32", "bf16", "f16", "device"),
            check=normalise_precision,
        ),
        Option(
            "preset",
            str,
            "performance",
            "int8 with calibrator=nncf: performance (symmetric activations, default) or mixed "
            "(asymmetric, better for ReLU-free nets)",
            choices=("performance", "mixed"),
        ),
        Option(
            "quantize_recurrent",
            bool,
            False,
            "int8 with calibrator=nncf: also quantise LSTM/GRU/RNN layers (default false: kept in float)",
        ),
        Option(
            "converter",
            str,
            "onnx",
            "onnx (default: from the ONNX hub model) or torch (from the PyTorch module itself, for models "
            "the ONNX exporter handles badly)",
            choices=("onnx", "torch"),
        ),
        Option(
            "calibrator",
            str,
            None,
            "int8: onnxruntime (default with the onnx converter: onnx:int8's QDQ model and cached ranges, so "
            "the formats calibrate once) or nncf (NNCF post-training quantisation; the default with "
            "converter=torch, and always used for the accuracy-aware build)",
            choices=("onnxruntime", "nncf"),
        ),
        INT8_WEIGHTS.noting("openvino: NNCF's overflow_fix for calibrator=nncf"),
        *(o.noting("openvino: int8 with calibrator=onnxruntime") for o in QUANTISER_OPTIONS),
        INT4_MODE,
        GROUP_SIZE,
        GROUP_FALLBACK,
    )
    conflicts = (
        Conflict(
            {"calibrator": "onnxruntime", "converter": "torch"},
            "calibrator=onnxruntime quantises the ONNX model, but converter=torch imports the PyTorch "
            "module: use calibrator='nncf' with it, or converter='onnx'",
        ),
    )
    tools = ("onnx", "onnxslim", "onnxruntime", "openvino", "nncf")

    def available(self) -> tuple[bool, str]:
        """Whether OpenVINO and NNCF are installed, found without importing them (NNCF imports torch)."""
        missing = [m for m in ("openvino", "nncf") if importlib.util.find_spec(m) is None]
        if missing:
            return False, f"{' and '.join(missing)} not installed (pip install 'edge-sdk[openvino]')"
        return True, "installed"

    def build(self, hub: Path, precision: str, out_dir: Path, ctx: BuildContext) -> BuildResult:
        """Import ``hub`` with ``ov.convert_model``, quantise or compress it as ``precision`` asks, save
        ``model.xml`` + ``model.bin`` into ``out_dir``, and record the inference precision the CPU reports
        for it. OpenVINO's and NNCF's failures become ConversionErrors naming the step."""
        ov = import_openvino("the openvino target")
        label = f"openvino:{precision}"
        opts = ctx.options
        calibrator = opts["calibrator"] or ("nncf" if opts["converter"] == "torch" else "onnxruntime")
        versions = {"openvino": ov.get_version()}
        extra: dict[str, Any] = {}
        if precision == "int8" and calibrator == "onnxruntime" and not wanted(ctx, "int8"):
            import onnxruntime

            versions["onnxruntime"] = onnxruntime.__version__
            with tempfile.TemporaryDirectory() as tmp:  # the IR is saved before the QDQ model goes
                model, recipe = _from_qdq(ov, hub, Path(tmp), ctx, label)
                return self._save(model, precision, out_dir, hub, opts, recipe, versions, label)
        if opts["converter"] == "torch":
            model = _from_torch(ov, hub, ctx, label)
            recipe = {"converter": "openvino.convert_model(torch.nn.Module)"}
        else:
            with _step(
                label,
                "OpenVINO's ONNX import (ov.convert_model)",
                "an op of the model may be unsupported by OpenVINO; keep the onnx format for it",
            ):
                model = ov.convert_model(str(hub))
            recipe = {"converter": "openvino.convert_model"}
        if precision == "int8":
            if calibrator == "onnxruntime":
                log.info("%s: accuracy-aware, so NNCF accuracy control calibrates (not onnxruntime)", label)
            model, extra = _quantize(model, hub, ctx, opts, label)
            extra = {"calibrator": "nncf", **extra}
        elif precision == "int8-weights":
            model, extra = _compress_weights(model, label)
        elif precision == "int4-weights":
            nncf = _import_nncf(label)
            with _nncf_to_logging(), _step(label, "NNCF int4 weight compression", "try int8-weights"):
                model, extra = openvino_int4(nncf, model, ctx.options)
        if extra:
            versions["nncf"] = _import_nncf(label).__version__
        recipe.update(extra)
        return self._save(model, precision, out_dir, hub, opts, recipe, versions, label)

    def _save(
        self,
        model: Any,
        precision: str,
        out_dir: Path,
        hub: Path,
        opts: dict[str, Any],
        recipe: dict[str, Any],
        versions: dict[str, str],
        label: str,
    ) -> BuildResult:
        """Save ``model`` as the IR in ``out_dir`` and record how it compiles for this CPU."""
        ov = import_openvino("the openvino target")
        # save_model compresses float weights to f16 unless told not to; only fp16 asks for that.
        recipe["compress_to_fp16"] = precision == "fp16"
        xml = out_dir / XML_FILE
        with _step(label, "saving the IR (ov.save_model)", "check the output folder is writable"):
            ov.save_model(model, str(xml), compress_to_fp16=recipe["compress_to_fp16"])
        if precision == "int4-weights":
            recipe["size_ratio_vs_fp32"] = size_ratio([xml, out_dir / BIN_FILE], hub)
        recipe["inference_precision"] = self._inference_precision(xml, opts["inference_precision"], label)
        return BuildResult(files=[XML_FILE, BIN_FILE], recipe=recipe, versions=versions)

    @staticmethod
    def _inference_precision(xml: Path, asked: str, label: str) -> str:
        """Compile the saved IR for this CPU with the precision asked for and return what the device
        reports it uses; also proves the IR loads and compiles before parity runs it."""
        with _step(label, "compiling the IR for the CPU", "keep the onnx format for this model"):
            compiled = compile_model(
                core().read_model(str(xml)),
                "CPU",
                inference_precision=asked,
                performance_hint="latency",
                threads=None,
            )
        if asked not in ("device", compiled.inference_precision):
            log.warning(
                "%s: asked for inference precision %s, the CPU runs %s",
                label,
                asked,
                compiled.inference_precision,
            )
        return compiled.inference_precision


TARGETS.register("openvino")(OpenVinoTarget())
