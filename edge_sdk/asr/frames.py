"""The front-end frames a recogniser trained by ``edge_sdk.train.asr`` reads, and the metadata that names
them (``edge_sdk.asr.acoustic`` runs such models like any CTC or transducer export).

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

from typing import Any

import numpy as np

from edge_sdk.errors import BadInputError

META_FRONT_END = "edge_sdk.asr.front_end"
META_KIND = "edge_sdk.asr.kind"
META_PAD = "edge_sdk.asr.pad_seconds"
#: Frames a streaming model hears past the frame it emits on (absent: 3, the recipe's first models').
META_LOOKAHEAD = "edge_sdk.asr.lookahead_frames"
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
