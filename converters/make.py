"""Making a job's artifacts, one per target: from the conversion cache when it can, else built, described
in a manifest, and checked against the source (parity, and the reference set ``edge-sdk verify`` re-runs)."""

from __future__ import annotations

import copy
import datetime as _dt
import hashlib
import logging
import shutil
from pathlib import Path
from typing import Any

import onnx

from edge_sdk.converters import cache as _cache
from edge_sdk.converters.job import Job, Samples
from edge_sdk.converters.parity import ParityCollapsed, compare, gate, limits_for
from edge_sdk.converters.targets import BuildContext, BuildResult, TargetFormat
from edge_sdk.errors import ConversionError, EdgeSDKError
from edge_sdk.manifest import Artifact, file_entry, owned_tempdir, staging_dir, write_manifest
from edge_sdk.version import __version__

log = logging.getLogger("edge_sdk.converters")


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


def cache_keys(job: Job) -> dict[str, Any]:
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


def make_all(job: Job, out: Path) -> list[Artifact]:
    """One artifact per target; a failing target does not stop the others (see ``convert``)."""
    targets = job.request.targets
    made: list[Artifact] = []
    errors: dict[str, ConversionError] = {}
    with owned_tempdir("convert") as tmp:
        hub_path = tmp / "hub.onnx"
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
        entry = _cache.lookup_artifact(artifact_key) if job.request.cache else None
        if entry is not None:
            log.info("%s: reused cached artifact %s", art_name, entry)
            ctx.report("cache", 1, 1)
            return _cache.reuse_artifact(entry, final)
    expected = job.reference()  # before anything is written: a source that does not run is the user's error
    with staging_dir(final) as stage:
        artifact = _staged(job, target, precision, art_name, hub_path, stage, ctx, build_key, expected)
    artifact.path = final
    if artifact_key:
        _cache.store_artifact(artifact_key, final, replace=not job.request.cache)
    return artifact


def _staged(
    job: Job,
    target: TargetFormat,
    precision: str,
    art_name: str,
    hub_path: Path,
    stage: Path,
    ctx: BuildContext,
    build_key: str | None,
    expected: Samples,
) -> Artifact:
    """The artifact made in ``stage`` from the cached build (``cache.reuse_build`` checks its files) or a
    new one, checked against the source. A cached build whose outputs collapse is built again once, with
    a warning; a new one that collapses fails. Either way it leaves the cache."""
    result = _cache.reuse_build(build_key, stage) if build_key and job.request.cache else None
    reused = result is not None
    if result is not None:
        log.info("%s: reused the cached build %s", art_name, build_key)
    else:
        result = _build(target, precision, hub_path, stage, ctx, build_key, refresh=not job.request.cache)
    while True:
        try:
            return _checked(job, target, precision, art_name, stage, result, expected, ctx)
        except ParityCollapsed as e:
            if build_key:
                _cache.drop_build(build_key)
            if not reused:
                raise
            log.warning("%s: the cached build %s collapsed (%s); building it again", art_name, build_key, e)
            _empty(stage)
            result, reused = _build(target, precision, hub_path, stage, ctx, build_key), False


def _build(
    target: TargetFormat,
    precision: str,
    hub_path: Path,
    stage: Path,
    ctx: BuildContext,
    key: str | None,
    refresh: bool = False,
) -> BuildResult:
    """Build ``target`` at ``precision`` into ``stage``, and keep the build in the cache under ``key``
    (``refresh``: replacing the one there)."""
    result = target.build(hub_path, precision, stage, ctx)
    if key:
        _cache.store_build(key, stage, result, replace=refresh)
    return result


def _checked(
    job: Job,
    target: TargetFormat,
    precision: str,
    art_name: str,
    stage: Path,
    result: BuildResult,
    expected: Samples,
    ctx: BuildContext,
) -> Artifact:
    """The staged build described in a manifest, its parity measured and gated (``parity.gate``)."""
    artifact = _manifest(job, target, precision, art_name, stage, result)
    write_manifest(artifact, stage)
    _check_parity(job, artifact, stage, expected, ctx)
    write_manifest(artifact, stage)
    return artifact


def _empty(folder: Path) -> None:
    """Remove everything in ``folder``, leaving it in place."""
    for p in folder.iterdir():
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()


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
