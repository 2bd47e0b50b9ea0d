"""``convert()``: source → ONNX hub model → simplified → one checked artifact per target.

A call reads top to bottom: the targets are parsed and their options resolved (``converters/options.py``)
before the source is opened; the source is opened, specialised and simplified into the hub model; a
``Job`` gathers everything the targets' artifacts are made from; each target then makes one artifact (from
the cache when it can), whose parity with the source is checked.

Calibration goes by three names: ``calibration`` is what the caller gave (a path or an iterable),
``calibration_samples`` the checked list of input dicts the targets calibrate with, and
``calibration_record`` what a calibrated artifact's recipe says about them (``{"samples", "from"}``).
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as _dt
import functools
import hashlib
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx

from edge_sdk.converters import cache as _cache
from edge_sdk.converters.accuracy_aware import AccuracyGoal
from edge_sdk.converters.calibration import HOW_TO_GIVE, CalibrationData, load_samples, random_samples
from edge_sdk.converters.int8_weights import choose
from edge_sdk.converters.onnx_model import tensor_specs
from edge_sdk.converters.options import resolve
from edge_sdk.converters.parity import compare, gate, limits_for
from edge_sdk.converters.simplify import simplify
from edge_sdk.converters.sources import Source, open_source
from edge_sdk.converters.specialize import fix_shapes, freeze_inputs
from edge_sdk.converters.targets import BuildContext, BuildResult, Progress, TargetFormat, parse_target
from edge_sdk.errors import BadInputError, ConversionError, EdgeSDKError
from edge_sdk.manifest import Artifact, TensorSpec, file_entry, staging_dir, write_manifest
from edge_sdk.version import __version__

if TYPE_CHECKING:
    from edge_sdk.devices.profile import Profile

log = logging.getLogger("edge_sdk.converters")

RANDOM_PARITY_SAMPLES = 8
Samples = list[dict[str, np.ndarray]]


class ConversionFailed(ConversionError):
    """Some targets failed; ``artifacts`` holds those that were made, ``failures`` target → message."""

    def __init__(self, artifacts: list[Artifact], failures: dict[str, str]) -> None:
        self.artifacts = artifacts
        self.failures = failures
        lines = "\n".join(f"  {t}: {msg}" for t, msg in failures.items())
        made = ", ".join(a.name for a in artifacts) or "none"
        super().__init__(
            f"{len(failures)} of {len(failures) + len(artifacts)} targets failed:\n{lines}\nmade: {made}"
        )


@dataclass(frozen=True)
class Request:
    """What the caller asked for, checked before the source is opened."""

    targets: list[tuple[TargetFormat, str]]
    options: dict[str, dict[str, Any]]  # format name → that format's resolved options
    calibration: CalibrationData | None
    parity_data: CalibrationData | None
    parity_samples: int  # how many the parity check runs, at most
    max_error: float | None
    accuracy_goal: AccuracyGoal | None
    evaluate: Callable[[Any], float] | None
    device: Profile | None
    name: str | None
    progress: Progress | None
    cache: bool


@dataclass(frozen=True)
class Job:
    """Everything the call's artifacts are made from, gathered once for all its targets."""

    request: Request
    source: Source
    hub: onnx.ModelProto
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    simplify: dict[str, Any]  # what the simplifier did (and the inputs and shapes fixed before it)
    parity_inputs: Samples
    parity_origin: str  # where the parity inputs came from, as the parity report says
    reference: Callable[[], Samples]  # the source's outputs on the parity inputs, computed when first asked
    context: BuildContext  # what every target's build gets; ``context_for`` adds the target's own options
    calibration_record: dict[str, Any] | None
    prune_record: dict[str, Any] | None
    keys: dict[str, Any] | None = None  # the cache keys' shared part; None: the cache is off for this call

    @property
    def name(self) -> str:
        return self.request.name or self.source.name

    def context_for(self, target: TargetFormat) -> BuildContext:
        """The build context of ``target``: its own options, and the int8 weight width they choose."""
        options = self.request.options[target.name]
        # a format that does not declare int8_weights builds as the default setting would
        weights = choose(str(options.get("int8_weights", "auto")), self.context.device)
        return dataclasses.replace(self.context, options=options, int8_weights=weights)


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
    (option ``int8_weights``, see ``converters/int8_weights.py``).

    Results are cached (see ``converters/cache.py``): a request made before is copied from the cache
    (the artifact is then a ``ReusedArtifact`` naming the entry), and a target built before with the
    same inputs is not built (or calibrated) again. ``cache=False`` does all the work and refreshes the
    cache; an ``evaluate`` function cannot be keyed, so it turns the cache off for that call.
    """
    parsed = _parse_targets(targets)
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
    return _make_all(job, Path(out))


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
    parity_inputs, origin = _parity_inputs(request, samples, src, inputs)
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
    if request.cache and request.evaluate is not None:
        log.info("cache off for this call: evaluate is a function, which cannot be part of a cache key")
    if not request.cache or request.evaluate is not None:
        return job
    return dataclasses.replace(job, keys=_cache_keys(job))


def _parity_inputs(
    request: Request, calibration_samples: Samples | None, src: Source, specs: list[TensorSpec]
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
    return random_samples(specs, RANDOM_PARITY_SAMPLES), "random normal"


def _cache_keys(job: Job) -> dict[str, Any]:
    """What every artifact of the job is keyed by in the conversion cache, besides its own build."""
    goal, device = job.request.accuracy_goal, job.request.device
    return {
        "hub": hashlib.sha256(job.hub.SerializeToString()).hexdigest(),
        "source": job.source.provenance(),
        "framework": [job.source.framework, job.source.framework_version],
        "simplify": job.simplify,
        "calibration": _cache.samples_digest(job.context.calibration_samples),
        "calibration_from": job.calibration_record["from"] if job.calibration_record else None,
        "parity": [_cache.samples_digest(job.parity_inputs), job.parity_origin],
        "max_error": job.request.max_error,
        "max_drop": goal.to_dict() if goal else None,
        "pruning": job.prune_record,
        "device": device.name if device else None,
    }


def _build_key(job: Job, target: TargetFormat, precision: str, ctx: BuildContext) -> str:
    """The cache key of what ``target`` builds: only what its build reads."""
    assert job.keys is not None
    return _cache.digest(
        {
            "hub": job.keys["hub"],
            "framework": job.keys["framework"],
            "target": target.name,
            "precision": precision,
            "options": ctx.options,
            "calibration": job.keys["calibration"] if precision in target.calibrated else None,
            "max_drop": job.keys["max_drop"],
            "int8_weights": ctx.int8_weights.bits,
            "tools": _cache.tool_versions(target.tools),
        }
    )


def _make_all(job: Job, out: Path) -> list[Artifact]:
    """One artifact per target; a failing target does not stop the others (see ``convert``)."""
    targets = job.request.targets
    made: list[Artifact] = []
    errors: dict[str, ConversionError] = {}
    with tempfile.TemporaryDirectory() as tmp:
        hub_path = Path(tmp) / "hub.onnx"
        onnx.save(job.hub, str(hub_path))
        for i, (target, precision) in enumerate(targets):
            job.context.report("targets", i, len(targets))
            try:
                made.append(_make(job, target, precision, hub_path, out))
            except ConversionError as e:
                label = f"{target.name}:{precision}"
                log.debug("%s failed: %s", label, e)  # reported by the exception raised below
                errors[label] = e
        job.context.report("targets", len(targets), len(targets))
    if errors:
        if len(targets) == 1:
            raise next(iter(errors.values()))
        raise ConversionFailed(made, {t: str(e).removeprefix(f"{t}: ") for t, e in errors.items()})
    return made


def _make(job: Job, target: TargetFormat, precision: str, hub_path: Path, out: Path) -> Artifact:
    """``target``'s artifact at ``precision`` in ``out``: copied from the cache, or built (or its build
    reused), described, written and checked against the source."""
    art_name = f"{job.name}-{target.name}-{precision}"
    final = out / art_name
    ctx = job.context_for(target)
    build_key = artifact_key = None
    if job.keys is not None:
        build_key = _build_key(job, target, precision, ctx)
        artifact_key = _cache.digest({**job.keys, "build": build_key, "name": art_name})
        entry = _cache.lookup_artifact(artifact_key)
        if entry is not None:
            log.info("%s: reused cached artifact %s", art_name, entry)
            ctx.report("cache", 1, 1)
            return _cache.reuse_artifact(entry, final)
    expected = job.reference()  # before anything is written: a source that does not run is the user's error
    with staging_dir(final) as stage:
        result = _cache.reuse_build(build_key, stage) if build_key else None
        if result is not None:
            log.info("%s: reused the cached build %s", art_name, build_key)
        else:
            result = target.build(hub_path, precision, stage, ctx)
            if build_key:
                _cache.store_build(build_key, stage, result)
        artifact = _manifest(job, target, precision, art_name, stage, result)
        write_manifest(artifact, stage)
        _check_parity(job, artifact, stage, expected, ctx)
        write_manifest(artifact, stage)
    artifact.path = final
    if artifact_key:
        _cache.store_artifact(artifact_key, final)
    return artifact


def _manifest(
    job: Job, target: TargetFormat, precision: str, art_name: str, stage: Path, result: BuildResult
) -> Artifact:
    """The artifact's manifest: what the build wrote and used, and what the job records for every target."""
    recipe = {
        "target": f"{target.name}:{precision}",
        "simplify": job.simplify,
        "max_error": job.request.max_error,
        **result.recipe,
    }
    if job.request.device is not None:
        recipe["device"] = job.request.device.name
    if precision in target.calibrated:
        assert job.calibration_record is not None  # _check_calibration refused such a target without data
        recipe["calibration"] = dict(job.calibration_record)
    if job.prune_record is not None:
        recipe["pruning"] = job.prune_record
    versions = {"edge_sdk": __version__, "onnx": onnx.__version__, **result.versions}
    src = job.source
    if src.framework != "onnx" and src.framework_version:
        versions[src.framework] = src.framework_version
    return Artifact(
        name=art_name,
        format=target.name,
        precision=precision,
        files=[file_entry(stage, f) for f in result.files],
        inputs=copy.deepcopy(result.inputs or job.inputs),
        outputs=copy.deepcopy(result.outputs or job.outputs),
        source=src.provenance(),
        recipe=recipe,
        versions=versions,
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        quantization=result.quantization,
    )


