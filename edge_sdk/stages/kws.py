"""Keyword spotting stage ``kws.onnx``: a sliding 1 s window over the stream, classified every hop by an
ONNX model that follows the KWS model contract (``features`` ``[batch, 1, frames, dims]`` in, ``logits``
``[batch, labels]`` out, labels and front end in the file's metadata), with posterior smoothing,
per-word thresholds and a refractory period; and :func:`detection_latency`, which scores its events
against where the keywords really were.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_sdk.audio import front_end
from edge_sdk.audio.front_end import FrontEnd
from edge_sdk.errors import BadInputError
from edge_sdk.stages import stages
from edge_sdk.stages.base import Block, Event, KeywordDetected, SpeechSegment, SpeechStart, Stage

if TYPE_CHECKING:
    from edge_sdk.runtimes.session import Session

__all__ = [
    "FILLERS",
    "KeywordSpotter",
    "KwsModelInfo",
    "LatencyReport",
    "detection_latency",
    "read_kws_metadata",
]

log = logging.getLogger("edge_sdk.stages.kws")

FILLERS = ("_silence_", "_unknown_")
"""The first two labels of every KWS model; the spotter never fires on them."""
DEFAULT_THRESHOLD = 0.5
META_LABELS, META_FEATURES, META_THRESHOLDS = (
    "edge_sdk.kws.labels",
    "edge_sdk.kws.features",
    "edge_sdk.kws.thresholds",
)


@dataclass(frozen=True)
class KwsModelInfo:
    """What a KWS model file says about itself: its labels, its front end and tuned thresholds."""

    labels: tuple[str, ...]
    features: FrontEnd
    thresholds: dict[str, float] = field(default_factory=dict)

    @property
    def keywords(self) -> tuple[str, ...]:
        """The labels that can fire (all but ``_silence_`` and ``_unknown_``)."""
        return self.labels[len(FILLERS) :]


def model_file(model: str | os.PathLike[str], cache_dir: str | os.PathLike[str] | None) -> Path:
    """The ONNX file ``model`` names: a path (a file, or an artifact folder holding model.onnx) or a
    zoo name (``zoo:commands`` or ``commands``)."""
    from edge_sdk import zoo

    path = Path(model).expanduser()
    if path.is_dir() and (path / "model.onnx").is_file():
        return path / "model.onnx"
    if path.is_file():
        return path
    text = os.fspath(model)
    if text.startswith("zoo:") or (os.sep not in text and not path.suffix):
        return zoo.resolve(text, cache_dir=cache_dir)
    raise BadInputError(f"keyword model {text!r} does not exist (give an .onnx path or zoo:NAME)")


def hop_frames(cfg: FrontEnd, hop: float | None = None) -> int:
    """Front-end frames between classified windows for ``hop`` seconds, which must be a multiple of the
    frame hop and at most one window; None: the multiple nearest 100 ms (5 MFCC frames, 1 embedding)."""
    frame_hop = cfg.hop / cfg.sample_rate
    if hop is None:
        return max(1, round(0.1 / frame_hop))
    frames = round(hop / frame_hop)
    if frames < 1 or abs(frames * frame_hop - hop) > 1e-6 or hop > cfg.clip_seconds:
        raise BadInputError(
            f"kws hop must be a multiple of the front end's frame hop ({frame_hop * 1000:g} ms) and at "
            f"most one window ({cfg.clip_seconds:g} s), not {hop:g} s"
        )
    return frames


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``[windows, labels]`` logits, in float64."""
    z = np.asarray(logits, np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def read_kws_metadata(path: str | os.PathLike[str]) -> KwsModelInfo:
    """Labels, feature config and thresholds from a KWS ONNX file's ``metadata_props``; a BadInputError
    says which entry is missing or malformed and what was expected."""
    import onnx

    try:
        model = onnx.load(os.fspath(path), load_external_data=False)
    except Exception as e:
        raise BadInputError(f"{path} is not a readable ONNX model: {e}") from e
    meta = {p.key: p.value for p in model.metadata_props}
    where = f"KWS model {path}"

    def entry(key: str, required: bool = True) -> Any:
        if key not in meta:
            if not required:
                return None
            raise BadInputError(
                f"{where} has no metadata '{key}'; a KWS model carries {META_LABELS} (JSON list of labels, "
                f"starting {list(FILLERS)}) and {META_FEATURES} (JSON front-end settings) — train it with "
                "the kws recipe or add them with onnx.helper.set_model_props"
            )
        try:
            return json.loads(meta[key])
        except ValueError as e:
            raise BadInputError(f"{where}: metadata '{key}' is not JSON: {e}") from e

    labels = entry(META_LABELS)
    if (
        not isinstance(labels, list)
        or not all(isinstance(x, str) for x in labels)
        or tuple(labels[: len(FILLERS)]) != FILLERS
        or len(labels) <= len(FILLERS)
        or len(set(labels)) != len(labels)
    ):
        raise BadInputError(
            f"{where}: metadata '{META_LABELS}' must be a JSON list of distinct strings starting "
            f"{list(FILLERS)} followed by at least one keyword; got {meta[META_LABELS]!r}"
        )
    try:
        features = front_end.from_dict(entry(META_FEATURES))
    except (TypeError, ValueError, BadInputError) as e:
        raise BadInputError(f"{where}: metadata '{META_FEATURES}' is not a front end's settings: {e}") from e
    thresholds = entry(META_THRESHOLDS, required=False) or {}
    if not isinstance(thresholds, dict):
        raise BadInputError(
            f"{where}: metadata '{META_THRESHOLDS}' must be a JSON object {{word: threshold}}"
        )
    return KwsModelInfo(tuple(labels), features, check_thresholds(thresholds, labels, where))


def check_thresholds(thresholds: Mapping[str, Any], labels: Sequence[str], where: str) -> dict[str, float]:
    keywords = list(labels[len(FILLERS) :])
    out: dict[str, float] = {}
    for word, value in thresholds.items():
        if word not in keywords:
            raise BadInputError(
                f"{where}: threshold for {word!r}, which is not a keyword; keywords: {keywords}"
            )
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 < float(value) <= 1.0:
            raise BadInputError(f"{where}: threshold for {word!r} must be a number in (0, 1], not {value!r}")
        out[word] = float(value)
    return out


def _check_io(session: Session, info: KwsModelInfo, path: Path) -> tuple[str, str, bool]:
    """The input and output names, and whether several windows can go in one run (a free batch dim)."""
    if len(session.inputs) != 1 or len(session.outputs) != 1:
        raise BadInputError(
            f"KWS model {path} must have one input (features) and one output (logits); it has inputs "
            f"{session.input_names} and outputs {session.output_names}"
        )
    spec, out = session.inputs[0], session.outputs[0]
    cfg = info.features
    want = [None, 1, cfg.n_frames(), cfg.dims()]
    shape = list(spec.shape)
    fixed_ok = len(shape) == 4 and all(
        w is None or not isinstance(d, int) or d == w for d, w in zip(shape, want, strict=True)
    )
    if not fixed_ok or spec.dtype != "float32":
        raise BadInputError(
            f"KWS model {path}: input is {spec.describe()}; its metadata front end ({cfg.kind}: "
            f"{cfg.describe()}) needs float32[batch, 1, "
            f"{cfg.n_frames()}, {cfg.dims()}]"
        )
    n = len(info.labels)
    if len(out.shape) != 2 or (isinstance(out.shape[1], int) and out.shape[1] != n):
        raise BadInputError(
            f"KWS model {path}: output is {out.describe()}; its {n} labels need logits [batch, {n}]"
        )
    return spec.name, out.name, not (isinstance(shape[0], int) and shape[0] > 0)


@stages.register("kws.onnx")
class KeywordSpotter(Stage):
    """Keyword spotting over blocks of any size.

    ``model`` is an ONNX path (or an artifact folder with model.onnx) or a zoo name (``zoo:commands``).
    Every ``hop`` seconds (a multiple of the front end's frame hop; default the multiple nearest 100 ms:
    100 ms on MFCC, 80 ms on a speech embedding), once a whole window
    (the front end's ``clip_seconds``) has been heard, the last window is classified; the posteriors of
    the last ``smoothing`` windows are averaged; a keyword fires when its average reaches its
    threshold (``threshold``: one number for all words, or {word: number} over the model's own, else
    the model's metadata, else 0.5), at most one word per window (the highest). After firing, a word
    must fall below its threshold (one detection per utterance) and ``refractory`` seconds must pass
    before it fires again. ``gate="vad"`` classifies only while an earlier VAD stage reports speech
    (from its SpeechStart until ``gate_hangover`` seconds after its SpeechSegment); while it is shut
    the front end does no work either, and the last window's audio is kept, so when speech starts the
    front end restarts on it and the first window is whole. The audio passes through unchanged.
    """

    name = "kws.onnx"
    latency = 0

    def __init__(
        self,
        model: str | os.PathLike[str] = "zoo:commands",
        *,
        threshold: float | Mapping[str, float] | None = None,
        hop: float | None = None,
        smoothing: int = 3,
        refractory: float = 1.0,
        gate: str | None = None,
        gate_hangover: float = 0.3,
        sample_rate: int = 16000,
        threads: int | None = 1,
        backend: str = "auto",
        device: Any = "auto",
        accelerator: str = "auto",
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        from edge_sdk.runtimes import load

        if gate not in (None, "none", "vad"):
            raise BadInputError(f"kws gate must be None or 'vad', not {gate!r}")
        if smoothing < 1:
            raise BadInputError(f"kws smoothing is a number of windows >= 1, not {smoothing}")
        if refractory < 0 or gate_hangover < 0:
            raise BadInputError("kws refractory and gate_hangover are seconds and must not be negative")
        self.path = model_file(model, cache_dir)
        #: Frames a window holds, and how many a window must have before it is classified.
        self._n = self._min_window = 0
        #: Frames between a window's end and the frame its posterior is about (a model's look-ahead).
        self._lag = 0
        self._open(load(self.path, threads=threads, backend=backend, device=device, accelerator=accelerator))
        cfg = self.info.features
        if cfg.sample_rate != sample_rate:
            raise BadInputError(
                f"KWS model {self.path} expects {cfg.sample_rate} Hz audio; the loop runs at {sample_rate} Hz"
            )
        self.hop_frames = hop_frames(cfg, hop)
        self.sample_rate = sample_rate
        self.hop = self.hop_frames * cfg.hop / cfg.sample_rate
        self.smoothing, self.refractory = smoothing, refractory
        self.gate = "vad" if gate == "vad" else None
        self.gate_hangover = gate_hangover
        self.thresholds = self._thresholds(threshold)
        self._stream = cfg.stream(threads=threads, cache_dir=cache_dir)
        self._keyword_ids = np.arange(len(FILLERS), len(self.info.labels))
        self.reset()

    def _open(self, session: Session) -> None:
        """Read the model's contract: ``info`` (labels, front end, thresholds), its I/O and window size."""
        self.session = session
        self.info = read_kws_metadata(self.path)
        self._input, self._output, self._batched = _check_io(session, self.info, self.path)
        self._n = self._min_window = self.info.features.n_frames()

    def _thresholds(self, threshold: float | Mapping[str, float] | None) -> dict[str, float]:
        words = self.info.keywords
        base = {w: self.info.thresholds.get(w, DEFAULT_THRESHOLD) for w in words}
        if threshold is None:
            return base
        if isinstance(threshold, Mapping):
            return {**base, **check_thresholds(threshold, self.info.labels, "kws threshold")}
        return check_thresholds(dict.fromkeys(words, threshold), self.info.labels, "kws threshold")

    def reset(self) -> None:
        """Forget the stream: features, window history, smoothing, refractory and gate state."""
        self._stream.reset()
        self._frames = np.zeros((0, self.info.features.dims()), np.float32)  # the last window's frames
        self._posteriors: deque[np.ndarray] = deque(maxlen=self.smoothing)
        self._armed = dict.fromkeys(self.info.keywords, True)
        self._last_fired: dict[str, float] = {}
        self._offset = 0.0  # stream time of sample 0 (moves if the source dropped audio)
        self._speech = False
        self._gate_until = -math.inf
        self._held = np.zeros(0, np.float32)  # the last window's audio while the gate is shut
        self._unheard = 0  # samples the gate kept from the front end since the last skipped window
        self.windows = 0  # windows classified
        self.skipped = 0  # windows the gate skipped
        self.heard = 0  # samples the front end computed frames of (held audio counts again on replay)

    def process(self, block: Block) -> Block:
        """Feed the block's audio; classify the windows it completes; add KeywordDetected events."""
        if block.sample_rate != self.sample_rate:
            raise BadInputError(
                f"{self.name} was built for {self.sample_rate} Hz audio, got {block.sample_rate} Hz"
            )
        rate = self.sample_rate
        samples = np.asarray(block.samples, np.float32).reshape(-1)
        now = block.start + len(samples) / rate
        if not self._gate_open(block, now):
            self._hold(samples)
            return block
        start = block.start
        if len(self._held):
            # The VAD has just heard speech: the front end restarts on the held audio, so the first window
            # is whole and holds the onset the VAD needed time to be sure of.
            start -= len(self._held) / rate
            samples = np.concatenate([self._held, samples])
            self._held = samples[:0]
            self._stream.reset()
            self._frames = self._frames[:0]
        self._offset = start - self._stream.samples_in / rate
        first = self._stream.frames_out  # index of the first new frame
        self.heard += len(samples)
        new = self._stream.push(samples)
        if not len(new):
            return block
        frames = np.concatenate([self._frames, new])
        total = first + len(new)
        # Window ending at frame count F (frames F-n..F-1) is due when (F - n) is a multiple of the hop.
        due = [
            f
            for f in range(max(first + 1, self._min_window), total + 1)
            if (f - self._min_window) % self.hop_frames == 0
        ]
        self._frames = frames[-self._n :]
        if not due:
            return block
        base = total - len(frames)  # frame count at frames[0]
        windows = [frames[max(0, f - base - self._n) : f - base] for f in due]
        for f, posterior in zip(due, self._classify(windows), strict=True):
            event = self._decide(posterior, f - self._lag, now)
            if event is not None:
                block.events.append(event)
        return block

    def _hold(self, samples: np.ndarray) -> None:
        """The gate is shut: the front end does no work (a speech embedding costs more than the rest of the
        loop); the last window's audio is kept for when the gate opens, and the windows not classified
        are counted in ``skipped``."""
        cfg = self.info.features
        self._held = np.concatenate([self._held, samples])[-cfg.clip_samples :]
        self._unheard += len(samples)
        step = self.hop_frames * cfg.hop
        self.skipped += self._unheard // step
        self._unheard %= step
        self._close_gate()

    def _gate_open(self, block: Block, now: float) -> bool:
        """Whether this block's windows are classified: no gate, or the VAD's speech touches the block."""
        if self.gate is None:
            return True
        active = self._speech or now <= self._gate_until
        for e in block.events:
            if isinstance(e, SpeechStart):
                self._speech = active = True
            elif isinstance(e, SpeechSegment):
                self._speech = False
                self._gate_until = now + self.gate_hangover
                active = True
        return active

    def _close_gate(self) -> None:
        # Windows were skipped, so the smoothing history is stale and the words re-arm: the utterance
        # the VAD heard has ended, and the next one may be the same word again.
        self._posteriors.clear()
        self._armed = dict.fromkeys(self._armed, True)

    def _classify(self, frames: list[np.ndarray]) -> np.ndarray:
        """Posteriors ``[windows, labels]`` of windows of frames (each ``[n, dims]``)."""
        windows = np.stack(frames)[:, None]
        self.windows += len(windows)
        if self._batched:
            logits = self.session.run({self._input: windows})[self._output]
        else:  # a model exported with batch 1: one window per run
            logits = np.concatenate([self.session.run({self._input: w[None]})[self._output] for w in windows])
        return softmax(logits)

    @property
    def window_front_end(self) -> FrontEnd:
        """The front end with the window one decision is judged on offline (benchmarks, threshold
        tuning): the model's own window."""
        return self.info.features

    def window_scores(self, outputs: np.ndarray) -> np.ndarray:
        """Label scores ``[windows, labels]`` (argmax is the decision) of the model's raw output for whole
        windows: a classifier's logits as they are."""
        return np.asarray(outputs)

    def window_input(self, windows: np.ndarray) -> np.ndarray:
        """The model's input for windows of features ``[N, 1, frames, dims]``: these as they are."""
        return np.asarray(windows, np.float32)

    def _decide(self, posterior: np.ndarray, frames: int, now: float) -> KeywordDetected | None:
        """Smooth, re-arm words that fell below threshold, and fire the best word that may fire."""
        self._posteriors.append(posterior)
        smooth = np.mean(self._posteriors, axis=0)
        cfg = self.info.features
        end_sample = (frames - 1) * cfg.hop + cfg.win
        end = self._offset + end_sample / self.sample_rate
        best: tuple[float, str] | None = None
        for i in self._keyword_ids:
            word = self.info.labels[i]
            score = float(smooth[i])
            if score < self.thresholds[word]:
                self._armed[word] = True
                continue
            if end - self._last_fired.get(word, -math.inf) < self.refractory:
                # A crossing inside the refractory period is swallowed whole: it must not fire late,
                # when the period ends while the same utterance is still above threshold.
                self._armed[word] = False
            elif self._armed[word] and (best is None or score > best[0]):
                best = (score, word)
        if best is None:
            return None
        score, word = best
        self._armed[word] = False
        self._last_fired[word] = end
        start = end - cfg.clip_samples / self.sample_rate
        # ``now`` is the end of the block: the earliest stream time the loop could have said it.
        return KeywordDetected(
            self.name, round(max(now, end), 6), word, round(score, 4), round(start, 6), round(end, 6)
        )

    def flush(self, block: Block) -> None:
        """Nothing is pending: a partial window is never classified."""

    def close(self) -> None:
        """Drop the model session."""
        self.session = None  # type: ignore[assignment]


# -- detection latency -------------------------------------------------------------------------------


@dataclass
class LatencyReport:
    """How events matched the true keywords: per true keyword (in order) its latency in seconds or None
    when missed; the events that matched nothing (false alarms, including repeats)."""

    latencies: list[float | None]
    false_alarms: list[dict[str, Any]]

    @property
    def hits(self) -> int:
        return sum(x is not None for x in self.latencies)

    @property
    def misses(self) -> int:
        return len(self.latencies) - self.hits

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile of the hits' latencies (None without hits)."""
        got = [x for x in self.latencies if x is not None]
        return float(np.quantile(got, q)) if got else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {
            "keywords": len(self.latencies),
            "hits": self.hits,
            "misses": self.misses,
            "false_alarms": len(self.false_alarms),
            "latency_p50": self.quantile(0.5),
            "latency_p90": self.quantile(0.9),
            "latency_max": self.quantile(1.0),
            "latencies": self.latencies,
        }


def _as_dict(x: Event | Mapping[str, Any]) -> dict[str, Any]:
    return x.to_dict() if isinstance(x, Event) else dict(x)


def detection_latency(
    events: Iterable[Event | Mapping[str, Any]],
    truth: Iterable[tuple[str, float, float] | Mapping[str, Any]],
    *,
    delay: float = 0.0,
    max_latency: float = 1.5,
) -> LatencyReport:
    """Match keyword events to the true keywords and measure each hit's detection latency.

    ``events`` are KeywordDetected events or their dicts (a JSONL event log: other kinds are ignored);
    ``truth`` is (word, start, end) of each spoken keyword in stream seconds. A true keyword is hit by
    the first unused event of the same word whose window overlaps it and which fired no later than
    ``max_latency`` after its end; its latency is ``event time + delay - true end``: stream time from
    the moment the word was finished to the moment the loop could report it (window hop, smoothing,
    and the block the window ended in). ``delay`` adds the algorithmic latency of the stages before the
    spotter (the loop aligns event times with the source, which hides e.g. a denoiser's delay). The
    model's compute time is not in stream time; the loop's per-stage histograms report it.
    """
    kws = sorted(
        (d for d in map(_as_dict, events) if d.get("event") == KeywordDetected.kind), key=lambda d: d["time"]
    )
    spoken = [(t["word"], t["start"], t["end"]) if isinstance(t, Mapping) else tuple(t) for t in truth]
    used: set[int] = set()
    latencies: list[float | None] = []
    for word, t0, t1 in spoken:
        hit = next(
            (
                i
                for i, e in enumerate(kws)
                if i not in used
                and e["word"] == word
                and e["start"] < t1
                and e["end"] > t0
                and e["time"] + delay - t1 <= max_latency
            ),
            None,
        )
        if hit is None:
            latencies.append(None)
        else:
            used.add(hit)
            latencies.append(round(kws[hit]["time"] + delay - t1, 6))
    return LatencyReport(latencies, [e for i, e in enumerate(kws) if i not in used])
