"""The live video loop: frames from a source through the stages in order, then to the sinks (a file
writer, the MJPEG preview), events out to callbacks and a JSONL log, and the same per-stage latency
figures as the audio loop, plus frames per second, drops, camera reconnects and a video file's frames lost
to decode errors."""

from __future__ import annotations

import collections
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from edge_sdk.live.base import EventCallback, LoopBase, SummaryText
from edge_sdk.live.events import EventLog
from edge_sdk.live.stats import LatencyHistogram, StageStats, unique_names
from edge_sdk.stages.base import Frame, Stage

log = logging.getLogger("edge_sdk.live.video")

_RECENT = 30  # frames the live fps is measured over


class Sink(Protocol):
    """Where processed frames go: anything with ``write(frame)`` and ``close()``."""

    def write(self, frame: Frame) -> None: ...

    def close(self) -> None: ...


@dataclass
class VideoSummary(SummaryText):
    """What a video loop did: the stream, each stage's and sink's figures (latency per frame) and the
    total per frame, frames per second over the run, frames the source dropped because the loop fell
    behind, camera reconnects, input lost (a video file's frames that could not be decoded:
    ``decode_errors`` failed reads mid-file, ``frames_skipped`` frames never delivered, see
    :attr:`input_lost`), events by kind, how it ended, and notes (such as a codec fallback)."""

    source: str
    width: int
    height: int
    source_fps: float
    frames: int
    stream_seconds: float
    wall_seconds: float
    fps: float
    stages: list[StageStats]
    sinks: list[StageStats]
    total: StageStats
    drops: int = 0
    reconnects: int = 0
    decode_errors: int = 0
    frames_skipped: int = 0
    events: dict[str, int] = field(default_factory=dict)
    interrupted: bool = False
    stopped: bool = False
    running: bool = False
    notes: list[str] = field(default_factory=list)

    COLUMNS = ["stage", "frames", "p50 ms", "p99 ms", "max ms", "total s", "RTF"]

    def rows(self) -> list[list[str]]:
        """Rows of the per-stage table (``COLUMNS``): stages, then sinks, the total last."""
        return [s.cells() for s in [*self.stages, *self.sinks, self.total]]

    @property
    def input_lost(self) -> bool:
        """Whether frames of the input were lost to decode errors, a corrupt region or a truncated file (not
        drops: those were decoded, or skipped by choice, when the loop fell behind)."""
        return self.decode_errors > 0 or self.frames_skipped > 0

    def headline(self) -> str:
        """One line: the stream, the rate, how it ended, drops, reconnects, any input lost, and events."""
        events = ", ".join(f"{k} {v}" for k, v in sorted(self.events.items())) or "none"
        lost = (
            f"; input lost: frames skipped {self.frames_skipped}, decode errors {self.decode_errors}"
            if self.input_lost
            else ""
        )
        return (
            f"{self.source}: {self.frames} frames {self.width}x{self.height} "
            f"({self.stream_seconds:.2f} s of video at {self.source_fps:g} fps) in {self.wall_seconds:.2f} s "
            f"wall, {self.fps:.1f} fps, {self.ending}; drops {self.drops}, reconnects {self.reconnects}"
            f"{lost}; events: {events}"
        )


