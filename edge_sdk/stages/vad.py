"""Voice activity stages: ``vad.silero`` (the Silero VAD model) and ``vad.energy`` (frame energy over an
adaptive noise floor, the fallback when no model can be had).

Both cut the stream into fixed frames whatever the block size, score each frame with a speech
probability, and hand the scores to one :class:`SegmentTracker`, which owns the hysteresis and the
segment rules; so the two detectors differ only in how they score a frame.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.errors import BadInputError, DownloadError
from edge_sdk.stages import stages
from edge_sdk.stages.base import Block, Event, SpeechSegment, SpeechStart, Stage
from edge_sdk.stages.history import AudioHistory

log = logging.getLogger("edge_sdk.stages.vad")

# Silero VAD v5+: chunk and context sizes per supported rate (32 ms chunks, 4 ms of context).
SILERO_CHUNK = {16000: 512, 8000: 256}
SILERO_CONTEXT = {16000: 64, 8000: 32}


@dataclass
class SegmentRules:
    """When frames add up to speech: open above ``threshold``, stay open down to ``neg_threshold``
    (hysteresis, so a probability hovering at the threshold does not chatter), drop segments shorter
    than ``min_speech`` seconds, close one after ``min_silence`` seconds below ``neg_threshold``, and
    widen each by ``pad`` seconds on both sides."""

    threshold: float = 0.5
    neg_threshold: float = 0.35
    min_speech: float = 0.25
    min_silence: float = 0.3
    pad: float = 0.05

    def __post_init__(self) -> None:
        if not 0.0 <= self.neg_threshold <= self.threshold <= 1.0:
            raise BadInputError(
                f"VAD thresholds need 0 <= neg_threshold ({self.neg_threshold}) <= threshold "
                f"({self.threshold}) <= 1"
            )
        if min(self.min_speech, self.min_silence, self.pad) < 0:
            raise BadInputError("VAD durations (min_speech, min_silence, pad) must not be negative")


class SegmentTracker:
    """Turns per-frame speech probabilities into SpeechStart / SpeechSegment events.

    ``update(p, t0, t1)`` takes the probability of the frame covering stream time [t0, t1) and returns
    the events it settles. A segment's SpeechStart is raised once it has lasted ``min_speech``; its
    SpeechSegment when ``min_silence`` of quiet has followed it (or at ``finish``).
    """

    def __init__(self, stage: str, rules: SegmentRules) -> None:
        self.stage = stage
        self.rules = rules
        self.reset()

    def reset(self) -> None:
        """Forget any open segment."""
        self._start: float | None = None  # first speech frame of the open segment
        self._silence_since: float | None = None  # when the current run of quiet began
        self._announced = False
        self._peak = 0.0
        self._last_end = 0.0  # end of the last emitted segment; padding never reaches back past it

    @property
    def in_speech(self) -> bool:
        """Whether a segment is open."""
        return self._start is not None

    def update(self, p: float, t0: float, t1: float) -> list[Event]:
        """Feed one frame's probability; return the events it settles."""
        r = self.rules
        if self._start is None:
            if p < r.threshold:
                return []
            self._start, self._silence_since, self._announced, self._peak = t0, None, False, p
        self._peak = max(self._peak, p)
        if p >= r.threshold:
            self._silence_since = None
        elif p < r.neg_threshold and self._silence_since is None:
            self._silence_since = t0
        # Between the thresholds a quiet run that already began keeps counting (Silero's own rule).
        events: list[Event] = []
        if self._silence_since is not None and t1 - self._silence_since >= r.min_silence:
            return self._close(self._silence_since, t1)
        if not self._announced and self._silence_since is None and t1 - self._start >= r.min_speech:
            events.append(self._announce(self._start))
        return events

    def finish(self, now: float) -> list[Event]:
        """End of stream at ``now``: close the open segment, if long enough."""
        if self._start is None:
            return []
        end = self._silence_since if self._silence_since is not None else now
        return self._close(end, now)

    def _announce(self, start: float) -> SpeechStart:
        self._announced = True
        padded = max(start - self.rules.pad, self._last_end, 0.0)
        return SpeechStart(self.stage, round(padded, 6), probability=round(self._peak, 4))

    def _close(self, end: float, now: float) -> list[Event]:
        start = self._start
        assert start is not None
        self._start = self._silence_since = None
        if end - start < self.rules.min_speech:
            return []  # a click or a cough: never announced, so nothing to take back
        events: list[Event] = [] if self._announced else [self._announce(start)]
        padded_start = max(start - self.rules.pad, self._last_end, 0.0)
        padded_end = min(end + self.rules.pad, now)
        self._last_end = padded_end
        events.append(SpeechSegment(self.stage, round(now, 6), round(padded_start, 6), round(padded_end, 6)))
        return events


