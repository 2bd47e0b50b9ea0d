"""``convert()``: source → ONNX hub model → simplified → one checked artifact per target."""

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
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from edge_sdk._version import __version__
from edge_sdk.converters import cache as _cache
from edge_sdk.converters.calibration import HOW_TO_GIVE, CalibrationData, load_samples, random_samples
from edge_sdk.converters.int8_weights import choose
from edge_sdk.converters.onnx_model import tensor_specs
from edge_sdk.converters.options import resolve
from edge_sdk.converters.parity import compare, gate, limits_for
from edge_sdk.converters.simplify import simplify
from edge_sdk.converters.sources import Source, open_source
from edge_sdk.converters.specialize import fix_shapes, freeze_inputs
from edge_sdk.converters.targets import BuildContext, Progress, TargetFormat, parse_target
from edge_sdk.errors import BadInputError, ConversionError, EdgeSDKError
from edge_sdk.manifest import Artifact, TensorSpec, file_entry, staging_dir, write_manifest

log = logging.getLogger("edge_sdk.converters")

RANDOM_PARITY_SAMPLES = 8


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


def _parity_inputs(
    parity_data: CalibrationData | None,
    calib: list[dict[str, np.ndarray]] | None,
    src: Source,
    specs: list[TensorSpec],
    limit: int,
) -> tuple[list[dict[str, np.ndarray]], str]:
    given = load_samples(parity_data, specs, "parity")
    if given:
        return given[:limit], "parity data"
    if calib:
        return calib[:limit], "calibration"
    if src.examples:
        names = {s.name for s in specs}  # fixed inputs are constants now, not inputs
        return [{k: v for k, v in ex.items() if k in names} for ex in src.examples], "example"
    return random_samples(specs, RANDOM_PARITY_SAMPLES), "random normal"


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
    device: Any = None,
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

    ``device`` (a device profile name such as ``"raspberry-pi-5"``, or a ``Profile``) names the board the
    artifacts are for; the manifest then says whether its CPU needs exact int8 kernels for 8-bit weights
    (option ``int8_weights``, see ``converters/int8_weights.py``).

    Results are cached (see ``converters/cache.py``): a request made before is copied from the cache
    (the artifact is then a ``ReusedArtifact`` naming the entry), and a target built before with the
    same inputs is not built (or calibrated) again. ``cache=False`` does all the work and refreshes the
    cache; an ``evaluate`` function cannot be keyed, so it turns the cache off for that call.
    """
    wanted = [targets] if isinstance(targets, str) else list(targets)
    wanted = [t for part in wanted for t in part.split(",") if t.strip()]
    if not wanted:
        raise BadInputError("no targets given; e.g. targets=['onnx:fp32', 'onnx:int8']")
    parsed = [parse_target(t) for t in wanted]
    target_options = resolve([t for t, _ in parsed], options or {})
    if max_drop is not None and evaluate is None:
        raise BadInputError("max_drop needs evaluate=, the function that scores a converted model")
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
    in_specs, out_specs = tensor_specs(hub)
    calib = load_samples(calibration, in_specs, "calibration")
    needing = [f"{t.name}:{p}" for t, p in parsed if p in t.calibrated]
    if needing and calib is None:
        raise BadInputError(
            f"{', '.join(needing)} is static quantisation and needs calibration data: {HOW_TO_GIVE}. "
            f"Or use int8-dynamic, which needs none"
        )
    samples, origin = _parity_inputs(parity_data, calib, src, in_specs, parity_samples)
    # The source's own outputs, computed once and only if some target is not taken from the cache.
    reference = functools.cache(lambda: src.reference([{**s, **fixed} for s in samples]))
    profile = _device_profile(device)
    ctx = BuildContext(
        device=profile,
        calibration_samples=calib,
        progress=progress,
        source=src,
        evaluate=evaluate,
        accuracy_goal=_accuracy_goal(max_drop),
        cache=cache,
    )
    if cache and evaluate is not None:
        log.info("cache off for this call: evaluate is a function, which cannot be part of a cache key")
    keys = {
        "hub": hashlib.sha256(hub.SerializeToString()).hexdigest(),
        "source": src.provenance(),
        "framework": [src.framework, src.framework_version],
        "simplify": simplify_info,
        "calibration": _cache.samples_digest(calib),
        "calibration_from": _calibration_from(calibration),
        "parity": [_cache.samples_digest(samples), origin],
        "max_error": max_error,
        "max_drop": max_drop,
        "pruning": prune_record,
        "device": profile.name if profile else None,
    }
    common = {
        "name": name or src.name,
        "src": src,
        "in_specs": in_specs,
        "out_specs": out_specs,
        "simplify": simplify_info,
        "samples": samples,
        "origin": origin,
        "reference": reference,
        "max_error": max_error,
        "ctx": ctx,
        "target_options": target_options,
        "calibration": calibration,
        "keys": keys if cache and evaluate is None else None,
        "prune_record": prune_record,
    }
    made: list[Artifact] = []
    errors: dict[str, ConversionError] = {}
    with tempfile.TemporaryDirectory() as tmp:
        hub_path = Path(tmp) / "hub.onnx"
        onnx.save(hub, str(hub_path))
        for i, (target, precision) in enumerate(parsed):
            label = f"{target.name}:{precision}"
            ctx.report("targets", i, len(parsed))
            try:
                made.append(_make(target, precision, hub_path, Path(out), **common))
            except ConversionError as e:
                log.debug("%s failed: %s", label, e)  # reported by the exception raised below
                errors[label] = e
        ctx.report("targets", len(parsed), len(parsed))
    if errors:
        if len(parsed) == 1:
            raise next(iter(errors.values()))
        raise ConversionFailed(made, {t: str(e).removeprefix(f"{t}: ") for t, e in errors.items()})
    return made


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


def _make(
    target: TargetFormat,
    precision: str,
    hub_path: Path,
    out: Path,
    *,
    name: str,
    src: Source,
    in_specs: list[TensorSpec],
    out_specs: list[TensorSpec],
    simplify: dict[str, Any],
    samples: list[dict[str, np.ndarray]],
    origin: str,
    reference: Callable[[], list[dict[str, np.ndarray]]],
    max_error: float | None,
    ctx: BuildContext,
    target_options: dict[str, dict[str, Any]],
    calibration: Any,
    keys: dict[str, Any] | None,
    prune_record: dict[str, Any] | None,
) -> Artifact:
    opts = target_options[target.name]
    # int8_weights is each target's own option; the tflite target declares it too, so every one does
    ctx = dataclasses.replace(ctx, options=opts, int8_weights=choose(opts["int8_weights"], ctx.device))
    art_name = f"{name}-{target.name}-{precision}"
    final = out / art_name
    build_key = artifact_key = None
    if keys is not None:
        build_key = _cache.digest(
            {
                "hub": keys["hub"],
                "framework": keys["framework"],
                "target": target.name,
                "precision": precision,
                # Only the options this target reads change what it builds.
                "options": opts,
                "calibration": keys["calibration"] if precision in target.calibrated else None,
                "max_drop": keys["max_drop"],
                "int8_weights": ctx.int8_weights.bits,
                "tools": _cache.tool_versions(target.tools),
            }
        )
        artifact_key = _cache.digest({**keys, "build": build_key, "name": art_name})
        entry = _cache.lookup_artifact(artifact_key)
        if entry is not None:
            log.info("%s: reused cached artifact %s", art_name, entry)
            ctx.report("cache", 1, 1)
            return _cache.reuse_artifact(entry, final)
    expected = reference()  # before anything is written: a source that does not run is the user's error
    with staging_dir(final) as stage:
        result = _cache.reuse_build(build_key, stage) if build_key else None
        if result is not None:
            log.info("%s: reused the cached build %s", art_name, build_key)
        else:
            result = target.build(hub_path, precision, stage, ctx)
            if build_key:
                _cache.store_build(build_key, stage, result)
        artifact = _manifest(target, precision, art_name, stage, result, src, in_specs, out_specs, simplify)
        artifact.recipe["max_error"] = max_error
        if ctx.device is not None:
            artifact.recipe["device"] = ctx.device.name
        if precision in target.calibrated:
            artifact.recipe["calibration"] = {
                "samples": len(ctx.calibration_samples or []),
                "from": _calibration_from(calibration),
            }
        if prune_record is not None:
            artifact.recipe["pruning"] = prune_record
        write_manifest(artifact, stage)
        artifact.parity, got = _parity(stage, art_name, samples, origin, expected, src, ctx)
        artifact.parity["reference_set"] = _reference_set(stage, samples, expected, got, origin, max_error)
        gate(artifact.parity, max_error, art_name)
        write_manifest(artifact, stage)
    artifact.path = final
    if artifact_key:
        _cache.store_artifact(artifact_key, final)
    return artifact


def _manifest(
    target: TargetFormat,
    precision: str,
    art_name: str,
    stage: Path,
    result: Any,
    src: Source,
    in_specs: list[TensorSpec],
    out_specs: list[TensorSpec],
    simplify: dict[str, Any],
) -> Artifact:
    target_name = f"{target.name}:{precision}"
    recipe = {"target": target_name, "simplify": simplify, "max_error": None, **result.recipe}
    versions = {"edge_sdk": __version__, "onnx": onnx.__version__, **result.versions}
    if src.framework != "onnx" and src.framework_version:
        versions[src.framework] = src.framework_version
    return Artifact(
        name=art_name,
        format=target.name,
        precision=precision,
        files=[file_entry(stage, f) for f in result.files],
        inputs=copy.deepcopy(result.inputs or in_specs),
        outputs=copy.deepcopy(result.outputs or out_specs),
        source=src.provenance(),
        recipe=recipe,
        versions=versions,
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        quantization=result.quantization,
    )


def _parity(
    stage: Path,
    art_name: str,
    samples: list[dict[str, np.ndarray]],
    origin: str,
    reference: list[dict[str, np.ndarray]],
    src: Source,
    ctx: BuildContext,
) -> tuple[dict[str, Any], list[dict[str, np.ndarray]]]:
    """Run the staged artifact on the parity samples and compare with the source's outputs; returns the
    report (with where it was measured) and the artifact's outputs."""
    from edge_sdk.runtimes import load
    from edge_sdk.runtimes.numerics import measured_on

    try:
        session = load(stage)
        got = []
        for i, s in enumerate(samples):
            got.append(session.run(s))
            ctx.report("parity", i + 1, len(samples))
    except EdgeSDKError as e:
        raise ConversionError(f"{art_name}: the converted model does not run: {e}") from None
    report = compare(reference, got, origin)
    report["reference"] = f"{src.framework} source (fp32)"
    report["backend"] = f"{session.selection.backend}/{session.selection.accelerator}"
    if getattr(session, "inference_precision", None):
        report["inference_precision"] = session.inference_precision
    report["measured_on"] = measured_on(session)
    del session
    return report, got


