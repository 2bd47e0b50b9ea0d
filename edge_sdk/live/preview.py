"""A live MJPEG preview of the video loop, served over HTTP with the standard library.

``PreviewServer`` is a video sink: the loop calls ``write(frame)`` for every frame and the server shows the
newest one to any number of browsers as the raw capture and the processed (denoised) image side by side,
with the loop's figures (fps, latency p50/p99, drops) drawn on it. Routes:

- ``/``             a small self-contained HTML page: the stream and a stats line refreshed every second;
- ``/stream.mjpg``  ``multipart/x-mixed-replace`` JPEG parts, one per new frame;
- ``/snapshot.jpg`` the newest composite as one JPEG;
- ``/stats.json``   what the ``stats`` callable returns.

Each connection holds a thread, so the server bounds them: a request must arrive in full within
``request_timeout`` seconds, and at most ``max_connections`` are served at once (when full, the oldest
connection still sending its request makes room; with none, the newcomer gets a short 503). Bound beyond
loopback, every request needs a token (query ``token=`` or ``Authorization: Bearer``).

``write`` never waits on the network: it keeps a reference to the newest composite and wakes the client
threads; JPEG encoding happens lazily in those threads, once per frame however many clients watch, and a
slow client simply skips to the newest frame (nothing queues up). With no client connected, a frame costs
one side-by-side copy.
"""

from __future__ import annotations

import errno
import hmac
import html
import ipaddress
import json
import logging
import secrets
import socket
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType, TracebackType
from typing import Any

import numpy as np

from edge_sdk.errors import BadInputError, MissingExtraError
from edge_sdk.stages.base import Frame

log = logging.getLogger("edge_sdk.live.preview")

BOUNDARY = "edgesdkframe"
# Client threads wake at least this often to notice a shutdown (seconds).
_POLL_S = 0.25
# A client that takes longer than this to accept one part is dropped, so it cannot pin a thread forever.
_SEND_TIMEOUT_S = 10.0
# Sent, without reading the request, to a connection over the cap; small enough to never block the accept.
_BUSY = (
    b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: 17\r\nRetry-After: 1\r\nConnection: close\r\n\r\ntoo many viewers\n"
)


def _cv2() -> ModuleType:
    """OpenCV, imported on first use so ``import edge_sdk`` works without the camera extra."""
    try:
        import cv2
    except ImportError as e:
        raise MissingExtraError("opencv-python-headless", "camera", "The MJPEG preview") from e
    return cv2


def _bgr(image: np.ndarray) -> np.ndarray:
    """``image`` as H×W×3 uint8 BGR (grey and BGRA frames are converted, so any source can be previewed)."""
    cv2 = _cv2()
    if image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 2 or image.shape[2] == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


def side_by_side(frame: Frame) -> tuple[np.ndarray, int]:
    """``frame.raw | frame.image`` as one new BGR image and the x where the processed pane starts (0 when
    there is no raw frame and the image is shown alone). A raw frame of another size is scaled to the
    image's height, so a model that changes the resolution still previews."""
    image = _bgr(frame.image)
    if frame.raw is None:
        return image.copy(), 0
    raw = _bgr(frame.raw)
    if raw.shape[0] != image.shape[0]:
        cv2 = _cv2()
        width = max(1, round(raw.shape[1] * image.shape[0] / raw.shape[0]))
        raw = cv2.resize(raw, (width, image.shape[0]), interpolation=cv2.INTER_AREA)
    return np.hstack([raw, image]), raw.shape[1]


def stats_line(stats: dict[str, Any]) -> str:
    """The overlay's one line of figures, from whichever of the usual keys ``stats`` holds as numbers
    (a missing or non-numeric figure, such as None before the first frame, is left out)."""
    formats = {"fps": "{:.1f} fps", "p50_ms": "p50 {:.1f} ms", "p99_ms": "p99 {:.1f} ms"}
    formats |= {"drops": "drops {:.0f}", "frames": "frames {:.0f}"}
    parts = []
    for key, fmt in formats.items():
        value = stats.get(key)
        if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
            parts.append(fmt.format(float(value)))
    return "  ".join(parts)


