"""Acoustic features a CTC or transducer model takes: Kaldi's log-mel filterbank (what icefall and
NeMo exports run on, as sherpa-onnx computes it), or a front end of the SDK's own (``edge_sdk.audio.
front_end``, e.g. the speech embedding) named in the model's metadata.

``kaldi_fbank`` follows Kaldi's ``compute-fbank-feats`` with sherpa-onnx's settings: 25 ms Povey
windows every 10 ms, centred (``snip_edges`` off, edges mirrored), DC removed, pre-emphasis 0.97, a 512-point
power spectrum, ``num_bins`` triangular bins on the HTK mel scale from 20 Hz to Nyquist - 400 Hz, natural
log floored at float32's epsilon, no dither. Samples are taken as they come (in [-1, 1]).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping

import numpy as np

from edge_sdk.asr.frames import META_FRONT_END, META_PAD, utterance_frames
from edge_sdk.errors import BadInputError

SAMPLE_RATE = 16000
FRAME_SHIFT, FRAME_LENGTH, N_FFT = 160, 400, 512


def _mel(f: np.ndarray | float) -> np.ndarray:
    return 1127.0 * np.log1p(np.asarray(f, np.float64) / 700.0)


@functools.cache
def _bank(num_bins: int, low: float, high: float) -> np.ndarray:
    """Kaldi's triangular mel weights ``[num_bins, N_FFT // 2]`` (the Nyquist bin is left out, as Kaldi
    does)."""
    top = SAMPLE_RATE / 2 + high if high <= 0 else high
    lo, hi = _mel(low), _mel(top)
    step = (hi - lo) / (num_bins + 1)
    fft_mel = _mel(np.arange(N_FFT // 2) * SAMPLE_RATE / N_FFT)[None, :]
    left = lo + np.arange(num_bins)[:, None] * step
    centre, right = left + step, left + 2 * step
    rising, falling = (fft_mel - left) / (centre - left), (right - fft_mel) / (right - centre)
    inside = (fft_mel > left) & (fft_mel < right)
    bank = np.where(inside, np.where(fft_mel <= centre, rising, falling), 0.0)
    bank.flags.writeable = False
    return bank


@functools.cache
def _povey() -> np.ndarray:
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(FRAME_LENGTH) / (FRAME_LENGTH - 1))) ** 0.85


def kaldi_fbank(audio: np.ndarray, num_bins: int = 80, low: float = 20.0, high: float = -400.0) -> np.ndarray:
    """Kaldi log-mel filterbank ``[frames, num_bins]`` float32 of 16 kHz ``audio`` (see the module
    docstring); ``round(n / 160)`` frames."""
    x = np.asarray(audio, np.float64).reshape(-1)
    n = len(x)
    frames = (n + FRAME_SHIFT // 2) // FRAME_SHIFT
    if frames == 0:
        return np.zeros((0, num_bins), np.float32)
    starts = np.arange(frames) * FRAME_SHIFT + FRAME_SHIFT // 2 - FRAME_LENGTH // 2
    idx = starts[:, None] + np.arange(FRAME_LENGTH)[None, :]
    idx = np.where(idx < 0, -idx - 1, idx)  # Kaldi mirrors the signal at its edges
    idx = np.where(idx >= n, 2 * n - 1 - idx, idx)
    w = x[np.clip(idx, 0, n - 1)]
    w = w - w.mean(axis=1, keepdims=True)
    w = np.concatenate([w[:, :1] * (1 - 0.97), w[:, 1:] - 0.97 * w[:, :-1]], axis=1)
    spec = np.fft.rfft(w * _povey(), N_FFT)
    power = (spec.real**2 + spec.imag**2)[:, : N_FFT // 2]
    energies = power @ _bank(num_bins, low, high).T
    return np.log(np.maximum(energies, np.finfo(np.float32).eps)).astype(np.float32)


def feature_function(
    metadata: Mapping[str, str], feature_dim: int | None
) -> tuple[Callable[[np.ndarray], np.ndarray], str, float]:
    """How to compute a model's input features from 16 kHz audio, and its name: the SDK front end its
    metadata names (with the silence it pads an utterance with, ``edge_sdk.asr.pad_seconds``), else Kaldi
    fbank with as many bins as its input has (80 when that is not fixed). The third value is the silence
    (seconds) put before and after the audio, which token times must take off."""
    if META_FRONT_END in metadata:
        from edge_sdk.audio import front_end

        try:
            fe = front_end.from_dict(json.loads(metadata[META_FRONT_END]))
            pad = float(metadata.get(META_PAD, 0.0))
        except (ValueError, BadInputError) as e:
            raise BadInputError(f"metadata '{META_FRONT_END}' is not a front end's settings: {e}") from e
        return functools.partial(utterance_frames, cfg=fe, pad_seconds=pad), fe.describe(), pad
    bins = feature_dim or 80
    return functools.partial(kaldi_fbank, num_bins=bins), f"kaldi-fbank-{bins}", 0.0
