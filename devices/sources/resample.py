"""Sample-rate conversion for the audio sources: whole signals (file replay) and streams (microphones).

soxr is preferred (it is in the ``audio`` extra, fast and very clean). Without it a whole signal goes
through ``scipy.signal.resample_poly`` when scipy is there, and anything else through the windowed-sinc
polyphase filter below, which needs only numpy and streams: feeding a signal in chunks gives the same
samples as feeding it at once.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

# Polyphase prototype: ~32 zero crossings each side (in samples of the slower rate), a Kaiser window with
# beta 8.6 (~85 dB stop band), cut-off at 92% of the lower Nyquist. Against soxr HQ on speech that is
# ~60 dB SNR when downsampling; upsampling loses a little more of the top 8% of the band than soxr.
_HALF_TAPS = 32
_KAISER_BETA = 8.6
_CUTOFF = 0.92


def _soxr() -> Any | None:
    try:
        import soxr
    except ImportError:
        return None
    return soxr


def resample(x: np.ndarray, in_rate: int, out_rate: int) -> tuple[np.ndarray, str]:
    """``x`` (float, 1-D) from ``in_rate`` to ``out_rate`` Hz; returns the signal and the method used.

    The method is ``"soxr"``, ``"scipy"`` (``resample_poly``) or ``"polyphase"`` (numpy only).
    """
    x = np.asarray(x, dtype=np.float32)
    if in_rate == out_rate:
        return x.copy(), "none"
    soxr = _soxr()
    if soxr is not None:
        return np.asarray(soxr.resample(x, in_rate, out_rate, quality="HQ"), dtype=np.float32), "soxr"
    try:
        from scipy.signal import resample_poly
    except ImportError:
        stream = PolyphaseResampler(in_rate, out_rate)
        return stream.process(x, last=True), "polyphase"
    g = math.gcd(in_rate, out_rate)
    y = resample_poly(x.astype(np.float64), out_rate // g, in_rate // g)
    return y.astype(np.float32), "scipy"


class PolyphaseResampler:
    """A streaming rational resampler (windowed sinc, polyphase), numpy only.

    Output sample ``n`` sits at input time ``n * in_rate / out_rate``, filtered symmetrically, so the
    output is not shifted in time; the price is a look-ahead of ``_HALF_TAPS`` input samples, which
    ``process`` holds back until more input (or ``last=True``) arrives.
    """

    method = "polyphase"

    def __init__(self, in_rate: int, out_rate: int) -> None:
        g = math.gcd(in_rate, out_rate)
        self.in_rate, self.out_rate = in_rate, out_rate
        self._up, self._down = out_rate // g, in_rate // g
        up, down = self._up, self._down
        half = _HALF_TAPS * max(up, down)
        n = np.arange(-half, half + 1)
        fc = _CUTOFF * 0.5 / max(up, down)  # cycles per sample at the upsampled rate
        h = 2 * fc * np.sinc(2 * fc * n) * np.kaiser(len(n), _KAISER_BETA) * up
        self._center = half
        self._taps = -(-len(h) // up)  # taps per phase
        padded = np.zeros(self._taps * up)
        padded[: len(h)] = h
        # table[p, k] = h[p + k*up]: the taps that meet input x[j - k] for output phase p
        self._table = padded.reshape(self._taps, up).T.astype(np.float32)
        self._pad = self._taps  # zeros standing in for the input before time 0
        self._buf = np.zeros(self._pad, dtype=np.float32)
        self._buf_start = -self._pad  # input index of self._buf[0]
        self._n_in = 0
        self._n_out = 0

    def process(self, x: np.ndarray, last: bool = False) -> np.ndarray:
        """Feed the next input chunk; return every output sample now computable (all, if ``last``)."""
        x = np.asarray(x, dtype=np.float32).reshape(-1)
        self._buf = np.concatenate([self._buf, x])
        self._n_in += len(x)
        if last:
            end = -(-self._n_in * self._up // self._down)  # ceil: output covering all input time
            self._buf = np.concatenate([self._buf, np.zeros(self._taps + 1, dtype=np.float32)])
        else:
            # output n needs inputs up to floor((n*down + center) / up) < n_in
            end = (self._n_in * self._up - 1 - self._center) // self._down + 1
            end = max(end, self._n_out)
        ns = np.arange(self._n_out, end, dtype=np.int64)
        if len(ns) == 0:
            return np.zeros(0, dtype=np.float32)
        t = ns * self._down + self._center
        jmax = t // self._up
        phase = t - jmax * self._up
        idx = (jmax - self._buf_start)[:, None] - np.arange(self._taps)[None, :]
        y = np.einsum("nk,nk->n", self._buf[idx], self._table[phase])
        self._n_out = end
        # keep the inputs the next output still needs
        t_next = end * self._down + self._center
        keep_from = t_next // self._up - self._taps + 1
        cut = max(0, keep_from - self._buf_start)
        self._buf = self._buf[cut:]
        self._buf_start += cut
        return y.astype(np.float32)


class StreamResampler:
    """Chunk-by-chunk rate conversion with state: soxr's ResampleStream, else ``PolyphaseResampler``.

    ``method`` says which one runs (``"soxr"`` or ``"polyphase"``).
    """

    def __init__(self, in_rate: int, out_rate: int, *, prefer_soxr: bool = True) -> None:
        self.in_rate, self.out_rate = in_rate, out_rate
        soxr = _soxr() if prefer_soxr else None
        if soxr is not None:
            self._impl: Any = soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32", quality="HQ")
            self.method = "soxr"
        else:
            self._impl = PolyphaseResampler(in_rate, out_rate)
            self.method = "polyphase"

    def process(self, x: np.ndarray, last: bool = False) -> np.ndarray:
        """Convert the next chunk; ``last=True`` flushes what the filter still holds."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        if self.method == "soxr":
            return np.asarray(self._impl.resample_chunk(x, last=last), dtype=np.float32)
        return self._impl.process(x, last=last)
