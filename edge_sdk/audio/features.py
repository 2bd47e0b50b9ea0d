"""Short-time spectra for speech models, in numpy, shared by training recipes and the live stages.

The framing is NSNet2's (20 ms square-root Hann window, 10 ms hop, 320-point FFT at 16 kHz, log10 power
floored at 1e-12), so both NSNet2 and our own denoiser see identical features whether they are computed
for a whole file (``stft``) or hop by hop on a live stream (``StreamingSTFT``): frame ``n`` covers
samples ``[n*hop - (win-hop), n*hop + hop)`` of the stream, the part before time 0 being zeros.

The keyword-spotting front end (``KwsFeatureConfig``, ``kws_features``, ``KwsFeatureStream``) lives here
too: MFCC frames of the MLPerf Tiny kind, the same numbers in training and on a live stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from edge_sdk.audio import front_end

WIN = 320
HOP = 160
N_FFT = 320
POWER_FLOOR = 1e-12


def analysis_window(win: int = WIN) -> np.ndarray:
    """The square-root Hann window NSNet2 was trained with (numpy's symmetric Hann)."""
    return np.sqrt(np.hanning(win)).astype(np.float32)


def synthesis_window(win: int, hop: int) -> np.ndarray:
    """The window ``istft`` applies before overlap-add (training's torch istft uses the same one)."""
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
    frames = np.fft.irfft(spec, n=n_fft, axis=1)[:, :win].astype(np.float32) * synthesis_window(win, hop)
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
        self._synth = synthesis_window(win, hop)
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


# --------------------------------------------------------------------------------------------------------
# Keyword-spotting front end: MFCC (or log-mel) frames of the MLPerf Tiny KWS kind. One implementation for
# training and inference. Every frame is computed independently of the others and without BLAS reductions
# (whose summation order changes with the number of rows), so a frame's numbers are bit-identical whether
# it is computed in a batch of clips, over a whole file, or on a live stream.
# --------------------------------------------------------------------------------------------------------

LOG_OFFSET = 1e-6


FeatureInputError = front_end.FeatureInputError


@front_end.front_ends.register("mfcc")
@dataclass(frozen=True)
class KwsFeatureConfig(front_end.Geometry):
    """The MFCC front end's settings; the defaults are MLPerf Tiny's (1 s -> 49 frames x 10 MFCC)."""

    kind: ClassVar[str] = "mfcc"
    sample_rate: int = 16000
    win: int = 640
    hop: int = 320
    n_fft: int = 1024
    n_mels: int = 40
    fmin: float = 20.0
    fmax: float = 4000.0
    n_mfcc: int = 10
    clip_seconds: float = 1.0

    def __post_init__(self) -> None:
        for name in ("sample_rate", "win", "hop", "n_fft", "n_mels", "n_mfcc"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise FeatureInputError(f"KwsFeatureConfig.{name} must be an int, not {value!r}")
        if min(self.sample_rate, self.win, self.hop, self.n_fft, self.n_mels) <= 0:
            raise FeatureInputError(f"KwsFeatureConfig sizes must be positive: {self}")
        if self.win > self.n_fft:
            raise FeatureInputError(f"KwsFeatureConfig.win ({self.win}) exceeds n_fft ({self.n_fft})")
        if not 0.0 <= self.fmin < self.fmax <= self.sample_rate / 2:
            raise FeatureInputError(
                f"KwsFeatureConfig needs 0 <= fmin < fmax <= sample_rate/2, got fmin={self.fmin}, "
                f"fmax={self.fmax}, sample_rate={self.sample_rate}"
            )
        if not 0 <= self.n_mfcc <= self.n_mels:
            raise FeatureInputError(f"KwsFeatureConfig.n_mfcc must be in 0..n_mels, not {self.n_mfcc}")
        if self.clip_seconds * self.sample_rate < self.win:
            raise FeatureInputError(
                f"KwsFeatureConfig.clip_seconds ({self.clip_seconds}) is shorter than a frame"
            )

    def dims(self) -> int:
        """Values per frame: ``n_mfcc``, or ``n_mels`` for log-mel features."""
        return self.n_mfcc or self.n_mels

    def describe(self) -> str:
        """One line for messages: what a frame holds."""
        what = f"{self.n_mfcc} MFCC" if self.n_mfcc else f"{self.n_mels} log-mel values"
        return f"{self.n_frames()} frames of {what}"

    def features(self, x: np.ndarray, *, threads: int | None = 1, cache_dir: Any = None) -> np.ndarray:
        """``kws_features(x, self)`` (numpy: ``threads`` and ``cache_dir`` are for front ends that run a
        model)."""
        return kws_features(x, self)

    def stream(self, *, threads: int | None = 1, cache_dir: Any = None) -> KwsFeatureStream:
        """A ``KwsFeatureStream`` of these settings."""
        return KwsFeatureStream(self)


def _hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(f, np.float64) / 700.0)


def _mel_to_hz(m: np.ndarray | float) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(m, np.float64) / 2595.0) - 1.0)


