"""The artifact contract: ``artifact.json``, its schema and validation, and atomic artifact writes.

An artifact is a directory holding the model file(s) and ``artifact.json``. Converters write it, the
runtime, bench and deploy read it. The schema is documented in ``docs/artifact.md``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.errors import BadInputError

SCHEMA_VERSION = 1
MANIFEST_NAME = "artifact.json"

Dim = int | str | None  # a fixed size, a symbolic name, or unknown


@dataclass
class TensorSpec:
    """One logical input or output: name, shape (symbolic dims as names), dtype (numpy name) and layouts.

    ``layout`` is what the user sees (e.g. ``NCHW``), ``stored_layout`` what the file holds; ``None``
    means no named layout (nothing to transpose). ``stored_name`` is the tensor's name inside the model
    file when a converter renamed it.
    """

    name: str
    shape: list[Dim]
    dtype: str
    layout: str | None = None
    stored_layout: str | None = None
    stored_name: str | None = None

    def describe(self) -> str:
        dims = ", ".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.name}: {self.dtype}[{dims}]"


@dataclass
class FileEntry:
    path: str
    sha256: str
    size: int


@dataclass
class Artifact:
    """A converted model on disk, as described by its manifest."""

    name: str
    format: str
    precision: str
    files: list[FileEntry]
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    source: dict[str, Any]
    recipe: dict[str, Any]
    versions: dict[str, str]
    created: str
    quantization: dict[str, Any] = field(default_factory=dict)
    parity: dict[str, Any] | None = None
    schema_version: int = SCHEMA_VERSION
    path: Path | None = field(default=None, compare=False)

    @property
    def model_file(self) -> Path:
        """The primary model file (the first one listed)."""
        if self.path is None:
            raise BadInputError(f"artifact '{self.name}' has no directory yet")
        return inside(self.path, self.files[0].path)

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("path")
        return {"schema_version": d.pop("schema_version"), **d}


# -- schema ----------------------------------------------------------------------------------------
# A declarative description of artifact.json: each field's type, and whether it is required. Kept
# here, next to the dataclasses, so the two cannot drift; docs/artifact.md describes the same fields.

_TENSOR = {
    "name": (str, True),
    "shape": (list, True),
    "dtype": (str, True),
    "layout": ((str, type(None)), False),
    "stored_layout": ((str, type(None)), False),
    "stored_name": ((str, type(None)), False),
}
_FILE = {"path": (str, True), "sha256": (str, True), "size": (int, True)}
_SCHEMA: dict[str, tuple[Any, bool]] = {
    "schema_version": (int, True),
    "name": (str, True),
    "format": (str, True),
    "precision": (str, True),
    "files": (list, True),
    "inputs": (list, True),
    "outputs": (list, True),
    "source": (dict, True),
    "recipe": (dict, True),
    "versions": (dict, True),
    "created": (str, True),
    "quantization": (dict, False),
    "parity": ((dict, type(None)), False),
}

# Records inside the descriptive tables that loading reads back: the int8 kernel choice reads
# recipe.int8_weights, the warning about parity measured on another class of CPU reads parity.measured_on.
# Where present, each is an object whose fields have these types.
_RECORDS: dict[tuple[str, ...], dict[str, tuple[Any, bool]]] = {
    ("recipe", "int8_weights"): {"bits": (int, False)},
    ("parity", "measured_on"): {"cpu": (dict, False)},
    ("parity", "measured_on", "cpu"): {
        "arch": (str, False),
        "model": (str, False),
        "vendor": (str, False),
        "features": (list, False),
    },
}


def _type_name(t: Any) -> str:
    names = {str: "a string", int: "an integer", list: "a list", dict: "an object", type(None): "null"}
    if isinstance(t, tuple):
        return " or ".join(names[x] for x in t)
    return names[t]


def _check_fields(obj: Any, schema: dict[str, tuple[Any, bool]], where: str, file: Path) -> None:
    if not isinstance(obj, dict):
        raise BadInputError(f"{file}: '{where}' must be an object, got {type(obj).__name__}")
    for key, (typ, required) in schema.items():
        label = f"{where}.{key}" if where else key
        if key not in obj:
            if required:
                raise BadInputError(f"{file}: required field '{label}' is missing")
            continue
        value = obj[key]
        if isinstance(value, bool) or not isinstance(value, typ):
            raise BadInputError(
                f"{file}: field '{label}' must be {_type_name(typ)}, got {type(value).__name__} {value!r:.60}"
            )


def validate_manifest(data: Any, file: Path) -> None:
    """Check ``data`` against the artifact schema; a BadInputError names the first bad field."""
    _check_fields(data, _SCHEMA, "", file)
    if data["schema_version"] > SCHEMA_VERSION:
        raise BadInputError(
            f"{file}: schema_version {data['schema_version']} is newer than this edge-sdk understands "
            f"({SCHEMA_VERSION}); upgrade edge-sdk"
        )
    if not data["files"]:
        raise BadInputError(f"{file}: 'files' lists no model file")
    for i, entry in enumerate(data["files"]):
        _check_fields(entry, _FILE, f"files[{i}]", file)
    for part in ("inputs", "outputs"):
        for i, spec in enumerate(data[part]):
            _check_fields(spec, _TENSOR, f"{part}[{i}]", file)
            for d in spec["shape"]:
                if not (d is None or isinstance(d, (int, str))) or isinstance(d, bool):
                    raise BadInputError(f"{file}: '{part}[{i}].shape' holds {d!r}; dims are int, str or null")
            _check_tensor(spec, f"{part}[{i}]", file)
    quantization = data.get("quantization") or {}
    if not isinstance(quantization, dict):
        raise BadInputError(f"{file}: 'quantization' must be a table of tensor name → scale and zero point")
    for name, q in quantization.items():
        _check_quantization(q, f"quantization.{name}", file)
    _check_records(data, file)


def _check_records(data: dict[str, Any], file: Path) -> None:
    """The records of ``_RECORDS`` that are present have their fields' types; a CPU's features are names."""
    for path, schema in _RECORDS.items():
        node: Any = data
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if node is not None:
            _check_fields(node, schema, ".".join(path), file)
    cpu = ((data.get("parity") or {}).get("measured_on") or {}).get("cpu") or {}
    features = cpu.get("features", [])
    if not all(isinstance(f, str) for f in features):
        raise BadInputError(f"{file}: 'parity.measured_on.cpu.features' is {features!r:.60}; it lists names")


def _check_tensor(spec: dict[str, Any], where: str, file: Path) -> None:
    """A tensor's dtype is one numpy knows, and its layouts name each of its dims once."""
    try:
        np.dtype(spec["dtype"])
    except TypeError:
        raise BadInputError(f"{file}: '{where}.dtype' is {spec['dtype']!r}, not a numpy dtype name") from None
    for key in ("layout", "stored_layout"):
        layout = spec.get(key)
        if layout is None:
            continue
        rank = len(spec["shape"])
        if not isinstance(layout, str) or len(set(layout)) != len(layout) or len(layout) != rank:
            raise BadInputError(
                f"{file}: '{where}.{key}' is {layout!r}; a layout names each of the "
                f"{len(spec['shape'])} dims of shape {spec['shape']} once"
            )


