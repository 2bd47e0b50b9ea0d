"""Conversion targets: each module here registers one format and the precisions it can make."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from edge_sdk.converters.options import Conflict, Option
from edge_sdk.converters.quantize.int8_weights import Int8Weights, choose
from edge_sdk.errors import BadInputError
from edge_sdk.manifest import TensorSpec
from edge_sdk.registry import Registry

if TYPE_CHECKING:
    from edge_sdk.converters.quantize.accuracy_aware import AccuracyGoal
    from edge_sdk.converters.sources import Source
    from edge_sdk.devices.profile import Profile

Progress = Callable[[str, int, "int | None"], None]


@dataclass
class BuildContext:
    """What a target gets besides the hub model: the checked calibration samples, its own options, a
    progress callback, and the source the hub was made from (for a target that can convert the
    framework's model directly).

    ``options`` holds exactly this target's options, typed and with defaults filled in
    (``converters/options.py``): ``convert()`` resolves them, and a target called directly gets them from
    ``options.defaults(target)``."""

    calibration_samples: list[dict[str, np.ndarray]] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    progress: Progress | None = None
    source: Source | None = None
    # Accuracy-aware int8: the user's ``evaluate(session) -> float`` (higher is better) and the drop it
    # may lose; both None means plain int8.
    evaluate: Callable[[Any], float] | None = None
    accuracy_goal: AccuracyGoal | None = None
    # Calibration results may be read from and kept in the conversion cache (``convert(cache=False)``
    # turns it off: the user asked for everything to be done again).
    cache: bool = True
    # The device profile the artifacts are for (``convert(device=...)``), or None: any device.
    device: Profile | None = None
    # How many bits int8 weights use, and why (converters/quantize/int8_weights.py).
    int8_weights: Int8Weights = field(default_factory=lambda: choose("auto", None))

    def report(self, stage: str, done: int, total: int | None) -> None:
        if self.progress is not None:
            self.progress(stage, done, total)


@dataclass
class BuildResult:
    """Files a target wrote into the staging directory, and the options it actually used.

    ``inputs``/``outputs`` replace the hub model's specs when the file stores tensors differently
    (other names, layouts or integer types); ``quantization`` then holds the integer tensors' scale
    and zero point, keyed by user-facing name.
    """

    files: list[str]
    recipe: dict[str, Any] = field(default_factory=dict)
    quantization: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    inputs: list[TensorSpec] | None = None
    outputs: list[TensorSpec] | None = None


class TargetFormat(Protocol):
    name: str
    precisions: dict[str, str]  # precision → one-line description
    calibrated: frozenset[str]  # precisions that need calibration data
    options: dict[str, Option]  # the options it reads, by name (``options.declare``)
    conflicts: tuple[Conflict, ...]  # option settings it cannot take together
    tools: tuple[str, ...]  # the packages whose versions can change what it writes (the cache keys them)

    def available(self) -> tuple[bool, str]:
        """Whether this converter can run here; if not, why (the pip extra to install)."""
        ...

    def build(self, hub: Path, precision: str, out_dir: Path, ctx: BuildContext) -> BuildResult: ...


TARGETS: Registry[TargetFormat] = Registry("target format", "edge_sdk.converters.targets")


def parse_target(text: str) -> tuple[TargetFormat, str]:
    """``"onnx:int8"`` → (the onnx target, ``"int8"``); a bare format means fp32."""
    fmt, _, precision = text.strip().partition(":")
    target = TARGETS.get(fmt)
    precision = precision or "fp32"
    if precision not in target.precisions:
        able = [name for name, t in TARGETS if precision in t.precisions]
        if able:
            raise BadInputError(
                f"{fmt} cannot make {precision}; formats that can: {', '.join(able)} "
                f"({fmt} makes: {', '.join(target.precisions)})"
            )
        raise BadInputError(
            f"unknown precision '{precision}' for {fmt}; choose from: {', '.join(target.precisions)}"
        )
    return target, precision


def all_targets() -> list[str]:
    """Every ``format:precision`` pair the installed targets can make."""
    return [f"{name}:{p}" for name, t in TARGETS for p in t.precisions]


def unavailable_formats() -> dict[str, str]:
    """Registered formats whose converter cannot run here, with the reason (e.g. the pip extra)."""
    unavailable = {}
    for name, target in TARGETS:
        ok, why = target.available()
        if not ok:
            unavailable[name] = why
    return unavailable
