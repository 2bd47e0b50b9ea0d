"""Numerical parity of a converted model against its fp32 source, and the gate that fails a conversion."""

from __future__ import annotations

from typing import Any

import numpy as np

from edge_sdk.errors import ConversionError

Outputs = dict[str, np.ndarray]


def _is_class_scores(a: np.ndarray) -> bool:
    # [batch, classes] of floats: the shape a classifier's logits or probabilities take.
    return a.ndim == 2 and a.shape[1] > 1 and np.issubdtype(a.dtype, np.floating)


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    # Plain ufunc sums, not BLAS: numpy's threaded OpenBLAS was seen spinning forever in dnrm2 here
    # (exec_blas waiting on its worker) after OpenVINO and the TFLite worker had run in the process.
    na, nb = float(np.sqrt(np.square(a).sum())), float(np.sqrt(np.square(b).sum()))
    if na == 0.0 and nb == 0.0:
        return 1.0
    if na == 0.0 or nb == 0.0:
        return 0.0
    return float(np.multiply(a, b).sum() / (na * nb))


# When a converted output no longer follows the source at all, whatever the user's gates: its values are
# not finite; or it points away from the source's (cosine under COLLAPSED_COSINE); or its scale (root mean
# square) is off by more than SCALE_FACTOR either way while its direction strays too (cosine under
# SCALE_COSINE); or it is one constant where the source's values
# spread over more than CONSTANT_SPREAD of their scale. Legitimate conversions stay far from all of them
# (bench/parity_floor.py measures it): the lowest cosine of any format and precision is 0.86 (silero-vad
# onnx:int8-dynamic, docs/conversion-matrix.md), a cosine of 0.86 bounds the error's scale to 0.6 of the
# source's, and an 8-bit output cannot round a spread of 5% of its range (13 of its steps) to one value.
# Damaged weights land far outside (seen: cosine 0.000; flipped float weights: values 300× too large).
# On random inputs the cosine is no such sign: far from the data a model was made for, a recurrent state
# fed noise diverges legitimately (Silero VAD int8-dynamic: cosine 0.23 on random normal inputs, 0.86 on
# speech), so there only the scale, the finite values and a constant output are judged.
COLLAPSED_COSINE = 0.3
SCALE_FACTOR = 4.0
# A scale alone is no sign: an output near zero (a VAD's speech probability over silence, 0.002) may come
# out of an int8 model 18 times larger (0.04), pointing the same way; the scale counts when the direction
# strays as well (flipped weights: 300 times larger at cosine 0.43).
SCALE_COSINE = 0.9
CONSTANT_SPREAD = 0.05


def _rms(a: np.ndarray) -> float:
    return float(np.sqrt(np.square(a).mean())) if a.size else 0.0


def _collapse(ref: np.ndarray, got: np.ndarray, cosine: float, random_inputs: bool) -> str | None:
    """Why the candidate output ``got`` (flattened, float64) has collapsed against ``ref``; None if not."""
    bad = ~np.isfinite(got) & np.isfinite(ref)
    if bad.any():
        return f"{int(bad.sum())} of {got.size} values are NaN or infinite"
    finite = np.isfinite(ref)
    ref, got = ref[finite], got[finite]
    scale = float(np.abs(ref).max()) if ref.size else 0.0
    if scale == 0.0:  # an all-zero reference has no direction or scale to follow
        return None
    if cosine < COLLAPSED_COSINE and not random_inputs:
        return f"cosine similarity {cosine:.3f} with the source's values (below {COLLAPSED_COSINE})"
    ratio = _rms(got) / _rms(ref)
    if not 1 / SCALE_FACTOR <= ratio <= SCALE_FACTOR and cosine < SCALE_COSINE:
        return f"its values are {ratio:.3g}× the size of the source's (root mean square)"
    if np.ptp(got) == 0.0 and np.ptp(ref) > CONSTANT_SPREAD * scale:
        return f"every value is {got[0]:.4g} where the source's range from {ref.min():.4g} to {ref.max():.4g}"
    return None


