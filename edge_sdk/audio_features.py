"""Short-time spectra for speech models, in numpy, shared by training recipes and the live stages.

The framing is NSNet2's (20 ms square-root Hann window, 10 ms hop, 320-point FFT at 16 kHz, log10 power
floored at 1e-12), so both NSNet2 and our own denoiser see identical features whether they are computed
for a whole file (``stft``) or hop by hop on a live stream (``StreamingSTFT``): frame ``n`` covers
samples ``[n*hop - (win-hop), n*hop + hop)`` of the stream, the part before time 0 being zeros.
"""

from __future__ import annotations

import numpy as np

WIN = 320
HOP = 160
N_FFT = 320
POWER_FLOOR = 1e-12


def analysis_window(win: int = WIN) -> np.ndarray:
    """The square-root Hann window NSNet2 was trained with (numpy's symmetric Hann)."""
    return np.sqrt(np.hanning(win)).astype(np.float32)


def _synthesis_window(win: int, hop: int) -> np.ndarray:
    # Scale the synthesis window so analysis × synthesis windows overlap-add to exactly 1 at this hop
    # (the symmetric Hann alone ripples by about 1 %).
    w = analysis_window(win).astype(np.float64)
    w2 = w * w
    total = np.zeros(win)
    for k in range(0, win, hop):
        total += np.roll(w2, k)
    return (w / total).astype(np.float32)


def log_power(spec: np.ndarray) -> np.ndarray:
    """log10 of the power spectrum, floored at 1e-12: the denoisers' input feature."""
    power = spec.real.astype(np.float32) ** 2 + spec.imag.astype(np.float32) ** 2
    return np.log10(np.maximum(power, POWER_FLOOR)).astype(np.float32)


def stft(x: np.ndarray, win: int = WIN, hop: int = HOP, n_fft: int = N_FFT) -> np.ndarray:
    """Complex spectra ``[frames, n_fft//2+1]`` of a whole signal, one frame per ``hop`` samples
    (the last partial hop zero-padded); equal to feeding ``x`` hop by hop through StreamingSTFT."""
    x = np.asarray(x, dtype=np.float32)
    n_frames = -(-len(x) // hop)
    tail = np.zeros(n_frames * hop - len(x), np.float32)
    padded = np.concatenate([np.zeros(win - hop, np.float32), x, tail])
    idx = np.arange(n_frames)[:, None] * hop + np.arange(win)[None, :]
    return np.fft.rfft(padded[idx] * analysis_window(win), n=n_fft, axis=1).astype(np.complex64)


def istft(spec: np.ndarray, win: int = WIN, hop: int = HOP, n_fft: int = N_FFT) -> np.ndarray:
    """Overlap-add synthesis of ``stft`` frames; returns ``frames*hop`` samples aligned with the input,
    so ``istft(stft(x))[:len(x)]`` reconstructs ``x`` (up to float rounding) except the last
    ``win-hop`` samples, which need the frames after them."""
    frames = np.fft.irfft(spec, n=n_fft, axis=1)[:, :win].astype(np.float32) * _synthesis_window(win, hop)
    n = len(frames)
    out = np.zeros(n * hop + win - hop, np.float32)
    for i in range(n):
        out[i * hop : i * hop + win] += frames[i]
    return out[win - hop : win - hop + n * hop]


class StreamingSTFT:
    """Hop-by-hop analysis and synthesis with the same framing as ``stft``/``istft``.

    ``analyze(hop_samples)`` returns the spectrum of the newest frame; ``synthesize(spec)`` overlap-adds
    a (modified) spectrum and returns the ``hop`` samples that are now complete. The output lags the
    input by ``latency`` samples (win - hop: 10 ms at the defaults).
    """

    def __init__(self, win: int = WIN, hop: int = HOP, n_fft: int = N_FFT) -> None:
        self.win, self.hop, self.n_fft = win, hop, n_fft
        self.latency = win - hop
        self._window = analysis_window(win)
        self._synth = _synthesis_window(win, hop)
        self.reset()

    def reset(self) -> None:
        """Start a new stream: zero history on both sides."""
        self._frame = np.zeros(self.win, np.float32)
        self._ola = np.zeros(self.win, np.float32)

    def analyze(self, hop_samples: np.ndarray) -> np.ndarray:
        """Push exactly ``hop`` new samples; the complex spectrum of the frame that ends with them."""
        if len(hop_samples) != self.hop:
            raise ValueError(f"analyze takes {self.hop} samples, got {len(hop_samples)}")
        self._frame[: -self.hop] = self._frame[self.hop :]
        self._frame[-self.hop :] = hop_samples
        return np.fft.rfft(self._frame * self._window, n=self.n_fft).astype(np.complex64)

    def synthesize(self, spec: np.ndarray) -> np.ndarray:
        """Overlap-add one frame's spectrum; returns the ``hop`` output samples now complete."""
        frame = np.fft.irfft(spec, n=self.n_fft)[: self.win].astype(np.float32) * self._synth
        self._ola += frame
        out = self._ola[: self.hop].copy()
        self._ola[: -self.hop] = self._ola[self.hop :]
        self._ola[-self.hop :] = 0.0
        return out
