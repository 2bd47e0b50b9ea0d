"""``convert()``: source → ONNX hub model → simplified → one checked artifact per target."""

from __future__ import annotations

import copy
import datetime as _dt
import logging
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from edge_sdk._version import __version__
from edge_sdk.converters.calibration import HOW_TO_GIVE, CalibrationData, load_samples, random_samples
from edge_sdk.converters.onnx_model import tensor_specs
from edge_sdk.converters.parity import compare, gate
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
    """
    wanted = [targets] if isinstance(targets, str) else list(targets)
    wanted = [t for part in wanted for t in part.split(",") if t.strip()]
    if not wanted:
        raise BadInputError("no targets given; e.g. targets=['onnx:fp32', 'onnx:int8']")
    parsed = [parse_target(t) for t in wanted]
    known = {k for t, _ in parsed for k in t.options}
    unknown = sorted(set(options or {}) - known)
    if unknown:
        raise BadInputError(
            f"unknown option(s) {unknown} for {', '.join(wanted)}; "
            f"known: {', '.join(sorted(known)) or 'none'}"
        )
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
    reference = src.reference([{**s, **fixed} for s in samples])
    ctx = BuildContext(calibration=calib, options=dict(options or {}), progress=progress, source=src)
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
        "calibration": calibration,
    }
    made: list[Artifact] = []
    errors: dict[str, ConversionError] = {}
    with tempfile.TemporaryDirectory() as tmp:
        hub_path = Path(tmp) / "hub.onnx"
        onnx.save(hub, str(hub_path))
        for target, precision in parsed:
            label = f"{target.name}:{precision}"
            try:
                made.append(_make(target, precision, hub_path, Path(out), **common))
            except ConversionError as e:
                log.debug("%s failed: %s", label, e)  # reported by the exception raised below
                errors[label] = e
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
    reference: list[dict[str, np.ndarray]],
    max_error: float | None,
    ctx: BuildContext,
    calibration: Any,
) -> Artifact:
    from edge_sdk.runtimes import load

    art_name = f"{name}-{target.name}-{precision}"
    final = out / art_name
    with staging_dir(final) as stage:
        result = target.build(hub_path, precision, stage, ctx)
        recipe = {
            "target": f"{target.name}:{precision}",
            "simplify": simplify,
            "max_error": max_error,
            **result.recipe,
        }
        if precision in target.calibrated:
            recipe["calibration"] = {
                "samples": len(ctx.calibration or []),
                "from": str(calibration) if isinstance(calibration, (str, os.PathLike)) else "iterable",
            }
        versions = {"edge_sdk": __version__, "onnx": onnx.__version__, **result.versions}
        if src.framework != "onnx" and src.framework_version:
            versions[src.framework] = src.framework_version
        artifact = Artifact(
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
        write_manifest(artifact, stage)
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
        del session
        gate(report, max_error, art_name)
        artifact.parity = report
        write_manifest(artifact, stage)
    artifact.path = final
    return artifact