def compare(
    reference: list[Outputs], candidate: list[Outputs], inputs: str, random_inputs: bool | None = None
) -> dict[str, Any]:
    """Per-output and overall max/mean absolute error, cosine similarity and (for class-score outputs)
    top-1 agreement, over all samples. ``inputs`` says where the samples came from; ``random_inputs``
    whether they are random (by default, when ``inputs`` says so), which changes what counts as collapsed."""
    if random_inputs is None:
        random_inputs = inputs.startswith("random")
    per_output: dict[str, dict[str, Any]] = {}
    for name in reference[0]:
        ref = [np.asarray(r[name]) for r in reference]
        got = [np.asarray(c[name]) for c in candidate]
        for i, (r, g) in enumerate(zip(ref, got, strict=True)):
            if r.shape != g.shape:
                raise ConversionError(
                    f"output '{name}' of sample {i} has shape {list(g.shape)}, "
                    f"the source gives {list(r.shape)}"
                )
        flat_r = np.concatenate([r.astype(np.float64).ravel() for r in ref])
        flat_g = np.concatenate([g.astype(np.float64).ravel() for g in got])
        err = np.abs(flat_r - flat_g)
        cosine = _cosine(flat_r, flat_g)
        entry: dict[str, Any] = {
            "max_abs_error": float(err.max()) if err.size else 0.0,
            "mean_abs_error": float(err.mean()) if err.size else 0.0,
            "cosine_similarity": cosine,
            "reference_max_abs": float(np.abs(flat_r).max()) if flat_r.size else 0.0,
            "top1_agreement": None,
            "collapsed": _collapse(flat_r, flat_g, cosine, random_inputs),
        }
        if all(_is_class_scores(r) for r in ref):
            top_r = np.concatenate([r.argmax(axis=1) for r in ref])
            top_g = np.concatenate([g.argmax(axis=1) for g in got])
            entry["top1_agreement"] = float((top_r == top_g).mean())
        per_output[name] = entry
    tops = [e["top1_agreement"] for e in per_output.values() if e["top1_agreement"] is not None]
    return {
        "inputs": inputs,
        "samples": len(reference),
        "max_abs_error": max(e["max_abs_error"] for e in per_output.values()),
        "mean_abs_error": float(np.mean([e["mean_abs_error"] for e in per_output.values()])),
        "cosine_similarity": min(e["cosine_similarity"] for e in per_output.values()),
        "top1_agreement": min(tops) if tops else None,
        "outputs": per_output,
    }


class ParityCollapsed(ConversionError):
    """The converted model's outputs no longer follow the source at all (see ``COLLAPSED_COSINE``): a
    failure whatever the gates, since no precision explains it; a damaged build or a broken converter
    does."""


def collapsed(report: dict[str, Any]) -> list[str]:
    """One line per output of ``report`` that collapsed, saying how (empty when none did)."""
    return [f"output '{n}': {e['collapsed']}" for n, e in report["outputs"].items() if e.get("collapsed")]


def gate(report: dict[str, Any], max_error: float | None, what: str) -> None:
    """Record the limit in ``report`` and raise ConversionError, with the figures, when it is missed;
    ``ParityCollapsed`` when an output collapsed, with or without a limit."""
    report["max_error_limit"] = max_error
    broken = collapsed(report)
    if broken:
        report["passed"] = False
        raise ParityCollapsed(
            f"{what}: parity check failed: the converted model's outputs no longer follow the source "
            f"({'; '.join(broken)}; over {report['samples']} samples of {report['inputs']} inputs). "
            f"No precision explains this: the model files are damaged or the converter broke it; "
            f"convert again with --no-cache, or report the model"
        )
    report["passed"] = max_error is None or report["max_abs_error"] <= max_error
    if not report["passed"]:
        worst = max(report["outputs"].items(), key=lambda kv: kv[1]["max_abs_error"])
        raise ConversionError(
            f"{what}: parity check failed: max abs error {report['max_abs_error']:.3g} > limit "
            f"{max_error:.3g} (worst output '{worst[0]}': mean abs error {worst[1]['mean_abs_error']:.3g}, "
            f"cosine {worst[1]['cosine_similarity']:.6f}, over {report['samples']} samples of "
            f"{report['inputs']} inputs); loosen --max-error, give calibration data closer to real "
            f"inputs, or use a higher precision"
        )


# Limits a re-measurement (``edge-sdk verify``) must hold, per output, when the user gave no max_error:
# twice the converting machine's max abs error plus 1% of the output's range, and a cosine at most twice
# as far from 1 (never tighter than 1e-4). Computing alike (an exact int8 kernel, another
# summation order) stays far inside them; a saturating int8 kernel or a wrong layer does not.
_ERROR_FACTOR, _RANGE_SHARE, _COSINE_FACTOR, _COSINE_FLOOR = 2.0, 0.01, 2.0, 1e-4


def limits_for(report: dict[str, Any], max_error: float | None) -> dict[str, dict[str, float]]:
    """Per output, the max abs error and the cosine a later measurement of the same inputs must hold."""
    limits = {}
    for name, e in report["outputs"].items():
        error = (
            max_error
            if max_error is not None
            else _ERROR_FACTOR * e["max_abs_error"] + _RANGE_SHARE * e["reference_max_abs"]
        )
        cosine = 1.0 - max(_COSINE_FACTOR * (1.0 - e["cosine_similarity"]), _COSINE_FLOOR)
        limits[name] = {"max_abs_error": float(error), "cosine_similarity": float(cosine)}
    return limits


def outside(report: dict[str, Any], limits: dict[str, dict[str, float]]) -> list[str]:
    """What in ``report`` misses ``limits``, one line per figure (empty when everything holds); an output
    that collapsed misses them whatever they are."""
    missed = collapsed(report)
    for name, limit in limits.items():
        e = report["outputs"][name]
        if e["max_abs_error"] > limit["max_abs_error"]:
            missed.append(
                f"output '{name}': max abs error {e['max_abs_error']:.4g} > {limit['max_abs_error']:.4g}"
            )
        if e["cosine_similarity"] < limit["cosine_similarity"]:
            missed.append(
                f"output '{name}': cosine {e['cosine_similarity']:.6f} < {limit['cosine_similarity']:.6f}"
            )
    return missed
