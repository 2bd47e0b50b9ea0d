"""Keyword-spotting front ends: what turns audio into the frames a KWS model classifies.

A front end is a frozen dataclass registered here under its ``kind`` (``mfcc``, ``speech-embedding``,
``whisper-encoder``, ...). Every one has the same surface, so the training recipe, the ``kws.onnx`` stage
and the benchmarks never ask which one they hold:

* ``sample_rate``, ``clip_seconds``, ``clip_samples``: the window the classifier sees;
* ``hop`` and ``win`` (samples): frame ``i`` depends only on samples ``[i*hop, i*hop + win)``;
* ``n_frames(n)``, ``dims()``, ``describe()``;
* ``features(x, threads=, cache_dir=)``: float audio ``[..., samples]`` -> float32 ``[..., frames, dims]``
  (a front end that runs pretrained models pulls them from the zoo into ``cache_dir`` on first use);
* ``stream(threads=, cache_dir=)``: an object whose ``push(samples)`` returns the frames just
  completed, equal to ``features`` over everything pushed (each sample's frames computed once,
  shared by every window);
* ``to_dict()`` (with ``"front_end": kind``) and ``from_dict`` for the model file's metadata.

A KWS model names its front end in its metadata; a model written before front ends had names is MFCC.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

import numpy as np

from edge_sdk.errors import BadInputError
from edge_sdk.registry import Registry

KEY = "front_end"
DEFAULT = "mfcc"


class FrameStream(Protocol):
    """A front end on a live stream."""

    frames_out: int
    samples_in: int

    def push(self, samples: np.ndarray) -> np.ndarray: ...

    def reset(self) -> None: ...


class FrontEnd(Protocol):
    """What every registered front end provides (see the module docstring)."""

    kind: ClassVar[str]
    sample_rate: int
    clip_seconds: float

    @property
    def hop(self) -> int: ...

    @property
    def win(self) -> int: ...

    @property
    def clip_samples(self) -> int: ...

    def n_frames(self, n_samples: int | None = None) -> int: ...

    def dims(self) -> int: ...

    def describe(self) -> str: ...

    def to_dict(self) -> dict[str, Any]: ...

    def features(self, x: np.ndarray, *, threads: int | None = 1, cache_dir: Any = None) -> np.ndarray: ...

    def stream(self, *, threads: int | None = 1, cache_dir: Any = None) -> FrameStream: ...


front_ends: Registry[Any] = Registry("KWS front end", "edge_sdk.audio")


def from_dict(d: Any) -> Any:
    """The front end a model's metadata describes; no ``front_end`` key means MFCC (older models)."""
    if not isinstance(d, dict):
        raise BadInputError(f"KWS front-end settings must be a JSON object, not {type(d).__name__}")
    settings = dict(d)
    kind = settings.pop(KEY, DEFAULT)
    if not isinstance(kind, str):
        raise BadInputError(f"KWS front-end '{KEY}' must be a name, not {kind!r}")
    return front_ends.get(kind).from_dict(settings)


def make(kind: str, **settings: Any) -> Any:
    """A front end by name, with its default settings unless ``settings`` say otherwise."""
    return front_ends.get(kind)(**settings)


def with_kind(cfg: Any, settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` with the front end's name first, as ``to_dict`` writes them."""
    return {KEY: cfg.kind, **settings}


def frames_of(n_samples: int, win: int, hop: int) -> int:
    """Whole frames of ``win`` samples every ``hop`` in ``n_samples``; 0 when shorter than one."""
    return 0 if n_samples < win else 1 + (n_samples - win) // hop
