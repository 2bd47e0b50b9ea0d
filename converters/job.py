"""A conversion's request and job: what the caller asked for, checked before the source is opened, and
everything the call's artifacts are made from, gathered once for all its targets."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx

from edge_sdk.converters.calibration import CalibrationData
from edge_sdk.converters.quantize.accuracy_aware import AccuracyGoal
from edge_sdk.converters.quantize.int8_weights import choose
from edge_sdk.converters.sources import Source
from edge_sdk.converters.targets import BuildContext, Progress, TargetFormat
from edge_sdk.manifest import TensorSpec

if TYPE_CHECKING:
    from edge_sdk.devices.profile import Profile

Samples = list[dict[str, np.ndarray]]


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
    keys: dict[str, Any] | None = None  # the cache keys' shared part; None: nothing of this call is cached

    @property
    def name(self) -> str:
        return self.request.name or self.source.name

    def context_for(self, target: TargetFormat) -> BuildContext:
        """The build context of ``target``: its own options, and the int8 weight width they choose."""
        options = self.request.options[target.name]
        # a format that does not declare int8_weights builds as the default setting would
        weights = choose(str(options.get("int8_weights", "auto")), self.context.device)
        return dataclasses.replace(self.context, options=options, int8_weights=weights)
