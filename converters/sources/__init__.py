"""Where a conversion starts: each module here registers a loader that brings one kind of source
(an ONNX file, a PyTorch module, ...) to the ONNX hub model with a way to compute reference outputs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import onnx

from edge_sdk.errors import BadInputError
from edge_sdk.registry import Registry

Sample = dict[str, np.ndarray]


@dataclass
class Source:
    """A source brought to ONNX: the hub model, its provenance, and the fp32 reference to compare with."""

    name: str
    model: onnx.ModelProto
    framework: str
    framework_version: str | None
    path: str | None
    sha256: str
    reference: Callable[[list[Sample]], list[dict[str, np.ndarray]]]
    examples: list[Sample] | None = None
    export: dict[str, Any] = field(default_factory=dict)
    # The framework's own object, for targets that convert it directly rather than from the hub model
    # (torch: ``(module, example_args)``); None for sources that are ONNX already.
    native: Any = None
    # Input shapes the model runs at (a zoo entry's ``shapes``), for parity inputs when none are given.
    input_shapes: dict[str, list[int]] = field(default_factory=dict)

    def provenance(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "sha256": self.sha256,
            "framework": self.framework,
            "framework_version": self.framework_version,
            "export": self.export,
        }


class SourceLoader(Protocol):
    def claims(self, obj: Any) -> bool: ...

    def load(self, obj: Any, **options: Any) -> Source: ...


SOURCES: Registry[SourceLoader] = Registry("source", "edge_sdk.converters.sources")


def open_source(obj: Any, **options: Any) -> Source:
    """Hand ``obj`` to the first loader that claims it."""
    for _, loader in SOURCES:
        if loader.claims(obj):
            return loader.load(obj, **options)
    raise BadInputError(
        f"cannot convert {obj!r:.80}: give an .onnx file, a zoo name (zoo:NAME) or a torch.nn.Module "
        f"with example_inputs"
    )
