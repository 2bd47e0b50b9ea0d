"""Noise, mixing at a given SNR, and SI-SDR: the pieces shared by the denoiser recipe, the quality
benchmark and the demo, so they all make and score noisy speech the same way."""

from __future__ import annotations

import numpy as np


def white_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian white noise, unit RMS."""
    return rng.standard_normal(n).astype(np.float32)


def colored_noise(n: int, rng: np.random.Generator, exponent: float) -> np.ndarray:
    """Noise whose power falls as 1/f**exponent (1: pink, 2: brown), unit RMS."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    x = np.fft.irfft(spec / f ** (exponent / 2), n=n)
    return (x / (np.sqrt(np.mean(x**2)) + 1e-12)).astype(np.float32)


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """1/f noise, unit RMS."""
    return colored_noise(n, rng, 1.0)


def babble(voices: list[np.ndarray], n: int, rng: np.random.Generator, talkers: int = 6) -> np.ndarray:
    """Several talkers at once: random stretches of ``voices`` summed at equal level, unit RMS."""
    out = np.zeros(n, np.float64)
    for _ in range(talkers):
        out += rms_normalize(loop_to(voices[rng.integers(len(voices))], n, rng))
    return rms_normalize(out)


def loop_to(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of ``x`` from a random offset, repeating it as often as needed."""
    reps = -(-(n + len(x)) // len(x))
    start = int(rng.integers(len(x)))
    return np.tile(x, reps)[start : start + n].astype(np.float32)


def rms(x: np.ndarray) -> float:
    """Root mean square of a signal."""
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def rms_normalize(x: np.ndarray) -> np.ndarray:
    """``x`` scaled to unit RMS (silence stays silence)."""
    r = rms(x)
    return (x / r).astype(np.float32) if r > 0 else np.asarray(x, np.float32)


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float, peak: float = 0.9) -> np.ndarray:
    """``speech + noise`` with the noise scaled to ``snr_db`` below the speech's RMS; the sum is scaled
    down (both parts alike) if it would clip above ``peak``. Returns ``[3, n]``: noisy, clean, noise."""
    noise = noise[: len(speech)]
    scale = rms(speech) / (rms(noise) * 10 ** (snr_db / 20) + 1e-12)
    noisy = speech + scale * noise
    gain = min(1.0, peak / (float(np.max(np.abs(noisy))) + 1e-12))
    return np.stack([noisy * gain, speech * gain, scale * noise * gain]).astype(np.float32)


def si_sdr(estimate: np.ndarray, reference: np.ndarray) -> float:
    """Scale-invariant signal-to-distortion ratio in dB (Le Roux et al., 2019); both zero-meaned."""
    ref = reference.astype(np.float64) - np.mean(reference)
    est = estimate.astype(np.float64) - np.mean(estimate)
    target = (np.dot(est, ref) / (np.dot(ref, ref) + 1e-12)) * ref
    err = est - target
    return float(10 * np.log10((np.dot(target, target) + 1e-12) / (np.dot(err, err) + 1e-12)))