def _check_quantization(q: Any, where: str, file: Path) -> None:
    """An integer tensor's quantisation: a numeric scale, an integer zero point and an integer dtype."""
    if not isinstance(q, dict):
        raise BadInputError(f"{file}: '{where}' must be a table with scale, zero_point and dtype")
    scale, zero, dtype = q.get("scale"), q.get("zero_point"), q.get("dtype")
    numbers = scale if isinstance(scale, list) else [scale]
    if not numbers or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers):
        raise BadInputError(f"{file}: '{where}.scale' is {scale!r:.60}; it must be a number (or a list)")
    zeros = zero if isinstance(zero, list) else [zero]
    if not zeros or not all(isinstance(v, int) and not isinstance(v, bool) for v in zeros):
        raise BadInputError(f"{file}: '{where}.zero_point' is {zero!r:.60}; it must be an integer or a list")
    try:
        ok = np.issubdtype(np.dtype(dtype), np.integer)
    except TypeError:
        ok = False
    if not ok:
        raise BadInputError(f"{file}: '{where}.dtype' is {dtype!r:.40}; it must name an integer dtype")


def inside(directory: Path, entry: str) -> Path:
    """``directory / entry``, refused with a BadInputError unless it resolves (symlinks followed) to a
    file path strictly inside ``directory``.

    Every file a manifest names goes through here before anything looks at it: the message is the same
    whether the target exists or not, so a crafted manifest cannot probe the filesystem.
    """
    refused = BadInputError(f"{directory}: file entry '{entry}' must be a file inside the artifact folder")
    try:
        root = directory.resolve()
        target = (directory / entry).resolve()
    except (OSError, RuntimeError, ValueError):  # NUL bytes, symlink loops
        raise refused from None
    if Path(entry).is_absolute() or target == root or not target.is_relative_to(root):
        raise refused
    return directory / entry


