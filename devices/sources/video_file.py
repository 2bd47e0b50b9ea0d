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


class VideoFile(ClosingSource):
    """A video file as a source of BGR frames; ``time`` is the frame's time in the file (index / fps).

    With ``realtime=True`` frame ``i`` is handed out ``i / fps`` seconds after the first (on a
    monotonic clock, so sleeps never add up to drift); a consumer more than ``buffer_frames`` behind
    loses the oldest frames, as with a camera: they are skipped undecoded where possible, counted in
    ``drops``, and leave gaps in ``Frame.index``. ``loop=True`` replays the file forever (``time``
    keeps growing). A missing or unreadable file is a ``BadInputError``.
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
        self._cap.set(self._cv2.CAP_PROP_POS_FRAMES, 0)
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
        i = 0  # frames of the stream so far, delivered or dropped
        while not self._closed:
            if self.realtime:
                behind = int((time.monotonic() - t0) / period) - i
                if behind > self.buffer_frames:
                    # Frames "captured" while the consumer was busy: skip them without decoding.
                    skipped = 0
                    while skipped < behind - self.buffer_frames and self._cap.grab():
                        skipped += 1
                    self.drops += skipped
                    i += skipped
                    if skipped:
                        continue
                elif behind < 0:
                    time.sleep(max(0.0, t0 + i * period - time.monotonic()))
            ok, image = self._cap.read()
            if not ok or image is None:
                if self.loop and i > 0 and self._rewind():
                    continue
                break
            yield Frame(image, i * period, i, raw=image)
            i += 1
        if not self.loop and not self._closed:
            self._rewind()

    def close(self) -> None:
        """End any iteration in progress and release the file; idempotent."""
        self._closed = True
        self._cap.release()

    def __repr__(self) -> str:
        size = f"{self.width}x{self.height} at {self.fps:g} fps"
        return f"VideoFile({str(self.path)!r}, {size}, realtime={self.realtime})"
