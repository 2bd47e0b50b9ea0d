"""The ``tflite`` target's litert-torch path: a PyTorch module converted to TFLite directly, without ONNX.

``save_program`` runs in the user's process: it exports the module with ``torch.export`` at the example
inputs and saves the program with ``torch.export.save``, which loads without importing the user's
class. ``run`` is the worker process's side (``worker.py``): litert-torch converts the loaded
program, the file is run on the example inputs and compared with the program to find each output's
axes order (litert-torch keeps the module's own layouts, NCHW stays NCHW, and the check proves it),
then ai-edge-quantizer makes fp16 weights or dynamic-range int8 when asked. litert-torch, JAX and
ai-edge-quantizer are imported only in the worker.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import io
import logging
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.converters.targets.tflite.onnx2tflite import StepError, describe, output_perm
from edge_sdk.errors import BadInputError
from edge_sdk.manifest import TensorSpec

PRECISIONS = ("fp32", "fp16", "int8-dynamic")
INSTALL = "pip install 'edge-sdk[litert-torch]'"

# -- the user's process ---------------------------------------------------------------------------------


def prepare(
    source: Any, in_specs: list[TensorSpec], precision: str, tmp: Path, output: Path
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The worker job for ``source``'s module, saved under ``tmp``, and the batch axes it fixed to 1.
    The module is converted at its example inputs' shapes; a symbolic batch axis of the hub model is
    fixed to 1, as the onnx2tf path does. Refuses what this path cannot make (BadInputError)."""
    if source is None or source.framework != "torch" or source.native is None:
        kind = source.framework if source is not None else "not given"
        raise BadInputError(
            f"converter=litert-torch converts a PyTorch module; this source is {kind} (use the default "
            f"converter, onnx2tf)"
        )
    if precision not in PRECISIONS:
        raise BadInputError(
            f"converter=litert-torch makes {', '.join(PRECISIONS)}; for calibrated int8 use the default "
            f"converter (onnx2tf)"
        )
    for module_name, package in (("litert_torch", "litert-torch"), ("ai_edge_litert", "ai-edge-litert")):
        if importlib.util.find_spec(module_name) is None:
            raise BadInputError(f"converter=litert-torch needs '{package}': {INSTALL}")
    module, args = source.native
    if [s.name for s in in_specs] != source.export["input_names"]:
        raise BadInputError("converter=litert-torch converts the module as it is; fixed_inputs cannot apply")
    fixed, probe = {}, []
    for spec, a in zip(in_specs, args, strict=True):
        if spec.shape and not (isinstance(spec.shape[0], int) and spec.shape[0] > 0):
            fixed[spec.name] = {"axis": 0, "was": spec.shape[0], "size": 1}
            a = a[:1]
        if any(isinstance(d, int) and d > 0 and d != n for d, n in zip(spec.shape, a.shape, strict=True)):
            raise BadInputError(
                f"converter=litert-torch converts at the example inputs' shapes; give example_inputs "
                f"of shape {spec.shape} rather than input_shapes"
            )
        probe.append(a.detach().cpu().contiguous())
    save_program(module, tuple(probe), tmp / "program.pt2")
    np.savez(tmp / "probe.npz", **{f"a{i}": a.numpy() for i, a in enumerate(probe)})  # type: ignore[arg-type]
    job = {
        "converter": "litert-torch",
        "program": str(tmp / "program.pt2"),
        "probe": str(tmp / "probe.npz"),
        "output": str(output),
        "precision": precision,
    }
    return job, fixed


def save_program(module: Any, args: tuple[Any, ...], path: Path) -> None:
    """Export ``module`` (in eval mode; its mode is restored) at ``args`` and save the program."""
    import torch

    from edge_sdk.converters.sources.torch_module import eval_mode

    noise = io.StringIO()
    try:
        with torch.no_grad(), eval_mode(module), contextlib.redirect_stdout(noise), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.export.export(module, args)
        torch.export.save(program, str(path))
    except Exception as e:
        logging.getLogger("edge_sdk.converters.tflite").debug("torch.export output:\n%s", noise.getvalue())
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise StepError(
            "export",
            f"torch.export.export failed for {type(module).__name__}: {type(e).__name__}: {first}",
        ) from None


# -- the worker process ---------------------------------------------------------------------------------


def _natural(name: str) -> tuple[str, int]:
    """Sort key that puts ``args_2`` before ``args_10``."""
    m = re.fullmatch(r"(.*?)(\d+)", name)
    return (m.group(1), int(m.group(2))) if m else (name, -1)


