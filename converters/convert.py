"""``convert()``: source → ONNX hub model → simplified → one checked artifact per target.

A call reads top to bottom: the targets are parsed and their options resolved (``converters/options.py``)
before the source is opened; the source is opened, specialised and simplified into the hub model; a
``Job`` (``converters/job.py``) gathers everything the targets' artifacts are made from; each target then
makes one artifact (``converters/make.py``: from the cache when it can), whose parity with the source is
checked.

Calibration goes by three names: ``calibration`` is what the caller gave (a path or an iterable),
``calibration_samples`` the checked list of input dicts the targets calibrate with, and
``calibration_record`` what a calibrated artifact's recipe says about them (``{"samples", "from"}``).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx

from edge_sdk.converters.calibration import HOW_TO_GIVE, CalibrationData, load_samples, random_samples
from edge_sdk.converters.graph.onnx_model import tensor_specs
from edge_sdk.converters.graph.simplify import simplify
from edge_sdk.converters.graph.specialize import fix_shapes, freeze_inputs
from edge_sdk.converters.job import Job, Request, Samples
from edge_sdk.converters.make import cache_keys, make_all
from edge_sdk.converters.options import resolve
from edge_sdk.converters.quantize.accuracy_aware import AccuracyGoal
from edge_sdk.converters.sources import Source, open_source
from edge_sdk.converters.targets import BuildContext, Progress, TargetFormat, parse_target
from edge_sdk.errors import BadInputError
from edge_sdk.manifest import Artifact, TensorSpec

if TYPE_CHECKING:
    from edge_sdk.devices.profile import Profile

log = logging.getLogger("edge_sdk.converters")

RANDOM_PARITY_SAMPLES = 8
FREE_DIM_SIZES = (1, 16, 64, 256, 1024)  # tried in turn for random parity inputs' symbolic dims


def convert(
    source: Any,
    targets: str | Iterable[str],
    *,
    out: str | os.PathLike[str] = "artifacts",
    calibration: CalibrationData | None = None,
    parity_data: CalibrationData | None = None,
    max_error: float | None = None,
    example_inputs: Any = None,
    input_names: list[str] | None = None,
    output_names: list[str] | None = None,
    dynamic_batch: bool = False,
    opset: int | None = None,
    name: str | None = None,
    fixed_inputs: dict[str, Any] | None = None,
    input_shapes: dict[str, list[int]] | None = None,
    options: dict[str, Any] | None = None,
    parity_samples: int = 32,
    progress: Progress | None = None,
    prune: Any = None,
    evaluate: Callable[[Any], float] | None = None,
    max_drop: float | str | None = None,
    cache: bool = True,
    device: str | Profile | None = None,
) -> list[Artifact]:
    """Convert ``source`` (an .onnx path, ``zoo:NAME``, or a torch module with ``example_inputs``) into one
    artifact per target (``"onnx:int8"``, ...) under ``out``.

    Every artifact's parity against the fp32 source is measured on ``parity_data`` (else the
    calibration data, else the example inputs, else random inputs) and recorded; with ``max_error`` a
    larger max abs error fails that target. A failing target does not stop the others: when any
    fails, ``ConversionFailed`` is raised after the rest are made, carrying both lists.

    ``fixed_inputs`` turns inputs into constants (e.g. ``{"sr": 16000}``) and inlines the ``If``
    branches they decide, so quantisers see the compute that would otherwise hide in subgraphs.
    ``input_shapes`` fixes dynamic input dims (e.g. ``{"input": [1, 576]}``) for converters that need
    static shapes.

    ``prune`` (a ``PruneSpec``, its dict, or a ratio; torch module sources) prunes a copy of the module
    before export and records what was removed under the recipe's ``pruning`` key.
    ``evaluate(session) -> float`` with ``max_drop`` (0.01: one point of the metric; "1%": relative)
    make int8 accuracy-aware: targets keep the most sensitive layers in float until the metric drops by
    at most that much.

    ``options`` (``{"per_channel": False}``) go to every target that takes them and allows the value;
    a ``"FORMAT.NAME"`` key (``"openvino.calibrator"``) to that format only. Each format's options, and
    how a value some formats refuse is shared out, are in ``converters/options.py``; all are checked
    before the source is opened.

    ``device`` (a device profile name such as ``"raspberry-pi-5"``, or a ``Profile``) names the board the
    artifacts are for; the manifest then says whether its CPU needs exact int8 kernels for 8-bit weights
    (option ``int8_weights``, see ``converters/quantize/int8_weights.py``).

    Results are cached (see ``converters/cache.py``): a request made before is copied from the cache
    (the artifact is then a ``ReusedArtifact`` naming the entry), and a target built before with the
    same inputs is not built (or calibrated) again. ``cache=False`` does all the work and refreshes the
    cache; an ``evaluate`` function cannot be keyed, so it turns the cache off for that call.
    """
    _check_name(name)
    parsed = _parse_targets(targets)
    out_dir = _out_folder(out)
    request = Request(
        targets=parsed,
        options=resolve([t for t, _ in parsed], options or {}),
        calibration=calibration,
        parity_data=parity_data,
        parity_samples=parity_samples,
        max_error=max_error,
        accuracy_goal=_accuracy_goal(max_drop, evaluate),
        evaluate=evaluate,
        device=_device_profile(device),
        name=name,
        progress=progress,
        cache=cache,
    )
    _check_calibration(request)
    prune_record = None
    if prune is not None:
        source, prune_record = _prune(source, example_inputs, prune)
    src = open_source(
        source,
        example_inputs=example_inputs,
        input_names=input_names,
        output_names=output_names,
        dynamic_batch=dynamic_batch,
        opset=opset,
        name=name,
    )
    hub, simplify_info, fixed = _prepare(src.model, fixed_inputs or {}, input_shapes or {})
    job = _job(request, src, hub, simplify_info, fixed, prune_record)
    return make_all(job, out_dir)


def _out_folder(out: str | os.PathLike[str]) -> Path:
    """Where the artifacts go: a folder, or a path where one can be made."""
    path = Path(out)
    if "\0" in str(path):
        raise BadInputError(f"out: {str(path)!r} holds a NUL character, which no path can")
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise BadInputError(f"out: {existing} is a file; give a folder for the artifacts")
    return path


def _check_name(name: str | None) -> None:
    """Refuse an artifact name that is not one plain path component: it becomes the folder
    ``out/NAME-FORMAT-PRECISION``, so a separator or ``..`` would write outside ``out``."""
    if name is None:
        return
    plain = (
        isinstance(name, str)
        and name != ""
        and not name.startswith(".")  # hidden, and the staging folders are hidden names beside it
        and not any(c in name for c in ("/", "\\", "\0"))
        and ".." not in name
    )
    if not plain:
        raise BadInputError(
            f"name {name!r} must be a single plain file name (no '/', '\\', '..', NUL or leading '.'); "
            f"it names the artifact folder inside out"
        )


def _parse_targets(targets: str | Iterable[str]) -> list[tuple[TargetFormat, str]]:
    """The requested (target, precision) pairs."""
    wanted = [targets] if isinstance(targets, str) else list(targets)
    wanted = [t for part in wanted for t in part.split(",") if t.strip()]
    if not wanted:
        raise BadInputError("no targets given; e.g. targets=['onnx:fp32', 'onnx:int8']")
    return [parse_target(t) for t in wanted]


def _check_calibration(request: Request) -> None:
    """Refuse calibrated precisions without calibration data before any work."""
    needing = [f"{t.name}:{p}" for t, p in request.targets if p in t.calibrated]
    if needing and request.calibration is None:
        raise BadInputError(
            f"{', '.join(needing)} is static quantisation and needs calibration data: {HOW_TO_GIVE}. "
            f"Or use int8-dynamic, which needs none"
        )


def _prepare(
    model: onnx.ModelProto, fixed_inputs: dict[str, Any], input_shapes: dict[str, list[int]]
) -> tuple[onnx.ModelProto, dict[str, Any], dict[str, np.ndarray]]:
    """Fix input values and shapes (if asked) and simplify; the simplifier's constant folding inlines
    the If branches that they decide."""
    fixed: dict[str, np.ndarray] = {}
    if fixed_inputs:
        model, fixed = freeze_inputs(model, fixed_inputs)
    if input_shapes:
        model = fix_shapes(model, input_shapes)
    hub, info = simplify(model)
    if fixed:
        info = {**info, "fixed_inputs": {k: v.tolist() for k, v in fixed.items()}}
    if input_shapes:
        info = {**info, "input_shapes": {k: list(v) for k, v in input_shapes.items()}}
    return hub, info, fixed


def _job(
    request: Request,
    src: Source,
    hub: onnx.ModelProto,
    simplify_info: dict[str, Any],
    fixed: dict[str, np.ndarray],
    prune_record: dict[str, Any] | None,
) -> Job:
    """Check the calibration data against the hub model, choose the parity inputs, and gather the job."""
    inputs, outputs = tensor_specs(hub)
    samples = load_samples(request.calibration, inputs, "calibration")
    parity_inputs, origin = _parity_inputs(request, samples, src, inputs, fixed)
    job = Job(
        request=request,
        source=src,
        hub=hub,
        inputs=inputs,
        outputs=outputs,
        simplify=simplify_info,
        parity_inputs=parity_inputs,
        parity_origin=origin,
        # The source's own outputs, computed once and only if some target is not taken from the cache.
        reference=functools.cache(lambda: src.reference([{**s, **fixed} for s in parity_inputs])),
        context=BuildContext(
            calibration_samples=samples,
            progress=request.progress,
            source=src,
            evaluate=request.evaluate,
            accuracy_goal=request.accuracy_goal,
            cache=request.cache,
            device=request.device,
        ),
        calibration_record=_calibration_record(request.calibration, samples),
        prune_record=prune_record,
    )
    if request.evaluate is not None:
        log.info("cache off for this call: evaluate is a function, which cannot be part of a cache key")
        return job
    # keyed even with cache=False: nothing is reused then, but what is built refreshes the cache
    return dataclasses.replace(job, keys=cache_keys(job))


def _parity_inputs(
    request: Request,
    calibration_samples: Samples | None,
    src: Source,
    specs: list[TensorSpec],
    fixed: dict[str, np.ndarray],
) -> tuple[Samples, str]:
    """The inputs parity is measured on, and where they came from: the parity data, else the calibration
    samples, else the source's example inputs, else random normal inputs."""
    limit = request.parity_samples
    given = load_samples(request.parity_data, specs, "parity")
    if given:
        return given[:limit], "parity data"
    if calibration_samples:
        return calibration_samples[:limit], "calibration"
    if src.examples:
        names = {s.name for s in specs}  # fixed inputs are constants now, not inputs
        return [{k: v for k, v in ex.items() if k in names} for ex in src.examples], "example"
    return _random_inputs(src, specs, fixed)


