"""A live camera as a video source: picamera2 on a Raspberry Pi, OpenCV/V4L2 for USB cameras, or a
GStreamer pipeline (Jetson CSI cameras through nvarguscamerasrc).

A capture thread reads frames as fast as the camera delivers them into a small queue that drops the
oldest frame when full: when processing is slower than capture, the loop always gets the newest frame
and latency stays bounded by the queue length instead of growing without end. Drops are counted and
show as gaps in ``Frame.index``. A camera that disappears (a read fails, the device is unplugged) is
reopened with exponential back-off, capped; each comeback counts in ``reconnects`` and is logged.
"""

from __future__ import annotations

import collections
import logging
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.devices.sources.audio import ClosingSource
from edge_sdk.devices.sources.video import describe_cameras, import_cv2, list_cameras
from edge_sdk.errors import BadInputError, DeviceError, MissingExtraError
from edge_sdk.stages.base import Frame

log = logging.getLogger(__name__)


class FrameQueue:
    """A bounded queue that drops its oldest item to make room: the producer never blocks."""

    def __init__(self, size: int = 2) -> None:
        if size < 1:
            raise BadInputError(f"a frame queue holds at least one frame, not {size}")
        self._items: collections.deque[Frame] = collections.deque()
        self._size = size
        self._cond = threading.Condition()
        self.drops = 0

    def put(self, item: Frame) -> None:
        """Add ``item``, dropping (and counting) the oldest one if the queue is full."""
        with self._cond:
            if len(self._items) >= self._size:
                self._items.popleft()
                self.drops += 1
            self._items.append(item)
            self._cond.notify()

    def get(self, timeout: float) -> Frame | None:
        """The oldest item, waiting up to ``timeout`` seconds; None if none came."""
        with self._cond:
            if not self._items:
                self._cond.wait(timeout)
            return self._items.popleft() if self._items else None


