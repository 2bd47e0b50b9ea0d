"""Speech recognition stage ``asr.whisper``: transcribes each speech segment the VAD closes, and with
``partials`` also the segment still going on, as ``Transcript`` events. Its model is Whisper by default;
a CTC model (``.onnx``) or a transducer folder runs the same way (``Recognizer.from_model``), and the
stage then names itself ``asr.ctc`` or ``asr.transducer``.

The stage keeps the last ``MAX_SEGMENT`` seconds of audio it has seen and cuts each segment from it by
the VAD's stream times, so it needs a VAD stage before it (``audio_stages`` refuses a chain without
one). A segment longer than ``MAX_SEGMENT`` is transcribed in pieces as it goes: a final transcript for
each full piece. Partials re-decode the open segment every ``partial_every`` seconds of new audio and
commit the words two successive hypotheses agree on (LocalAgreement-2); a partial is emitted only when
its text changed.
"""

from __future__ import annotations

import os
from typing import Any

from edge_sdk.errors import BadInputError
from edge_sdk.stages import stages
from edge_sdk.stages.base import Block, SpeechSegment, SpeechStart, Stage, Transcript
from edge_sdk.stages.history import AudioHistory

MAX_SEGMENT = 28.0
"""Seconds of one transcription at most (Whisper hears 30 s; the rest is headroom for VAD padding)."""


@stages.register("asr.whisper")
class WhisperStage(Stage):
    """A recogniser on VAD segments. ``model`` is ``zoo:whisper-tiny.en``, a CTranslate2 Whisper folder, a
    built folder, a CTC ``.onnx`` or a transducer folder; ``target``, ``language`` and ``window`` are
    Whisper's; ``partials`` turns on streaming partial transcripts; ``recognizer`` passes one already
    built."""

    name = "asr.whisper"

    def __init__(
        self,
        model: str | os.PathLike[str] = "zoo:whisper-tiny.en",
        *,
        target: str = "onnx:int8-dynamic",
        language: str | None = None,
        beam: int = 1,
        window: str = "audio",
        partials: bool = False,
        partial_every: float = 1.0,
        sample_rate: int = 16000,
        threads: int | None = 1,
        recognizer: Any = None,
    ) -> None:
        from edge_sdk.asr.recognizer import Recognizer

        if sample_rate != 16000:
            raise BadInputError(f"{self.name} hears 16000 Hz audio; the loop runs at {sample_rate} Hz")
        if partial_every <= 0:
            raise BadInputError(f"partial_every must be positive seconds, not {partial_every!r}")
        if recognizer is None:
            recognizer = Recognizer.from_model(
                model, beam=beam, threads=threads or 1, target=target, language=language, window=window
            )
        self.recognizer = recognizer
        self.name = f"asr.{recognizer.kind}"
        self.partials, self.partial_every = partials, partial_every
        self.sample_rate = sample_rate
        self.history = AudioHistory(MAX_SEGMENT + 2.0, sample_rate)
        self.reset()

    def reset(self) -> None:
        self.history.reset()
        self._open: float | None = None  # start of the open segment (stream seconds)
        self._stream: Any = None  # the open segment's RecognizerStream, for partials
        self._fed_until = 0.0
        self._last_partial = ""

    def process(self, block: Block) -> Block:
        self.history.append(block.samples, block.start)
        self._handle(block)
        return block

    def flush(self, block: Block) -> None:
        self._handle(block)

    def _handle(self, block: Block) -> None:
        now = self.history.end
        for event in list(block.events):
            if isinstance(event, SpeechStart) and self._open is None:
                self._begin(event.time)
            elif isinstance(event, SpeechSegment):
                start = event.start if self._open is None else min(self._open, event.start)
                self._emit(block, self._final(max(start, event.end - MAX_SEGMENT), event.end, event.time))
                self._open, self._stream = None, None
        if self._open is None:
            return
        if now - self._open >= MAX_SEGMENT:
            self._emit(block, self._final(self._open, now, now))
            self._begin(now)
        elif self.partials and now - self._fed_until >= self.partial_every:
            self._partial(block, now)

    @staticmethod
    def _emit(block: Block, transcript: Transcript) -> None:
        if transcript.text:  # a segment with no words (a cough, a door) says nothing
            block.events.append(transcript)

    def _begin(self, start: float) -> None:
        self._open, self._fed_until, self._last_partial = start, start, ""
        self._stream = self.recognizer.create_stream() if self.partials else None

    def _partial(self, block: Block, now: float) -> None:
        assert self._stream is not None and self._open is not None
        self._stream.accept_waveform(self.sample_rate, self.history.between(self._fed_until, now))
        self._fed_until = now
        result = self._stream.result()
        if result.text and result.text != self._last_partial:
            self._last_partial = result.text
            block.events.append(
                Transcript(
                    self.name,
                    round(now, 6),
                    text=result.text,
                    start=round(self._open, 6),
                    end=round(now, 6),
                    final=False,
                    committed=result.committed,
                    tokens=tuple(result.tokens),
                )
            )

    def _final(self, start: float, end: float, time: float) -> Transcript:
        audio = self.history.between(start, end)
        t = self.recognizer.transcribe(audio, self.sample_rate)
        return Transcript(
            self.name,
            round(time, 6),
            text=t.text,
            start=round(start, 6),
            end=round(end, 6),
            final=True,
            committed=t.text,
            tokens=tuple(t.tokens),
            token_times=tuple(round(start + x, 6) for x in t.times),
        )
