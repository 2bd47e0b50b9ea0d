"""The conversion cache: finished artifacts, and what targets built (their calibrated models), keyed by
the hub model's sha256 and every option that changes the output.

Two levels, because they are reused by different requests:

* ``conversions/<key>/`` holds a whole artifact (manifest, model files, parity report). Its key covers
  everything the manifest records: the hub model, source provenance, target and precision, the
  target's options, calibration and parity data digests, gates, artifact name and tool versions. The
  same request twice copies it into ``out`` and does no conversion, calibration or parity work.
* ``builds/<key>/`` holds what ``target.build`` wrote (for int8 that is the calibrated model). Its key
  covers only what the build reads: hub, target, precision, that target's resolved options, the
  calibration digest (for calibrated precisions) and tool versions. A request that differs in parity
  data, gates, name, or options of another target reuses the build, so the calibrator does not run
  again; only the parity check is redone.

The cache lives under ``zoo.cache_root()`` (``$EDGE_SDK_CACHE``, else ``$XDG_CACHE_HOME/edge-sdk``,
else ``~/.cache/edge-sdk``), or under ``$EDGE_SDK_CONVERSION_CACHE`` when that is set.
Entries are written into a temp directory and renamed into place, so a reader never sees half an
entry; two writers racing leave one whole entry.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk import integrity
from edge_sdk.errors import BadInputError
from edge_sdk.manifest import Artifact, TensorSpec, inside, load_artifact, staging_dir
from edge_sdk.version import __version__

log = logging.getLogger("edge_sdk.converters.cache")

BUILD_RECORD = "build.json"


@dataclass
class ReusedArtifact(Artifact):
    """An artifact copied from the cache instead of converted; ``reused_from`` is the cache entry."""

    reused_from: str = ""


def cache_base() -> Path:
    """The folder holding ``conversions/`` and ``builds/``: ``$EDGE_SDK_CONVERSION_CACHE`` if set (tests
    give each test its own), else the edge-sdk cache that the zoo uses too."""
    if os.environ.get("EDGE_SDK_CONVERSION_CACHE"):
        return Path(os.environ["EDGE_SDK_CONVERSION_CACHE"]).expanduser()
    from edge_sdk.zoo import cache_root

    return cache_root()


def conversions_dir() -> Path:
    """Where finished artifacts are cached: ``<cache>/conversions``."""
    return cache_base() / "conversions"


def builds_dir() -> Path:
    """Where target builds (calibrated models) are cached: ``<cache>/builds``."""
    return cache_base() / "builds"


@functools.cache
def converter_code() -> str:
    """A digest of edge-sdk's converter sources. A development checkout changes what it writes without a
    new version number (a target's default, a fix), and a cache keyed by the version alone would go on
    handing out what the old code made."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for f in sorted(root.rglob("*.py")):
        h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


def tool_versions(tools: Iterable[str]) -> dict[str, str]:
    """Installed versions of edge-sdk (with its converter code's digest) and of ``tools``, the packages a
    target converts with (its ``tools``; read from package metadata, so nothing heavy is imported)."""
    versions = {"edge_sdk": __version__, "edge_sdk_converters": converter_code()}
    for pkg in tools:
        versions[pkg] = _version(pkg)
    return versions


def _version(pkg: str) -> str:
    try:
        return importlib.metadata.version(pkg)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def _canonical(obj: Any) -> Any:
    """JSON-able, order-independent form of an option value (tuples as lists, paths as strings)."""
    if isinstance(obj, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.generic,)):
        return obj.item()
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return repr(obj)


def digest(parts: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of ``parts``: the cache key."""
    text = json.dumps(_canonical(parts), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def samples_digest(samples: Iterable[Mapping[str, np.ndarray]] | None) -> str | None:
    """sha256 over every sample's input names, dtypes, shapes and bytes, in order (None for no data)."""
    if samples is None:
        return None
    h = hashlib.sha256()
    for s in samples:
        for name in sorted(s):
            a = np.ascontiguousarray(s[name])
            h.update(f"{name}|{a.dtype.str}|{list(a.shape)}|".encode())
            h.update(a.tobytes())
        h.update(b";")
    return h.hexdigest()


def lookup_artifact(key: str) -> Path | None:
    """The cached artifact directory for ``key`` if there and intact (files match their sha256)."""
    entry = conversions_dir() / key
    if not entry.is_dir():
        return None
    try:
        load_artifact(entry, verify=True)
    except Exception as e:  # a damaged entry is rebuilt, never used
        log.warning("cache entry %s is damaged (%s); removing it and converting again", entry, e)
        _drop(entry)  # else the entry stays, and the conversion made instead is never stored
        return None
    return entry


def reuse_artifact(entry: Path, final: Path) -> ReusedArtifact:
    """Copy the cached artifact ``entry`` to ``final`` atomically (staging dir, then rename)."""
    with staging_dir(final) as stage:
        # Links are copied as links, so one pointing out of the entry is refused by load_artifact below
        # rather than its target's bytes landing in the artifact.
        shutil.copytree(entry, stage, symlinks=True, dirs_exist_ok=True)
    art = load_artifact(final)
    fields = {f.name: getattr(art, f.name) for f in dataclasses.fields(Artifact)}
    return ReusedArtifact(**fields, reused_from=str(entry))


def _store(directory: Path, key: str, fill: Any, replace: bool) -> None:
    """Write a cache entry: ``fill(tmp)`` fills a temp dir that is then renamed to ``directory/key``. An
    entry already there is kept, unless ``replace`` (a ``cache=False`` run refreshes what it built)."""
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / key
    if final.exists():
        if not replace:
            return
        _drop(final)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key[:16]}.", suffix=".partial", dir=directory))
    try:
        fill(tmp)
        os.replace(tmp, final)
    except OSError as e:
        # A racing writer got there first (the rename onto a non-empty dir fails), or the disk is full:
        # either way the conversion itself succeeded, so this is logged, not raised.
        log.debug("cache entry %s not stored: %s", final, e)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def store_artifact(key: str, artifact_dir: Path, replace: bool = False) -> None:
    """Keep a copy of a finished artifact under ``key`` (``replace``: in place of one already there)."""
    _store(
        conversions_dir(), key, lambda tmp: shutil.copytree(artifact_dir, tmp, dirs_exist_ok=True), replace
    )


