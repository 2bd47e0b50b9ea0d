"""The ``tflite`` target: fp32, fp16 weights, full-integer int8 (calibrated) and dynamic-range int8, made
from the ONNX hub model with onnx2tf and TensorFlow's TFLite converter.

The conversion runs in a child process (``edge_sdk.converters.targets.tflite.worker``) so TensorFlow is never
imported into the user's process and its log noise is captured rather than printed. This module prepares
the job (fixed shapes, safe tensor names, calibration file), runs it, and turns the worker's report into
manifest specs: onnx2tf stores rank-3..5 tensors channels-last (NCHW → NHWC, NCW → NWC), and the specs
record both layouts so ``Session.run`` takes and returns the arrays the ONNX model did.

With option ``converter=litert-torch`` a PyTorch source's module is converted directly instead, by
litert-torch in the same worker (``edge_sdk.converters.targets.tflite.litert_torch``); it keeps the module's
own layouts.
"""

from __future__ import annotations

import importlib.util
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.converters.options import Conflict, Option, declare
from edge_sdk.converters.quantize.accuracy_aware import wanted
from edge_sdk.converters.quantize.int8_weights import INT8_WEIGHTS
from edge_sdk.converters.quantize.int8_weights import TFLITE as TFLITE_INT8_WEIGHTS
from edge_sdk.converters.targets import TARGETS, BuildContext, BuildResult
from edge_sdk.converters.targets.onnx.target import CALIBRATE_METHOD
from edge_sdk.converters.targets.tflite import process
from edge_sdk.converters.targets.tflite.onnx2tflite import StepError
from edge_sdk.errors import BadInputError, ConversionError
from edge_sdk.manifest import TensorSpec, owned_tempdir

log = logging.getLogger("edge_sdk.converters.tflite")

MODEL_FILE = "model.tflite"

# What the worker imports, with the pip name that brings each: onnx2tf is installed without its
# dependencies (it pins old versions of everything), so each is checked here by name.
_NEEDS = {
    "onnx2tf": "onnx2tf",
    "tensorflow": "tensorflow",
    "tf_keras": "tf-keras",
    "onnx_graphsurgeon": "onnx-graphsurgeon",
    "sng4onnx": "sng4onnx",
    "psutil": "psutil",
    "requests": "requests",
    "ai_edge_litert": "ai-edge-litert",  # onnx2tf imports its Interpreter
}
IO_TYPES = ("int8", "uint8", "float")
_RNN_OPS = {"GRU", "LSTM", "RNN"}

# The axis letters used to name a layout, per rank; other ranks use plain letters.
_LETTERS = {3: "NCW", 4: "NCHW", 5: "NCDHW"}


# onnx2tf pins exact, old versions of everything it uses, so it is installed on its own without them.
ONNX2TF = "onnx2tf==1.29.24"
CONVERTERS = ("onnx2tf", "litert-torch", "keras")
CALIBRATORS = ("tensorflow", "onnxruntime")


def _missing() -> str | None:
    """The pip name of the first package the worker needs that is not installed, if any."""
    return next((pkg for module, pkg in _NEEDS.items() if importlib.util.find_spec(module) is None), None)


def _install_hint(missing: str) -> str:
    if missing == "onnx2tf":
        return f"pip install 'edge-sdk[tflite]' && pip install --no-deps {ONNX2TF}"
    return "pip install 'edge-sdk[tflite]'"


def _io_type(ctx: BuildContext, precision: str) -> str:
    """The integer I/O type int8 asked for; other precisions keep float I/O."""
    return str(ctx.options["io"]) if precision == "int8" else "float"


# -- preparing the ONNX model -------------------------------------------------------------------------


def _safe_name(name: str, taken: set[str]) -> str:
    """A tensor name TensorFlow accepts as a Keras layer and signature name (letters, digits, '_',
    starting with a letter); onnx2tf drops or misnames outputs called e.g. '/out' or 'y:0'."""
    safe = re.sub(r"[^A-Za-z0-9_]", "_", name)
    if not safe[:1].isalpha():
        safe = f"t{safe}"
    base, i = safe, 1
    while safe in taken:
        safe, i = f"{base}_{i}", i + 1
    taken.add(safe)
    return safe