def _check_parity(job: Job, artifact: Artifact, stage: Path, expected: Samples, ctx: BuildContext) -> None:
    """Measure the staged artifact against the source's outputs, keep a reference set in it, and fail it
    when the error exceeds ``max_error``."""
    artifact.parity, got = _parity(job, stage, artifact.name, expected, ctx)
    artifact.parity["reference_set"] = _reference_set(job, stage, expected, got)
    gate(artifact.parity, job.request.max_error, artifact.name)


def _parity(
    job: Job, stage: Path, art_name: str, reference: Samples, ctx: BuildContext
) -> tuple[dict[str, Any], Samples]:
    """Run the staged artifact on the parity samples and compare with the source's outputs; returns the
    report (with where it was measured) and the artifact's outputs."""
    from edge_sdk.runtimes import load
    from edge_sdk.runtimes.numerics import measured_on

    samples = job.parity_inputs
    try:
        session = load(stage)
        got = []
        for i, s in enumerate(samples):
            got.append(session.run(s))
            ctx.report("parity", i + 1, len(samples))
    except EdgeSDKError as e:
        raise ConversionError(f"{art_name}: the converted model does not run: {e}") from None
    report = compare(reference, got, job.parity_origin)
    report["reference"] = f"{job.source.framework} source (fp32)"
    report["backend"] = f"{session.selection.backend}/{session.selection.accelerator}"
    if session.inference_precision:
        report["inference_precision"] = session.inference_precision
    report["measured_on"] = measured_on(session)
    del session
    return report, got


def _reference_set(job: Job, stage: Path, expected: Samples, got: Samples) -> dict[str, Any]:
    """Keep a few parity samples with both models' outputs in the artifact, with the figures measured on
    them here and the limits a re-measurement elsewhere must hold (``edge-sdk verify``)."""
    from edge_sdk.verification import reference_set

    record = reference_set.write(stage, job.parity_inputs, expected, got)
    n = record["samples"]
    figures = compare(expected[:n], got[:n], job.parity_origin)
    record["figures"] = {
        name: {k: e[k] for k in ("max_abs_error", "cosine_similarity", "reference_max_abs")}
        for name, e in figures["outputs"].items()
    }
    record["limits"] = limits_for(figures, job.request.max_error)
    return record


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