def _signature(
    content: bytes, args: list[np.ndarray], reference: list[np.ndarray]
) -> tuple[list[str], list[str]]:
    """The file's signature input and output names, in argument / output order, after checking that it
    has as many as the module and the same dtypes (litert-torch narrows int64/float64 to 32 bits, and
    Session.run feeds the dtype the module takes)."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=content)
    if len(interp.get_signature_list()) != 1:
        raise StepError("litert-torch", "the TFLite model has more than one signature, expected one")
    runner = interp.get_signature_runner()
    names = []
    for part, details, given in (
        ("input", runner.get_input_details(), args),
        ("output", runner.get_output_details(), reference),
    ):
        ordered = sorted(details, key=_natural)
        if len(ordered) != len(given):
            raise StepError(
                "litert-torch", f"the TFLite model has {len(ordered)} {part}s, the module {len(given)}"
            )
        for i, (name, a) in enumerate(zip(ordered, given, strict=True)):
            stored = np.dtype(details[name]["dtype"])
            if stored != a.dtype:
                raise StepError(
                    "litert-torch",
                    f"it stores {part} {i} as {stored} where the module has {a.dtype}; give the module "
                    f"{stored} {part}s",
                )
        names.append(ordered)
    return names[0], names[1]


def _quantize(content: bytes, precision: str) -> tuple[bytes, dict[str, Any]]:
    """fp16 weights or dynamic-range int8 with ai-edge-quantizer; returns the file and the recipe."""
    from ai_edge_quantizer import algorithm_manager, qtyping, quantizer, recipe, recipe_manager

    if precision == "int8-dynamic":
        used = recipe.dynamic_wi8_afp32()
    else:
        manager = recipe_manager.RecipeManager()
        manager.add_weight_only_config(
            regex=".*",
            operation_name=qtyping.TFLOperationName.ALL_SUPPORTED,
            num_bits=16,
            algorithm_key=algorithm_manager.AlgorithmName.FLOAT_CASTING,
        )
        used = manager.get_quantization_recipe()
    try:
        result = quantizer.Quantizer(bytearray(content), used).quantize(enable_progress_report=False)
    except Exception as e:
        raise StepError("quantize", f"{type(e).__name__}: {str(e).strip()[:500]}") from None
    return bytes(result.quantized_model), {"ai_edge_quantizer_recipe": used}


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def run(job: dict[str, Any], stage: Callable[[str], None]) -> dict[str, Any]:
    """Convert the saved program ``job["program"]`` at ``job["precision"]`` into ``job["output"]`` and
    return the report the ``tflite`` target turns into manifest specs (as the onnx2tf path does)."""
    import torch

    stage("litert-torch")
    with np.load(job["probe"]) as data:
        args = tuple(torch.from_numpy(data[f"a{i}"]) for i in range(len(data.files)))
    module = torch.export.load(job["program"]).module()
    # eval() raises on an exported module; its graph already holds the eval-mode ops, and this only
    # tells litert-torch so (it warns about modules in training mode).
    module.training = False
    with torch.no_grad():
        out = module(*args)
    reference = [t.numpy() for t in (out if isinstance(out, (tuple, list)) else [out])]
    import litert_torch

    try:
        content = bytes(litert_torch.convert(module, args).model_content())
    except Exception as e:
        first = str(e).strip().splitlines()[0][:500] if str(e).strip() else ""
        raise StepError("litert-torch", f"{type(e).__name__}: {first}") from None
    stage("layout")
    arrays = [a.numpy() for a in args]
    stored_in, stored_out = _signature(content, arrays, reference)
    from ai_edge_litert.interpreter import Interpreter

    got = Interpreter(model_content=content).get_signature_runner()(
        **dict(zip(stored_in, arrays, strict=True))
    )
    out_perms, worst = {}, 0.0
    for name, ref in zip(stored_out, reference, strict=True):
        out_perms[name], err = output_perm(
            name, ref, np.asarray(got[name]), made_by="litert-torch's model", source="the module"
        )
        worst = max(worst, err)
    used: dict[str, Any] = {"litert_torch.convert": "defaults (float32, int64 → int32)"}
    if job["precision"] != "fp32":
        stage("quantize")
        content, recipe = _quantize(content, job["precision"])
        used.update(recipe)
    Path(job["output"]).write_bytes(content)
    stage("describe")
    described = describe(content, stored_in, stored_out)
    for spec, a in zip(described["inputs"], arrays, strict=True):
        if spec["shape"] != list(a.shape):
            raise StepError("layout", f"litert-torch made input {spec['shape']} from {list(a.shape)}")
        spec["perm"] = list(range(a.ndim))
    for spec in described["outputs"]:
        spec["perm"] = out_perms[spec["name"]]
    return {
        **described,
        "converter": used,
        "layout_check_max_abs_error": worst,
        "versions": {
            "torch": torch.__version__,
            **{
                d: _version(d)
                for d in ("litert-torch", "litert-converter", "ai-edge-litert", "ai-edge-quantizer")
            },
        },
    }