def _label(image: np.ndarray, text: str, x: int, y: int, scale: float) -> None:
    """Draw ``text`` with its top-left near (x, y) on a dark box, so it reads on any background."""
    cv2 = _cv2()
    thickness = max(1, round(scale * 1.5))
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    pad = max(2, round(4 * scale))
    x1 = min(x + w + 2 * pad, image.shape[1] - 1)
    y1 = min(y + h + base + 2 * pad, image.shape[0] - 1)
    cv2.rectangle(image, (x, y), (x1, y1), (0, 0, 0), cv2.FILLED)
    cv2.putText(
        image, text, (x + pad, y + pad + h), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness,
        cv2.LINE_AA,
    )  # fmt: skip


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ margin: 0; background: #111; color: #ddd; font: 14px system-ui, sans-serif; }}
header {{ padding: 6px 10px; }}
h1 {{ font-size: 16px; margin: 0 0 4px 0; }}
#stats {{ font-family: ui-monospace, monospace; }}
img {{ display: block; max-width: 100%; image-rendering: pixelated; }}
</style></head>
<body>
<header><h1>{title}</h1><div id="stats">waiting for stats…</div></header>
<img id="stream" src="{stream}" alt="raw and denoised video side by side">
<script>
async function poll() {{
  try {{
    const r = await fetch({stats}, {{cache: "no-store"}});
    const s = await r.json();
    document.getElementById("stats").textContent =
      Object.entries(s).map(([k, v]) => k + " " + (typeof v === "number" ? +v.toFixed(2) : v)).join("  ");
  }} catch (e) {{
    document.getElementById("stats").textContent = "stats unavailable";
  }}
}}
poll();
setInterval(poll, 1000);
</script>
</body></html>
"""


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) can only be reached from this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a hostname other than localhost may resolve to anything


def _quiet_close(sock: socket.socket) -> None:
    """Shut ``sock`` down so a thread blocked reading or writing it returns at once."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed by its own thread


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # The listen backlog: the base class's 5 drops connections in a burst (a page opens several at once),
    # and a dropped connection waits a second or more for the client to retry.
    request_queue_size = 128
    preview: PreviewServer

    def __init__(self, address: tuple[str, int], max_connections: int, request_timeout: float) -> None:
        super().__init__(address, _Handler)
        self.max_connections = max_connections
        self.request_timeout = request_timeout
        self._lock = threading.Lock()
        # Every open connection, oldest first: the deadline for its request, or None once it was read.
        self._connections: dict[socket.socket, float | None] = {}

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve ``request`` in a thread, or answer 503 in this one when the cap is reached."""
        if not self._admit(request):
            log.debug("preview: %d connections open, refused %s", self.max_connections, client_address)
            try:
                request.setblocking(False)  # the accept loop must never wait on this client
                request.send(_BUSY)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def _admit(self, sock: socket.socket) -> bool:
        victim = None
        with self._lock:
            if len(self._connections) >= self.max_connections:
                # Idle half-sent requests must not lock real viewers out: the oldest one still sending
                # gives way. Connections being answered or streamed are never dropped for a newcomer.
                victim = next((s for s, due in self._connections.items() if due is not None), None)
                if victim is None:
                    return False
                del self._connections[victim]
            self._connections[sock] = time.monotonic() + self.request_timeout
        if victim is not None:
            log.debug("preview: connection cap reached, dropped a connection still sending its request")
            _quiet_close(victim)
        return True

    def request_read(self, sock: socket.socket) -> bool:
        """Mark ``sock``'s request as read; False when it was dropped meanwhile (late or made room)."""
        with self._lock:
            if sock not in self._connections:
                return False
            self._connections[sock] = None
            return True

    def service_actions(self) -> None:
        """Drop connections whose request is overdue (runs in the serving thread every poll): a per-read
        socket timeout alone would let a client dribble one byte at a time forever."""
        now = time.monotonic()
        with self._lock:
            late = [s for s, due in self._connections.items() if due is not None and due < now]
            for sock in late:
                del self._connections[sock]
        for sock in late:
            log.debug("preview: request not received within %.1f s, connection dropped", self.request_timeout)
            _quiet_close(sock)

    def drop_all(self) -> None:
        """Shut every open connection, so each thread ends (``server_close`` waits for them)."""
        with self._lock:
            socks = list(self._connections)
        for sock in socks:
            _quiet_close(sock)

    def shutdown_request(self, request: Any) -> None:
        with self._lock:
            self._connections.pop(request, None)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that goes away mid-answer is routine; anything else is logged, never printed."""
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):  # BrokenPipe, ConnectionReset, timeouts: the client's doing
            log.debug("preview: %s went away: %r", client_address, exc)
        else:
            log.error("preview: request from %s failed", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    # HTTP/1.0: every response ends its connection, which is what a never-ending stream needs anyway.
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.debug("%s " + format, self.address_string(), *args)

    def setup(self) -> None:
        self.timeout = self.server.request_timeout  # per read while the request comes in
        super().setup()

    def parse_request(self) -> bool:
        # A request line cut short (the client stopped sending, or was dropped) is not a request; the base
        # class would serve it as HTTP/0.9.
        if not self.raw_requestline.endswith(b"\n"):
            self.close_connection = True
            return False
        return super().parse_request()

    def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
        if not self.server.request_read(self.connection):
            return  # dropped while its headers came in
        preview = self.server.preview
        path, _, query = self.path.partition("?")
        if not preview.authorized(query, self.headers.get("Authorization")):
            self._send(403, "text/plain; charset=utf-8", b"a valid token is needed\n")
        elif path in ("/", "/index.html"):
            self._send(200, "text/html; charset=utf-8", preview.page().encode())
        elif path == "/stats.json":
            self._send(
                200, "application/json", json.dumps(preview.stats_dict(), default=_json_default).encode()
            )
        elif path == "/snapshot.jpg":
            jpeg = preview.latest_jpeg()[1]
            if jpeg is None:
                self._send(503, "text/plain; charset=utf-8", b"no frame yet\n")
            else:
                self._send(200, "image/jpeg", jpeg)
        elif path == "/stream.mjpg":
            self._stream(preview)
        else:
            self._send(404, "text/plain; charset=utf-8", b"not found\n")

    def _send(self, code: int, kind: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _stream(self, preview: PreviewServer) -> None:
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Pragma", "no-cache")
        self.end_headers()
        self.connection.settimeout(_SEND_TIMEOUT_S)
        preview._register(self.connection)
        try:
            # Each part is followed at once by the next boundary: browsers (Chromium) show a part only
            # when they see the boundary after it, so closing it right away shows every frame as it comes
            # instead of one frame late (or never, when the loop pauses).
            self.wfile.write(f"--{BOUNDARY}\r\n".encode())
            seen = -1
            while True:
                seq = preview._wait_newer(seen)
                if seq is None:  # closing
                    return
                seq, jpeg = preview.latest_jpeg()
                if jpeg is None or seq == seen:
                    continue
                seen = seq
                head = f"Content-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
                self.wfile.write(head + jpeg + f"\r\n--{BOUNDARY}\r\n".encode())
                self.wfile.flush()
        except (ConnectionError, TimeoutError, OSError):
            pass  # the viewer went away or stalled; nothing to do for one preview client
        finally:
            preview._unregister(self.connection)


def _json_default(value: Any) -> Any:
    """Numpy scalars and arrays in a stats dict become plain JSON numbers and lists."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


