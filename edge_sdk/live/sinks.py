"""Where processed video frames go besides the preview: a video file, written atomically.

The container comes from the extension: ``.mp4`` is MPEG-4 Part 2 (``mp4v``, lossy but playable
everywhere); ``.avi`` and ``.mkv`` are lossless (FFV1, else HuffYUV, else PNG frames), so a recording
of a denoiser's output can be measured against its input pixel for pixel. Which lossless codec this
OpenCV build really has is found by writing two frames and reading them back, once per process; a
fallback is logged and kept in ``notes``, never silent.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.devices.sources.video import import_cv2
from edge_sdk.errors import BadInputError
from edge_sdk.stages.base import Frame

log = logging.getLogger("edge_sdk.live.sinks")

LOSSLESS = ("FFV1", "HFYU", "MPNG")  # in order of preference: smallest files first
CODECS: dict[str, tuple[str, ...]] = {".mp4": ("mp4v",), ".avi": LOSSLESS, ".mkv": LOSSLESS}
_verified: dict[tuple[str, str], bool] = {}


def _round_trips(cv2: Any, suffix: str, fourcc: str) -> bool:
    """Whether ``fourcc`` in a ``suffix`` container gives back exactly the frames written."""
    key = (suffix, fourcc)
    if key not in _verified:
        rng = np.random.default_rng(0)
        frames = [rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(2)]
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # a failed probe is expected
        with tempfile.TemporaryDirectory(prefix="edge-sdk-codec-") as tmp:
            path = str(Path(tmp) / f"probe{suffix}")
            try:
                writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*fourcc), 10.0, (16, 16))
                ok = writer.isOpened()
                for f in frames if ok else []:
                    writer.write(f)
                writer.release()
                back = []
                cap = cv2.VideoCapture(path)
                while ok:
                    got, image = cap.read()
                    if not got:
                        break
                    back.append(image)
                cap.release()
                ok = (
                    ok
                    and len(back) == 2
                    and all(np.array_equal(a, b) for a, b in zip(frames, back, strict=True))
                )
            except cv2.error:
                ok = False
            finally:
                cv2.utils.logging.setLogLevel(level)
        _verified[key] = ok
    return _verified[key]


def choose_codec(path: str | Path) -> tuple[str, list[str]]:
    """The fourcc a file named ``path`` is written with, and notes about any fallback taken."""
    suffix = Path(path).suffix.lower()
    if suffix not in CODECS:
        raise BadInputError(
            f"cannot write video to {path}: the extension must be one of {', '.join(CODECS)} "
            "(.mp4: mp4v; .avi and .mkv: lossless)"
        )
    candidates = CODECS[suffix]
    if len(candidates) == 1:
        return candidates[0], []
    cv2 = import_cv2("Writing a video file")
    for i, fourcc in enumerate(candidates):
        if _round_trips(cv2, suffix, fourcc):
            notes = []
            if i:
                notes.append(
                    f"{suffix} is written with {fourcc}: this OpenCV cannot write "
                    f"{', '.join(candidates[:i])} losslessly"
                )
                log.warning("%s", notes[-1])
            return fourcc, notes
    raise BadInputError(
        f"this OpenCV build writes none of the lossless codecs {', '.join(candidates)} into {suffix}; "
        "write .mp4 instead (lossy)"
    )


class VideoWriterSink:
    """Writes each frame's ``image`` to ``path`` at ``fps``; a loop sink (``write``, ``close``).

    ``size`` is (width, height); None takes it from the first frame. A frame of another size is a
    ``BadInputError``. The file is written under a temporary name beside ``path`` and renamed on
    ``close``, so a crash never leaves a half file that looks whole.
    """

    def __init__(self, path: str | os.PathLike[str], fps: float, size: tuple[int, int] | None = None) -> None:
        self.path = Path(path)
        self.fourcc, self.notes = choose_codec(self.path)
        if not fps > 0:
            raise BadInputError(f"a video file needs a positive frame rate, got {fps}")
        self.fps, self.size = float(fps), size
        self.name = f"writer {self.path.name}"
        self.frames = 0
        self._cv2 = import_cv2("Writing a video file")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise BadInputError(f"cannot create {self.path.parent}: {e.strerror or e}") from e
        # The temporary keeps the extension: OpenCV picks the container from it.
        self._tmp = self.path.with_name(f".{self.path.stem}.partial-{os.getpid()}{self.path.suffix}")
        self._writer: Any = None
        self._closed = False
        if size is not None:
            self._open(size)

    def _open(self, size: tuple[int, int]) -> None:
        cv2 = self._cv2
        self._writer = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter_fourcc(*self.fourcc), self.fps, size)
        if not self._writer.isOpened():
            self._tmp.unlink(missing_ok=True)
            raise BadInputError(f"OpenCV cannot open {self.path} for writing with {self.fourcc} at {size}")
        self.size = size

    def write(self, frame: Frame) -> None:
        """Append the frame's image (H×W×3 uint8 BGR)."""
        if self._closed:
            raise ValueError(f"{self.path} is closed")
        image = frame.image
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise BadInputError(f"{self.path}: frames must be H×W×3 uint8, got {image.dtype} {image.shape}")
        size = (image.shape[1], image.shape[0])
        if self._writer is None:
            self._open(size)
        elif size != self.size:
            raise BadInputError(
                f"{self.path}: frame {frame.index} is {size[0]}x{size[1]}, the file {self.size}"
            )
        self._writer.write(np.ascontiguousarray(image))
        self.frames += 1

    def close(self) -> None:
        """Finish the file and move it into place (no file when no frame came); idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._writer is None:
            return
        self._writer.release()
        os.replace(self._tmp, self.path)
        log.info("wrote %d frames to %s (%s)", self.frames, self.path, self.fourcc)