def _reference_set(
    stage: Path,
    samples: list[dict[str, np.ndarray]],
    expected: list[dict[str, np.ndarray]],
    got: list[dict[str, np.ndarray]],
    origin: str,
    max_error: float | None,
) -> dict[str, Any]:
    """Keep a few parity samples with both models' outputs in the artifact, with the figures measured on
    them here and the limits a re-measurement elsewhere must hold (``edge-sdk verify``)."""
    from edge_sdk.verification import reference_set

    record = reference_set.write(stage, samples, expected, got)
    n = record["samples"]
    figures = compare(expected[:n], got[:n], origin)
    record["figures"] = {
        name: {k: e[k] for k in ("max_abs_error", "cosine_similarity", "reference_max_abs")}
        for name, e in figures["outputs"].items()
    }
    record["limits"] = limits_for(figures, max_error)
    return record


def _calibration_from(calibration: Any) -> str | None:
    if calibration is None:
        return None
    return str(calibration) if isinstance(calibration, (str, os.PathLike)) else "iterable"


def _device_profile(device: Any) -> Any:
    """The ``Profile`` that ``device`` names (a profile name, or a Profile), or None."""
    from edge_sdk.devices.profile import profile_named

    return None if device is None else profile_named(device)


def _accuracy_goal(max_drop: float | str | None) -> Any:
    """The targets' ``AccuracyGoal`` for ``max_drop`` (0.01 absolute, or "1%" relative)."""
    if max_drop is None:
        return None
    from edge_sdk.converters.accuracy_aware import AccuracyGoal

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
