"""Input arrays from ``.npy`` and ``.npz`` files, with what their headers declare checked before anything is
allocated: a file of a few bytes can declare a shape of terabytes, and reading it must fail clearly, not
exhaust memory. Pickled (object) arrays are never loaded."""

from __future__ import annotations

import tokenize
import zipfile
import zlib
from pathlib import Path
from typing import IO

import numpy as np

from edge_sdk.errors import BadInputError

# The largest array an input file may hold. Models on the boards this SDK serves take far less; a header
# declaring more is a damaged or hostile file.
MAX_ARRAY_BYTES = 4 << 30


def _check_header(f: IO[bytes], what: str) -> None:
    """Read a .npy header from ``f`` and refuse what cannot be a sane input array."""
    try:
        version = np.lib.format.read_magic(f)
        read = (
            np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        )
        shape, _, dtype = read(f)
    # numpy parses the header as a Python literal, tokenizing it first when it looks like Python 2's
    except (ValueError, OSError, EOFError, SyntaxError, tokenize.TokenError) as e:
        raise BadInputError(f"{what} is not a readable .npy array: {e}") from None
    if any(d < 0 or d >= 2**63 for d in shape):
        raise BadInputError(f"{what} declares the shape {list(shape)}, which no array has")
    if dtype.hasobject:
        raise BadInputError(
            f"{what} holds Python objects (a pickle), which are never loaded; save a numeric array"
        )
    size = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    if size > MAX_ARRAY_BYTES:
        raise BadInputError(
            f"{what} declares a {list(shape)} {dtype} array ({size / 2**30:.3g} GiB), more than the "
            f"{MAX_ARRAY_BYTES >> 30} GiB an input may be"
        )


def read_npy(path: Path) -> np.ndarray:
    """The array in a ``.npy`` file, after its header is checked; a ``BadInputError`` says what is wrong."""
    try:
        with open(path, "rb") as f:
            _check_header(f, str(path))
        return np.load(path, allow_pickle=False)
    except OSError as e:
        raise BadInputError(f"cannot read {path}: {e.strerror or e}") from None
    except ValueError as e:  # a header that passed, with data that does not match it
        raise BadInputError(f"{path} is not a readable .npy array: {e}") from None


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays in a ``.npz`` file by name, after each member's header is checked."""
    try:
        with zipfile.ZipFile(path) as z:
            for member in z.namelist():
                with z.open(member) as f:
                    _check_header(f, f"{path}:{member}")
        with np.load(path, allow_pickle=False) as arrays:
            return {k: arrays[k] for k in arrays.files}
    # a damaged deflate stream, a compression method or encryption zipfile does not handle
    except (zipfile.BadZipFile, ValueError, EOFError, zlib.error, NotImplementedError, RuntimeError) as e:
        raise BadInputError(f"{path} is not a readable .npz file: {e}") from None
    except OSError as e:
        raise BadInputError(f"cannot read {path}: {e.strerror or e}") from None
