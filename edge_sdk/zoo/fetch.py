"""Byte transport for the zoo: streamed http(s) downloads and file:// copies, hashed as they arrive.

Standard library only (urllib), so pulling a model never needs more than the runtime core.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote, urlsplit

from edge_sdk.errors import DownloadError
from edge_sdk.version import __version__

log = logging.getLogger("edge_sdk.zoo.fetch")

ProgressFn = Callable[[str, int, int | None], None]
"""``progress(stage, done, total)``: bytes so far and the total when known; stage is "download" or "copy"."""

TIMEOUT_S = 60.0
_CHUNK = 1 << 16
USER_AGENT = f"edge-sdk/{__version__} (+urllib)"


def network_error(url: str, exc: BaseException, hint: str = "") -> DownloadError:
    """A DownloadError that names the URL that failed, why, and (``hint``) what the user can change."""
    if isinstance(exc, urllib.error.HTTPError):
        why = f"HTTP {exc.code} {exc.reason}"
    elif isinstance(exc, urllib.error.URLError):
        why = str(exc.reason)
    else:
        why = f"{type(exc).__name__}: {exc}"
    return DownloadError(f"could not fetch {url}: {why}{hint}")


def open_url(url: str, *, accept: str | None = None, hint: str = "") -> Any:
    """Open ``url`` for reading (the caller closes it); every failure becomes a DownloadError."""
    headers = {"User-Agent": USER_AGENT}
    if accept:
        headers["Accept"] = accept
    req = urllib.request.Request(url, headers=headers)
    try:
        return urllib.request.urlopen(req, timeout=TIMEOUT_S)
    except (OSError, http.client.HTTPException, ValueError) as e:
        raise network_error(url, e, hint) from e


def _pump(
    src: IO[bytes],
    dest: Path,
    *,
    total: int | None,
    stage: str,
    progress: ProgressFn | None,
) -> tuple[str, int]:
    h = hashlib.sha256()
    done = 0
    if progress:
        progress(stage, 0, total)
    with open(dest, "wb") as out:
        for chunk in iter(lambda: src.read(_CHUNK), b""):
            out.write(chunk)
            h.update(chunk)
            done += len(chunk)
            if progress:
                progress(stage, done, total)
    return h.hexdigest(), done


def download(
    url: str,
    dest: Path,
    *,
    progress: ProgressFn | None = None,
    stage: str = "download",
    size: int | None = None,
    hint: str = "",
) -> str:
    """Stream ``url`` (http, https or file) into ``dest`` and return its sha256.

    ``size`` is the expected byte count when the caller knows it (a package index says so); a short
    read is an error here rather than a confusing hash mismatch later.
    """
    if url.startswith("file://"):
        return copy_local(url, dest, progress=progress)
    with open_url(url, hint=hint) as resp:
        length = resp.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else size
        try:
            digest, done = _pump(resp, dest, total=total, stage=stage, progress=progress)
        except (OSError, http.client.HTTPException) as e:
            raise network_error(url, e, hint) from e
    if total is not None and done != total:
        raise DownloadError(f"could not fetch {url}: got {done} bytes of {total} (connection cut?){hint}")
    log.debug("fetched %s (%d bytes, sha256 %s)", url, done, digest)
    return digest


def local_path(url: str) -> Path:
    """The filesystem path a ``file://`` URL names (``file:///abs/path`` or ``file://localhost/...``)."""
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise DownloadError(f"{url}: file:// URLs must name a local path (file:///abs/path)")
    return Path(urllib.request.url2pathname(unquote(parts.path)))


def copy_local(url: str, dest: Path, *, progress: ProgressFn | None = None) -> str:
    """Copy the file a ``file://`` URL names into ``dest`` and return its sha256."""
    src = local_path(url)
    try:
        total = os.stat(src).st_size
        with open(src, "rb") as f:
            digest, _ = _pump(f, dest, total=total, stage="copy", progress=progress)
    except OSError as e:
        raise DownloadError(f"could not copy {url}: {e.strerror or e}") from e
    return digest