class FrameVAD(Stage):
    """A VAD stage that scores fixed frames: buffers blocks of any size into ``frame``-sample frames,
    asks :meth:`score` for each, and lets a :class:`SegmentTracker` make the events. Subclasses
    implement ``score`` (and ``_reset_model`` if they keep state)."""

    def __init__(self, frame: int, sample_rate: int, rules: SegmentRules, keep_audio: float = 0.0) -> None:
        self.frame = frame
        self.sample_rate = sample_rate
        self.tracker = SegmentTracker(self.name, rules)
        self.frames = 0
        # With keep_audio (seconds), each SpeechSegment carries its samples (as much of it as was kept).
        self.history = AudioHistory(keep_audio, sample_rate) if keep_audio else None
        self.reset()

    def score(self, frame: np.ndarray) -> float:
        """Speech probability in [0, 1] of one frame of ``self.frame`` samples."""
        raise NotImplementedError

    def _reset_model(self) -> None:
        """Forget the detector's own state (recurrent state, noise floor)."""

    def reset(self) -> None:
        """Forget the stream so far: buffered samples, the open segment, the detector's state."""
        self._buffer = np.zeros(0, np.float32)
        self._origin: float | None = None  # stream time of the first sample seen
        self._consumed = 0  # samples scored so far
        self.tracker.reset()
        self._reset_model()
        if self.history is not None:
            self.history.reset()

    def process(self, block: Block) -> Block:
        if block.sample_rate != self.sample_rate:
            raise BadInputError(
                f"{self.name} was built for {self.sample_rate} Hz audio, got {block.sample_rate} Hz"
            )
        if self._origin is None:
            self._origin = block.start
        samples = np.asarray(block.samples, np.float32).reshape(-1)
        if self.history is not None:
            self.history.append(samples, self._time(self._consumed + len(self._buffer)))
        self._buffer = np.concatenate([self._buffer, samples])
        n = len(self._buffer) // self.frame
        for i in range(n):
            p = self.score(self._buffer[i * self.frame : (i + 1) * self.frame])
            t0 = self._time(self._consumed)
            self._consumed += self.frame
            block.events.extend(self._with_audio(self.tracker.update(p, t0, self._time(self._consumed))))
        self.frames += n
        self._buffer = self._buffer[n * self.frame :]
        return block

    def flush(self, block: Block) -> None:
        # The partial frame left over is shorter than the detector can score; the segment ends at
        # the last scored sample or at the end of the stream, whichever the tracker decides.
        end = self._time(self._consumed + len(self._buffer))
        block.events.extend(self._with_audio(self.tracker.finish(end)))

    def _with_audio(self, events: list[Event]) -> list[Event]:
        if self.history is None:
            return events
        history = self.history
        return [
            dataclasses.replace(e, audio=history.between(e.start, e.end))
            if isinstance(e, SpeechSegment)
            else e
            for e in events
        ]

    def _time(self, samples: int) -> float:
        return (self._origin or 0.0) + samples / self.sample_rate


class SileroModel:
    """Silero VAD around a Session: one 512-sample chunk (16 kHz) at a time, with the 64 samples of
    context in front of it and the recurrent state carried from step to step, as the model expects."""

    def __init__(self, session: Any, sample_rate: int = 16000) -> None:
        if sample_rate not in SILERO_CHUNK:
            raise BadInputError(f"Silero VAD runs at {sorted(SILERO_CHUNK)} Hz, not {sample_rate} Hz")
        self.session = session
        self.sample_rate = sample_rate
        self.chunk = SILERO_CHUNK[sample_rate]
        self.context_size = SILERO_CONTEXT[sample_rate]
        self._sr = np.array(sample_rate, dtype=np.int64) if "sr" in session.input_names else None
        self.reset()

    def reset(self) -> None:
        """Zero the recurrent state and context (a new stream)."""
        self.state = np.zeros((2, 1, 128), np.float32)
        self.context = np.zeros((1, self.context_size), np.float32)

    def inputs(self, chunk: np.ndarray) -> dict[str, np.ndarray]:
        """The model's inputs for the next step (without ``sr``, which is a constant)."""
        return {"input": np.concatenate([self.context, chunk.reshape(1, -1)], axis=1), "state": self.state}

    def step(self, feed: dict[str, np.ndarray]) -> float:
        """Run one step on :meth:`inputs`' dict; carry the state and context; return the probability."""
        run = dict(feed) if self._sr is None else {**feed, "sr": self._sr}
        out = self.session.run(run)
        self.state = out["stateN"]
        self.context = feed["input"][:, -self.context_size :]
        return float(out["output"].reshape(-1)[0])


