"""Property-based tests of the input-array readers: any bytes, and real ``.npy`` files whose header
declares any dtype, shape and order, read as ``.npy`` or inside an ``.npz``, either give arrays or raise an
``EdgeSDKError``; nothing else escapes, and nothing larger than an input may be is allocated."""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_sdk.errors import EdgeSDKError
from edge_sdk.runtimes.arrays import MAX_ARRAY_BYTES, read_npy, read_npz

pytest.importorskip("hypothesis")
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

DESCRS = st.one_of(
    st.sampled_from(
        [
            "<f4", ">f4", "<f8", "|u1", "|i1", "<i8", "|b1", "<c8", "<U4", "|S3", "|V8", "|O", "<M8[s]",
            "<m8[xyz]", "f4", "", "<f3", "nonsense", "<i4,<i4", "(2,)<f4", "|V0", "|S0", "<U0",
        ]
    ),
    st.text(max_size=6),
    st.lists(st.tuples(st.text(max_size=3), st.sampled_from(["<f4", "|O", "|u1"])), max_size=2),
)  # fmt: skip
SHAPES = st.one_of(
    st.lists(st.integers(0, 6), max_size=4).map(tuple),
    st.lists(st.integers(-(2**64), 2**64), max_size=3).map(tuple),
    st.sampled_from([(1 << 20, 1 << 20), (-1,), (0, 1 << 62), ()]),
    st.text(max_size=4),
    st.none(),
)


def _header(descr: Any, shape: Any, fortran: Any) -> bytes:
    """A .npy version 1.0 header written by hand, so it may declare what numpy's writer would refuse."""
    text = "{'descr': %r, 'fortran_order': %r, 'shape': %r, }" % (descr, fortran, shape)  # noqa: UP031
    text += " " * ((-(10 + len(text) + 1)) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text.encode("latin1", "replace")


def _exercise(scratch: Path, member: bytes) -> None:
    """Read the bytes as an .npy file, and as the one member of an .npz file."""
    directory = Path(tempfile.mkdtemp(dir=scratch))
    (directory / "x.npy").write_bytes(member)
    with zipfile.ZipFile(directory / "x.npz", "w") as z:
        z.writestr("x.npy", member)
    for read, name in ((read_npy, "x.npy"), (read_npz, "x.npz")):
        try:
            got = read(directory / name)
        except EdgeSDKError:
            continue
        for a in got.values() if isinstance(got, dict) else [got]:
            assert isinstance(a, np.ndarray) and not a.dtype.hasobject and a.nbytes <= MAX_ARRAY_BYTES


@given(raw=st.binary(max_size=200) | st.binary(max_size=120).map(lambda b: b"\x93NUMPY" + b))
def test_any_bytes_read_or_are_an_edge_sdk_error(scratch: Path, raw: bytes) -> None:
    _exercise(scratch, raw)


@given(
    descr=DESCRS,
    shape=SHAPES,
    fortran=st.sampled_from([True, False, None, 1, "no"]),
    data=st.binary(max_size=128),
)
def test_any_declared_header_reads_or_is_an_edge_sdk_error(
    scratch: Path, descr: Any, shape: Any, fortran: Any, data: bytes
) -> None:
    _exercise(scratch, _header(descr, shape, fortran) + data)


@given(data=st.data())
def test_a_damaged_real_npy_reads_or_is_an_edge_sdk_error(scratch: Path, data: st.DataObject) -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.arange(12, dtype=np.float32).reshape(3, 4))
    raw = buffer.getvalue()
    start = data.draw(st.integers(0, len(raw)), label="start")
    end = data.draw(st.integers(start, min(len(raw), start + 16)), label="end")
    _exercise(scratch, raw[:start] + data.draw(st.binary(max_size=16), label="insert") + raw[end:])


@given(data=st.data())
def test_a_damaged_real_npz_reads_or_is_an_edge_sdk_error(scratch: Path, data: st.DataObject) -> None:
    """Compressed, so damage lands in the zip structure and the deflate stream as well as in the header."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, x=np.arange(12, dtype=np.float32), y=np.ones((2, 2), np.uint8))
    raw = buffer.getvalue()
    start = data.draw(st.integers(0, len(raw)), label="start")
    end = data.draw(st.integers(start, min(len(raw), start + 16)), label="end")
    path = Path(tempfile.mkdtemp(dir=scratch)) / "x.npz"
    path.write_bytes(raw[:start] + data.draw(st.binary(max_size=16), label="insert") + raw[end:])
    try:
        arrays = read_npz(path)
    except EdgeSDKError:
        return
    assert all(isinstance(a, np.ndarray) and not a.dtype.hasobject for a in arrays.values())
