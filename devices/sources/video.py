"""What a video loop reads frames from, and how a user names it: ``camera``, ``camera:N``, ``/dev/videoN``,
``gst:PIPELINE``, ``picamera2`` (or ``picam``), or the path of a video file; and which cameras exist.

Every source is an iterable of ``edge_sdk.stages.base.Frame`` (BGR uint8 H×W×3, stream time, index
counting the frames the source delivered, so gaps show drops) with ``name``, ``fps``, ``width``,
``height``, ``drops``, ``reconnects`` and ``close()``. ``VideoLoop`` relies on nothing else.

Cameras are listed from sysfs and ``/dev`` (``root`` points at a recorded tree in the tests), not by
opening each node: opening a camera can take seconds and disturbs a program that is using it.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from edge_sdk.errors import BadInputError, MissingExtraError
from edge_sdk.stages.base import Frame

# Raspberry Pi video nodes that are not cameras (hardware codecs, the ISP, the back end of the PiSP).
_PI_NOT_CAMERAS = ("bcm2835-codec", "bcm2835-isp", "pispbe", "rpivid", "rpi-hevc")
# Raspberry Pi CSI receivers: raw Bayer, usable only through libcamera (picamera2).
_PI_CSI_RECEIVERS = ("unicam", "rp1-cfe")
JETSON_PIPELINE = (
    "nvarguscamerasrc sensor-id={n} ! video/x-raw(memory:NVMM),width=1280,height=720,framerate=30/1 ! "
    "nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! appsink drop=true"
)


def import_cv2(purpose: str) -> Any:
    """OpenCV, imported when first needed; its absence names the ``camera`` extra."""
    try:
        import cv2
    except ImportError:
        raise MissingExtraError("opencv-python-headless", "camera", purpose) from None
    return cv2


@runtime_checkable
class VideoSource(Protocol):
    """A stream of frames with the counters a loop reports: ``drops`` (frames lost because the consumer
    fell behind) and ``reconnects`` (times a lost camera came back)."""

    name: str
    fps: float
    width: int
    height: int

    @property
    def drops(self) -> int: ...

    @property
    def reconnects(self) -> int: ...

    def __iter__(self) -> Iterator[Frame]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class CameraInfo:
    """A camera (or a video node that is not one) found on this machine.

    ``kind`` is ``usb``, ``csi-pi``, ``csi-jetson``, ``codec`` (a hardware codec or ISP node) or
    ``v4l2`` (unknown); ``capture`` says whether it delivers frames directly (None: sysfs cannot
    tell); ``source`` is what to pass to ``--source`` to open it ('' when it cannot be opened).
    """

    path: str
    name: str
    kind: str
    capture: bool | None
    source: str
    note: str = ""

    def __str__(self) -> str:
        opens = f" → --source {self.source}" if self.source else ""
        note = f" ({self.note})" if self.note else ""
        return f"{self.path} {self.name!r} [{self.kind}]{opens}{note}"


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return ""


def _number(name: str) -> int:
    m = re.search(r"(\d+)$", name)
    return int(m.group(1)) if m else -1


def _picamera2_installed(root: Path) -> bool:
    # Debian's python3-picamera2 lives in dist-packages; a pip install is found by the import system.
    if any(root.glob("usr/lib/python3*/dist-packages/picamera2")):
        return True
    return root == Path("/") and importlib.util.find_spec("picamera2") is not None


def list_cameras(root: str | Path = "/") -> list[CameraInfo]:
    """The video nodes under ``root`` (sysfs ``class/video4linux`` and ``/dev/video*``), classified,
    plus a Raspberry Pi CSI camera (reached through picamera2) when a sensor is attached."""
    root = Path(root)
    sysfs = root / "sys/class/video4linux"
    nodes = {p.name for p in sysfs.glob("video*")} | {p.name for p in (root / "dev").glob("video*")}
    cameras, jetson_sensor = [], 0
    for node in sorted(nodes, key=_number):
        meta = sysfs / node
        name = _read(meta / "name") or "?"
        index = _read(meta / "index")
        driver = re.search(r"^DRIVER=(.*)$", _read(meta / "device/uevent"), re.M)
        path = f"/dev/{node}"
        if not (root / "dev" / node).exists():
            cameras.append(CameraInfo(path, name, "v4l2", False, "", "in sysfs but no /dev node"))
        elif driver and driver.group(1) == "uvcvideo":
            # A UVC camera has a capture node (index 0) and a metadata node (index 1) per interface.
            capture = index in ("", "0")
            cameras.append(
                CameraInfo(path, name, "usb", capture, path if capture else "", "" if capture else "metadata")
            )
        elif name.startswith("vi-output"):
            pipeline = "gst:" + JETSON_PIPELINE.format(n=jetson_sensor)
            cameras.append(CameraInfo(path, name, "csi-jetson", True, pipeline, "Argus via GStreamer"))
            jetson_sensor += 1
        elif name.startswith(_PI_CSI_RECEIVERS):
            cameras.append(CameraInfo(path, name, "csi-pi", False, "", "raw CSI receiver; use picamera2"))
        elif name.startswith(_PI_NOT_CAMERAS):
            cameras.append(CameraInfo(path, name, "codec", False, "", "not a camera"))
        else:
            cameras.append(CameraInfo(path, name, "v4l2", None, path))
    sensors = sorted(
        {_read(p / "name").split()[0] for p in sysfs.glob("v4l-subdev*") if _read(p / "name")}
        & _KNOWN_PI_SENSORS
    )
    if sensors and any(c.kind == "csi-pi" for c in cameras):
        ok = _picamera2_installed(root)
        note = "libcamera" if ok else "needs picamera2: sudo apt install python3-picamera2"
        cameras.insert(0, CameraInfo("libcamera", ", ".join(sensors), "csi-pi", True, "picamera2", note))
    return cameras


# Sensors of the official and common third-party Raspberry Pi camera modules.
_KNOWN_PI_SENSORS = {"imx219", "imx477", "imx708", "imx708_wide", "imx296", "imx500", "ov5647", "ov9281"}


def describe_cameras(cameras: list[CameraInfo]) -> str:
    """One line for error messages: the cameras there are, or that there are none."""
    usable = [c for c in cameras if c.source]
    if not usable:
        found = (
            f" (video nodes that are not cameras: {', '.join(c.path for c in cameras)})" if cameras else ""
        )
        return "this machine has no camera: no /dev/video* capture node and no CSI sensor" + found
    return "cameras here: " + "; ".join(str(c) for c in usable)


def default_camera(root: str | Path = "/") -> str:
    """The source spec ``camera`` stands for: the first camera that delivers frames."""
    cameras = list_cameras(root)
    for c in cameras:
        if c.source and c.capture is not False:
            return c.source
    raise BadInputError(f"--source camera: {describe_cameras(cameras)}")


def open_video_source(
    spec: str,
    *,
    width: int | None = None,
    height: int | None = None,
    fps: float | None = None,
    fourcc: str | None = None,
    realtime: bool | None = None,
    loop: bool = False,
    root: str | Path = "/",
) -> Any:
    """Open what ``spec`` names: ``camera`` (the first camera), ``camera:N`` or ``/dev/videoN`` (a
    V4L2 camera), ``gst:PIPELINE`` (a GStreamer pipeline ending in appsink), ``picamera2``/``picam``
    (a Raspberry Pi CSI camera), or a video file path.

    ``realtime`` paces a file at its frame rate (None or False: as fast as possible); a camera is
    always real time, so ``realtime=False`` with one is a ``BadInputError``. ``root`` is where the
    cameras are listed from (for the error that says which exist).
    """
    if not isinstance(spec, str) or not spec.strip():
        raise BadInputError(
            f"a video source is camera[:N], /dev/videoN, gst:PIPELINE, picamera2 or a file, not {spec!r}"
        )
    spec = spec.strip()
    is_camera = spec in ("camera", "picamera2", "picam") or spec.startswith(("camera:", "gst:", "/dev/video"))
    if not is_camera:
        from edge_sdk.devices.sources.video_file import VideoFile

        return VideoFile(spec, realtime=bool(realtime), loop=loop)
    if realtime is False:
        raise BadInputError("a camera always runs in real time; --fast only applies to files")
    from edge_sdk.devices.sources.camera import Camera

    if spec == "camera":
        spec = default_camera(root)
    return Camera(spec, width=width, height=height, fps=fps, fourcc=fourcc, root=root)