def _manifest_entries(data: dict[str, Any], file: Path) -> list[str]:
    """Every file path the manifest names: its model files and, when recorded, the reference set."""
    names = [entry["path"] for entry in data["files"]]
    record = (data.get("parity") or {}).get("reference_set")
    if isinstance(record, dict) and "path" in record:
        if not isinstance(record["path"], str):
            raise BadInputError(
                f"{file}: field 'parity.reference_set.path' must be a string, got {record['path']!r:.60}"
            )
        names.append(record["path"])
    return names


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_entry(directory: Path, name: str) -> FileEntry:
    p = inside(directory, name)
    return FileEntry(path=name, sha256=sha256_file(p), size=p.stat().st_size)


def _known(cls: Any, fields: dict[str, Any]) -> Any:
    # Fields a later minor revision may add are ignored, at every level alike.
    return cls(**{k: v for k, v in fields.items() if k in cls.__dataclass_fields__})


# A manifest, a recipe or a profile nests a few levels; text nested far deeper is refused before parsing,
# since the parsers' recursion (and repr's, in an error message) can overrun the C stack where a library
# has raised Python's recursion limit.
MAX_NESTING = 64


def _nesting(text: str, *, toml: bool = False) -> int:
    """How deeply ``text``'s JSON (or, with ``toml``, TOML) arrays and objects or tables nest; brackets in
    strings, and in TOML comments, do not count. TOML's literal '...' strings have no escapes."""
    depth = deepest = 0
    quote = ""
    escaped = comment = False
    for c in text:
        if comment:
            comment = c != "\n"
        elif quote:
            if escaped:
                escaped = False
            elif c == "\\" and quote == '"':
                escaped = True
            elif c == quote:
                quote = ""
        elif c == '"' or (toml and c == "'"):
            quote = c
        elif toml and c == "#":
            comment = True
        elif c in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif c in "]}":
            depth -= 1
    return deepest