def _rename(graph: Any, renames: dict[str, str]) -> None:
    """Rename values everywhere they are made or read, subgraphs included."""
    for v in [*graph.input, *graph.output, *graph.value_info, *graph.initializer]:
        v.name = renames.get(v.name, v.name)
    for node in graph.node:
        node.input[:] = [renames.get(n, n) for n in node.input]
        node.output[:] = [renames.get(n, n) for n in node.output]
        for attr in node.attribute:
            for sub in [attr.g] if attr.HasField("g") else list(attr.graphs):
                _rename(sub, renames)


def _fix_shapes(model: Any, specs: list[TensorSpec]) -> tuple[dict[str, list[int]], dict[str, Any]]:
    """Give every input a fixed shape, as onnx2tf needs: a symbolic or unknown first (batch) axis becomes
    1; any other symbolic axis is refused. Returns the shapes, and per input the batch axis it fixed."""
    shapes: dict[str, list[int]] = {}
    fixed: dict[str, Any] = {}
    for spec in specs:
        shape = []
        for axis, dim in enumerate(spec.shape):
            if isinstance(dim, int) and dim > 0:
                shape.append(dim)
            elif axis == 0:
                shape.append(1)
                fixed[spec.name] = {"axis": 0, "was": dim, "size": 1}
            else:
                raise ConversionError(
                    f"input '{spec.name}' has a {'symbolic' if dim else 'unknown'} size "
                    f"{f'{dim!r} ' if dim else ''}on axis {axis} ({spec.describe()}); TFLite via onnx2tf "
                    f"needs fixed shapes: give one with input_shapes={{'{spec.name}': [...]}} "
                    f"(--shape {spec.name}=D1,D2,...) or export the model with a fixed size on that axis"
                )
        shapes[spec.name] = shape
    if fixed:
        by_name = {v.name: v for v in model.graph.input}
        for name, shape in shapes.items():
            for d, size in zip(by_name[name].type.tensor_type.shape.dim, shape, strict=True):
                d.Clear()
                d.dim_value = size
        # Symbolic output dims and stale value_info would contradict the new input shapes.
        del model.graph.value_info[:]
        for out in model.graph.output:
            for d in out.type.tensor_type.shape.dim:
                if not d.HasField("dim_value"):
                    d.Clear()
    return shapes, fixed


def _prepare(hub: Path, tmp: Path, specs: list[TensorSpec]) -> tuple[Path, dict[str, Any]]:
    """The hub model with fixed input shapes and safe I/O names, saved for the worker."""
    import onnx

    from edge_sdk.converters.graph.simplify import simplify

    model = onnx.load(str(hub))
    shapes, fixed = _fix_shapes(model, specs)
    if fixed:
        # Fold the Shape/Expand chains that computed sizes from the now fixed batch axis.
        model, _ = simplify(model)
    taken: set[str] = set()
    io_names = [v.name for v in model.graph.input if v.name in shapes] + [v.name for v in model.graph.output]
    renames = {n: _safe_name(n, taken) for n in io_names}
    _rename(model.graph, {k: v for k, v in renames.items() if k != v})
    path = tmp / "fixed.onnx"
    onnx.save(model, str(path))
    return path, {"shapes": shapes, "fixed": fixed, "renames": renames}


def _calibration_file(ctx: BuildContext, specs: list[TensorSpec], fixed: dict[str, Any], tmp: Path) -> str:
    """Write the calibration samples as ``s{i}_{j}`` arrays (sample i, input j). A sample with several
    rows on a batch axis that was fixed to 1 becomes one sample per row."""
    arrays: dict[str, np.ndarray] = {}
    count = 0
    for sample in ctx.calibration_samples or []:
        rows = next((len(sample[s.name]) for s in specs if s.name in fixed), 1)
        for r in range(rows):
            for j, s in enumerate(specs):
                a = np.asarray(sample[s.name])
                arrays[f"s{count}_{j}"] = a[r : r + 1] if s.name in fixed else a
            count += 1
    path = tmp / "calibration.npz"
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return str(path)


