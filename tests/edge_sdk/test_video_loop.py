"""VideoLoop and VideoWriterSink on real sources: vtest.avi (Debian's opencv-doc), videos written here, and a
Camera on a file for the drop-oldest path."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_sdk.devices.sources.camera import Camera
from edge_sdk.devices.sources.video_file import VideoFile
from edge_sdk.errors import BadInputError
from edge_sdk.live.sinks import VideoWriterSink, choose_codec
from edge_sdk.live.stats import StageFailed
from edge_sdk.live.video import VideoLoop
from edge_sdk.stages.base import Event, Frame, Stage

cv2 = pytest.importorskip("cv2", reason="needs the camera extra")
pytestmark = pytest.mark.camera

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


@dataclass(frozen=True)
class Bright(Event):
    kind = "bright"  # type: ignore[misc]
    mean: float = 0.0


class Invert(Stage):
    """A stage with state and events: inverts each frame, says when a frame is bright, counts at flush."""

    name = "invert"

    def __init__(self) -> None:
        self.seen, self.closed = 0, False

    def process(self, frame: Frame) -> Frame:
        self.seen += 1
        out = frame.with_image(255 - frame.image)
        if frame.image.mean() > 128:
            out.events.append(Bright(self.name, frame.time, float(frame.image.mean())))
        return out

    def flush(self, frame: Frame) -> None:
        frame.events.append(Bright(self.name, frame.time, -1.0))

    def close(self) -> None:
        self.closed = True


class Collect:
    """A sink that keeps what it is given."""

    name = "collect"

    def __init__(self) -> None:
        self.frames: list[Frame] = []
        self.closed = False

    def write(self, frame: Frame) -> None:
        self.frames.append(frame)

    def close(self) -> None:
        self.closed = True


class Call(Stage):
    def __init__(self, name: str, fn) -> None:  # noqa: ANN001
        self.name, self.fn = name, fn

    def process(self, frame: Frame) -> Frame:
        self.fn(frame)
        return frame


def test_vtest_through_no_stages() -> None:
    summary = VideoLoop(VideoFile(VTEST), []).run()
    assert (summary.frames, summary.width, summary.height, summary.source_fps) == (795, 768, 576, 10.0)
    assert summary.stream_seconds == pytest.approx(79.5)
    assert summary.fps > 0 and summary.ending == "done" and summary.drops == 0
    assert summary.decode_errors == summary.frames_skipped == 0 and not summary.input_lost
    text = summary.text()
    assert text.startswith("vtest.avi: 795 frames 768x576") and "total" in text
    assert "input lost" not in text
    json.dumps(summary.to_dict())


def test_a_corrupt_file_runs_past_its_bad_frames_and_the_summary_says_input_was_lost(
    tmp_path: Path, mjpeg_clip: Any
) -> None:
    sink = Collect()
    summary = VideoLoop(
        VideoFile(mjpeg_clip.damaged(tmp_path / "bad.avi", zero=range(10, 13))), [], [sink]
    ).run()
    assert summary.frames == 21 and [f.index for f in sink.frames][9:11] == [9, 13]
    assert (summary.decode_errors, summary.frames_skipped, summary.input_lost) == (3, 3, True)
    assert "; input lost: frames skipped 3, decode errors 3;" in summary.headline()
    assert summary.stream_seconds == pytest.approx(2.4)  # frame 0 to the end of frame 23
    figures = summary.to_dict()
    assert (figures["decode_errors"], figures["frames_skipped"]) == (3, 3)


def test_stages_sinks_events_and_raw(tmp_path: Path, write_video: Callable[..., list[np.ndarray]]) -> None:
    written = write_video(tmp_path / "in.avi", 20)
    stage, sink, heard = Invert(), Collect(), []
    source = VideoFile(tmp_path / "in.avi")
    summary = VideoLoop(
        source, [stage], [sink], on_event=heard.append, events_path=tmp_path / "ev.jsonl"
    ).run()
    assert summary.frames == 20 and stage.seen == 20 and stage.closed and sink.closed
    for f, w in zip(sink.frames, written, strict=True):
        assert np.array_equal(f.raw, w) and np.array_equal(f.image, 255 - w)
    lines = [json.loads(line) for line in (tmp_path / "ev.jsonl").read_text().splitlines()]
    assert len(lines) == len(heard) == sum(summary.events.values())
    assert lines[-1]["mean"] == -1.0 and lines[-1]["time"] == pytest.approx(19 / 25)
    names = [s.name for s in summary.stages] + [s.name for s in summary.sinks]
    assert names == ["invert", "→ collect"] and summary.stages[0].blocks == 20


def test_limits_by_frames_and_by_seconds() -> None:
    assert VideoLoop(VideoFile(VTEST), []).run(max_frames=7).frames == 7
    s = VideoLoop(VideoFile(VTEST), []).run(max_seconds=2.0)
    assert s.frames == 21 and s.ending == "done"  # frames at 0.0 .. 2.0 s


def test_stop_interrupt_and_live_stats() -> None:
    loop: VideoLoop
    live: list[dict] = []

    def at(frame: Frame) -> None:
        live.append(loop.live_stats())
        if frame.index == 9:
            loop.stop()

    loop = VideoLoop(VideoFile(VTEST), [Call("watch", at)])
    s = loop.run()
    assert s.frames == 10 and s.ending == "stopped"
    assert {"fps", "p50_ms", "p99_ms", "drops", "frames", "reconnects"} <= set(live[-1]) and live[-1][
        "frames"
    ] == 9

    def interrupt(frame: Frame) -> None:
        if frame.index == 4:
            raise KeyboardInterrupt

    s = VideoLoop(VideoFile(VTEST), [Call("ctrl-c", interrupt)]).run()
    assert s.interrupted and s.ending == "interrupted" and s.frames == 4


def test_a_failing_stage_stops_the_loop_and_closes_everything() -> None:
    def broken(frame: Frame) -> None:
        if frame.index == 5:
            raise ValueError("bad pixel")

    source, sink, inv = VideoFile(VTEST), Collect(), Invert()
    with pytest.raises(
        StageFailed, match=r"stage broken failed on frame 5 \(stream time 0.500 s\).*bad pixel"
    ) as e:
        VideoLoop(source, [inv, Call("broken", broken)], [sink]).run()
    assert e.value.summary.frames == 5 and e.value.exit_code == 1
    assert sink.closed and inv.closed and source._closed


def test_slow_stage_behind_a_camera_drops_oldest_frames() -> None:
    sink = Collect()
    cam = Camera(str(VTEST), queue_size=2)
    summary = VideoLoop(cam, [Call("slow", lambda f: time.sleep(0.02))], [sink]).run(max_frames=12)
    indices = [f.index for f in sink.frames]
    assert summary.drops > 0 and summary.drops == cam.drops
    assert any(b - a > 1 for a, b in zip(indices, indices[1:], strict=False))
    assert f"drops {summary.drops}" in summary.headline()


# --- the file sink --------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".avi", ".mkv"])
def test_lossless_containers_give_back_identical_pixels(
    tmp_path: Path,
    suffix: str,
    write_video: Callable[..., list[np.ndarray]],
    read_video: Callable[[Path], list[np.ndarray]],
) -> None:
    written = write_video(tmp_path / "in.avi", 9)
    out = tmp_path / f"out{suffix}"
    sink = VideoWriterSink(out, fps=25.0)
    assert sink.fourcc == "FFV1" and sink.notes == []
    VideoLoop(VideoFile(tmp_path / "in.avi"), [], [sink]).run()
    back = read_video(out)
    assert len(back) == 9 and all(np.array_equal(a, b) for a, b in zip(back, written, strict=True))


def test_mp4_has_every_frame_and_the_file_appears_only_on_close(
    tmp_path: Path, read_video: Callable[[Path], list[np.ndarray]]
) -> None:
    out = tmp_path / "sub" / "out.mp4"
    sink = VideoWriterSink(out, fps=10.0, size=(768, 576))
    VideoLoop(VideoFile(VTEST), [], [sink]).run(max_frames=3)  # closes the sink
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 3 and cap.get(cv2.CAP_PROP_FPS) == 10.0
    cap.release()
    assert len(read_video(out)) == 3 and [p.name for p in out.parent.iterdir()] == ["out.mp4"]

    pending = VideoWriterSink(tmp_path / "pending.avi", fps=5.0)
    pending.write(Frame(np.zeros((8, 8, 3), np.uint8), 0.0, 0))
    assert not (tmp_path / "pending.avi").exists() and any(tmp_path.glob(".pending.partial-*.avi"))
    pending.close()
    assert (tmp_path / "pending.avi").exists() and not any(tmp_path.glob(".pending.partial-*"))


def test_sink_refuses_what_it_cannot_write(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match=r"must be one of \.mp4, \.avi, \.mkv"):
        VideoWriterSink(tmp_path / "x.gif", fps=10.0)
    with pytest.raises(BadInputError, match="positive frame rate"):
        VideoWriterSink(tmp_path / "x.avi", fps=0)
    sink = VideoWriterSink(tmp_path / "x.avi", fps=10.0)
    sink.write(Frame(np.zeros((8, 8, 3), np.uint8), 0.0, 0))
    with pytest.raises(BadInputError, match="frame 1 is 16x8"):
        sink.write(Frame(np.zeros((8, 16, 3), np.uint8), 0.1, 1))
    sink.close()
    assert choose_codec("y.MKV")[0] == "FFV1"
