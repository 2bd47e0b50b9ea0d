"""VideoFile on the real vtest.avi (Debian's opencv-doc), on small videos written here with OpenCV, and on
copies of real footage damaged here (zeroed frames, a zeroed block, a cut-off end)."""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
        assert v.drops == v.reconnects == v.decode_errors == v.frames_skipped == 0
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


def test_frames_after_a_corrupt_region_are_delivered_and_the_loss_counted(
    tmp_path: Path, mjpeg_clip: Any, caplog: pytest.LogCaptureFixture
) -> None:
    bad = mjpeg_clip.damaged(tmp_path / "bad.avi", zero=range(10, 13))
    with caplog.at_level(logging.WARNING), VideoFile(bad) as v:
        frames = list(v)
        assert (v.decode_errors, v.frames_skipped, v.drops) == (3, 3, 0)
    # Frames 13 on are the file's own (not repeats, not a shifted timeline), at their time in the file.
    assert [f.index for f in frames] == [*range(10), *range(13, 24)]
    assert all(np.array_equal(f.image, mjpeg_clip.frames[f.index]) for f in frames)
    assert frames[10].time == pytest.approx(1.3)
    assert "frames 10 to 12 could not be decoded; going on from frame 13" in caplog.text


def test_a_truncated_file_reports_the_frames_it_lists_but_never_delivered(
    tmp_path: Path, mjpeg_clip: Any, caplog: pytest.LogCaptureFixture
) -> None:
    cut = mjpeg_clip.damaged(tmp_path / "cut.avi", cut_before=15)
    with caplog.at_level(logging.WARNING), VideoFile(cut) as v:
        assert v.frame_count == 24
        assert [f.index for f in v] == list(range(15))
        assert (v.decode_errors, v.frames_skipped) == (0, 9)
    assert "ended after 15 of the 24 frames it lists: 9 not decodable" in caplog.text


def test_a_zeroed_block_in_real_xvid_footage_loses_frames_the_count_shows(tmp_path: Path) -> None:
    data = bytearray(VTEST.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 200_000] = bytes(200_000)
    (tmp_path / "vtest.avi").write_bytes(bytes(data))
    with VideoFile(tmp_path / "vtest.avi") as v:
        delivered = sum(1 for _ in v)
        # The demuxer resynchronises after the block: the second half of the file still plays.
        assert 600 < delivered < 795
        assert v.frames_skipped == 795 - delivered and v.decode_errors == 0


def test_a_looping_corrupt_file_counts_its_loss_on_every_pass(tmp_path: Path, mjpeg_clip: Any) -> None:
    v = VideoFile(mjpeg_clip.damaged(tmp_path / "bad.avi", zero=range(10, 13)), loop=True)
    indices, errors_at = [], {}
    for f in v:
        indices.append(f.index)
        errors_at[f.index] = v.decode_errors
        if len(indices) == 21 + 15:
            v.close()
    one_pass = [*range(10), *range(13, 24)]
    assert indices == one_pass + [24 + k for k in one_pass[:15]]
    assert (errors_at[23], errors_at[24 + 9], errors_at[24 + 13]) == (3, 3, 6)
    assert v.frames_skipped == 6


def test_a_file_that_cannot_decode_further_ends_without_endless_retries(
    tmp_path: Path, mjpeg_clip: Any
) -> None:
    # Every frame after the first is garbage: each pass reads on up to the frames the container lists.
    v = VideoFile(mjpeg_clip.damaged(tmp_path / "bad.avi", zero=range(1, 24)))
    assert [f.index for f in v] == [0] and [f.index for f in v] == [0]
    assert (v.decode_errors, v.frames_skipped) == (0, 46)
    v.close()


def test_a_truncated_file_in_a_container_without_a_frame_index_is_only_logged(
    tmp_path: Path, write_video: Callable[..., list[np.ndarray]], caplog: pytest.LogCaptureFixture
) -> None:
    # Matroska gives a duration, not a frame count: OpenCV's count is duration x fps, which a longer audio
    # track or an edit list also exceed, so a shortfall there is not counted as lost.
    write_video(tmp_path / "clip.mkv", 75)
    data = (tmp_path / "clip.mkv").read_bytes()
    (tmp_path / "cut.mkv").write_bytes(data[: len(data) // 3])
    with caplog.at_level(logging.WARNING), VideoFile(tmp_path / "cut.mkv") as v:
        delivered = sum(1 for _ in v)
        assert v.frame_count == 75 and delivered < 75 - v.fps
        assert v.decode_errors == v.frames_skipped == 0
    assert "before the duration its container gives" in caplog.text
    shutil.copy(tmp_path / "clip.mkv", tmp_path / "whole.mkv")
    with VideoFile(tmp_path / "whole.mkv") as v:
        assert sum(1 for _ in v) == 75 and v.frames_skipped == 0


def test_an_mpeg2_transport_stream_delivers_every_frame(tmp_path: Path, mjpeg_clip: Any) -> None:
    # Seeking back to frame 0 after the first read (to learn the size) landed on the second keyframe here:
    # 12 of the first 37 frames were never delivered, silently.
    writer = cv2.VideoWriter(str(tmp_path / "clip.ts"), cv2.VideoWriter_fourcc(*"MPG2"), 25.0, (192, 144))
    assert writer.isOpened()
    for image in [*mjpeg_clip.frames, *mjpeg_clip.frames[:13]]:
        writer.write(image)
    writer.release()
    with VideoFile(tmp_path / "clip.ts") as v:
        assert [f.index for f in v] == list(range(37))
        assert v.frames_skipped == v.decode_errors == 0
