"""Whisper's encoder as a frozen speech front end for keyword spotting (front end ``whisper-encoder``).

Every ``hop`` samples (80 ms by default) the encoder runs over the last ``window_frames`` Whisper log-mel
frames and its output positions are pooled into one vector of 384: one frame. Frame ``i`` depends only on
samples ``[i*hop, i*hop + win)``, so a stream gives the frames ``features`` gives for the whole signal.

The encoder comes from a CTranslate2 Whisper model in the zoo (MIT weights); its ONNX form, built once per
model and window length, is kept in the zoo cache under ``whisper-encoder/`` with its sha256 recorded
beside it. The log-mel clamp is a fixed floor (see ``whisper_mel``), not Whisper's max over 30 s.
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from edge_sdk.audio import front_end, whisper_mel
from edge_sdk.audio.features import check_audio
from edge_sdk.errors import BadInputError

log = logging.getLogger("edge_sdk.audio.whisper_encoder")

POOLS = ("mean", "max", "last")
CACHE_FOLDER = "whisper-encoder"
# Bumped whenever the graph ``whisper_onnx`` builds changes, so an encoder cached by an older build is not
# reused.
BUILD = 1
_BATCH = 64  # windows per encoder run in ``features``: bounds memory on long inputs
# Encoder files this process has checked against their recorded sha256 (or written): not hashed again.
_VERIFIED: set[Path] = set()


@front_end.front_ends.register("whisper-encoder")
@dataclass(frozen=True)
class WhisperEncoderConfig(front_end.Geometry):
    """Settings of the whisper-encoder front end; ``window_frames`` mel frames (10 ms each) per frame."""

    kind: ClassVar[str] = "whisper-encoder"
    model: str = "whisper-tiny.en"
    sample_rate: int = 16000
    clip_seconds: float = 1.0
    hop: int = 1280
    window_frames: int = 50
    pool: str = "mean"

    def __post_init__(self) -> None:
        for name in ("sample_rate", "hop", "window_frames"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise BadInputError(f"{self.kind}: {name} must be an int, not {value!r}")
        if self.sample_rate != whisper_mel.SAMPLE_RATE:
            raise BadInputError(
                f"{self.kind}: Whisper hears 16000 Hz audio, not sample_rate {self.sample_rate}"
            )
        if self.hop <= 0 or self.hop % whisper_mel.HOP:
            raise BadInputError(
                f"{self.kind}: hop must be a positive multiple of 160 samples, not {self.hop}"
            )
        if not 2 <= self.window_frames <= 3000 or self.window_frames % 2:
            raise BadInputError(
                f"{self.kind}: window_frames must be even, 2 to 3000 (the encoder halves it), "
                f"not {self.window_frames}"
            )
        if self.pool not in POOLS:
            raise BadInputError(f"{self.kind}: pool must be one of {', '.join(POOLS)}, not {self.pool!r}")
        if not isinstance(self.model, str) or not self.model:
            raise BadInputError(f"{self.kind}: model must be a zoo model name, not {self.model!r}")
        if isinstance(self.clip_seconds, bool) or not isinstance(self.clip_seconds, (int, float)):
            raise BadInputError(f"{self.kind}: clip_seconds must be a number, not {self.clip_seconds!r}")
        if self.clip_samples < self.win:
            raise BadInputError(
                f"{self.kind}: a {self.clip_seconds} s clip is shorter than one frame's "
                f"{self.win / self.sample_rate:.3f} s ({self.window_frames} mel frames); raise clip_seconds "
                f"or lower window_frames"
            )

    @property
    def win(self) -> int:
        """Samples one frame depends on: ``window_frames`` mel frames of 400 samples every 160."""
        return (self.window_frames - 1) * whisper_mel.HOP + whisper_mel.N_FFT

    def dims(self) -> int:
        """Values per frame: the encoder's width (384 for Whisper tiny)."""
        return 384

    def describe(self) -> str:
        """One line for messages: the model, window, hop and pooling."""
        seconds = self.win / self.sample_rate
        return (
            f"{self.kind} ({self.model}, {self.window_frames} mel frames = {seconds:.2f} s per frame, "
            f"hop {self.hop}, {self.pool} pool, {self.dims()} dims)"
        )

    def features(
        self, x: np.ndarray, *, threads: int | None = 1, cache_dir: str | os.PathLike[str] | None = None
    ) -> np.ndarray:
        """Frames of float audio ``[..., samples]`` in [-1, 1] at 16 kHz: float32 ``[..., frames, 384]``."""
        x = check_audio(x, self.sample_rate)
        lead, n = x.shape[:-1], x.shape[-1]
        n_out = self.n_frames(n)
        out = np.zeros((*lead, n_out, self.dims()), np.float32)
        if n_out == 0:
            return out
        encode = _encoder(self, threads, cache_dir)
        mel = whisper_mel.log_mel(x.reshape(-1, n))  # [clips, T, 80]
        step = self.hop // whisper_mel.HOP
        idx = np.arange(n_out)[:, None] * step + np.arange(self.window_frames)[None, :]
        windows = mel[:, idx].reshape(-1, self.window_frames, whisper_mel.N_MELS)
        flat = out.reshape(-1, self.dims())
        for s in range(0, len(windows), _BATCH):
            flat[s : s + _BATCH] = encode(windows[s : s + _BATCH])
        return out

    def stream(
        self, *, threads: int | None = 1, cache_dir: str | os.PathLike[str] | None = None
    ) -> WhisperEncoderStream:
        """A live front end: ``push`` samples as they come, get the frames they complete."""
        return WhisperEncoderStream(self, _encoder(self, threads, cache_dir))


