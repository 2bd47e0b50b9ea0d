"""Between what the user passes and what the model file holds: layout transposition and integer I/O.

A converted model may store a tensor in another layout (onnx2tf's NHWC for an NCHW model) or as
integers (a full-integer TFLite model). The manifest records both sides, and ``Session.run`` uses these
functions so that every backend takes and returns the same arrays the source model did.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edge_sdk.errors import BadInputError
from edge_sdk.manifest import TensorSpec


def permutation(src: str, dst: str) -> tuple[int, ...]:
    """Axes order that turns an array laid out as ``src`` (e.g. ``NCHW``) into ``dst`` (``NHWC``)."""
    if sorted(src) != sorted(dst) or len(set(src)) != len(src):
        raise BadInputError(f"layouts '{src}' and '{dst}' do not name the same axes")
    return tuple(src.index(axis) for axis in dst)


def _moved(spec: TensorSpec) -> bool:
    return bool(spec.layout and spec.stored_layout and spec.layout != spec.stored_layout)


def quantize(a: np.ndarray, q: dict[str, Any]) -> np.ndarray:
    """Float → the stored integer type with the tensor's scale and zero point (round half to even,
    saturating), as TFLite's own quantize op does."""
    dtype = np.dtype(q["dtype"])
    info = np.iinfo(dtype)
    scaled = np.round(a.astype(np.float32) / np.float32(q["scale"])) + q["zero_point"]
    return np.clip(scaled, info.min, info.max).astype(dtype)


def dequantize(a: np.ndarray, q: dict[str, Any]) -> np.ndarray:
    """The stored integer type → float32."""
    return ((a.astype(np.float32) - np.float32(q["zero_point"])) * np.float32(q["scale"])).astype(np.float32)


def to_stored(spec: TensorSpec, a: np.ndarray, q: dict[str, Any] | None) -> np.ndarray:
    """An input as the user gave it → as the model file takes it."""
    if _moved(spec):
        a = np.ascontiguousarray(a.transpose(permutation(spec.layout, spec.stored_layout)))  # type: ignore[arg-type]
    return quantize(a, q) if q else a


def from_stored(spec: TensorSpec, a: np.ndarray, q: dict[str, Any] | None) -> np.ndarray:
    """An output as the model file gives it → as the source model gave it."""
    if q:
        a = dequantize(a, q)
    if _moved(spec):
        a = np.ascontiguousarray(a.transpose(permutation(spec.stored_layout, spec.layout)))  # type: ignore[arg-type]
    return a