class _OpenCVBackend:
    """V4L2 devices, files and GStreamer pipelines through ``cv2.VideoCapture``."""

    def __init__(self, target: int | str, api: int, settings: dict[str, Any]) -> None:
        self.cv2 = import_cv2("Capturing from a camera")
        self.target, self.api, self.settings = target, api, settings
        self.cap: Any = None

    def open(self) -> bool:
        cap = self.cv2.VideoCapture(self.target, self.api)
        if not cap.isOpened():
            cap.release()
            return False
        s, cv2 = self.settings, self.cv2
        # The pixel format first: a driver picks the sizes and rates it offers per format.
        if s.get("fourcc"):
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*s["fourcc"]))
        for prop, key in ((cv2.CAP_PROP_FRAME_WIDTH, "width"), (cv2.CAP_PROP_FRAME_HEIGHT, "height")):
            if s.get(key):
                cap.set(prop, s[key])
        if s.get("fps"):
            cap.set(cv2.CAP_PROP_FPS, s["fps"])
        self.cap = cap
        return True

    def properties(self) -> tuple[int, int, float]:
        cv2 = self.cv2
        return (
            int(self.cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(self.cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            float(self.cap.get(cv2.CAP_PROP_FPS) or 0.0),
        )

    def read(self) -> np.ndarray | None:
        ok, image = self.cap.read()
        return image if ok and image is not None else None

    def release(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None


class _Picamera2Backend:
    """A Raspberry Pi CSI camera through libcamera's picamera2."""

    def __init__(self, settings: dict[str, Any]) -> None:
        try:
            from picamera2 import Picamera2
        except ImportError:
            raise MissingExtraError(
                "picamera2",
                "camera",
                "A Raspberry Pi CSI camera (install it with 'sudo apt install python3-picamera2' on "
                "Raspberry Pi OS, which also brings libcamera)",
            ) from None
        self.Picamera2, self.settings = Picamera2, settings
        self.cam: Any = None

    def open(self) -> bool:
        s = self.settings
        try:
            cam = self.Picamera2()
            # picamera2's "RGB888" is, despite the name, B,G,R bytes in memory: what OpenCV calls BGR.
            main = {"format": "RGB888", "size": (s.get("width") or 1280, s.get("height") or 720)}
            controls = {"FrameRate": float(s["fps"])} if s.get("fps") else {}
            cam.configure(cam.create_video_configuration(main=main, controls=controls))
            cam.start()
        except (RuntimeError, IndexError, OSError) as e:
            log.warning("picamera2 could not open the camera: %s", e)
            return False
        self.cam = cam
        return True

    def properties(self) -> tuple[int, int, float]:
        w, h = self.cam.camera_configuration()["main"]["size"]
        return int(w), int(h), float(self.settings.get("fps") or 30.0)

    def read(self) -> np.ndarray | None:
        try:
            image = self.cam.capture_array("main")
        except (RuntimeError, OSError):
            return None
        return np.ascontiguousarray(image[..., :3])

    def release(self) -> None:
        if self.cam is not None:
            self.cam.close()
            self.cam = None


def _backend(device: int | str, settings: dict[str, Any], root: str | Path) -> tuple[Any, str]:
    """The backend for ``device`` and the camera's display name."""
    if device in ("picamera2", "picam"):
        return _Picamera2Backend(settings), "picamera2"
    if isinstance(device, str) and device.startswith("gst:"):
        cv2 = import_cv2("Capturing from a GStreamer pipeline")
        if not re.search(r"^\s*GStreamer:\s*YES", cv2.getBuildInformation(), re.M):
            # Not a missing extra: the camera extra brings opencv-python-headless, which is built without
            # GStreamer, so the pip hint MissingExtraError prints would not help.
            raise BadInputError(
                "a gst: source needs an OpenCV built with GStreamer, and this one (from pip) is not. On a "
                "Jetson or a Pi use the system OpenCV ('sudo apt install python3-opencv'; on a Jetson the "
                "one from JetPack) in a venv made with --system-site-packages, without opencv-python-headless"
            )
        return _OpenCVBackend(device[4:], cv2.CAP_GSTREAMER, settings), "gst"
    if isinstance(device, str) and device.startswith("camera:"):
        number = device[7:]
        if not number.isdigit():
            raise BadInputError(f"'{device}': give the camera's number, e.g. camera:0 for /dev/video0")
        device = int(number)
    if isinstance(device, int):
        device = f"/dev/video{device}"
    cv2 = import_cv2("Capturing from a camera")
    if device.startswith("/dev/video") and not (Path(root) / device.lstrip("/")).exists():
        raise BadInputError(f"camera {device} does not exist; {describe_cameras(list_cameras(root))}")
    # V4L2 for device nodes (no probing of other backends); anything else (a file) OpenCV chooses.
    api = cv2.CAP_V4L2 if device.startswith("/dev/") else cv2.CAP_ANY
    return _OpenCVBackend(device, api, settings), device


class Camera(ClosingSource):
    """A live camera: ``device`` is an index or ``camera:N`` (``/dev/videoN``), a device path,
    ``gst:PIPELINE``, or ``picamera2``; any other path OpenCV can open also works (handy for tests).

    ``width``, ``height``, ``fps`` and ``fourcc`` (a pixel format such as ``MJPG`` or ``YUYV``) are
    requests; the driver may pick the nearest it offers, and ``width``/``height``/``fps`` say what it
    did. Frames go through a drop-oldest queue of ``queue_size``. When reading fails, the camera is
    reopened after ``backoff`` seconds, doubling up to ``max_backoff``; with ``give_up_after`` the
    iterator raises ``DeviceError`` once the camera has been gone that long (default: keep trying).
    """

    def __init__(
        self,
        device: int | str = 0,
        *,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
        fourcc: str | None = None,
        queue_size: int = 2,
        backoff: float = 0.25,
        max_backoff: float = 8.0,
        give_up_after: float | None = None,
        root: str | Path = "/",
    ) -> None:
        if fourcc is not None and len(fourcc) != 4:
            raise BadInputError(
                f"a pixel format is a four-character code such as MJPG or YUYV, not {fourcc!r}"
            )
        settings = {"width": width, "height": height, "fps": fps, "fourcc": fourcc}
        self._backend, self.name = _backend(device, settings, root)
        self.backoff, self.max_backoff, self.give_up_after = backoff, max_backoff, give_up_after
        self._queue = FrameQueue(queue_size)
        self.reconnects = 0
        self.reconnect_attempts = 0
        self.longest_wait = 0.0  # the longest back-off slept so far (never above max_backoff)
        self.connected = False
        self.captured = 0
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        if not self._backend.open():
            raise DeviceError(f"cannot open camera {self.name}; {describe_cameras(list_cameras(root))}")
        self.connected = True
        self.width, self.height, self.fps = self._backend.properties()
        log.info("camera %s open: %dx%d at %g fps", self.name, self.width, self.height, self.fps)

    @property
    def drops(self) -> int:
        """Frames captured and then dropped because the consumer fell behind."""
        return self._queue.drops

    def start(self) -> None:
        """Start the capture thread (iterating does this)."""
        if self._closed.is_set():
            raise DeviceError(f"camera {self.name} is closed")
        if self._thread is None:
            self._thread = threading.Thread(target=self._capture, name=f"camera {self.name}", daemon=True)
            self._thread.start()

    def _capture(self) -> None:
        t0 = time.monotonic()
        try:
            while not self._closed.is_set():
                image = self._backend.read() if self.connected else None
                if image is None:
                    self._reconnect()
                    continue
                self._queue.put(Frame(image, time.monotonic() - t0, self.captured, raw=image))
                self.captured += 1
        except BaseException as e:  # noqa: BLE001 - handed to the consumer, which raises it
            self._error = e
        finally:
            if self._closed.is_set():
                # close() may have stopped waiting for a read that hung; the capture is released here,
                # after that read returns, never under it (OpenCV crashes on a capture freed mid-read)
                self._backend.release()

    def _reconnect(self) -> None:
        """Reopen the camera with capped exponential back-off until it answers, or give up."""
        if self.connected:
            log.warning("camera %s: no frame (disconnected?); reconnecting", self.name)
        self.connected = False
        self._backend.release()
        delay, lost = self.backoff, time.monotonic()
        while not self._closed.is_set():
            if self.give_up_after is not None and time.monotonic() - lost > self.give_up_after:
                raise DeviceError(
                    f"camera {self.name} has been gone for {self.give_up_after:g} s "
                    f"({self.reconnect_attempts} reconnect attempts); was it unplugged?"
                )
            self.reconnect_attempts += 1
            if self._backend.open():
                self.connected = True
                self.reconnects += 1
                log.warning("camera %s is back after %.2f s (reconnect %d)", self.name,
                            time.monotonic() - lost, self.reconnects)  # fmt: skip
                return
            self.longest_wait = max(self.longest_wait, delay)
            self._closed.wait(delay)
            delay = min(delay * 2, self.max_backoff)

    def __iter__(self) -> Iterator[Frame]:
        """Yield the newest frames as they are captured, until ``close``; starts the capture thread."""
        self.start()
        while not self._closed.is_set():
            frame = self._queue.get(timeout=0.1)  # short, so Ctrl-C and close land promptly
            if self._error is not None:
                raise self._error
            if frame is not None:
                yield frame

    def close(self) -> None:
        """Stop capturing and release the camera; idempotent."""
        self._closed.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            if self._thread.is_alive():
                log.warning(
                    "camera %s: a read is still running; it is released when that read returns", self.name
                )
                return
        self._backend.release()

    def __repr__(self) -> str:
        return f"Camera({self.name!r}, {self.width}x{self.height} at {self.fps:g} fps)"