class PreviewServer:
    """A video sink that serves the newest frame as an MJPEG stream with a small HTML page around it.

    ``host``/``port``: where to listen (loopback by default, so nothing is exposed unless asked; ``port=0``
    picks a free port, see ``url``). ``stats``: called on every overlay and ``/stats.json``; returns the
    loop's figures (``fps``, ``p50_ms``, ``p99_ms``, ``drops``, ``frames``). ``quality``: JPEG quality
    1-100. ``max_width``: composites wider than this are scaled down before encoding (saves bandwidth
    and CPU on a Pi). ``request_timeout``: seconds a client has to send its request. ``max_connections``:
    connections served at once. ``token``: required of every request when given; bound beyond loopback
    without one, a token is generated (see ``access_url``). Use as a context manager, or call ``start()``
    and ``close()``.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8080,
        *,
        stats: Callable[[], dict] | None = None,
        quality: int = 80,
        max_width: int | None = None,
        title: str = "edge-sdk preview",
        request_timeout: float = 10.0,
        max_connections: int = 32,
        token: str | None = None,
    ) -> None:
        _cv2()  # fail at construction, naming the extra, rather than on the first frame
        if not 1 <= quality <= 100:
            raise BadInputError(f"preview JPEG quality must be in 1..100, got {quality}")
        if max_width is not None and max_width < 16:
            raise BadInputError(f"preview max_width must be at least 16 pixels, got {max_width}")
        if not request_timeout > 0:
            raise BadInputError(f"preview request_timeout must be positive, got {request_timeout}")
        if max_connections < 1:
            raise BadInputError(f"preview max_connections must be at least 1, got {max_connections}")
        if token is not None and not token:
            raise BadInputError("the preview token must not be empty")
        if token is None and not is_loopback(host):
            token = secrets.token_urlsafe(16)
        self.host = host
        self.port = port
        self.quality = quality
        self.max_width = max_width
        self.title = title
        self.request_timeout = request_timeout
        self.max_connections = max_connections
        self.token = token
        self._stats = stats
        self._cond = threading.Condition()
        self._composite: np.ndarray | None = None
        self._split = 0
        self._seq = -1  # index of the newest composite written; -1 before any
        self._jpeg: tuple[int, bytes] | None = None  # (seq, bytes) of the newest encoded composite
        self._encode_lock = threading.Lock()
        self._written = 0
        self._closing = False
        self._clients: set[socket.socket] = set()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> PreviewServer:
        """Bind and serve in a daemon thread; returns self. A port in use raises ``BadInputError``."""
        if self._httpd is not None:
            return self
        try:
            httpd = _Server((self.host, self.port), self.max_connections, self.request_timeout)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise BadInputError(
                    f"the preview cannot listen on {self.host}:{self.port}: port {self.port} is in use. "
                    f"Pick another port (e.g. {self.port + 1}), or 0 for any free one."
                ) from e
            raise BadInputError(f"the preview cannot listen on {self.host}:{self.port}: {e}") from e
        httpd.preview = self
        self.port = httpd.server_address[1]
        self._httpd = httpd
        self._closing = False
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": _POLL_S},
            name="edge-sdk-preview",
            daemon=True,
        )
        self._thread.start()
        if not is_loopback(self.host):
            log.warning(
                "the preview listens on %s, reachable from other machines: requests need its token", self.host
            )
        log.info("preview at %s", self.url)
        return self

    @property
    def url(self) -> str:
        """The page's address, e.g. ``http://127.0.0.1:8080/`` (the real port once started with 0)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    @property
    def access_url(self) -> str:
        """``url`` with ``?token=...`` when a token is required: the address to open in a browser."""
        return self.url + self._query()

    def _query(self) -> str:
        return "" if self.token is None else "?" + urllib.parse.urlencode({"token": self.token})

    def close(self) -> None:
        """Disconnect every client, stop serving and release the port. Safe to call twice."""
        httpd, self._httpd = self._httpd, None
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            clients = list(self._clients)
        # Stream threads wake on the notify; shutting their sockets also frees one blocked in a send.
        for sock in clients:
            _quiet_close(sock)
        if httpd is not None:
            httpd.shutdown()
            # Idle connections too, or server_close would wait for their threads.
            httpd.drop_all()
            httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> PreviewServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- the sink ----------------------------------------------------------------------------------------

    def write(self, frame: Frame) -> None:
        """Show ``frame`` (raw | processed) to the viewers. Never waits on a client: it only keeps the
        newest composite and wakes the stream threads."""
        composite, split = side_by_side(frame)
        with self._cond:
            self._composite = composite
            self._split = split
            self._seq += 1
            self._written += 1
            self._cond.notify_all()

    # -- what the handlers use -------------------------------------------------------------------------

    def stats_dict(self) -> dict[str, Any]:
        """The ``stats`` callable's dict (a failing callable is logged, not raised into a client thread);
        without one, how many frames the preview was given."""
        if self._stats is None:
            return {"frames": self._written}
        try:
            return dict(self._stats())
        except Exception:  # the preview must keep streaming whatever the loop's stats do
            log.exception("preview stats callable failed")
            return {}

    def latest_jpeg(self) -> tuple[int, bytes | None]:
        """(sequence number, JPEG) of the newest composite with its overlay, encoded at most once per
        frame whichever client asks first; (-1, None) before the first frame."""
        with self._cond:
            seq, composite, split = self._seq, self._composite, self._split
        if composite is None:
            return -1, None
        with self._encode_lock:
            if self._jpeg is not None and self._jpeg[0] >= seq:
                return self._jpeg
            jpeg = self._encode(composite, split)
            self._jpeg = (seq, jpeg)
            return self._jpeg

    def authorized(self, query: str, authorization: str | None) -> bool:
        """Whether a request with this query string and ``Authorization`` header may be served."""
        if self.token is None:
            return True
        given = urllib.parse.parse_qs(query).get("token", [])
        scheme, _, bearer = (authorization or "").partition(" ")
        if scheme.lower() == "bearer":
            given.append(bearer.strip())
        # Constant time, so the token cannot be guessed a character at a time.
        return any(hmac.compare_digest(g.encode(), self.token.encode()) for g in given)

    def page(self) -> str:
        """The HTML page served at ``/`` (its stream and stats addresses carry the token, if any)."""
        query = self._query()
        return _PAGE.format(
            title=html.escape(self.title),
            stream=html.escape("/stream.mjpg" + query),
            stats=json.dumps("/stats.json" + query),
        )

    def _encode(self, composite: np.ndarray, split: int) -> bytes:
        cv2 = _cv2()
        image = composite.copy()  # the overlay must not draw into the composite other clients may reuse
        if self.max_width is not None and image.shape[1] > self.max_width:
            factor = self.max_width / image.shape[1]
            size = (self.max_width, max(1, round(image.shape[0] * factor)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            split = round(split * factor)
        scale = max(0.4, image.shape[0] / 600)
        margin = max(2, round(6 * scale))
        if split:
            _label(image, "raw", margin, margin, scale)
            _label(image, "denoised", split + margin, margin, scale)
        line = stats_line(self.stats_dict())
        if line:
            (_, h), base = cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, scale, max(1, round(scale * 1.5)))
            _label(image, line, margin, image.shape[0] - h - base - 3 * margin, scale)
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok:
            raise RuntimeError("OpenCV could not encode the preview frame as JPEG")
        return buf.tobytes()

    def _wait_newer(self, seen: int) -> int | None:
        """Block until a frame newer than ``seen`` exists (its sequence number) or the server closes
        (None)."""
        with self._cond:
            while not self._closing and self._seq <= seen:
                self._cond.wait(_POLL_S)
            return None if self._closing else self._seq

    def _register(self, sock: socket.socket) -> None:
        with self._cond:
            self._clients.add(sock)

    def _unregister(self, sock: socket.socket) -> None:
        with self._cond:
            self._clients.discard(sock)