def stream_vad(
    session: Any, audio: np.ndarray, sample_rate: int = 16000
) -> tuple[np.ndarray, list[dict[str, np.ndarray]], float]:
    """Run Silero VAD over ``audio`` chunk by chunk, carrying its state and context as a live loop would.

    Returns the speech probability per chunk, the input dict of every step (real calibration and
    parity inputs, states included, ``sr`` left out) and the mean latency per chunk in seconds.
    """
    model = SileroModel(session, sample_rate)
    probs, steps, spent = [], [], 0.0
    for start in range(0, len(audio) - model.chunk + 1, model.chunk):
        feed = model.inputs(audio[start : start + model.chunk])
        steps.append(feed)
        t0 = time.perf_counter()
        probs.append(model.step(feed))
        spent += time.perf_counter() - t0
    return np.array(probs), steps, spent / max(len(probs), 1)


@stages.register("vad.silero")
class SileroVAD(FrameVAD):
    """Silero VAD as a loop stage. ``model`` is a zoo name (pulled into the cache on first use; a
    DownloadError when that fails offline) or a model/artifact path; ``threads`` for its session.
    Segment options are those of :class:`SegmentRules`; ``keep_audio`` seconds of history let each
    SpeechSegment carry its samples."""

    name = "vad.silero"

    def __init__(
        self,
        model: str = "silero-vad",
        *,
        sample_rate: int = 16000,
        threads: int | None = 1,
        cache_dir: str | None = None,
        keep_audio: float = 0.0,
        **rules: Any,
    ) -> None:
        from edge_sdk import zoo
        from edge_sdk.runtimes import load

        path = Path(model) if Path(model).exists() else zoo.pull(model, cache_dir=cache_dir)
        self.model = SileroModel(load(path, threads=threads), sample_rate)
        super().__init__(self.model.chunk, sample_rate, SegmentRules(**rules), keep_audio)

    def score(self, frame: np.ndarray) -> float:
        return self.model.step(self.model.inputs(frame))

    def _reset_model(self) -> None:
        self.model.reset()


@stages.register("vad.energy")
class EnergyVAD(FrameVAD):
    """Energy VAD: a frame's RMS level in dB against an adaptive noise floor, mapped to a probability
    (``margin`` dB above the floor is 0.5, ``slope`` dB per e-fold). The floor is the quietest frame of
    the last ``floor_window`` seconds (minimum statistics: speech has pauses between words, so the
    minimum sits on the noise, and a noise that gets louder is learnt within one window); it is never
    taken below ``min_floor`` dBFS, so dither in digital silence is not speech. Needs no model: the
    fallback when Silero cannot be had."""

    name = "vad.energy"

    def __init__(
        self,
        *,
        sample_rate: int = 16000,
        frame_ms: float = 20.0,
        margin: float = 9.0,
        slope: float = 3.0,
        floor_window: float = 3.0,
        min_floor: float = -70.0,
        keep_audio: float = 0.0,
        **rules: Any,
    ) -> None:
        self.margin, self.slope, self.min_floor = margin, slope, min_floor
        frame = max(1, round(sample_rate * frame_ms / 1000))
        # The window is kept as minima of a few sub-windows: constant memory however long the stream.
        self._sub_frames = max(1, round(floor_window / 6 * sample_rate / frame))
        super().__init__(frame, sample_rate, SegmentRules(**rules), keep_audio)

    def _reset_model(self) -> None:
        self._minima: deque[float] = deque(maxlen=6)
        self._current = math.inf
        self._count = 0

    def score(self, frame: np.ndarray) -> float:
        level = 10.0 * math.log10(float(np.mean(np.square(frame, dtype=np.float64))) + 1e-12)
        self._current = min(self._current, level)
        floor = min(self._current, *self._minima) if self._minima else self._current
        self._count += 1
        if self._count == self._sub_frames:
            self._minima.append(self._current)
            self._current, self._count = math.inf, 0
        snr = level - max(floor, self.min_floor)
        return 1.0 / (1.0 + math.exp(-(snr - self.margin) / self.slope))


def vad_with_fallback(name: str, **options: Any) -> tuple[Stage, list[str]]:
    """Build ``vad.NAME``; if it is Silero and its model cannot be fetched, build ``vad.energy`` instead,
    log a warning and return a note saying so (never a silent fallback). Returns (stage, notes)."""
    from edge_sdk.stages import make

    try:
        return make("vad", name, **options), []
    except DownloadError as e:
        if name != "silero":
            raise
        note = f"vad.silero unavailable ({e}); fell back to vad.energy"
        log.warning("%s", note)
        energy_opts = {k: v for k, v in options.items() if k not in ("model", "threads", "cache_dir")}
        return make("vad", "energy", **energy_opts), [note]
