"""VideoFile on the real vtest.avi (Debian's opencv-doc) and on small videos written here with OpenCV."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from edge_sdk.devices.sources.video import VideoSource, open_video_source
from edge_sdk.devices.sources.video_file import VideoFile
from edge_sdk.errors import BadInputError

cv2 = pytest.importorskip("cv2", reason="needs the camera extra")
pytestmark = pytest.mark.camera

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


def test_vtest_replays_every_frame_with_file_time() -> None:
    with VideoFile(VTEST) as v:
        assert isinstance(v, VideoSource)
        assert (v.width, v.height, v.fps, v.frame_count, v.name) == (768, 576, 10.0, 795, "vtest.avi")
        frames = list(v)
        assert v.drops == 0 and v.reconnects == 0
    assert [f.index for f in frames] == list(range(795))
    assert frames[-1].time == pytest.approx(79.4)
    assert all(f.image.shape == (576, 768, 3) and f.image.dtype == np.uint8 for f in frames[:5])
    assert frames[3].raw is frames[3].image


def test_pixels_come_back_as_written_and_a_second_pass_starts_over(
    tmp_path: Path, write_video: Callable[..., list[np.ndarray]]
) -> None:
    written = write_video(tmp_path / "noise.avi", 7)
    v = VideoFile(tmp_path / "noise.avi")
    first, second = list(v), list(v)
    for frames in (first, second):
        assert len(frames) == 7
        assert all(np.array_equal(f.image, w) for f, w in zip(frames, written, strict=True))
    assert first[6].time == pytest.approx(6 / 25)
    v.close()


def test_loop_replays_forever_with_growing_index(
    tmp_path: Path, write_video: Callable[..., list[np.ndarray]]
) -> None:
    write_video(tmp_path / "short.avi", 4)
    v = VideoFile(tmp_path / "short.avi", loop=True)
    frames = []
    for f in v:
        frames.append(f)
        if len(frames) == 10:
            v.close()
    assert [f.index for f in frames] == list(range(10))
    assert np.array_equal(frames[4].image, frames[0].image) and frames[9].time == pytest.approx(9 / 25)


def test_realtime_with_a_slow_consumer_skips_frames(
    tmp_path: Path, write_video: Callable[..., list[np.ndarray]]
) -> None:
    write_video(tmp_path / "fast.avi", 40, fps=100.0)
    v = VideoFile(tmp_path / "fast.avi", realtime=True, buffer_frames=1)
    indices = []
    for f in v:
        indices.append(f.index)
        time.sleep(0.05)  # five frame periods per frame
    assert v.drops > 0 and len(indices) + v.drops == 40
    assert indices == sorted(indices) and any(b - a > 1 for a, b in zip(indices, indices[1:], strict=False))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing.mp4", "does not exist"),
        (lambda p: p, "is not a file"),
        (lambda p: (p / "text.avi").write_text("not a video") and p / "text.avi", "not a video file OpenCV"),
    ],
)
def test_unreadable_sources_are_bad_input(tmp_path: Path, make, message: str) -> None:
    with pytest.raises(BadInputError, match=message):
        VideoFile(make(tmp_path))


def test_open_video_source_opens_files(tmp_path: Path, write_video: Callable[..., list[np.ndarray]]) -> None:
    write_video(tmp_path / "a.avi", 2)
    with open_video_source(str(tmp_path / "a.avi"), realtime=True) as v:
        assert isinstance(v, VideoFile) and v.realtime
    with pytest.raises(BadInputError, match="does not exist"):
        open_video_source(str(tmp_path / "nope.mkv"))
    with pytest.raises(BadInputError, match="a video source is"):
        open_video_source("  ")