def read_toml(file: Any, where: str, what: str) -> dict[str, Any]:
    """The TOML document in ``file`` (a path or a package resource). Text that is not UTF-8 TOML, or that
    nests deeper than a ``what`` ever does (measured before parsing), is a BadInputError naming ``where``."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        text = file.read_text(encoding="utf-8")
        if _nesting(text, toml=True) <= MAX_NESTING:
            return tomllib.loads(text)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise BadInputError(f"{where}: not valid TOML ({e})") from None
    except RecursionError:  # the parser recurses once per level; kept for a limit lower than the measure's
        pass
    raise BadInputError(f"{where}: nested too deeply to be a {what}")


def load_artifact(path: str | os.PathLike[str], *, verify: bool = True) -> Artifact:
    """Read and validate an artifact directory (or its ``artifact.json``).

    With ``verify`` every listed file must exist with the recorded size and sha256.
    """
    p = Path(path)
    manifest = p if p.name == MANIFEST_NAME else p / MANIFEST_NAME
    if not manifest.is_file():
        raise BadInputError(f"{p}: not an artifact (no {MANIFEST_NAME})")
    try:
        text = manifest.read_text()
        if _nesting(text) > MAX_NESTING:
            raise BadInputError(f"{manifest}: nested too deeply to be a manifest")
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BadInputError(f"{manifest}: not valid JSON ({e})") from None
    validate_manifest(data, manifest)
    directory = manifest.parent
    for name in _manifest_entries(data, manifest):
        inside(directory, name)  # before any existence or hash check, which would reveal the target
    if verify:
        for entry in data["files"]:
            f = inside(directory, entry["path"])
            if not f.is_file():
                raise BadInputError(f"{manifest}: listed file '{entry['path']}' is missing")
            if f.stat().st_size != entry["size"] or sha256_file(f) != entry["sha256"]:
                raise BadInputError(
                    f"{manifest}: file '{entry['path']}' does not match its recorded sha256 "
                    f"(changed or corrupted since conversion); convert again"
                )
    data = dict(data)
    art = Artifact(
        schema_version=data.pop("schema_version"),
        files=[_known(FileEntry, f) for f in data.pop("files")],
        inputs=[_known(TensorSpec, s) for s in data.pop("inputs")],
        outputs=[_known(TensorSpec, s) for s in data.pop("outputs")],
        **{k: v for k, v in data.items() if k in Artifact.__dataclass_fields__},
    )
    art.path = directory
    return art


def is_artifact(path: str | os.PathLike[str]) -> bool:
    p = Path(path)
    return (p / MANIFEST_NAME).is_file() or (p.name == MANIFEST_NAME and p.is_file())


def write_manifest(artifact: Artifact, directory: Path) -> None:
    """Write ``artifact.json`` into ``directory`` (itself a staging directory, or via a temp file)."""
    tmp = directory / f".{MANIFEST_NAME}.tmp"
    tmp.write_text(json.dumps(artifact.to_dict(), indent=2) + "\n")
    os.replace(tmp, directory / MANIFEST_NAME)


# A staging directory's name: ``.NAME.PID.XXXXXXXX.partial``, PID being its writer's process id and
# XXXXXXXX mkdtemp's random part (8 characters of [a-z0-9_]).
_PARTIAL = re.compile(r"\..+\.([0-9]+)\.[a-z0-9_]{8}\.partial")
_log = logging.getLogger("edge_sdk.manifest")


def _alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (one we may not signal exists too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_partials(directory: Path) -> list[Path]:
    """Remove the staging directories in ``directory`` whose writer process is gone; return them.

    Only names that match the staging pattern exactly are considered, and one whose pid is alive (or
    not a valid pid) is kept: it may be another conversion still writing.
    """
    return _remove_orphans(directory, _PARTIAL)


def _remove_orphans(directory: Path, pattern: re.Pattern[str]) -> list[Path]:
    """Remove the directories in ``directory`` named by ``pattern`` (its group 1 the owner's pid) whose
    owner process is gone; return them."""
    removed = []
    with contextlib.suppress(FileNotFoundError):
        for entry in directory.iterdir():
            match = pattern.fullmatch(entry.name)
            if match is None or not entry.is_dir() or entry.is_symlink():
                continue
            pid = int(match.group(1))
            if pid <= 0 or _alive(pid):  # 0 and negatives address process groups in os.kill
                continue
            shutil.rmtree(entry, ignore_errors=True)
            _log.info("removed %s, left by an interrupted run (process %d is gone)", entry, pid)
            removed.append(entry)
    return removed


@contextlib.contextmanager
def owned_tempdir(kind: str) -> Iterator[Path]:
    """A working directory ``edge-sdk-KIND-PID-XXXXXXXX`` in the system's temp folder, removed when the
    block ends. A process killed with SIGKILL runs no cleanup, so the ones such processes left (their pid
    gone) are removed here first."""
    root = Path(tempfile.gettempdir())
    _remove_orphans(root, re.compile(rf"edge-sdk-{re.escape(kind)}-([0-9]+)-[a-z0-9_]{{8}}"))
    with tempfile.TemporaryDirectory(prefix=f"edge-sdk-{kind}-{os.getpid()}-", dir=root) as tmp:
        yield Path(tmp)


@contextlib.contextmanager
def staging_dir(final: Path) -> Iterator[Path]:
    """A temp directory beside ``final`` that becomes ``final`` only if the block completes.

    The rename is atomic on one filesystem, so an interrupted conversion leaves either the previous
    artifact or a hidden ``.NAME.PID.XXXXXXXX.partial`` directory, never a half artifact under the final
    name. Such leftovers of processes that are gone are removed here, before staging starts.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(final.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.{os.getpid()}.", suffix=".partial", dir=final.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if final.exists():
        old = final.parent / f".{final.name}.old-{os.getpid()}"
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
