"""``Recognizer``: one speech-to-text API over Whisper, CTC and transducer models, in the spirit of
sherpa-onnx's (factory constructors, ``create_stream()``, ``accept_waveform()``, ``result()``).

Offline: ``Recognizer.from_whisper().transcribe(audio, sample_rate)``. Streaming: a stream gathers audio;
``result()`` is the transcript so far and ``input_finished()`` makes the next ``result()`` final. A Whisper
stream re-decodes what it holds at each ``result()`` and commits the words two successive hypotheses
agree on (LocalAgreement-2, as whisper_streaming does): committed words never change, the rest may.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.asr.whisper import SAMPLE_RATE, DecodeOptions, Transcription
from edge_sdk.errors import BadInputError


def as_mono_16k(samples: Any, sample_rate: int) -> np.ndarray:
    """``samples`` (float in [-1, 1]; ``[n]`` or ``[n, channels]``) as float32 mono at 16 kHz: channels
    averaged, other rates resampled."""
    from edge_sdk.devices.sources.resample import resample

    x = np.asarray(samples)
    if not np.issubdtype(x.dtype, np.floating):
        raise BadInputError(f"audio must be float samples in [-1, 1], got {x.dtype}")
    if x.ndim == 2:
        x = x.mean(axis=1)
    if x.ndim != 1:
        raise BadInputError(f"audio must be [samples] or [samples, channels], got shape {list(x.shape)}")
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
        raise BadInputError(f"sample_rate must be a positive int, not {sample_rate!r}")
    if not np.all(np.isfinite(x)):
        raise BadInputError("audio holds NaN or infinite samples")
    x = x.astype(np.float32)
    return x if sample_rate == SAMPLE_RATE else resample(x, sample_rate, SAMPLE_RATE)[0]


def _key(word: str) -> str:
    return word.lower().strip(".,!?;:\"'")


def agreed_prefix(a: list[str], b: list[str]) -> list[str]:
    """The words two hypotheses share from their start, ignoring case and punctuation around a word
    ("consider." ends one hypothesis and "consider" goes on in the next): LocalAgreement's commit rule."""
    n = 0
    while n < min(len(a), len(b)) and _key(a[n]) == _key(b[n]):
        n += 1
    return a[:n]


def after_committed(committed: list[str], words: list[str]) -> list[str]:
    """The words of a new hypothesis that follow the committed ones. A hypothesis that rewrites the start
    (a word found or lost there) is matched on the last committed words; committed words stay as shown."""
    n = len(committed)
    keys, done = [_key(w) for w in words], [_key(w) for w in committed]
    if keys[:n] == done:
        return words[n:]
    tail = done[-min(3, n) :] if n else []
    for i in range(len(words), 0, -1):
        if tail and keys[max(0, i - len(tail)) : i] == tail:
            return words[i:]
    return words[n:]


@dataclass
class StreamResult:
    """A stream's transcript: ``text`` = ``committed`` words (stable) + ``tentative`` ones; ``final`` once
    the input has finished."""

    text: str
    committed: str = ""
    tentative: str = ""
    final: bool = False
    duration: float = 0.0
    tokens: list[str] = field(default_factory=list)


