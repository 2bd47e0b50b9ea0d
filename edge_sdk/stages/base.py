"""The streaming protocol every loop stage speaks: a Block in, a Block out, events riding on the block.

Audio moves through a loop as float32 mono blocks in [-1, 1] of a fixed size. A stage may replace the
samples (a denoiser) or leave them (a VAD), and may add events; events stay on the block, so a later
stage sees what an earlier one said (a keyword spotter can skip blocks the VAD called silence).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np


@dataclass(frozen=True)
class Event:
    """Something a stage noticed. ``time`` is stream time in seconds (samples seen / rate), not wall time,
    so replaying a file gives the same events however fast it runs."""

    kind: ClassVar[str] = "event"
    stage: str
    time: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: the event's kind and fields."""
        return {"event": self.kind, **dataclasses.asdict(self)}


@dataclass(frozen=True)
class SpeechStart(Event):
    """Speech began at ``time`` (raised as soon as the VAD is sure, before the segment ends)."""

    kind: ClassVar[str] = "speech_start"
    probability: float = 1.0


@dataclass(frozen=True)
class SpeechSegment(Event):
    """A finished stretch of speech from ``start`` to ``end`` seconds; ``time`` is when it was closed."""

    kind: ClassVar[str] = "speech_segment"
    start: float = 0.0
    end: float = 0.0
    audio: np.ndarray | None = field(default=None, repr=False, compare=False)
    """The segment's samples, when the VAD was asked to keep them (``keep_audio``); never in JSON."""

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d.pop("audio", None)
        return d


@dataclass(frozen=True)
class Transcript(Event):
    """What a speech recogniser heard between ``start`` and ``end`` (stream seconds). ``final`` is False
    for a partial transcript of speech still going on (it may change; its ``committed`` words will not)
    and True once the segment has closed. ``tokens`` are the recogniser's tokens as text, and
    ``token_times`` their stream times where the recogniser gives them (CTC and transducer models)."""

    kind: ClassVar[str] = "transcript"
    text: str = ""
    start: float = 0.0
    end: float = 0.0
    final: bool = True
    committed: str = ""
    tokens: tuple[str, ...] = ()
    token_times: tuple[float, ...] = ()


@dataclass(frozen=True)
class KeywordDetected(Event):
    """A keyword spotter heard ``word`` with smoothed posterior ``score``. ``time`` is the stream time when
    it fired (the end of the block whose audio completed the window); ``start``/``end`` are the stream
    seconds of the classifier window that fired (``end`` is the end of its last sample)."""

    kind: ClassVar[str] = "keyword"
    word: str = ""
    score: float = 0.0
    start: float = 0.0
    end: float = 0.0


@dataclass
class Block:
    """One block of audio on its way through the stages.

    ``samples`` is float32 mono in [-1, 1]; ``start`` is the stream time of its first sample in
    seconds; ``index`` counts blocks from 0; ``events`` collects what the stages said about it.
    """

    samples: np.ndarray
    sample_rate: int
    start: float
    index: int
    events: list[Event] = field(default_factory=list)

    @property
    def duration(self) -> float:
        """Seconds of audio in the block."""
        return len(self.samples) / self.sample_rate

    def with_samples(self, samples: np.ndarray) -> Block:
        """The same block (time, index, events) carrying new samples."""
        return Block(samples, self.sample_rate, self.start, self.index, self.events)


@dataclass
class Frame:
    """One video frame on its way through the video stages (the video loop's ``Block``).

    ``image`` is H×W×3 uint8 in OpenCV's BGR order; ``raw`` is the frame as the source captured it
    (kept for side-by-side previews and quality measurement; stages never change it); ``time`` is the
    stream time in seconds at capture; ``index`` counts frames the source delivered (gaps mean drops);
    ``events`` collects what the stages said about it.
    """

    image: np.ndarray
    time: float
    index: int
    raw: np.ndarray | None = None
    events: list[Event] = field(default_factory=list)

    def with_image(self, image: np.ndarray) -> Frame:
        """The same frame (time, index, raw, events) carrying a new image."""
        return Frame(image, self.time, self.index, self.raw, self.events)


class Stage:
    """Base of every stage: streaming, stateful, one block at a time.

    ``process`` must not block on I/O for long (it runs on the loop's thread, never on the audio
    callback); ``reset`` forgets all state (a new stream); ``flush`` is called once at the end of a
    stream to drain what a stage still holds (close an open speech segment); ``close`` frees files.
    ``latency`` is the algorithmic delay the stage adds to the audio, in samples.
    """

    name: str = "stage"
    latency: int = 0

    def process(self, block: Block) -> Block:
        raise NotImplementedError

    def reset(self) -> None:
        """Forget the stream so far."""

    def flush(self, block: Block) -> None:
        """End of stream: add any events still pending to ``block`` (an empty block at the end time)."""

    def close(self) -> None:
        """Release files and sessions."""