# -- errors -------------------------------------------------------------------------------------------


def _hint(stage: str | None, precision: str) -> str:
    """What the user can do about a failure in ``stage``."""
    if stage == "onnx2tf":
        return (
            "onnx2tf does not handle this op as exported; export the model with other ops (another opset or "
            "exporter), or use the onnx or openvino target for it"
        )
    if stage == "tflite" and precision != "fp32":
        return "keep tflite at fp32 or fp16 for this model, or use tflite:int8-dynamic or onnx:int8"
    if stage in ("tflite", "layout"):
        return "use the onnx or openvino target for this model"
    if stage in ("export", "litert-torch", "quantize"):
        return "use the default converter (onnx2tf) or the onnx or openvino target for this module"
    return "convert with -v to see the converter's whole log"


def _failure(label: str, precision: str, error: dict[str, Any], output: str) -> ConversionError:
    """A ConversionError naming the op and node where known, and what the user can do."""
    stage, message = error.get("stage"), error.get("message", "")
    where = ""
    if error.get("op"):
        where = f" at op '{error['op']}'"
    if error.get("node"):
        where += f" (node '{error['node']}')"
    what = {
        "onnx2tf": f"onnx2tf cannot convert the model{where}: {message}",
        "tflite": f"the TFLite converter failed{where}: {message}",
        "litert-torch": f"litert-torch cannot convert the module: {message}",
        "quantize": f"ai-edge-quantizer failed: {message}",
    }.get(stage or "", message)
    tail = process.tail(output)
    log_text = f"\n  converter log (last lines):\n{tail}" if tail else ""
    return ConversionError(f"{label}: {what}; {_hint(stage, precision)}{log_text}")


# -- the manifest side --------------------------------------------------------------------------------


def layout_names(perm: list[int], *, stored_to_user: bool) -> tuple[str | None, str | None]:
    """``(layout, stored_layout)`` strings for an axes order; ``(None, None)`` when nothing moves.

    For an input ``perm`` takes the user's array to the stored one (``stored = user.transpose(perm)``);
    for an output (``stored_to_user``) it takes the stored array back to the user's.
    """
    rank = len(perm)
    if perm == list(range(rank)):
        return None, None
    user = _LETTERS.get(rank, "ABCDEFGHIJKLMNOP"[:rank])
    if stored_to_user:
        stored = [""] * rank
        for j, p in enumerate(perm):
            stored[p] = user[j]
        return user, "".join(stored)
    return user, "".join(user[p] for p in perm)


def _specs(
    user: list[TensorSpec], described: list[dict[str, Any]], renames: dict[str, str], is_input: bool
) -> tuple[list[TensorSpec], dict[str, Any]]:
    by_stored = {d["name"]: d for d in described}
    specs, quant = [], {}
    for spec in user:
        d = by_stored[renames[spec.name]]
        perm = d["perm"]
        layout, stored_layout = layout_names(perm, stored_to_user=not is_input)
        if is_input:
            shape = [d["shape"][perm.index(j)] for j in range(len(perm))]
        else:
            shape = [d["shape"][p] for p in perm]
        specs.append(
            TensorSpec(
                name=spec.name,
                shape=[s if s > 0 else None for s in shape],
                dtype=spec.dtype,
                layout=layout,
                stored_layout=stored_layout,
                stored_name=d["name"] if d["name"] != spec.name else None,
            )
        )
        if d["dtype"] != spec.dtype and d["quantization"] and np.dtype(spec.dtype).kind == "f":
            quant[spec.name] = {"dtype": d["dtype"], **d["quantization"]}
    return specs, quant