def mel_filterbank(cfg: KwsFeatureConfig = KwsFeatureConfig()) -> np.ndarray:
    """HTK-mel triangular filters ``[n_fft//2+1, n_mels]`` (float64), edges equally spaced in mel from
    ``fmin`` to ``fmax``; each filter is scaled so its largest weight is exactly 1."""
    edges = _mel_to_hz(np.linspace(_hz_to_mel(cfg.fmin), _hz_to_mel(cfg.fmax), cfg.n_mels + 2))
    freqs = np.arange(cfg.n_fft // 2 + 1) * cfg.sample_rate / cfg.n_fft
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs[None, :] - lo) / (mid - lo)
    down = (hi - freqs[None, :]) / (hi - mid)
    fb = np.maximum(0.0, np.minimum(up, down))  # [n_mels, bins]
    peaks = fb.max(axis=1)
    if np.any(peaks <= 0):
        empty = int(np.argmin(peaks))
        raise FeatureInputError(
            f"mel filter {empty} ({edges[empty]:.1f}-{edges[empty + 2]:.1f} Hz) falls between FFT bins; "
            f"use fewer mels or a larger n_fft than {cfg.n_fft}"
        )
    return np.ascontiguousarray((fb / peaks[:, None]).T)


def _dct_matrix(n_out: int, n_in: int) -> np.ndarray:
    """Orthonormal DCT-II rows ``[n_out, n_in]`` (scipy.fft.dct(type=2, norm='ortho'), first n_out)."""
    k = np.arange(n_out)[:, None]
    m = np.arange(n_in)[None, :]
    d = np.sqrt(2.0 / n_in) * np.cos(np.pi * k * (2 * m + 1) / (2 * n_in))
    d[0] /= np.sqrt(2.0)
    return d


class _KwsTables:
    """Window, filter bands and DCT of one config, computed once."""

    def __init__(self, cfg: KwsFeatureConfig) -> None:
        n = np.arange(cfg.win)
        self.window = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / cfg.win)  # periodic Hann, float64
        fb = mel_filterbank(cfg)
        # Each filter as (first bin, weights over its nonzero band): a band sum instead of a matmul.
        self.bands: list[tuple[int, int, np.ndarray]] = []
        for j in range(cfg.n_mels):
            nz = np.flatnonzero(fb[:, j])
            self.bands.append((int(nz[0]), int(nz[-1]) + 1, fb[nz[0] : nz[-1] + 1, j].copy()))
        self.dct = _dct_matrix(cfg.n_mfcc, cfg.n_mels) if cfg.n_mfcc else None


_TABLES: dict[KwsFeatureConfig, _KwsTables] = {}


def _tables(cfg: KwsFeatureConfig) -> _KwsTables:
    t = _TABLES.get(cfg)
    if t is None:
        t = _TABLES[cfg] = _KwsTables(cfg)
    return t


def check_audio(x: Any, rate: int, sample_rate: int | None = None, *, one_d: bool = False) -> np.ndarray:
    """``x`` as float32 mono audio for a front end that takes ``rate`` Hz; a FeatureInputError says what is
    wrong (integer PCM, another sample rate, a scalar, or not 1-D when ``one_d``)."""
    if sample_rate is not None and int(sample_rate) != rate:
        raise FeatureInputError(
            f"KWS features need {rate} Hz audio, got {sample_rate} Hz; resample it first "
            f"(edge_sdk.train.speech_data.resample)"
        )
    arr = np.asarray(x)
    if not np.issubdtype(arr.dtype, np.floating):
        hint = " (int16 PCM: divide by 32768)" if np.issubdtype(arr.dtype, np.integer) else ""
        raise FeatureInputError(f"KWS features take float audio in [-1, 1], got dtype {arr.dtype}{hint}")
    if arr.ndim == 0 or (one_d and arr.ndim != 1):
        want = "a 1-D" if one_d else "a [..., samples]"
        raise FeatureInputError(f"KWS features take {want} mono signal, got shape {arr.shape}")
    return arr.astype(np.float32, copy=False)


def _check_audio(
    x: Any, cfg: KwsFeatureConfig, sample_rate: int | None, *, one_d: bool = False
) -> np.ndarray:
    if not isinstance(cfg, KwsFeatureConfig):
        raise FeatureInputError(f"cfg must be a KwsFeatureConfig, not {type(cfg).__name__}")
    return check_audio(x, cfg.sample_rate, sample_rate, one_d=one_d)


