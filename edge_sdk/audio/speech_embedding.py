"""The ``speech-embedding`` KWS front end: a frozen speech embedding trained on real speech.

openWakeWord's two ONNX models (the zoo's ``oww-melspectrogram`` and ``oww-speech-embedding``, pulled from
its PyPI wheel by sha256; see their licence note in ``edge_sdk/zoo/catalog.toml``) re-implement Google's
``speech_embedding``: 32 mel bands every 10 ms from 512-sample frames, then one 96-d embedding from each 76
mel frames, every 8 mel frames. So frame ``i`` of this front end (one embedding) depends on samples
``[1280 i, 1280 i + 12512)``: a 782 ms receptive field every 80 ms. A head trained on these frames from
synthesised voices carries to real ones, which MFCC heads do not: the embedding has heard real speakers.

On a stream each mel frame and each embedding is computed once, whatever the window and hop of the
classifier that reads them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from edge_sdk.audio import front_end
from edge_sdk.audio.features import FeatureInputError, check_audio

MEL_WIN, MEL_HOP, MEL_BANDS = 512, 160, 32
MEL_PER_EMBEDDING, MEL_STEP, DIMS = 76, 8, 96
#: openWakeWord feeds int16-scale samples and maps its mel output by x/10 + 2 (closer to Google's model).
PCM_SCALE = 32768.0
TOP_DB = 80.0


@front_end.front_ends.register("speech-embedding")
@dataclass(frozen=True)
class SpeechEmbeddingConfig(front_end.Geometry):
    """Settings of the speech-embedding front end: which zoo models, and the classifier's window."""

    kind: ClassVar[str] = "speech-embedding"
    mel_model: str = "oww-melspectrogram"
    embedding_model: str = "oww-speech-embedding"
    sample_rate: int = 16000
    # 9 embeddings: a keyword anywhere in the window is whole in some of them, with context either side
    clip_seconds: float = 1.5

    def __post_init__(self) -> None:
        if self.sample_rate != 16000:
            raise FeatureInputError(f"the speech embedding takes 16000 Hz audio, not {self.sample_rate}")
        if self.clip_samples < self.win:
            raise FeatureInputError(
                f"clip_seconds {self.clip_seconds} is shorter than one embedding ({self.win} samples)"
            )

    @property
    def hop(self) -> int:
        """Samples between embeddings (80 ms)."""
        return MEL_HOP * MEL_STEP

    @property
    def win(self) -> int:
        """Samples one embedding depends on (782 ms)."""
        return (MEL_PER_EMBEDDING - 1) * MEL_HOP + MEL_WIN

    def dims(self) -> int:
        """Values per embedding."""
        return DIMS

    def describe(self) -> str:
        """One line for messages."""
        return f"{self.n_frames()} speech embeddings of {DIMS} values"

    def features(self, x: np.ndarray, *, threads: int | None = 1, cache_dir: Any = None) -> np.ndarray:
        """Embeddings ``[..., frames, 96]`` of float audio ``[..., samples]``; the models come from the zoo
        cache (``cache_dir``, else the default), pulled on first use."""
        arr = check_audio(x, self.sample_rate)
        lead = arr.shape[:-1]
        flat = arr.reshape(-1, arr.shape[-1])
        k = self.n_frames(flat.shape[-1])
        if k == 0 or len(flat) == 0:
            return np.zeros((*lead, k, DIMS), np.float32)
        models = _models(self, threads, cache_dir)
        mel = models.mel(flat)  # [n, mel frames, 32]
        idx = np.arange(k)[:, None] * MEL_STEP + np.arange(MEL_PER_EMBEDDING)[None, :]
        emb = models.embed(mel[:, idx].reshape(-1, MEL_PER_EMBEDDING, MEL_BANDS))
        return emb.reshape(*lead, k, DIMS)

    def stream(self, *, threads: int | None = 1, cache_dir: Any = None) -> EmbeddingStream:
        """The front end on a live stream."""
        return EmbeddingStream(self, threads=threads, cache_dir=cache_dir)


def _frame_local_mel(path: Any) -> bytes:
    """The mel model cut before its floor: as shipped it clips every value at the maximum over the whole
    input (every frame of every clip in the batch) minus 80 dB, so a frame's numbers would depend on what
    else was computed with it. The floor is applied per frame instead (``_floor``)."""
    import onnx
    import onnx.utils

    model = onnx.load(str(path))
    tops = [n for n in model.graph.node if n.op_type == "ReduceMax"]
    if len(tops) != 1:
        raise FeatureInputError(
            f"{path}: not the openWakeWord mel model this front end knows (no single floor)"
        )
    out = model.graph.output[0]
    out.name = tops[0].input[0]
    out.type.tensor_type.ClearField("shape")
    kept = onnx.utils.Extractor(model).extract_model([i.name for i in model.graph.input], [out.name])
    return bytes(kept.SerializeToString())


