"""Camera: listing from recorded sysfs/dev trees, the errors for missing cameras and backends, the drop-oldest
queue, and reconnection with back-off, all on real OpenCV captures (a camera opened on a video file, which
OpenCV reads through the same VideoCapture as a device)."""

from __future__ import annotations

import importlib.util
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from edge_sdk.devices.sources.camera import Camera, FrameQueue
from edge_sdk.devices.sources.video import default_camera, list_cameras, open_video_source
from edge_sdk.errors import BadInputError, DeviceError, MissingExtraError
from edge_sdk.stages.base import Frame

cv2 = pytest.importorskip("cv2", reason="needs the camera extra")
pytestmark = pytest.mark.camera

TREES = Path(__file__).parent / "fixtures" / "video"
VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


# --- listing ----------------------------------------------------------------------------------------


def test_laptop_lists_capture_and_metadata_nodes() -> None:
    cams = {c.path: c for c in list_cameras(TREES / "usb-webcam-laptop")}
    assert list(cams) == ["/dev/video0", "/dev/video1", "/dev/video2", "/dev/video3"]
    assert cams["/dev/video0"].kind == "usb" and cams["/dev/video0"].capture is True
    assert cams["/dev/video1"].capture is False and cams["/dev/video1"].source == ""
    assert cams["/dev/video2"].name == "Logitech BRIO" and cams["/dev/video2"].source == "/dev/video2"
    assert default_camera(TREES / "usb-webcam-laptop") == "/dev/video0"


def test_pi5_csi_camera_opens_through_picamera2() -> None:
    cams = list_cameras(TREES / "raspberry-pi-5-csi")
    assert cams[0].source == "picamera2" and cams[0].name == "imx708" and cams[0].note == "libcamera"
    receivers = [c for c in cams if c.name == "rp1-cfe"]
    assert len(receivers) == 8 and all(c.capture is False and "picamera2" in c.note for c in receivers)
    assert [c.kind for c in cams if c.name == "pispbe"] == ["codec", "codec"]
    assert default_camera(TREES / "raspberry-pi-5-csi") == "picamera2"


def test_pi4_without_picamera2_says_how_to_install_it() -> None:
    cams = list_cameras(TREES / "raspberry-pi-4-csi-no-picamera2")
    assert cams[0].name == "ov5647" and "sudo apt install python3-picamera2" in cams[0].note
    assert sum(c.kind == "codec" for c in cams) == 4


def test_jetson_csi_cameras_get_argus_pipelines() -> None:
    cams = list_cameras(TREES / "jetson-orin-csi")
    assert [c.kind for c in cams] == ["csi-jetson", "csi-jetson"]
    assert "sensor-id=0" in cams[0].source and "sensor-id=1" in cams[1].source
    assert cams[0].source.startswith("gst:nvarguscamerasrc") and cams[0].source.endswith("appsink drop=true")


def test_no_camera_anywhere() -> None:
    root = TREES / "no-camera"
    assert list_cameras(root) == []
    with pytest.raises(BadInputError, match="this machine has no camera"):
        default_camera(root)
    with pytest.raises(BadInputError, match="this machine has no camera"):
        open_video_source("camera", root=root)


def test_missing_camera_lists_the_ones_there_are() -> None:
    with pytest.raises(BadInputError) as e:
        Camera("camera:5", root=TREES / "usb-webcam-laptop")
    msg = str(e.value)
    assert "/dev/video5 does not exist" in msg
    assert "/dev/video0 'Integrated Camera: Integrated C'" in msg and "/dev/video2 'Logitech BRIO'" in msg
    assert "/dev/video1" not in msg  # a metadata node is not offered as a camera
    with pytest.raises(BadInputError, match=r"/dev/video9 does not exist; this machine has no camera"):
        open_video_source("/dev/video9", root=TREES / "no-camera")
    with pytest.raises(BadInputError, match="give the camera's number"):
        Camera("camera:front")


def test_a_camera_cannot_be_replayed_fast() -> None:
    with pytest.raises(BadInputError, match="always runs in real time"):
        open_video_source("camera:0", realtime=False)