def _frames_log_mel(frames: np.ndarray, cfg: KwsFeatureConfig) -> np.ndarray:
    """float64 log-mel of ``[..., win]`` float32 frames; each frame's result depends on that frame only."""
    t = _tables(cfg)
    spec = np.fft.rfft(frames.astype(np.float64) * t.window, n=cfg.n_fft, axis=-1)
    power = spec.real**2 + spec.imag**2
    out = np.empty(frames.shape[:-1] + (cfg.n_mels,), np.float64)
    for j, (lo, hi, w) in enumerate(t.bands):
        out[..., j] = np.sum(power[..., lo:hi] * w, axis=-1)
    return np.log(out + LOG_OFFSET)


def _frames_features(frames: np.ndarray, cfg: KwsFeatureConfig) -> np.ndarray:
    lm = _frames_log_mel(frames, cfg)
    t = _tables(cfg)
    if t.dct is None:
        return lm.astype(np.float32)
    out = np.empty(lm.shape[:-1] + (cfg.n_mfcc,), np.float64)
    for k in range(cfg.n_mfcc):
        out[..., k] = np.sum(lm * t.dct[k], axis=-1)
    return out.astype(np.float32)


def _frame(x: np.ndarray, cfg: KwsFeatureConfig) -> np.ndarray:
    n = cfg.n_frames(x.shape[-1])
    if n == 0:
        return np.zeros(x.shape[:-1] + (0, cfg.win), np.float32)
    idx = np.arange(n)[:, None] * cfg.hop + np.arange(cfg.win)[None, :]
    return x[..., idx]


def log_mel(
    x: np.ndarray, cfg: KwsFeatureConfig = KwsFeatureConfig(), *, sample_rate: int | None = None
) -> np.ndarray:
    """float32 log-mel frames ``[..., frames, n_mels]`` of float mono audio ``[..., samples]``: frame i is
    ``x[i*hop : i*hop+win]`` times a periodic Hann, ``log(|rfft(n_fft)|^2 @ mel_filterbank + 1e-6)``."""
    arr = _check_audio(x, cfg, sample_rate)
    return _frames_log_mel(_frame(arr, cfg), cfg).astype(np.float32)


def mfcc(
    x: np.ndarray, cfg: KwsFeatureConfig = KwsFeatureConfig(), *, sample_rate: int | None = None
) -> np.ndarray:
    """float32 MFCC ``[..., frames, n_mfcc]``: the orthonormal DCT-II of ``log_mel``, first ``n_mfcc``."""
    if not cfg.n_mfcc:
        raise FeatureInputError("this KwsFeatureConfig has n_mfcc=0 (log-mel features); call log_mel")
    arr = _check_audio(x, cfg, sample_rate)
    return _frames_features(_frame(arr, cfg), cfg)


def kws_features(
    x: np.ndarray, cfg: KwsFeatureConfig = KwsFeatureConfig(), *, sample_rate: int | None = None
) -> np.ndarray:
    """The classifier's input frames ``[..., frames, dims]``: ``mfcc`` when ``cfg.n_mfcc``, else ``log_mel``;
    for another front end (``edge_sdk.audio.front_end``), its own ``features``. ``x`` is float mono audio at
    ``cfg.sample_rate`` in [-1, 1]; leading batch dims are kept."""
    if not isinstance(cfg, KwsFeatureConfig) and hasattr(cfg, "features"):
        return np.asarray(cfg.features(check_audio(x, cfg.sample_rate, sample_rate)))
    arr = _check_audio(x, cfg, sample_rate)
    return _frames_features(_frame(arr, cfg), cfg)


class KwsFeatureStream:
    """``kws_features`` on a live stream: ``push(samples)`` returns the frames completed by them
    (``[k, dims]``, k >= 0), bit-identical to ``kws_features`` over everything pushed so far."""

    def __init__(self, cfg: KwsFeatureConfig = KwsFeatureConfig(), *, sample_rate: int | None = None) -> None:
        _check_audio(np.zeros(1, np.float32), cfg, sample_rate)
        self.cfg = cfg
        self.reset()

    def reset(self) -> None:
        """Start a new stream."""
        self._tail = np.zeros(0, np.float32)
        self.frames_out = 0  # frames returned since reset; frame i starts at sample i*hop
        self.samples_in = 0

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Append mono float samples; the new complete frames ``[k, dims]`` (float32)."""
        x = _check_audio(samples, self.cfg, None, one_d=True)
        self.samples_in += len(x)
        buf = np.concatenate([self._tail, x]) if len(self._tail) else x
        k = self.cfg.n_frames(len(buf))
        out = (
            _frames_features(_frame(buf, self.cfg), self.cfg)
            if k
            else np.zeros((0, self.cfg.dims()), np.float32)
        )
        self._tail = np.array(buf[k * self.cfg.hop :], np.float32)
        self.frames_out += k
        return out
