"""Input arrays from .npy/.npz files: a header declaring more than any input may be, a pickle, and a
truncated file are clear errors before anything is allocated; sane files read back exactly."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from edge_sdk.errors import BadInputError
from edge_sdk.runtimes.arrays import read_npy, read_npz


def huge_npy(path: Path) -> Path:
    """A few bytes whose header declares a 2**40-element float32 array (4 TiB)."""
    with open(path, "wb") as f:
        header = {"descr": "<f4", "fortran_order": False, "shape": (1 << 20, 1 << 20)}
        np.lib.format.write_array_header_1_0(f, header)
        f.write(b"\0" * 16)
    return path


def test_a_sane_array_reads_back(tmp_path: Path) -> None:
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.save(tmp_path / "x.npy", x)
    np.savez(tmp_path / "x.npz", a=x, b=x.T)
    np.testing.assert_array_equal(read_npy(tmp_path / "x.npy"), x)
    got = read_npz(tmp_path / "x.npz")
    assert set(got) == {"a", "b"}
    np.testing.assert_array_equal(got["b"], x.T)


def test_a_header_declaring_terabytes_is_refused_before_allocating(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match=r"declares a \[1048576, 1048576\] float32 array"):
        read_npy(huge_npy(tmp_path / "huge.npy"))
    with zipfile.ZipFile(tmp_path / "huge.npz", "w") as z:
        z.write(huge_npy(tmp_path / "member.npy"), "x.npy")
    with pytest.raises(BadInputError, match=r"huge.npz:x.npy declares"):
        read_npz(tmp_path / "huge.npz")


def test_a_pickle_is_never_loaded(tmp_path: Path) -> None:
    np.save(tmp_path / "p.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(BadInputError, match="never loaded"):
        read_npy(tmp_path / "p.npy")


@pytest.mark.parametrize("content", [b"", b"not an array at all", b"\x93NUMPY\x01\x00garbage"])
def test_garbage_and_truncated_files_are_bad_input(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "g.npy").write_bytes(content)
    (tmp_path / "g.npz").write_bytes(content)
    with pytest.raises(BadInputError, match="not a readable"):
        read_npy(tmp_path / "g.npy")
    with pytest.raises(BadInputError, match="not a readable"):
        read_npz(tmp_path / "g.npz")


def test_data_shorter_than_its_header_is_bad_input(tmp_path: Path) -> None:
    np.save(tmp_path / "t.npy", np.zeros((100, 100), np.float32))
    (tmp_path / "t.npy").write_bytes((tmp_path / "t.npy").read_bytes()[:500])
    with pytest.raises(BadInputError, match="not a readable"):
        read_npy(tmp_path / "t.npy")


def _header(text: str) -> bytes:
    """A .npy 1.0 header holding ``text`` as its dict, padded as numpy pads it."""
    text += " " * ((-(10 + len(text) + 1)) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text.encode()


@pytest.mark.parametrize(
    ("header", "words"),
    [
        # a negative dim passed the size check and numpy then tried to allocate exabytes
        ("{'descr': '<f4', 'fortran_order': True, 'shape': (211, 611, -8996509751200255), }", "no array has"),
        # a dim of 2**64 with a zero beside it: numpy's OverflowError
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (18446744073709551616, 0), }", "no array has"),
        # numpy's SyntaxError from the descr, and tokenize's TokenError from a Python 2 style header
        ("{'descr': ',', 'fortran_order': True, 'shape': (), }", "not a readable"),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': ((3, 4), }", "not a readable"),
    ],
    ids=["negative-dim", "dim-2**64", "descr-syntax", "unbalanced"],
)
def test_a_header_no_array_can_have_is_bad_input(tmp_path: Path, header: str, words: str) -> None:
    (tmp_path / "h.npy").write_bytes(_header(header) + bytes(16))
    with zipfile.ZipFile(tmp_path / "h.npz", "w") as z:
        z.write(tmp_path / "h.npy", "h.npy")
    with pytest.raises(BadInputError, match=words):
        read_npy(tmp_path / "h.npy")
    with pytest.raises(BadInputError, match=words):
        read_npz(tmp_path / "h.npz")


def test_a_damaged_compressed_npz_is_bad_input(tmp_path: Path) -> None:
    """zlib's error, and zipfile's NotImplementedError for an unknown compression method, escaped before."""
    np.savez_compressed(tmp_path / "c.npz", x=np.arange(1000, dtype=np.float32))
    raw = bytearray((tmp_path / "c.npz").read_bytes())
    with zipfile.ZipFile(tmp_path / "c.npz") as z:
        info = z.infolist()[0]
    # the compressed stream begins after the local header: 30 bytes, then its name and extra field
    local = info.header_offset
    name, extra = (int.from_bytes(raw[local + i : local + i + 2], "little") for i in (26, 28))
    start = local + 30 + name + extra
    damaged = raw[: start + 8] + bytes([0x07, 0x06, 0x00, 0x00, 0x03]) + raw[start + 13 :]
    (tmp_path / "deflate.npz").write_bytes(damaged)
    with pytest.raises(BadInputError, match="not a readable .npz"):
        read_npz(tmp_path / "deflate.npz")
    method = bytearray(raw)
    method[info.header_offset + 8 : info.header_offset + 10] = (99).to_bytes(2, "little")  # local header
    central = raw.rfind(b"PK\x01\x02")
    method[central + 10 : central + 12] = (99).to_bytes(2, "little")  # central directory
    (tmp_path / "method.npz").write_bytes(bytes(method))
    with pytest.raises(BadInputError, match="not a readable .npz"):
        read_npz(tmp_path / "method.npz")