def test_gstreamer_needs_an_opencv_built_with_it() -> None:
    if re.search(r"^\s*GStreamer:\s*YES", cv2.getBuildInformation(), re.M):
        cam = Camera("gst:videotestsrc num-buffers=5 ! videoconvert ! video/x-raw,format=BGR ! appsink")
        cam.close()
        return
    with pytest.raises(BadInputError, match="OpenCV built with GStreamer.*python3-opencv") as e:
        Camera("gst:nvarguscamerasrc ! appsink")
    # the camera extra is what brought this OpenCV, so its pip hint would send the user in a circle
    assert not isinstance(e.value, MissingExtraError) and "pip install" not in str(e.value)


def test_picamera2_missing_names_the_package() -> None:
    if importlib.util.find_spec("picamera2") is not None:
        return  # on a Pi with picamera2 the backend is there; this checks the message elsewhere
    with pytest.raises(MissingExtraError, match=r"sudo apt install python3-picamera2.*edge-sdk\[camera\]"):
        Camera("picamera2")


def test_bad_pixel_format_is_refused() -> None:
    with pytest.raises(BadInputError, match="four-character code"):
        Camera(str(VTEST), fourcc="MJPEG")


# --- the queue and the capture thread ----------------------------------------------------------------


def test_frame_queue_drops_the_oldest() -> None:
    q = FrameQueue(2)
    img = np.zeros((1, 1, 3), np.uint8)
    for i in range(5):
        q.put(Frame(img, i / 10, i))
    assert q.drops == 3
    assert [q.get(0.01).index, q.get(0.01).index] == [3, 4]  # type: ignore[union-attr]
    assert q.get(0.01) is None


def test_slow_consumer_gets_the_newest_frames_and_drops_are_counted() -> None:
    cam = Camera(str(VTEST), queue_size=2)
    assert (cam.width, cam.height, cam.fps) == (768, 576, 10.0)
    seen = []
    try:
        for frame in cam:
            seen.append(frame)
            time.sleep(0.02)  # slower than decoding: the capture thread overtakes us
            if len(seen) == 15:
                break
    finally:
        cam.close()
    indices = [f.index for f in seen]
    assert cam.drops > 0
    assert indices == sorted(indices) and any(b - a > 1 for a, b in zip(indices, indices[1:], strict=False))
    assert all(f.raw is f.image and f.image.shape == (576, 768, 3) for f in seen)
    times = [f.time for f in seen]
    assert times == sorted(times)


def test_camera_that_disappears_is_reopened_with_backoff(
    tmp_path: Path, write_video: Callable[..., list[np.ndarray]]
) -> None:
    path, away = tmp_path / "cam.avi", tmp_path / "unplugged.avi"
    frames = write_video(path, 12)
    cam = Camera(str(path), backoff=0.01, max_backoff=0.04, queue_size=64)
    path.rename(away)  # "unplugged": the open capture reads on; the reopen after its end fails

    def plug_back_in() -> None:
        deadline = time.monotonic() + 20
        while cam.reconnect_attempts < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        away.rename(path)

    done = threading.Event()

    def watchdog() -> None:
        if not done.wait(30):
            cam.close()  # never hang the test run; never fire after it either

    threading.Thread(target=plug_back_in, daemon=True).start()
    threading.Thread(target=watchdog, daemon=True).start()
    seen = []
    for frame in cam:
        seen.append(frame)
        if len(seen) >= 18:
            break
    attempts, reconnects = cam.reconnect_attempts, cam.reconnects
    done.set()
    cam.close()
    assert attempts >= 4, "the back-off must have retried while the camera was gone"
    assert cam.longest_wait == 0.04  # 0.01, 0.02, 0.04, then capped
    assert reconnects >= 1 and cam.connected
    assert [f.index for f in seen] == list(range(18))  # nothing dropped: the queue was long enough
    for f, expected in zip(seen[:12], frames, strict=True):
        assert np.array_equal(f.image, expected)
    assert np.array_equal(seen[12].image, frames[0])  # the file "camera" came back from its start


def test_camera_gone_too_long_gives_up(tmp_path: Path, write_video: Callable[..., list[np.ndarray]]) -> None:
    path = tmp_path / "cam.avi"
    write_video(path, 3)
    cam = Camera(str(path), backoff=0.01, max_backoff=0.02, give_up_after=0.2)
    path.unlink()
    with pytest.raises(DeviceError, match=r"has been gone for 0.2 s \(\d+ reconnect attempts\)"):
        for _ in cam:
            pass
    cam.close()
    assert cam.reconnects == 0