def _random_inputs(src: Source, specs: list[TensorSpec], fixed: dict[str, np.ndarray]) -> tuple[Samples, str]:
    """Random inputs the source accepts: at the shapes its catalog entry gives, else with its free dims
    (symbolic, past the batch) tried at growing sizes until it runs on them, since a graph may need more
    than one step or pixel (a reflect pad, a strided conv)."""
    known = src.input_shapes  # a zoo model's catalog says what it runs at
    specs = [dataclasses.replace(s, shape=known[s.name]) if s.name in known else s for s in specs]
    failures = []
    for free in FREE_DIM_SIZES:
        samples = random_samples(specs, RANDOM_PARITY_SAMPLES, free=free)
        try:
            src.reference([{**samples[0], **fixed}])
        except Exception as e:  # any runtime's own error: these sizes do not suit the graph
            failures.append(f"{free}: {' '.join(str(e).split())[:200]}")
            continue
        free_dims = any(not (isinstance(d, int) and d > 0) for s in specs for d in s.shape[1:])
        return samples, f"random normal, free dims {free}" if free_dims and free != 1 else "random normal"
    raise BadInputError(
        "the parity check needs inputs the model accepts, and random ones with free dims of "
        f"{', '.join(map(str, FREE_DIM_SIZES))} all failed ({'; '.join(failures)}); pass parity data "
        "(--parity-data) or calibration data (--calib), or fix the input shapes (--shape)"
    )