class WhisperEncoderStream:
    """Frames of a live stream, equal to ``features`` over everything pushed since ``reset``."""

    def __init__(self, cfg: WhisperEncoderConfig, encode: Any) -> None:
        self.cfg, self._encode = cfg, encode
        self._step = cfg.hop // whisper_mel.HOP
        self.reset()

    def reset(self) -> None:
        """Start a new stream: no samples, no frames."""
        self.frames_out = 0
        self.samples_in = 0
        self._tail = np.zeros(0, np.float32)  # samples from the first mel frame not yet computed
        self._mel = np.zeros((0, whisper_mel.N_MELS), np.float32)  # mel frames from _mel_start on
        self._mel_start = 0
        self._n_mel = 0

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Add 1-D float samples; returns the frames they complete, float32 ``[k, 384]`` (k may be 0)."""
        samples = check_audio(samples, self.cfg.sample_rate, one_d=True)
        self.samples_in += len(samples)
        buf = np.concatenate([self._tail, samples])
        k = whisper_mel.n_mel_frames(len(buf))
        if k:
            used = (k - 1) * whisper_mel.HOP + whisper_mel.N_FFT
            self._mel = np.concatenate([self._mel, whisper_mel.log_mel(buf[:used])])
            self._n_mel += k
            buf = buf[k * whisper_mel.HOP :]
        self._tail = buf
        w = self.cfg.window_frames
        ready = 0 if self._n_mel < w else 1 + (self._n_mel - w) // self._step
        if ready <= self.frames_out:
            return np.zeros((0, self.cfg.dims()), np.float32)
        starts = np.arange(self.frames_out, ready) * self._step - self._mel_start
        windows = self._mel[starts[:, None] + np.arange(w)[None, :]]
        frames = self._encode(windows)
        self.frames_out = ready
        keep_from = ready * self._step
        self._mel = self._mel[keep_from - self._mel_start :]
        self._mel_start = keep_from
        return frames


def encoder_file(model: str, n_frames: int, *, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The cached ONNX encoder of zoo model ``model`` for ``n_frames`` mel frames, built (and the model
    pulled) the first time; keyed by the model's pinned sha256 and ``n_frames``."""
    from edge_sdk import zoo
    from edge_sdk.audio.whisper_onnx import build_encoder
    from edge_sdk.integrity import reusable, write_checked

    entry = zoo.catalog().get(model.removeprefix("zoo:"))
    if entry is None:
        raise BadInputError(
            f"{model}: not a zoo model; the catalog holds: {', '.join(sorted(zoo.catalog()))}"
        )
    path = (
        zoo.cache_root(cache_dir)
        / CACHE_FOLDER
        / f"{entry.name}-{entry.sha256[:16]}-n{n_frames}-b{BUILD}.onnx"
    )
    if path in _VERIFIED and path.is_file():
        return path
    if reusable(path, "built Whisper encoder"):
        _VERIFIED.add(path)
        return path
    source = zoo.pull(entry, cache_dir=cache_dir)
    log.info("building the Whisper encoder of %s for %d mel frames into %s", entry.name, n_frames, path)
    onnx_model = build_encoder(source, n_frames)

    def write(tmp: Path) -> None:
        tmp.write_bytes(onnx_model.SerializeToString())

    write_checked(path, write)
    _VERIFIED.add(path)
    return path


@functools.lru_cache(maxsize=8)
def _session(path: str, threads: int | None) -> Any:
    return front_end.cpu_session(path, threads)


def _encoder(cfg: WhisperEncoderConfig, threads: int | None, cache_dir: str | os.PathLike[str] | None) -> Any:
    """``encode(windows [k, W, 80]) -> [k, 384]``: the encoder over each window, pooled."""
    from edge_sdk.audio.whisper_onnx import INPUT

    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise BadInputError(f"threads must be a positive int or None, not {threads!r}")
    sess = _session(str(encoder_file(cfg.model, cfg.window_frames, cache_dir=cache_dir)), threads)

    def encode(windows: np.ndarray) -> np.ndarray:
        if len(windows) == 0:
            return np.zeros((0, cfg.dims()), np.float32)
        hidden = sess.run(None, {INPUT: np.ascontiguousarray(windows.transpose(0, 2, 1))})[0]
        if cfg.pool == "mean":
            return hidden.mean(axis=1).astype(np.float32)
        if cfg.pool == "max":
            return hidden.max(axis=1).astype(np.float32)
        return hidden[:, -1].astype(np.float32)

    return encode
