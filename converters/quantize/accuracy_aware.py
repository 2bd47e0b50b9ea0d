"""Accuracy-aware int8: quantise, evaluate with the user's metric, and keep the most sensitive layers in
float until the drop from fp32 is within the user's goal, or say that it cannot be.

The greedy search (:func:`search`) is shared by the onnx and tflite targets: each supplies a
``quantise(kept_float) -> Candidate`` callable and a measured sensitivity ranking
(``converters/quantize/sensitivity.py``). OpenVINO uses NNCF's own accuracy control; its outcome is
recorded in the same shape (:meth:`Outcome.record`), so every manifest says the same things: the goal,
the metric before (fp32) and after (int8), what stayed float, and how many evaluations it took.
"""

from __future__ import annotations

import datetime as _dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_sdk.errors import BadInputError, ConversionError, EdgeSDKError
from edge_sdk.manifest import Artifact, TensorSpec, file_entry, write_manifest

if TYPE_CHECKING:
    from edge_sdk.converters.targets import BuildContext

log = logging.getLogger("edge_sdk.converters.quantize.accuracy_aware")

Evaluate = Callable[[Any], float]


@dataclass(frozen=True)
class AccuracyGoal:
    """The most the int8 metric may fall below the fp32 one: ``max_drop`` in the metric's own units
    (``relative=False``, e.g. 0.01 = one point of accuracy) or as a fraction of the fp32 metric
    (``relative=True``; ``AccuracyGoal.parse("1%")`` gives 0.01 relative)."""

    max_drop: float
    relative: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.max_drop, (int, float)) or self.max_drop < 0:
            raise BadInputError(f"max_drop must be a number >= 0, got {self.max_drop!r}")

    @classmethod
    def parse(cls, value: AccuracyGoal | float | str) -> AccuracyGoal:
        """``0.01`` → absolute drop; ``"1%"`` → relative drop of 1 %; a goal passes through."""
        if isinstance(value, AccuracyGoal):
            return value
        if isinstance(value, str):
            text = value.strip()
            try:
                if text.endswith("%"):
                    return cls(float(text[:-1]) / 100.0, relative=True)
                return cls(float(text))
            except ValueError:
                raise BadInputError(f"max_drop '{value}' is not a number or a percentage like '1%'") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise BadInputError(f"max_drop must be a number or a percentage string, got {value!r}")
        return cls(float(value))

    def drop(self, baseline: float, metric: float) -> float:
        """The drop from ``baseline`` to ``metric`` in this goal's terms (absolute, or a fraction)."""
        d = baseline - metric
        return d / abs(baseline) if self.relative and baseline else d

    def met(self, baseline: float, metric: float) -> bool:
        return self.drop(baseline, metric) <= self.max_drop + 1e-12

    def describe(self) -> str:
        return f"{self.max_drop:.2%} relative" if self.relative else f"{self.max_drop:g} absolute"

    def to_dict(self) -> dict[str, Any]:
        return {"max_drop": self.max_drop, "drop_type": "relative" if self.relative else "absolute"}


@dataclass
class Candidate:
    """One quantised model made during the search: where its files are, and a Session over it."""

    directory: Path
    session: Any
    result: Any = None  # the target's BuildResult for it, when it has one


