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