def _floor(log_mel: np.ndarray) -> np.ndarray:
    """openWakeWord's 80 dB floor, relative to each frame's loudest band."""
    return np.maximum(log_mel, log_mel.max(axis=-1, keepdims=True) - TOP_DB)


class _Models:
    """The two ONNX models, opened once per (settings, threads, cache) on onnxruntime."""

    def __init__(self, cfg: SpeechEmbeddingConfig, threads: int | None, cache_dir: Any) -> None:
        from edge_sdk import zoo

        mel = _frame_local_mel(zoo.resolve(cfg.mel_model, cache_dir=cache_dir))
        self._mel = front_end.cpu_session(mel, threads)
        self._emb = front_end.cpu_session(str(zoo.resolve(cfg.embedding_model, cache_dir=cache_dir)), threads)
        self._mel_in, self._emb_in = self._mel.get_inputs()[0].name, self._emb.get_inputs()[0].name

    def mel(self, audio: np.ndarray) -> np.ndarray:
        """``[n, frames, 32]`` mel bands of ``[n, samples]`` float audio (at least 512 samples)."""
        x = np.ascontiguousarray(audio * PCM_SCALE, np.float32)
        out = np.asarray(self._mel.run(None, {self._mel_in: x})[0], np.float32).reshape(len(x), -1, MEL_BANDS)
        return (_floor(out) / 10.0 + 2.0).astype(np.float32)

    def embed(self, mel: np.ndarray, chunk: int = 256) -> np.ndarray:
        """``[n, 96]`` embeddings of ``[n, 76, 32]`` mel windows."""
        parts = []
        for i in range(0, len(mel), chunk):
            x = np.ascontiguousarray(mel[i : i + chunk, :, :, None], np.float32)
            parts.append(
                np.asarray(self._emb.run(None, {self._emb_in: x})[0], np.float32).reshape(len(x), DIMS)
            )
        return np.concatenate(parts) if parts else np.zeros((0, DIMS), np.float32)


_OPEN: dict[tuple[SpeechEmbeddingConfig, int | None, str | None], _Models] = {}
_OPEN_LOCK = threading.Lock()


def _models(cfg: SpeechEmbeddingConfig, threads: int | None, cache_dir: Any) -> _Models:
    with _OPEN_LOCK:
        key = (cfg, threads, None if cache_dir is None else str(cache_dir))
        if key not in _OPEN:
            _OPEN[key] = _Models(cfg, threads, cache_dir)
        return _OPEN[key]


class EmbeddingStream:
    """``SpeechEmbeddingConfig.features`` on a live stream: ``push`` returns the embeddings its samples
    complete. Mel frames are computed once from the samples they need; each embedding once from its 76
    mel frames."""

    def __init__(self, cfg: SpeechEmbeddingConfig, *, threads: int | None = 1, cache_dir: Any = None) -> None:
        self.cfg = cfg
        self._models = _models(cfg, threads, cache_dir)
        self.reset()

    def reset(self) -> None:
        """Start a new stream."""
        self._samples = np.zeros(0, np.float32)  # samples from the next mel frame's first on
        self._mel = np.zeros((0, MEL_BANDS), np.float32)  # mel frames from embedding ``frames_out`` on
        self.frames_out = 0
        self.samples_in = 0

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Append mono float samples; the new embeddings ``[k, 96]`` (float32)."""
        x = check_audio(samples, self.cfg.sample_rate, one_d=True)
        self.samples_in += len(x)
        buf = np.concatenate([self._samples, x]) if len(self._samples) else x
        n_mel = front_end.frames_of(len(buf), MEL_WIN, MEL_HOP)
        # mel frames wait until they complete an embedding: one mel run every 80 ms instead of one per
        # 20 ms block costs the same arithmetic at a quarter of the calls, and no embedding comes later
        if not front_end.frames_of(len(self._mel) + n_mel, MEL_PER_EMBEDDING, MEL_STEP):
            n_mel = 0
        if n_mel:
            new = self._models.mel(buf[None, : (n_mel - 1) * MEL_HOP + MEL_WIN])[0]
            self._mel = np.concatenate([self._mel, new])
        self._samples = np.array(buf[n_mel * MEL_HOP :], np.float32)
        k = front_end.frames_of(len(self._mel), MEL_PER_EMBEDDING, MEL_STEP)
        if k == 0:
            return np.zeros((0, DIMS), np.float32)
        idx = np.arange(k)[:, None] * MEL_STEP + np.arange(MEL_PER_EMBEDDING)[None, :]
        out = self._models.embed(self._mel[idx])
        self._mel = self._mel[k * MEL_STEP :]
        self.frames_out += k
        return out
