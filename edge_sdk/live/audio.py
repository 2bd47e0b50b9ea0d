"""The live audio loop: blocks from a source through the stages in order, events out to callbacks and a
JSONL log, and per-stage latency statistics that cost the same memory after a minute or a month."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge_sdk.errors import StageFailed
from edge_sdk.live.base import EventCallback, LoopBase, SummaryText
from edge_sdk.live.events import EventLog
from edge_sdk.live.stats import LatencyHistogram, StageStats
from edge_sdk.stages.base import Block, Stage

log = logging.getLogger("edge_sdk.live.audio")

# Re-exported: these lived here before the video loop shared them.
__all__ = ["AudioLoop", "LatencyHistogram", "LoopSummary", "StageFailed", "StageStats"]


@dataclass
class LoopSummary(SummaryText):
    """What a loop did: the stream, each stage's figures and their total, the source's overruns and
    overflows, blocks lost (``drops``: blocks the source had to discard because the loop fell
    behind), blocks that held NaN or infinite samples (``nonfinite``: those samples went on as
    silence), events by kind, how it ended, and notes (such as a fallback that was taken)."""

    source: str
    sample_rate: int
    blocks: int
    audio_seconds: float
    wall_seconds: float
    stages: list[StageStats]
    total: StageStats
    overruns: int = 0
    overflows: int = 0
    drops: int = 0
    nonfinite: int = 0
    events: dict[str, int] = field(default_factory=dict)
    interrupted: bool = False
    stopped: bool = False
    running: bool = False
    notes: list[str] = field(default_factory=list)

    COLUMNS = ["stage", "blocks", "p50 ms", "p99 ms", "max ms", "total s", "RTF"]

    def rows(self) -> list[list[str]]:
        """Rows of the per-stage table (``COLUMNS``), the total last."""
        return [s.cells() for s in self.stages] + [self.total.cells()]

    def headline(self) -> str:
        """One line: the stream, how it ended, overruns and events."""
        events = ", ".join(f"{k} {v}" for k, v in sorted(self.events.items())) or "none"
        rtf = self.wall_seconds / self.audio_seconds if self.audio_seconds else 0.0
        return (
            f"{self.source}: {self.audio_seconds:.2f} s of audio in {self.blocks} blocks, "
            f"{self.wall_seconds:.2f} s wall (x{rtf:.3f}), {self.ending}; overruns {self.overruns}, "
            f"overflows {self.overflows}, drops {self.drops}"
            + (f", non-finite blocks {self.nonfinite} (as silence)" if self.nonfinite else "")
            + f"; events: {events}"
        )


class AudioLoop(LoopBase):
    """Runs ``source`` (an iterable of float32 mono blocks with ``sample_rate``, and optionally
    ``name``, ``overruns``, ``overflows``, ``close()``) through ``stages`` in order, on this thread.

    Each block's events go to ``on_event`` (one callable or a list) and, with ``events_path``, to a
    JSONL log. A stage with ``latency`` delays the audio after it, so the blocks the later stages see
    carry their start time moved back by it: event times stay aligned with the source. At the end of
    the stream (or ``max_seconds`` of audio, ``stop()``, or Ctrl-C, SIGTERM or SIGHUP) every stage is
    flushed, then stages and source are closed. ``notes`` are carried into every summary.
    """

    _log = log

    def __init__(
        self,
        source: Iterable[np.ndarray],
        stages: Sequence[Stage],
        *,
        on_event: EventCallback | Sequence[EventCallback] | None = None,
        events_path: str | os.PathLike[str] | None = None,
        notes: Sequence[str] = (),
        close_source: bool = True,
    ) -> None:
        self._setup(source, stages, on_event, events_path, notes, close_source)
        self.sample_rate = int(getattr(source, "sample_rate", 16000))
        self._reset_stats()

    def _reset_stats(self) -> None:
        self._hists = [LatencyHistogram() for _ in self.stages]
        self._total = LatencyHistogram()
        self._samples = 0
        self._lost = 0
        self._blocks = 0
        self._nonfinite = 0
        self._reset_common()

    def summary(self) -> LoopSummary:
        """The figures so far; callable while the loop runs, from any thread."""
        with self._lock:
            audio = self._samples / self.sample_rate
            wall = self._wall_so_far()
            overruns = int(getattr(self.source, "overruns", 0) or 0)
            return LoopSummary(
                source=str(getattr(self.source, "name", type(self.source).__name__)),
                sample_rate=self.sample_rate,
                blocks=self._blocks,
                audio_seconds=audio,
                wall_seconds=wall,
                stages=[StageStats.of(n, h, audio) for n, h in zip(self._names, self._hists, strict=True)],
                total=StageStats.of("total", self._total, audio),
                overruns=overruns,
                overflows=int(getattr(self.source, "overflows", 0) or 0),
                drops=overruns,
                nonfinite=self._nonfinite,
                events=dict(self._events),
                interrupted=self._interrupted,
                stopped=self._stop.is_set(),
                running=self._running,
                notes=list(self.notes),
            )

    def run(self, max_seconds: float | None = None) -> LoopSummary:
        """Run until the source ends, ``max_seconds`` of audio have passed, ``stop()`` or Ctrl-C; return
        the summary (``interrupted=True`` after Ctrl-C). A stage that raises stops the loop with
        :class:`StageFailed`; stages and the source are closed whatever happens."""
        self._reset_stats()
        rate = self.sample_rate
        # Where each stage's blocks start relative to the source, after the delays of the stages before it.
        shift, offsets = 0, []
        for s in self.stages:
            offsets.append(shift / rate)
            shift += int(getattr(s, "latency", 0) or 0)
        limit = None if max_seconds is None else int(round(max_seconds * rate))

        def feed(callbacks: list[EventCallback]) -> None:
            for samples in self.source:
                self._step(samples, offsets, callbacks)
                if self._stop.is_set() or (limit is not None and self._samples >= limit):
                    break

        def flush() -> Block:
            clock = (self._samples + self._lost) / rate
            end = Block(np.zeros(0, np.float32), rate, clock, self._blocks)
            for k, (name, stage) in enumerate(zip(self._names, self.stages, strict=True)):
                end.start = clock - offsets[k]
                self._guard(name, end, stage.flush)
            return end

        self._run(feed, flush)
        return self.summary()

    def _step(self, samples: np.ndarray, offsets: list[float], sinks: list[EventCallback]) -> None:
        samples = np.asarray(samples, np.float32)
        finite = bool(np.isfinite(samples).all())
        if not finite:
            # a NaN would poison every recurrent stage's state from here on; silence does not, and is counted
            if not self._nonfinite:
                log.warning("%s: a block holds NaN or infinite samples; they go on as silence", self.source)
            samples = np.nan_to_num(samples, nan=0.0, posinf=0.0, neginf=0.0)
        # Audio the source lost to overruns still passed on its clock: count it, so event times stay
        # true to the source over a days-long run instead of falling behind by every drop.
        self._lost = int(getattr(self.source, "dropped_samples", 0) or 0)
        start = (self._samples + self._lost) / self.sample_rate
        block = Block(samples, self.sample_rate, start, self._blocks)
        spent = []
        for k, (name, stage) in enumerate(zip(self._names, self.stages, strict=True)):
            block.start = start - offsets[k]
            t0 = time.perf_counter()
            block = self._guard(name, block, stage.process)
            spent.append(time.perf_counter() - t0)
        with self._lock:
            for h, s in zip(self._hists, spent, strict=True):
                h.add(s)
            self._total.add(sum(spent))
            self._samples += len(samples)
            self._blocks += 1
            self._nonfinite += not finite
        self._deliver(block.events, sinks)

    def _closers(self, event_log: EventLog | None) -> list[tuple[str, Callable[[], Any]]]:
        # Stages, then the event log, then the source.
        closers: list[tuple[str, Callable[[], Any]]] = [
            (n, s.close) for n, s in zip(self._names, self.stages, strict=True)
        ]
        if event_log is not None:
            closers.append(("event log", event_log.close))
        return closers + self._source_closer()
