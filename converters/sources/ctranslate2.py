"""CTranslate2 models (a ``model.bin``, usually in a folder with ``config.json`` and a tokenizer) read into
numpy, without CTranslate2 itself: the weights of a converted Whisper, Transformer or wav2vec2 model, by the
names CTranslate2's model specs give them (``encoder/layer_0/self_attention/linear_0/weight``).

``model.bin`` layout (little-endian), binary versions 1 to 6::

    u32 binary_version
    (version >= 2)  str spec_name, u32 spec_revision
    u32 n_variables, then per variable:
        str name, u8 rank, u32 dims[rank],
        (version >= 4)  u8 dtype id (0 float32, 1 int8, 2 int16, 3 int32, 4 float16, 5 bfloat16),
                        u32 byte count
        (version < 4)   u8 item size (4 float32, 2 int16, 1 int8), u32 element count
        bytes
    (version >= 3)  u32 n_aliases, then per alias: str alias, str variable name

where ``str`` is a u16 length counting a trailing NUL, then that many bytes. Scalars (rank 0) carry a
model's settings, e.g. ``encoder/num_heads``.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.errors import BadInputError

SUPPORTED_BINARY_VERSIONS = range(1, 7)
BINARY_FILE = "model.bin"
CONFIG_FILE = "config.json"

# dtype ids of binary version >= 4, in the order of CTranslate2's DataType enum; bfloat16 (no numpy dtype)
# is read as its raw 16 bits and widened by ``Ct2Model.float32``.
_DTYPES: tuple[np.dtype[Any], ...] = tuple(np.dtype(t) for t in ("<f4", "i1", "<i2", "<i4", "<f2", "<u2"))
_BFLOAT16 = 5
# Binary versions 1-3 give only an item size (4 is float32, 2 int16, 1 int8).
_ITEM_SIZE_DTYPES: dict[int, np.dtype[Any]] = {4: np.dtype("<f4"), 2: np.dtype("<i2"), 1: np.dtype("i1")}
# A rank or name length beyond these is a damaged file, not a model.
_MAX_RANK = 8


class Ct2FormatError(BadInputError, ValueError):
    """A file that is not a CTranslate2 model.bin, is damaged, or has a layout this reader does not know."""


@dataclass
class Ct2Model:
    """A CTranslate2 model read into numpy: its spec, variables (aliases resolved to the same arrays),
    and the ``config.json`` beside it when there is one."""

    path: Path
    binary_version: int
    spec: str
    spec_revision: int
    variables: dict[str, np.ndarray]
    aliases: dict[str, str] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    bfloat16: frozenset[str] = frozenset()
    sha256: str = ""

    def scalar(self, name: str) -> int | float:
        """A rank-0 setting such as ``encoder/num_heads``, as a Python number."""
        value = self._get(name)
        if value.ndim != 0:
            raise Ct2FormatError(f"{self.path}: {name} has shape {list(value.shape)}, expected a scalar")
        return value.item()

    def float32(self, name: str) -> np.ndarray:
        """Variable ``name`` as float32: float16 and bfloat16 widened; int8/int16 weights multiplied back
        by their ``NAME_scale`` (per output row, as CTranslate2 quantises)."""
        value = self._get(name)
        if name in self.bfloat16:
            return (value.astype(np.uint32) << 16).view(np.float32)
        if value.dtype.kind == "f":
            return value.astype(np.float32)
        scale = self.variables.get(f"{name}_scale")
        if scale is None:
            raise Ct2FormatError(
                f"{self.path}: {name} is {value.dtype} with no {name}_scale to dequantise it with"
            )
        scale = scale.astype(np.float32)
        if scale.ndim == 1 and value.ndim >= 1:
            scale = scale.reshape((-1,) + (1,) * (value.ndim - 1))
        return (value.astype(np.float32) / scale).astype(np.float32)

    def _get(self, name: str) -> np.ndarray:
        try:
            return self.variables[name]
        except KeyError:
            raise Ct2FormatError(
                f"{self.path}: no variable {name!r} in this {self.spec} model "
                f"({len(self.variables)} variables)"
            ) from None


class _Cursor:
    """Reads the fields of a model.bin held in memory, naming the offset of whatever is cut short."""

    def __init__(self, data: bytes | memoryview, path: Path) -> None:
        self.data, self.path, self.pos = memoryview(data), path, 0

    def take(self, n: int, what: str) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise Ct2FormatError(
                f"{self.path}: truncated or damaged CTranslate2 model: {what} needs {n} bytes at offset "
                f"{self.pos}, the file has {len(self.data)}"
            )
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self, what: str) -> int:
        return int(self.take(1, what)[0])

    def u16(self, what: str) -> int:
        return int(struct.unpack("<H", self.take(2, what))[0])

    def u32(self, what: str) -> int:
        return int(struct.unpack("<I", self.take(4, what))[0])

    def string(self, what: str) -> str:
        raw = bytes(self.take(self.u16(f"{what} length"), what))
        if not raw.endswith(b"\0"):
            raise Ct2FormatError(f"{self.path}: damaged CTranslate2 model: {what} is not NUL-terminated")
        try:
            return raw[:-1].decode("utf-8")
        except UnicodeDecodeError:
            raise Ct2FormatError(f"{self.path}: damaged CTranslate2 model: {what} is not UTF-8") from None


def _binary_path(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    if p.is_dir():
        p = p / BINARY_FILE
    if not p.is_file():
        raise Ct2FormatError(f"{p}: no such file (give a CTranslate2 model.bin or the folder holding it)")
    return p


def _read_config(binary: Path) -> dict[str, Any]:
    cfg = binary.with_name(CONFIG_FILE)
    if not cfg.is_file():
        return {}
    try:
        data = json.loads(cfg.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise Ct2FormatError(f"{cfg}: not a readable JSON config ({e})") from None
    if not isinstance(data, dict):
        raise Ct2FormatError(f"{cfg}: expected a JSON object, got {type(data).__name__}")
    return data


def _variable(cur: _Cursor, version: int, index: int) -> tuple[str, np.ndarray, bool]:
    name = cur.string(f"name of variable {index}")
    rank = cur.u8(f"rank of {name}")
    if rank > _MAX_RANK:
        raise Ct2FormatError(f"{cur.path}: damaged CTranslate2 model: {name} claims rank {rank}")
    shape = tuple(cur.u32(f"dimension {d} of {name}") for d in range(rank))
    if version >= 4:
        type_id = cur.u8(f"dtype of {name}")
        if type_id >= len(_DTYPES):
            raise Ct2FormatError(
                f"{cur.path}: {name} has dtype id {type_id}; this reader knows ids 0-{len(_DTYPES) - 1} "
                f"(float32, int8, int16, int32, float16, bfloat16)"
            )
        dtype = _DTYPES[type_id]
        n_bytes = cur.u32(f"byte count of {name}")
    else:
        item = cur.u8(f"item size of {name}")
        if item not in _ITEM_SIZE_DTYPES:
            raise Ct2FormatError(
                f"{cur.path}: {name} has item size {item}; binary version {version} knows 1, 2 and 4"
            )
        dtype = _ITEM_SIZE_DTYPES[item]
        n_bytes = cur.u32(f"element count of {name}") * item
        type_id = -1
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if n_bytes != expected:
        raise Ct2FormatError(
            f"{cur.path}: damaged CTranslate2 model: {name} {list(shape)} {dtype} should hold {expected} "
            f"bytes, the file says {n_bytes}"
        )
    array = np.frombuffer(cur.take(n_bytes, f"data of {name}"), dtype=dtype).reshape(shape).copy()
    return name, array, type_id == _BFLOAT16


def read_ct2(path: str | os.PathLike[str]) -> Ct2Model:
    """Read a CTranslate2 ``model.bin`` (or the folder holding it, whose ``config.json`` is read too).

    Every variable keeps the dtype it was saved with; aliases name the same array as their target.
    A file that is not a CTranslate2 model, is cut short, or has a binary version this reader does not
    know raises Ct2FormatError (a BadInputError) saying what was found.
    """
    binary = _binary_path(path)
    try:
        data = binary.read_bytes()
    except OSError as e:
        raise Ct2FormatError(f"{binary}: cannot read ({e.strerror or e})") from None
    cur = _Cursor(data, binary)
    version = cur.u32("binary version")
    if version not in SUPPORTED_BINARY_VERSIONS:
        raise Ct2FormatError(
            f"{binary}: not a CTranslate2 model this reader supports: binary version {version} (the first "
            f"4 bytes), supported {SUPPORTED_BINARY_VERSIONS.start}-{SUPPORTED_BINARY_VERSIONS.stop - 1}"
        )
    spec, revision = "", 1
    if version >= 2:
        spec = cur.string("spec name")
        revision = cur.u32("spec revision")
    n_vars = cur.u32("variable count")
    variables: dict[str, np.ndarray] = {}
    bf16: set[str] = set()
    for i in range(n_vars):
        name, array, is_bf16 = _variable(cur, version, i)
        variables[name] = array
        if is_bf16:
            bf16.add(name)
    aliases: dict[str, str] = {}
    if version >= 3:
        for i in range(cur.u32("alias count")):
            alias = cur.string(f"alias {i}")
            target = cur.string(f"target of alias {alias}")
            if target not in variables:
                raise Ct2FormatError(f"{binary}: alias {alias} names a missing variable {target}")
            aliases[alias] = target
            variables[alias] = variables[target]
            if target in bf16:
                bf16.add(alias)
    if cur.pos != len(data):
        raise Ct2FormatError(
            f"{binary}: damaged CTranslate2 model: {len(data) - cur.pos} bytes after the last field"
        )
    return Ct2Model(
        path=binary,
        binary_version=version,
        spec=spec,
        spec_revision=revision,
        variables=variables,
        aliases=aliases,
        config=_read_config(binary),
        bfloat16=frozenset(bf16),
        sha256=hashlib.sha256(data).hexdigest(),
    )