class VideoLoop(LoopBase):
    """Runs ``source`` (an iterable of :class:`Frame`, with ``name``, ``fps``, ``width``, ``height``,
    ``drops``, ``reconnects`` and ``close()`` where it has them) through ``stages`` in order, then
    hands each frame to every sink, on this thread.

    Before the stages run, ``frame.raw`` is set to the captured image (stages return new frames with
    ``with_image``; ``raw`` stays for side-by-side previews). Events go to ``on_event`` and, with
    ``events_path``, to a JSONL log. At the end (the source ends, ``max_frames``, ``max_seconds`` of
    stream, ``stop()``, Ctrl-C, SIGTERM or SIGHUP) every stage is flushed, then stages, sinks and source
    are closed.
    """

    _log = log

    def __init__(
        self,
        source: Iterable[Frame],
        stages: Sequence[Stage],
        sinks: Sequence[Sink] = (),
        *,
        on_event: EventCallback | Sequence[EventCallback] | None = None,
        events_path: str | os.PathLike[str] | None = None,
        notes: Sequence[str] = (),
        close_source: bool = True,
    ) -> None:
        self._setup(source, stages, on_event, events_path, notes, close_source)
        self.sinks = list(sinks)
        self._sink_names = unique_names(
            ["→ " + str(getattr(s, "name", type(s).__name__)) for s in self.sinks]
        )
        self._reset_stats()

    def _reset_stats(self) -> None:
        self._hists = [LatencyHistogram() for _ in self.stages]
        self._sink_hists = [LatencyHistogram() for _ in self.sinks]
        self._total = LatencyHistogram()
        self._frames = 0
        self._first: float | None = None
        self._last = 0.0
        self._recent: collections.deque[float] = collections.deque(maxlen=_RECENT)
        self._reset_common()

    def _source_attr(self, name: str, default: Any = 0) -> Any:
        return getattr(self.source, name, default) or default

    def summary(self) -> VideoSummary:
        """The figures so far; callable while the loop runs, from any thread."""
        with self._lock:
            wall = self._wall_so_far()
            fps = float(self._source_attr("fps", 0.0))
            stream = (
                (self._last - self._first + (1 / fps if fps else 0.0)) if self._first is not None else 0.0
            )
            return VideoSummary(
                source=str(getattr(self.source, "name", type(self.source).__name__)),
                width=int(self._source_attr("width")),
                height=int(self._source_attr("height")),
                source_fps=fps,
                frames=self._frames,
                stream_seconds=stream,
                wall_seconds=wall,
                fps=self._frames / wall if wall > 0 else 0.0,
                stages=[StageStats.of(n, h, stream) for n, h in zip(self._names, self._hists, strict=True)],
                sinks=[
                    StageStats.of(n, h, stream)
                    for n, h in zip(self._sink_names, self._sink_hists, strict=True)
                ],
                total=StageStats.of("total", self._total, stream),
                drops=int(self._source_attr("drops")),
                reconnects=int(self._source_attr("reconnects")),
                decode_errors=int(self._source_attr("decode_errors")),
                frames_skipped=int(self._source_attr("frames_skipped")),
                events=dict(self._events),
                interrupted=self._interrupted,
                stopped=self._stop.is_set(),
                running=self._running,
                notes=list(self.notes),
            )

    def live_stats(self) -> dict[str, Any]:
        """Figures for a live display (the preview's overlay): ``fps`` over the last frames, ``p50_ms``
        and ``p99_ms`` per frame through stages and sinks, ``drops``, ``reconnects``, ``frames``."""
        with self._lock:
            recent = list(self._recent)
            fps = (
                (len(recent) - 1) / (recent[-1] - recent[0])
                if len(recent) > 1 and recent[-1] > recent[0]
                else 0.0
            )
            return {
                "fps": fps,
                "p50_ms": self._total.quantile(0.5) * 1e3,
                "p99_ms": self._total.quantile(0.99) * 1e3,
                "drops": int(self._source_attr("drops")),
                "reconnects": int(self._source_attr("reconnects")),
                "frames": self._frames,
                "source": str(getattr(self.source, "name", "")),
            }

    def run(self, max_frames: int | None = None, max_seconds: float | None = None) -> VideoSummary:
        """Run until the source ends, ``max_frames`` frames, ``max_seconds`` of stream time, ``stop()``
        or Ctrl-C; return the summary (``interrupted=True`` after Ctrl-C). A stage or sink that raises
        stops the loop with :class:`StageFailed`; everything is closed whatever happens."""
        self._reset_stats()

        def feed(callbacks: list[EventCallback]) -> None:
            for frame in self.source:
                self._step(frame, callbacks)
                if self._stop.is_set() or (max_frames is not None and self._frames >= max_frames):
                    break
                if max_seconds is not None and self._last - (self._first or 0.0) >= max_seconds:
                    break

        def flush() -> Frame:
            end = Frame(np.zeros((0, 0, 3), np.uint8), self._last, self._frames)
            for name, stage in zip(self._names, self.stages, strict=True):
                self._guard(name, end, stage.flush)
            return end

        self._run(feed, flush)
        return self.summary()

    def _step(self, frame: Frame, callbacks: list[EventCallback]) -> None:
        frame.raw = frame.image
        spent, sink_spent = [], []
        for name, stage in zip(self._names, self.stages, strict=True):
            t0 = time.perf_counter()
            frame = self._guard(name, frame, stage.process)
            spent.append(time.perf_counter() - t0)
        for name, sink in zip(self._sink_names, self.sinks, strict=True):
            t0 = time.perf_counter()
            self._guard(name, frame, sink.write)
            sink_spent.append(time.perf_counter() - t0)
        with self._lock:
            for h, s in zip([*self._hists, *self._sink_hists], [*spent, *sink_spent], strict=True):
                h.add(s)
            self._total.add(sum(spent) + sum(sink_spent))
            if self._first is None:
                self._first = frame.time
            self._last = frame.time
            self._frames += 1
            self._recent.append(time.perf_counter())
        self._deliver(frame.events, callbacks)

    def _closers(self, event_log: EventLog | None) -> list[tuple[str, Callable[[], Any]]]:
        # The source first (its capture thread stops), then stages, sinks and the event log.
        closers = self._source_closer()
        closers += [(n, s.close) for n, s in zip(self._names, self.stages, strict=True)]
        closers += [(n, s.close) for n, s in zip(self._sink_names, self.sinks, strict=True)]
        if event_log is not None:
            closers.append(("event log", event_log.close))
        return closers