@dataclass
class Outcome:
    """What the search (or NNCF's accuracy control) reached."""

    goal: AccuracyGoal
    metric_fp32: float
    metric_int8_plain: float
    metric: float
    kept_float: list[str]
    evaluations: int
    met: bool
    method: str
    sensitivity: list[tuple[str, float]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        """The manifest's ``recipe["accuracy_aware"]``."""
        return {
            "method": self.method,
            "goal": self.goal.to_dict(),
            "metric_fp32": self.metric_fp32,
            "metric_int8_plain": self.metric_int8_plain,
            "metric_int8": self.metric,
            "drop": self.goal.drop(self.metric_fp32, self.metric),
            "goal_met": self.met,
            "kept_float": list(self.kept_float),
            "evaluations": self.evaluations,
            "sensitivity": [{"layer": n, "score": s} for n, s in self.sensitivity],
            "history": self.history,
        }

    def failure(self, label: str) -> ConversionError:
        """The error raised when the goal cannot be met: the best reached and what stayed float."""
        return ConversionError(
            f"{label}: accuracy-aware quantisation cannot meet the goal (drop ≤ {self.goal.describe()}): "
            f"fp32 scores {self.metric_fp32:.6g}, plain int8 {self.metric_int8_plain:.6g}, the best int8 "
            f"reached {self.metric:.6g} (drop {self.goal.drop(self.metric_fp32, self.metric):.6g}) with "
            f"{len(self.kept_float)} layer(s) in float: {', '.join(self.kept_float) or 'none'}; "
            f"{self.evaluations} evaluations. Loosen max_drop, give more calibration data, or keep fp32/fp16"
        )


def evaluate_session(evaluate: Evaluate, session: Any, label: str) -> float:
    """Call the user's ``evaluate``; a non-number or a crash becomes an error that says whose it was."""
    try:
        value = evaluate(session)
    except EdgeSDKError:
        raise
    except Exception as e:
        raise BadInputError(f"{label}: evaluate(session) raised {type(e).__name__}: {e}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadInputError(f"{label}: evaluate(session) must return a number, got {value!r:.80}")
    return float(value)


def search(
    quantise: Callable[[frozenset[str]], Candidate],
    evaluate: Evaluate,
    baseline: float,
    goal: AccuracyGoal,
    sensitivity: Sequence[tuple[str, float]],
    report: Callable[[str, int, int | None], None],
    *,
    plain: tuple[Candidate, float] | None = None,
    label: str = "int8",
) -> tuple[Candidate, Outcome]:
    """Greedy search: plain int8 first; while the drop is too large, keep the 1, 2, 4, ... most sensitive
    layers (``sensitivity``, worst first) in float. At least one layer stays quantised (else the model is
    simply fp32). Returns the first candidate that meets ``goal``, else the best one with ``met=False``;
    the caller decides whether that is an error (it is, for a conversion)."""
    names = [n for n, _ in sensitivity]
    sizes = [0]
    k = 1
    while k < len(names):
        sizes.append(k)
        k *= 2
    if len(names) > 1 and sizes[-1] != len(names) - 1:
        sizes.append(len(names) - 1)
    history: list[dict[str, Any]] = []
    best: tuple[Candidate, float, list[str]] | None = None
    plain_metric = float("nan")
    for step, size in enumerate(sizes):
        report("accuracy search", step, len(sizes))
        kept = names[:size]
        if size == 0 and plain is not None:
            cand, metric = plain
        else:
            cand = quantise(frozenset(kept))
            metric = evaluate_session(evaluate, cand.session, label)
        if size == 0:
            plain_metric = metric
        history.append({"kept_float": kept, "metric": metric, "drop": goal.drop(baseline, metric)})
        log.info("%s: %d layer(s) in float → metric %.6g (fp32 %.6g)", label, size, metric, baseline)
        if best is None or metric > best[1]:
            best = (cand, metric, kept)
        if goal.met(baseline, metric):
            break
    report("accuracy search", len(sizes), len(sizes))
    assert best is not None
    cand, metric, kept = best  # the first that met the goal, else the highest metric reached
    outcome = Outcome(
        goal=goal,
        metric_fp32=baseline,
        metric_int8_plain=plain_metric,
        metric=metric,
        kept_float=kept,
        evaluations=len(history) - (1 if plain is not None else 0),
        met=goal.met(baseline, metric),
        method="greedy exclusion by measured sensitivity (1, 2, 4, ... layers)",
        sensitivity=list(sensitivity),
        history=history,
    )
    return cand, outcome


def open_candidate(
    directory: Path,
    fmt: str,
    precision: str,
    files: list[str],
    inputs: list[TensorSpec],
    outputs: list[TensorSpec],
    quantization: dict[str, Any] | None = None,
) -> Any:
    """Write a minimal ``artifact.json`` beside a candidate's files and load it with ``edge_sdk.load``, so
    ``evaluate`` gets the same Session the finished artifact will give (layouts, integer I/O)."""
    from edge_sdk.runtimes import load

    art = Artifact(
        name=directory.name,
        format=fmt,
        precision=precision,
        files=[file_entry(directory, f) for f in files],
        inputs=inputs,
        outputs=outputs,
        source={"framework": "onnx", "note": "accuracy-aware search candidate"},
        recipe={"candidate": True},
        versions={},
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        quantization=dict(quantization or {}),
    )
    write_manifest(art, directory)
    return load(directory)


def wanted(ctx: BuildContext, precision: str) -> bool:
    """Whether ``ctx`` asks for the accuracy-aware path: int8 with both ``evaluate`` and a goal set."""
    return precision == "int8" and ctx.evaluate is not None and ctx.accuracy_goal is not None
