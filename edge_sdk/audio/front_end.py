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

import dataclasses
from typing import Any, ClassVar, Protocol, TypeVar

import numpy as np

from edge_sdk.errors import BadInputError
from edge_sdk.registry import Registry

KEY = "front_end"
DEFAULT = "mfcc"
F = TypeVar("F", bound="Geometry")


class FeatureInputError(BadInputError, ValueError):
    """Audio or a feature configuration the KWS front end cannot use (wrong dtype, shape, rate, keys)."""


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


def cpu_session(model: str | bytes, threads: int | None) -> Any:
    """An onnxruntime CPU session for a front end's fixed fp32 graph (a path or serialised bytes):
    ``threads`` intra-op threads (None: onnxruntime's default), one inter-op thread, warnings off.
    onnxruntime is a core dependency, whatever runtime runs the classifier behind the front end."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.inter_op_num_threads = 1
    if threads is not None:
        so.intra_op_num_threads = int(threads)
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


def frames_of(n_samples: int, win: int, hop: int) -> int:
    """Whole frames of ``win`` samples every ``hop`` in ``n_samples``; 0 when shorter than one."""
    return 0 if n_samples < win else 1 + (n_samples - win) // hop


class Geometry:
    """What the front ends' dataclasses share, from their ``kind``, ``sample_rate``, ``clip_seconds``,
    ``hop`` and ``win``: the window in samples, frames in a length, and the metadata round trip."""

    kind: ClassVar[str]
    sample_rate: int
    clip_seconds: float

    @property
    def hop(self) -> int:
        """Samples between frames (a field or a property of each front end)."""
        raise NotImplementedError

    @property
    def win(self) -> int:
        """Samples one frame depends on (a field or a property of each front end)."""
        raise NotImplementedError

    @property
    def clip_samples(self) -> int:
        """Samples in the window the classifier sees."""
        return int(round(self.clip_seconds * self.sample_rate))

    def n_frames(self, n_samples: int | None = None) -> int:
        """Whole frames in ``n_samples`` (default: one window); 0 when shorter than one frame."""
        n = self.clip_samples if n_samples is None else int(n_samples)
        return frames_of(n, self.win, self.hop)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able settings, the front end's name first (stored in the model file's metadata)."""
        return {KEY: self.kind, **dataclasses.asdict(self)}  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[F], d: Any) -> F:
        """The settings ``to_dict`` wrote; another front end's, or unknown keys, are a FeatureInputError
        (a newer front end must not be misread)."""
        if not isinstance(d, dict):
            raise FeatureInputError(f"KWS feature settings must be a JSON object, not {type(d).__name__}")
        d = dict(d)
        if d.get(KEY, cls.kind) != cls.kind:
            raise FeatureInputError(f"settings of front end {d[KEY]!r} given to {cls.kind!r}")
        d.pop(KEY, None)
        known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(d) - known)
        if unknown:
            raise FeatureInputError(f"unknown KWS feature settings {unknown}; known: {sorted(known)}")
        return cls(**d)
