"""Whisper's log-mel spectrogram in numpy: 80 Slaney mel bands of a 400-point periodic-Hann STFT every
160 samples at 16 kHz, log10 of the power clamped at 1e-10, then ``(x + 4) / 4``.

Whisper also clamps every value to at least (the largest value of the whole 30 s input) - 8. That needs
the whole input before the first frame, so a stream cannot do it; here the clamp is a fixed ``floor``
instead (``FLOOR``, what the max - 8 rule gives for speech at ordinary levels). ``floor=None`` applies
Whisper's own rule over each input, for offline use that must match Whisper exactly.

Frames are not centred by default: frame ``t`` covers samples ``[t*160, t*160 + 400)`` and nothing else,
so a frame's value never depends on audio after it (``center=True`` gives Whisper's reflect-padded,
centred frames).
"""

from __future__ import annotations

import functools

import numpy as np

from edge_sdk.errors import BadInputError

SAMPLE_RATE = 16000
N_FFT = 400
HOP = 160
N_MELS = 80
LOG_CLAMP = 1e-10
FLOOR = -7.0
"""Fixed log10 floor in place of Whisper's max - 8: speech peaking near full scale has mel maxima of
about +1 (log10), so -7 is where Whisper would put it."""


def _hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    f = np.asarray(f, np.float64)
    linear = f / (200.0 / 3)
    log = 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(f >= 1000.0, log, linear)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, np.float64)
    linear = m * (200.0 / 3)
    log = 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0))
    return np.where(m >= 15.0, log, linear)


@functools.cache
def mel_filters(n_mels: int = N_MELS, n_fft: int = N_FFT, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Slaney-normalised triangular mel filters ``[n_fft//2 + 1, n_mels]`` from 0 Hz to Nyquist, the
    filters Whisper was trained with (``librosa.filters.mel`` with its defaults)."""
    fft_hz = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate / 2), n_mels + 2))
    width = np.diff(edges)
    ramps = edges[:, None] - fft_hz[None, :]
    up = -ramps[:-2] / width[:-1, None]
    down = ramps[2:] / width[1:, None]
    fb = np.maximum(0.0, np.minimum(up, down)) * (2.0 / (edges[2:] - edges[:-2]))[:, None]
    out = np.ascontiguousarray(fb.T)
    out.flags.writeable = False
    return out


@functools.cache
def _window() -> np.ndarray:
    w = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(N_FFT) / N_FFT)  # periodic Hann
    w.flags.writeable = False
    return w


def n_mel_frames(n_samples: int) -> int:
    """Uncentred frames in ``n_samples``: 1 + (n - 400) // 160, 0 when shorter than one FFT."""
    return 0 if n_samples < N_FFT else 1 + (n_samples - N_FFT) // HOP


def log_mel(x: np.ndarray, *, floor: float | None = FLOOR, center: bool = False) -> np.ndarray:
    """Whisper log-mel frames of float audio ``[..., samples]`` at 16 kHz: float32 ``[..., frames, 80]``.

    ``floor`` is the fixed log10 clamp (None: Whisper's max - 8 over each input, not streamable).
    ``center=True`` reflect-pads 200 samples each side and keeps ``samples // 160`` frames, as Whisper does.
    """
    x = np.asarray(x)
    if x.ndim == 0 or not np.issubdtype(x.dtype, np.floating):
        raise BadInputError(f"log_mel takes float audio [..., samples], got {x.dtype} {list(x.shape)}")
    x = x.astype(np.float64)
    if center:
        if x.shape[-1] <= N_FFT // 2:
            raise BadInputError(f"centred log-mel needs more than {N_FFT // 2} samples, got {x.shape[-1]}")
        pad = [(0, 0)] * (x.ndim - 1) + [(N_FFT // 2, N_FFT // 2)]
        x = np.pad(x, pad, mode="reflect")
    n = n_mel_frames(x.shape[-1])
    if center:
        n -= 1  # Whisper drops the frame centred past the end
    idx = np.arange(n)[:, None] * HOP + np.arange(N_FFT)[None, :]
    spec = np.fft.rfft(x[..., idx] * _window(), axis=-1)
    power = spec.real**2 + spec.imag**2
    mel = np.log10(np.maximum(power @ mel_filters(), LOG_CLAMP))
    if floor is None:
        peak = mel.max(axis=(-2, -1), keepdims=True) if n else 0.0
        mel = np.maximum(mel, peak - 8.0)
    else:
        mel = np.maximum(mel, floor)
    return ((mel + 4.0) / 4.0).astype(np.float32)
