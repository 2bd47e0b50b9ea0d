"""The front-end frames a small recogniser trained by ``edge_sdk.train.asr`` reads, and its ONNX files run.

Such a model hears the frames of a frozen KWS front end (``edge_sdk.audio.front_end``; the speech
embedding by default: one 96-d frame every 80 ms, each from 782 ms of audio). Its files name the front
end in their metadata (``edge_sdk.asr.front_end``, the front end's ``to_dict()`` as JSON, as the KWS
models store theirs) with the silence put either side of an utterance before its frames are computed
(``edge_sdk.asr.pad_seconds``): with a receptive field this long, a word at the very start or end of
the audio would otherwise fall only at the edge of the first or last frame. Training and inference
both go through ``utterance_frames``, which computes the frames with the front end's own ``stream()``,
so they are the frames a live stream gives.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.asr.tokens import TokenTable
from edge_sdk.audio import front_end
from edge_sdk.errors import BadInputError

META_FRONT_END = "edge_sdk.asr.front_end"
META_KIND = "edge_sdk.asr.kind"
META_PAD = "edge_sdk.asr.pad_seconds"
KINDS = ("ctc", "transducer")
#: Silence either side of an utterance: about half the speech embedding's receptive field.
PAD_SECONDS = 0.4


def utterance_frames(
    audio: np.ndarray, cfg: Any, pad_seconds: float = PAD_SECONDS, *, cache_dir: Any = None
) -> np.ndarray:
    """float32 ``[T, dims]`` frames of one utterance (16 kHz float mono) with ``pad_seconds`` of silence
    either side, pushed through the front end's stream as a live loop would push them."""
    x = np.asarray(audio, np.float32)
    if x.ndim != 1:
        raise BadInputError(f"an utterance is mono audio [samples], not shape {x.shape}")
    pad = np.zeros(int(round(pad_seconds * cfg.sample_rate)), np.float32)
    stream = cfg.stream(threads=1, cache_dir=cache_dir)
    parts = [stream.push(part) for part in (pad, x, pad) if len(part)]
    out = np.concatenate(parts) if parts else np.zeros((0, cfg.dims()), np.float32)
    return np.asarray(out, np.float32).reshape(-1, cfg.dims())


def read_metadata(path: str | Path) -> dict[str, str]:
    """The metadata of an ONNX file (onnx's protobuf only; no session)."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"ASR model file not found: {path}")
    model = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}


def model_front_end(path: str | Path) -> tuple[Any, float, str]:
    """The front end, the padding in seconds and the kind (``ctc`` or ``transducer``) a model's metadata
    names; a file without them is a BadInputError."""
    meta = read_metadata(path)
    if META_FRONT_END not in meta or meta.get(META_KIND) not in KINDS:
        raise BadInputError(f"{path}: not an edge-sdk ASR model (no {META_FRONT_END} / {META_KIND} metadata)")
    cfg = front_end.from_dict(json.loads(meta[META_FRONT_END]))
    return cfg, float(meta.get(META_PAD, PAD_SECONDS)), meta[META_KIND]


class OnnxCtc:
    """A CTC ``model.onnx`` (``features`` [N, T, D] -> ``log_probs`` [N, T, V]) on onnxruntime, with the
    front end its metadata names."""

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        self.cfg, self.pad_seconds, kind = model_front_end(path)
        if kind != "ctc":
            raise BadInputError(f"{path}: a {kind} model, not a CTC one")
        self._session = front_end.cpu_session(str(path), threads)

    def frames(self, audio: np.ndarray) -> np.ndarray:
        """The model's input frames ``[T, D]`` for one utterance."""
        return utterance_frames(audio, self.cfg, self.pad_seconds)

    def log_probs(self, frames: np.ndarray) -> np.ndarray:
        """``[T, V]`` log-probabilities of one utterance's frames ``[T, D]``."""
        x = np.ascontiguousarray(frames, np.float32)[None]
        return np.asarray(self._session.run(["log_probs"], {"features": x})[0][0])


def load_tokens(folder: str | Path) -> TokenTable:
    """The ``tokens.txt`` beside a model's files."""
    return TokenTable.from_file(Path(folder) / "tokens.txt")