def tflite_result(
    recipe: dict[str, Any],
    precision: str,
    io_type: str,
    quantization: dict[str, Any],
    versions: dict[str, str],
    inputs: list[TensorSpec],
    outputs: list[TensorSpec],
) -> BuildResult:
    """What a TFLite build made: ``MODEL_FILE``, described by ``recipe`` (which gets the integer I/O type
    at int8). Both TFLite routes (onnx2tf here, Keras direct in ``keras.py``) end with it."""
    if precision == "int8":
        recipe["io"] = io_type
    return BuildResult(
        files=[MODEL_FILE],
        recipe=recipe,
        quantization=quantization,
        versions=versions,
        inputs=inputs,
        outputs=outputs,
    )


def _convert(job: dict[str, Any], tmp: Path, ctx: BuildContext, label: str, precision: str) -> dict[str, Any]:
    """Run one job in the worker process, with progress; its log goes to debug, its failure is raised."""
    ctx.report("convert", 0, 1)
    report, output = process.run_job(job, tmp)
    log.debug("%s: converter log:\n%s", label, output)
    ctx.report("convert", 1, 1)
    if "error" in report:
        raise _failure(label, precision, report["error"], output)
    return report


class TfliteTarget:
    name = "tflite"
    precisions = {
        "fp32": "float32 (onnx2tf, channels-last)",
        "fp16": "float16 weights, float32 compute and I/O",
        "int8": "full-integer int8, calibrated; integer I/O (option io=float keeps float I/O)",
        "int8-dynamic": "int8 weights, activations quantised at run time; no calibration",
    }
    calibrated = frozenset({"int8"})
    options = declare(
        Option(
            "io",
            str,
            "int8",
            "tflite:int8: int8 (default), uint8 or float input and output tensors",
            choices=IO_TYPES,
        ),
        Option(
            "converter",
            str,
            None,
            "onnx2tf (default, from the ONNX model), litert-torch (directly from a PyTorch module; fp32, "
            "fp16, int8-dynamic; keeps its layouts) or keras (TensorFlow's converter directly from a "
            "Keras/SavedModel source; the default for those)",
            choices=CONVERTERS,
        ),
        INT8_WEIGHTS.noting(
            "tflite keeps 8-bit weights whatever is asked, and says so: its int8 kernels cannot saturate "
            "them on any CPU"
        ),
        Option(
            "calibrator",
            str,
            "tensorflow",
            "tflite:int8: tensorflow (default: TensorFlow's converter calibrates; full-integer, integer I/O, "
            "what the Edge TPU compiler takes) or onnxruntime (the activation ranges onnx:int8 and "
            "openvino:int8 calibrate and cache, carried onto the TFLite graph; ai-edge-quantizer, float "
            "I/O): with it, changing only the format does not calibrate again",
            choices=CALIBRATORS,
        ),
        CALIBRATE_METHOD.noting("tflite: int8 with calibrator=onnxruntime"),
    )
    conflicts: tuple[Conflict, ...] = ()
    tools = (
        *("onnx", "onnxslim", "onnxruntime", "tensorflow", "tf-keras", "onnx2tf", "litert-torch"),
        "ai-edge-quantizer",
    )

    def available(self) -> tuple[bool, str]:
        """Whether onnx2tf and TensorFlow (and what onnx2tf imports) are installed."""
        missing = _missing()
        if missing:
            return False, f"needs {missing}: {_install_hint(missing)}"
        return True, "onnx2tf and tensorflow are installed"

    def build(self, hub: Path, precision: str, out_dir: Path, ctx: BuildContext) -> BuildResult:
        """Convert ``hub`` in a child process and describe the result for the manifest."""
        result = self._build(hub, precision, out_dir, ctx)
        if precision.startswith("int8"):
            if ctx.int8_weights.asked == "7bit":
                log.warning(
                    "tflite:%s keeps 8-bit weights (int8_weights=7bit asked): %s",
                    precision,
                    TFLITE_INT8_WEIGHTS["why"],
                )
            result.recipe["int8_weights"] = {**TFLITE_INT8_WEIGHTS, "asked": ctx.int8_weights.asked}
        return result

    def _build(self, hub: Path, precision: str, out_dir: Path, ctx: BuildContext) -> BuildResult:
        import onnx

        from edge_sdk.converters.graph.onnx_model import tensor_specs
        from edge_sdk.converters.targets.tflite import keras as keras_direct

        default = "keras" if keras_direct.is_keras_source(ctx) else "onnx2tf"
        converter = ctx.options["converter"] or default
        if converter == "litert-torch":
            return _build_litert_torch(hub, precision, out_dir, ctx)
        calibrator = ctx.options["calibrator"]
        if wanted(ctx, precision):
            return self._from_fp32(hub, out_dir, ctx, "accuracy-aware")
        if precision == "int8" and calibrator == "onnxruntime":
            return self._from_fp32(hub, out_dir, ctx, "onnxruntime ranges")
        if converter == "keras":
            return keras_direct.build(hub, precision, out_dir, ctx)
        missing = _missing()
        if missing:
            raise BadInputError(
                f"the tflite target needs the Python package '{missing}': {_install_hint(missing)}"
            )
        io_type = _io_type(ctx, precision)
        label = f"tflite:{precision}"
        hub_model = onnx.load(str(hub), load_external_data=False)
        in_specs, out_specs = tensor_specs(hub_model)
        # TensorFlow's int8 quantiser crashes on the While loop of a rolled GRU/LSTM; unrolled it is fine.
        rnn_unroll = precision == "int8" and any(n.op_type in _RNN_OPS for n in hub_model.graph.node)
        with owned_tempdir("tflite") as tmp:
            try:
                model_path, prepared = _prepare(hub, tmp, in_specs)
            except ConversionError as e:
                raise ConversionError(f"{label}: {e}") from None
            renames = prepared["renames"]
            job = {
                "model": str(model_path),
                # absolute: the worker runs in its own working directory, not the caller's
                "output": str((out_dir / MODEL_FILE).resolve()),
                "precision": precision,
                "io": io_type,
                "rnn_unroll": rnn_unroll,
                "inputs": [renames[s.name] for s in in_specs],
                "outputs": [renames[s.name] for s in out_specs],
                "calibration": _calibration_file(ctx, in_specs, prepared["fixed"], tmp)
                if ctx.calibration_samples
                else None,
            }
            report = _convert(job, tmp, ctx, label, precision)
        if precision == "int8-dynamic" and report["int8_tensors"] == 0:
            log.warning(
                "%s: the TFLite converter quantised no weights (it keeps tensors under 1024 elements in "
                "float), so this model is float32 in all but name",
                label,
            )
        inputs, q_in = _specs(in_specs, report["inputs"], renames, True)
        outputs, q_out = _specs(out_specs, report["outputs"], renames, False)
        recipe: dict[str, Any] = {
            "converter": "onnx2tf → Keras model → TFLiteConverter",
            "onnx2tf": {
                "not_use_onnxsim": True,
                "enable_rnn_unroll": rnn_unroll,
                "keep_shape_absolutely_input_names": report["kept_input_shapes"],
            },
            "tflite_converter": report["converter"],
            "fixed_dims": prepared["fixed"],
            "renamed": {k: v for k, v in renames.items() if k != v},
            "layouts": {s.name: f"{s.layout}→{s.stored_layout}" for s in inputs + outputs if s.layout},
            "layout_check_max_abs_error": report["layout_check_max_abs_error"],
            "int8_tensors": report["int8_tensors"],
        }
        return tflite_result(
            recipe, precision, io_type, {**q_in, **q_out}, report["versions"], inputs, outputs
        )

    def _from_fp32(self, hub: Path, out_dir: Path, ctx: BuildContext, how: str) -> BuildResult:
        """int8 quantised by ai-edge-quantizer from the fp32 model made as usual: ``accuracy-aware`` with
        per-op recipes found by the shared search until ``ctx.accuracy_goal`` holds, or with the
        ``onnxruntime ranges`` that onnx:int8 calibrated (``range_transfer``)."""
        import dataclasses
        from importlib.metadata import version

        from edge_sdk.converters.targets.tflite.accuracy import (
            quantize_with_onnx_ranges,
            quantize_with_search,
        )

        plain_ctx = dataclasses.replace(ctx, evaluate=None, accuracy_goal=None)
        with owned_tempdir("tflite-q") as tmp:
            fp32_dir = tmp / "fp32"
            fp32_dir.mkdir()
            fp32 = self._build(hub, "fp32", fp32_dir, plain_ctx)
            if how == "accuracy-aware":
                record, quant = quantize_with_search(fp32_dir, fp32, out_dir, ctx, tmp)
                extra: dict[str, Any] = {
                    "quantizer": "ai-edge-quantizer static_wi8_ai8, per-op recipe (kept_float: no_quantize)",
                    "accuracy_aware": record,
                }
            else:
                record, quant = quantize_with_onnx_ranges(hub, fp32_dir, fp32, out_dir, ctx, tmp)
                extra = {"quantizer": "ai-edge-quantizer static_wi8_ai8, onnxruntime's ranges", **record}
        recipe = {
            **fp32.recipe,
            "converter": "onnx2tf → Keras model → TFLiteConverter (fp32) → ai-edge-quantizer",
            "io": sorted({q["dtype"] for q in quant.values()}) or "float",
            "calibration_samples": len(ctx.calibration_samples or []),
            **extra,
        }
        versions = {**fp32.versions, "ai-edge-quantizer": version("ai-edge-quantizer")}
        if how != "accuracy-aware":
            import onnxruntime

            versions["onnxruntime"] = onnxruntime.__version__
        return BuildResult(
            files=[MODEL_FILE],
            recipe=recipe,
            quantization=quant,
            versions=versions,
            inputs=fp32.inputs,
            outputs=fp32.outputs,
        )


