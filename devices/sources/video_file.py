"""Replay a video file as a video source through OpenCV, paced at its frame rate or as fast as possible."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edge_sdk.devices.sources.audio import ClosingSource
from edge_sdk.devices.sources.video import import_cv2
from edge_sdk.errors import BadInputError
from edge_sdk.stages.base import Frame

log = logging.getLogger(__name__)

DEFAULT_FPS = 30.0  # for files whose container does not say (some raw streams)
# Failed reads tried past a corrupt region when the container does not say how many frames are left; a
# failed read at the true end of a file costs about a microsecond, one in a corrupt region a decode try.
RESYNC_READS = 250


def _lists_frames(path: Path) -> bool:
    """Whether the container indexes its frames one by one (AVI), so that OpenCV's frame count is the number
    of frames stored. Elsewhere it may be an estimate from the duration, which a longer audio track, an edit
    list or gaps in the timeline make larger than the frames there are in a sound file."""
    try:
        with path.open("rb") as f:
            head = f.read(12)
    except OSError:
        return False
    return head[:4] == b"RIFF" and head[8:12] == b"AVI "


class VideoFile(ClosingSource):
    """A video file as a source of BGR frames; ``time`` is the frame's time in the file (index / fps).

    With ``realtime=True`` frame ``i`` is handed out ``i / fps`` seconds after the first (on a
    monotonic clock, so sleeps never add up to drift); a consumer more than ``buffer_frames`` behind
    loses the oldest frames, as with a camera: they are skipped undecoded where possible, counted in
    ``drops``, and leave gaps in ``Frame.index``. ``loop=True`` replays the file forever (``time``
    keeps growing). A missing or unreadable file is a ``BadInputError``.

    A frame that fails to decode mid-file (a corrupt region) does not end the pass: reading goes on past
    it, up to the frames the container says are left (or ``RESYNC_READS`` tries), and each failed read is
    counted in ``decode_errors`` and ``frames_skipped`` and leaves a gap in ``Frame.index``. A pass that
    ends short of the frames an AVI lists (a truncated file, packets lost to corruption) adds the
    shortfall to ``frames_skipped``; other containers' counts may be estimates, so a shortfall there is
    only logged, when it exceeds a second of video. A clean file leaves both at 0.
    """

    def __init__(
        self, path: str | Path, *, realtime: bool = False, loop: bool = False, buffer_frames: int = 2
    ) -> None:
        if buffer_frames < 1:
            raise BadInputError(f"buffer_frames must be at least 1, got {buffer_frames}")
        self.path = Path(path).expanduser()
        self.name = self.path.name
        self.realtime, self.loop, self.buffer_frames = realtime, loop, buffer_frames
        self.reconnects = 0  # a file never disconnects; kept for the VideoSource protocol
        self.drops = 0
        self.decode_errors = 0  # failed reads that decoding went on past
        self.frames_skipped = 0  # frames of the file never delivered: those, and any shortfall at the end
        self._cv2 = import_cv2("Reading a video file")
        if not self.path.exists():
            raise BadInputError(f"video file {self.path} does not exist")
        if not self.path.is_file():
            raise BadInputError(f"video source {self.path} is not a file")
        self._cap = self._open()
        ok, first = self._cap.read()
        if not ok or first is None:
            self._cap.release()
            raise BadInputError(f"{self.path}: OpenCV can open it but not decode a single frame from it")
        self.height, self.width = first.shape[:2]
        fps = float(self._cap.get(self._cv2.CAP_PROP_FPS) or 0.0)
        if not 0 < fps < 1000:
            log.warning(
                "%s does not give a usable frame rate (%r); assuming %g fps", self.path, fps, DEFAULT_FPS
            )
            fps = DEFAULT_FPS
        self.fps = fps
        count = int(self._cap.get(self._cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.frame_count: int | None = count if count > 0 else None
        self._count_is_exact = self.frame_count is not None and _lists_frames(self.path)
        # Reopened rather than seeked back: a seek to frame 0 lands on a keyframe after it in some streams
        # (12 of 37 frames of an MPEG-2 transport stream were never delivered).
        self._rewind()
        self._closed = False

    def _open(self) -> Any:
        cap = self._cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            cap.release()
            raise BadInputError(
                f"{self.path} is not a video file OpenCV can read (no demuxer or decoder for it)"
            )
        return cap

    @property
    def duration(self) -> float | None:
        """Seconds of video in one pass, when the container says how many frames it holds."""
        return None if self.frame_count is None else self.frame_count / self.fps

    def _rewind(self) -> bool:
        """Back to the first frame for ``loop``; reopening is the reliable way across containers."""
        self._cap.release()
        self._cap = self._open()
        return True

    def __iter__(self) -> Iterator[Frame]:
        """Yield the frames, paced if ``realtime``; each pass over a non-looping file starts at frame 0."""
        period = 1.0 / self.fps
        t0 = time.monotonic()
        i = 0  # frames of the stream so far, delivered, dropped or lost to a decode error
        start = 0  # ``i`` at the start of this pass
        while not self._closed:
            failed = False
            if self.realtime:
                behind = int((time.monotonic() - t0) / period) - i
                if behind > self.buffer_frames:
                    # Frames "captured" while the consumer was busy: skip them without decoding.
                    skipped = 0
                    while skipped < behind - self.buffer_frames:
                        if not self._cap.grab():
                            failed = True
                            break
                        skipped += 1
                    self.drops += skipped
                    i += skipped
                    if skipped and not failed:
                        continue
                elif behind < 0:
                    time.sleep(max(0.0, t0 + i * period - time.monotonic()))
            ok, image = (False, None) if failed else self._cap.read()
            if not ok or image is None:
                lost, image = self._read_past_failure(i - start)
                if image is None:
                    self._end_pass(i - start, first_pass=start == 0)
                    if self.loop and i > start and self._rewind():
                        start = i
                        continue
                    break
                self._count_lost(i, lost, first_pass=start == 0)
                i += lost
            yield Frame(image, i * period, i, raw=image)
            i += 1
        if not self.loop and not self._closed:
            self._rewind()

    def _read_past_failure(self, seen: int) -> tuple[int, Any]:
        """After a failed read at frame ``seen`` of the pass, read on: a corrupt region ends where the
        decoder delivers again. Returns the failed reads (the first included) and the next image, or None
        at the end of the stream (or when no frame came within the bound)."""
        tries = RESYNC_READS if self.frame_count is None else self.frame_count - seen - 1
        for lost in range(1, tries + 1):
            ok, image = self._cap.read()
            if ok and image is not None:
                return lost, image
        return 0, None

    def _count_lost(self, i: int, lost: int, first_pass: bool) -> None:
        self.decode_errors += lost
        self.frames_skipped += lost
        if first_pass:  # a looping file repeats its errors every pass: the counters carry them
            log.warning(
                "%s: frame%s %s could not be decoded; going on from frame %d",
                self.path, "s" if lost > 1 else "", f"{i} to {i + lost - 1}" if lost > 1 else i, i + lost,
            )  # fmt: skip

    def _end_pass(self, seen: int, first_pass: bool) -> None:
        """Count the frames the container lists that the pass never reached."""
        short = (self.frame_count or 0) - seen
        if short <= 0:
            return
        if self._count_is_exact:
            self.frames_skipped += short
            if first_pass:
                log.warning(
                    "%s ended after %d of the %d frames it lists: %d not decodable (truncated or corrupt)",
                    self.path, seen, self.frame_count, short,
                )  # fmt: skip
        elif short >= self.fps and first_pass:
            log.warning(
                "%s ended %.2f s before the duration its container gives (truncated, or another stream runs "
                "longer); not counted as lost, as this container's frame count is an estimate",
                self.path, short / self.fps,
            )  # fmt: skip

    def close(self) -> None:
        """End any iteration in progress and release the file; idempotent."""
        self._closed = True
        self._cap.release()

    def __repr__(self) -> str:
        size = f"{self.width}x{self.height} at {self.fps:g} fps"
        return f"VideoFile({str(self.path)!r}, {size}, realtime={self.realtime})"