def _calibration_record(
    calibration: CalibrationData | None, calibration_samples: Samples | None
) -> dict[str, Any] | None:
    """What a calibrated artifact's recipe says of its calibration: how many samples, and where from (the
    path given, or "iterable")."""
    if calibration is None or calibration_samples is None:
        return None
    where = str(calibration) if isinstance(calibration, (str, os.PathLike)) else "iterable"
    return {"samples": len(calibration_samples), "from": where}


def _device_profile(device: str | Profile | None) -> Profile | None:
    """The ``Profile`` that ``device`` names (a profile name, or a Profile), or None."""
    from edge_sdk.devices.profile import profile_named

    return None if device is None else profile_named(device)


def _accuracy_goal(
    max_drop: float | str | None, evaluate: Callable[[Any], float] | None
) -> AccuracyGoal | None:
    """The targets' ``AccuracyGoal`` for ``max_drop`` (0.01 absolute, or "1%" relative), which needs the
    ``evaluate`` function that scores a converted model."""
    if max_drop is None:
        return None
    if evaluate is None:
        raise BadInputError("max_drop needs evaluate=, the function that scores a converted model")
    return AccuracyGoal.parse(max_drop)


def _prune(source: Any, example_inputs: Any, spec: Any) -> tuple[Any, dict[str, Any]]:
    """Prune a torch module source (``prune`` works on a copy: the user's module is left as it was)."""
    torch = sys.modules.get("torch")
    if torch is None or not isinstance(source, torch.nn.Module):
        raise BadInputError(
            f"prune= works on a PyTorch module source (pruning happens before export); got {source!r:.60}"
        )
    if example_inputs is None:
        raise BadInputError("prune= needs example_inputs to trace the module's channel dependencies")
    from edge_sdk.converters.prune import prune, prune_record

    module, result = prune(source, example_inputs, spec)
    return module, prune_record(result)