TARGETS.register("tflite")(TfliteTarget())


# -- litert-torch: straight from the PyTorch module -----------------------------------------------------


def _build_litert_torch(hub: Path, precision: str, out_dir: Path, ctx: BuildContext) -> BuildResult:
    """Convert the torch source's module with litert-torch in the worker process (no ONNX in between)."""
    import onnx

    from edge_sdk.converters.graph.onnx_model import tensor_specs
    from edge_sdk.converters.targets.tflite import litert_torch

    label = f"tflite:{precision}"
    in_specs, out_specs = tensor_specs(onnx.load(str(hub), load_external_data=False))
    with owned_tempdir("tflite") as tmp:
        try:
            job, fixed = litert_torch.prepare(
                ctx.source, in_specs, precision, tmp, (out_dir / MODEL_FILE).resolve()
            )
        except BadInputError as e:
            raise BadInputError(f"{label}: {e}") from None
        except StepError as e:
            raise _failure(label, precision, e.info, "") from None
        report = _convert(job, tmp, ctx, label, precision)
    pairs = [*zip(in_specs, report["inputs"], strict=True), *zip(out_specs, report["outputs"], strict=True)]
    renames = {s.name: d["name"] for s, d in pairs}
    inputs, _ = _specs(in_specs, report["inputs"], renames, True)
    outputs, _ = _specs(out_specs, report["outputs"], renames, False)
    return BuildResult(
        files=[MODEL_FILE],
        recipe={
            "converter": "torch.export → litert-torch"
            + (" → ai-edge-quantizer" if precision != "fp32" else ""),
            "litert_torch": report["converter"],
            "fixed_dims": fixed,
            "renamed": {k: v for k, v in renames.items() if k != v},
            "layouts": {s.name: f"{s.layout}→{s.stored_layout}" for s in inputs + outputs if s.layout},
            "layout_check_max_abs_error": report["layout_check_max_abs_error"],
            "int8_tensors": report["int8_tensors"],
        },
        versions=report["versions"],
        inputs=inputs,
        outputs=outputs,
    )
