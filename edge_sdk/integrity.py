"""Files written whole or not at all (``atomic_write``), and files edge-sdk derives once and reuses by
name (a cached build, a model's streaming form, calibrated activation ranges): their sha256 is recorded
when they are written and checked whenever they are reused, so a damaged copy is made again, with a
warning, instead of being run.

A lone file's sha256 is kept beside it in ``NAME.sha256`` (``sha256sum`` format, so ``sha256sum -c``
reads it too); a cache entry of several files records them in its own record (``hashes`` and
``mismatch``).
"""

from __future__ import annotations

import logging
import os
import secrets
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from edge_sdk.errors import BadInputError
from edge_sdk.manifest import inside, sha256_file

log = logging.getLogger("edge_sdk.integrity")

SIDECAR_SUFFIX = ".sha256"


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    os.replace(tmp, path)


def hashes(directory: Path, names: Iterable[str]) -> dict[str, str]:
    """name → sha256 of each of ``names`` under ``directory``."""
    return {name: sha256_file(inside(directory, name)) for name in names}


def mismatch(directory: Path, recorded: Mapping[str, str]) -> str | None:
    """Why the files ``recorded`` (name → sha256) under ``directory`` are not what was recorded, naming the
    first one that is missing or changed; None when all match."""
    for name, expected in recorded.items():
        try:
            actual = sha256_file(inside(directory, name))
        except (OSError, BadInputError) as e:
            return f"{name} cannot be read ({e})"
        if actual != expected:
            return f"{name} has sha256 {actual[:16]}…, recorded {str(expected)[:16]}…"
    return None


def sidecar(path: Path) -> Path:
    """Where the sha256 of ``path`` is recorded: ``path`` + ``.sha256``."""
    return path.with_name(path.name + SIDECAR_SUFFIX)


def _recorded(path: Path) -> str | None:
    try:
        words = sidecar(path).read_text().split()
    except (OSError, UnicodeDecodeError):
        return None
    return words[0] if words else None


def reusable(path: Path, what: str) -> bool:
    """Whether ``path`` is there and matches the sha256 recorded beside it. One with another sha256 is
    removed with a warning that ``what`` is made again; one with no record is removed with a note."""
    if not path.is_file():
        return False
    expected = _recorded(path)
    if expected is None:
        # An edge-sdk before these records made it (or the record was lost): not known to be damaged,
        # only unproven, so it is made again without alarming anyone.
        log.info("%s %s has no sha256 recorded beside it; making it again", what, path)
    else:
        why = mismatch(path.parent, {path.name: expected})
        if why is None:
            return True
        log.warning("%s %s is damaged (%s); making it again", what, path, why)
    for p in (path, sidecar(path)):
        p.unlink(missing_ok=True)
    return False


def write_checked(path: Path, write: Callable[[Path], None]) -> bool:
    """Make ``path`` with ``write(tmp)``, ``tmp`` an unused name beside it that ``write`` creates, and
    record its sha256. The record goes first and the file is renamed into place last, so a reader never
    sees half a file, and a crash between them leaves a record without its file, which is made again.
    Returns False when ``write`` created nothing (then nothing is recorded)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    token = f"{os.getpid()}.{secrets.token_hex(4)}"
    tmp = path.with_name(f".{path.name}.{token}.partial")
    record = path.with_name(f".{path.name}.{token}{SIDECAR_SUFFIX}.partial")
    try:
        write(tmp)
        if not tmp.is_file():
            return False
        record.write_text(f"{sha256_file(tmp)}  {path.name}\n")
        os.replace(record, sidecar(path))
        os.replace(tmp, path)
        return True
    finally:
        for p in (tmp, record):
            p.unlink(missing_ok=True)