class Recognizer:
    """A speech recogniser. Build it with :meth:`from_whisper`, :meth:`from_ctc` or
    :meth:`from_transducer`; ``transcribe`` audio at once or ``create_stream`` and feed it."""

    def __init__(self, engine: Any, kind: str, options: DecodeOptions | None = None, model: str = "") -> None:
        self.engine, self.kind, self.model = engine, kind, model
        self.options = options or DecodeOptions()

    @classmethod
    def from_whisper(
        cls,
        model: str | os.PathLike[str] = "zoo:whisper-tiny.en",
        *,
        target: str = "onnx:int8-dynamic",
        language: str | None = None,
        beam: int = 1,
        window: str = "audio",
        device: str = "auto",
        backend: str = "auto",
        threads: int | None = 1,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> Recognizer:
        """Whisper from ``model``: ``zoo:whisper-tiny.en``, a CTranslate2 Whisper folder (built and
        converted once, then cached) or a folder built by ``edge_sdk.asr.whisper_build``; ``target`` picks
        the artifacts (``onnx:fp32``, ``onnx:int8-dynamic``, ``openvino:fp32`` when built); ``window``
        ``"audio"`` encodes only the audio there is, ``"full"`` 30 s as Whisper was trained."""
        from edge_sdk.asr.whisper import open_whisper

        engine = open_whisper(
            model, target=target, device=device, backend=backend, threads=threads, cache_dir=cache_dir
        )
        options = DecodeOptions(beam=beam, language=language, window=window)
        engine.prompt(language)  # an unsupported language fails here, naming the ones there are
        return cls(engine, "whisper", options, model=os.fspath(model))

    @classmethod
    def from_ctc(
        cls,
        model: str | os.PathLike[str],
        *,
        tokens: str | os.PathLike[str] | None = None,
        beam: int = 1,
        hotwords: Any = None,
        lm: str | os.PathLike[str] | None = None,
        device: str = "auto",
        backend: str = "auto",
        threads: int | None = 1,
        **decoder_options: Any,
    ) -> Recognizer:
        """A CTC model (one ONNX file; ``tokens.txt`` beside it unless ``tokens`` names it): greedy with
        ``beam`` 1, else prefix beam search with optional ``hotwords`` (phrases as text or token ids) and
        an ARPA word language model ``lm`` (``alpha``, ``beta`` in ``decoder_options``)."""
        from edge_sdk.asr.acoustic import CtcModel

        engine = CtcModel(
            model,
            tokens=tokens,
            beam=beam,
            hotwords=hotwords,
            lm=lm,
            device=device,
            backend=backend,
            threads=threads,
            **decoder_options,
        )
        return cls(engine, "ctc", model=os.fspath(model))

    @classmethod
    def from_transducer(
        cls,
        folder: str | os.PathLike[str],
        *,
        tokens: str | os.PathLike[str] | None = None,
        method: str = "greedy_search",
        beam: int = 4,
        hotwords: Any = None,
        threads: int = 1,
        **search_options: Any,
    ) -> Recognizer:
        """A stateless transducer exported as sherpa-onnx lays it out (``encoder.onnx``, ``decoder.onnx``,
        ``joiner.onnx`` and ``tokens.txt`` in ``folder``): ``greedy_search`` or ``modified_beam_search``."""
        from edge_sdk.asr.acoustic import TransducerModel

        engine = TransducerModel(
            folder,
            tokens=tokens,
            method=method,
            beam=beam,
            hotwords=hotwords,
            threads=threads,
            **search_options,
        )
        return cls(engine, "transducer", model=os.fspath(folder))

    @classmethod
    def from_model(
        cls,
        model: str | os.PathLike[str],
        *,
        beam: int = 1,
        threads: int = 1,
        target: str = "onnx:int8-dynamic",
        language: str | None = None,
        window: str = "audio",
    ) -> Recognizer:
        """Whichever factory ``model`` needs: a ``.onnx`` file (or a bundled ``zoo:NAME`` whose folder holds
        one, e.g. ``zoo:digits-asr``) is a CTC model, a folder with ``joiner.onnx`` a transducer (modified
        beam search when ``beam`` > 1), anything else (``zoo:whisper-tiny.en``, a CTranslate2 or built
        folder) Whisper, which alone takes ``target``, ``language`` and ``window``."""
        from edge_sdk import zoo

        text = os.fspath(model)
        shipped = zoo.bundled(text) if text.startswith("zoo:") else None
        path = shipped or Path(text)
        if path.suffix == ".onnx" or (path / "joiner.onnx").is_file():
            if language is not None:
                raise BadInputError(f"{text}: a language is chosen for Whisper models only")
            if path.suffix == ".onnx":
                return cls.from_ctc(path, beam=beam, threads=threads)
            method = "modified_beam_search" if beam > 1 else "greedy_search"
            return cls.from_transducer(path, method=method, beam=max(beam, 2), threads=threads)
        return cls.from_whisper(
            model, target=target, language=language, beam=beam, window=window, threads=threads
        )

    def transcribe(self, audio: Any, sample_rate: int = SAMPLE_RATE) -> Transcription:
        """The transcript of a whole recording (float samples; resampled and downmixed as needed)."""
        return self.engine.transcribe(as_mono_16k(audio, sample_rate), self.options)

    def create_stream(self) -> RecognizerStream:
        """A new stream of audio to recognise."""
        return RecognizerStream(self)


class RecognizerStream:
    """Audio arriving piece by piece, and the transcript of what has arrived."""

    def __init__(self, recognizer: Recognizer) -> None:
        self.recognizer = recognizer
        self._pieces: list[np.ndarray] = []
        self._samples = 0
        self._previous: list[str] = []
        self._committed: list[str] = []
        self._finished = False
        self._final: StreamResult | None = None

    def accept_waveform(self, sample_rate: int, samples: Any) -> None:
        """Add audio (float in [-1, 1]) at ``sample_rate``; it is resampled to 16 kHz."""
        if self._finished:
            raise BadInputError("this stream's input has finished; create a new stream")
        x = as_mono_16k(samples, sample_rate)
        self._pieces.append(x)
        self._samples += len(x)

    def input_finished(self) -> None:
        """No more audio will come: the next ``result()`` is final."""
        self._finished = True

    @property
    def duration(self) -> float:
        """Seconds of audio accepted so far."""
        return self._samples / SAMPLE_RATE

    def audio(self) -> np.ndarray:
        """Everything accepted so far, 16 kHz mono."""
        if len(self._pieces) > 1:
            self._pieces = [np.concatenate(self._pieces)]
        return self._pieces[0] if self._pieces else np.zeros(0, np.float32)

    def result(self) -> StreamResult:
        """The transcript so far: decoded afresh, with the words two successive results agree on committed
        (they never change afterwards); final after ``input_finished()``."""
        if self._final is not None:
            return self._final
        t = self.recognizer.transcribe(self.audio())
        words = t.text.split()
        if self._finished:
            self._final = StreamResult(
                text=t.text, committed=t.text, final=True, duration=self.duration, tokens=t.tokens
            )
            return self._final
        tentative = after_committed(self._committed, words)
        agreed = agreed_prefix(after_committed(self._committed, self._previous), tentative)
        self._committed += tentative[: len(agreed)]
        tentative = tentative[len(agreed) :]
        self._previous = words
        committed = " ".join(self._committed)
        return StreamResult(
            text=" ".join([*self._committed, *tentative]),
            committed=committed,
            tentative=" ".join(tentative),
            duration=self.duration,
            tokens=t.tokens,
        )