def _spec_dicts(specs: list[TensorSpec] | None) -> list[dict[str, Any]] | None:
    return None if specs is None else [dataclasses.asdict(s) for s in specs]


def store_build(key: str, stage: Path, result: Any, replace: bool = False) -> None:
    """Keep what ``target.build`` wrote into ``stage`` and its ``BuildResult`` under ``key``
    (``replace``: in place of one already there)."""

    def fill(tmp: Path) -> None:
        for name in result.files:
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(inside(stage, name), inside(tmp, name))
        record = {
            "files": result.files,
            # checked on reuse: a build whose bytes changed is built again, never run
            "sha256": integrity.hashes(tmp, result.files),
            "recipe": result.recipe,
            "quantization": result.quantization,
            "versions": result.versions,
            "inputs": _spec_dicts(result.inputs),
            "outputs": _spec_dicts(result.outputs),
        }
        (tmp / BUILD_RECORD).write_text(json.dumps(record, indent=1, default=str))

    _store(builds_dir(), key, fill, replace)


def reuse_build(key: str, stage: Path) -> Any | None:
    """Copy a cached build into ``stage`` and return its ``BuildResult``; None if not cached, or if the
    entry is damaged (a file missing or changed since it was stored, or a record without the files'
    sha256): that entry is then removed, with a warning, so the build made instead replaces it."""
    from edge_sdk.converters.targets import BuildResult

    entry = builds_dir() / key
    record_file = entry / BUILD_RECORD
    if not record_file.is_file():
        return None
    copied: list[Path] = []
    try:
        record = json.loads(record_file.read_text())
        recorded = record.get("sha256")
        if not isinstance(recorded, dict) or set(recorded) != set(record["files"]):
            raise ValueError("it records no sha256 of its files (an older edge-sdk stored it)")
        for name in record["files"]:
            source, target = inside(entry, name), inside(stage, name)
            target.parent.mkdir(parents=True, exist_ok=True)
            copied.append(target)
            shutil.copy2(source, target)
        # the copies are what the artifact is made of, so they are what is checked
        why = integrity.mismatch(stage, recorded)
        if why is not None:
            raise ValueError(why)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, BadInputError) as e:
        log.warning("cached build %s is damaged (%s); removing it and building again", entry, e)
        for target in copied:
            target.unlink(missing_ok=True)
        drop_build(key)
        return None

    def specs(items: list[dict[str, Any]] | None) -> list[TensorSpec] | None:
        return None if items is None else [TensorSpec(**d) for d in items]

    return BuildResult(
        files=record["files"],
        recipe=record["recipe"],
        quantization=record["quantization"],
        versions=record["versions"],
        inputs=specs(record["inputs"]),
        outputs=specs(record["outputs"]),
    )


def drop_build(key: str) -> None:
    """Remove the cached build ``key`` (damaged, or its model collapsed), so the next build replaces it."""
    _drop(builds_dir() / key)


def _drop(entry: Path) -> None:
    # Renamed aside first: a reader never sees half an entry, and a writer can store a new one at once.
    if not entry.exists():
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{entry.name[:16]}.", suffix=".dropped", dir=entry.parent))
    try:
        os.replace(entry, aside / "entry")
    except OSError as e:  # a racing reader removed it first
        log.debug("cache entry %s not removed: %s", entry, e)
    shutil.rmtree(aside, ignore_errors=True)


def calibration_ranges_file(model: Path, samples: list[dict[str, np.ndarray]], method: str) -> Path:
    """Where onnxruntime keeps the activation ranges it calibrated ``model`` (the pre-processed hub) with
    ``samples`` by ``method``: pass it as ``quantize_static(..., calibration_cache_path=...)`` (onnxruntime
    1.22+), which loads the ranges when the file is there and writes them when not.

    The ranges depend on the model, the samples and the method only, not on the quantiser's options
    (``per_channel``, types, ``exclude_nodes``), so every int8 variant of one model, and every candidate
    of the accuracy-aware search, calibrates once.
    """
    from edge_sdk.manifest import sha256_file

    key = digest(
        {
            "model": sha256_file(model),
            "samples": samples_digest(samples),
            "method": method,
            "onnxruntime": _version("onnxruntime"),
        }
    )
    directory = cache_base() / "calibration"
    directory.mkdir(parents=True, exist_ok=True)
    return directory / f"{key}.json"
