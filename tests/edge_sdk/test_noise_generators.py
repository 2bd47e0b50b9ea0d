"""The recipes' low-frequency noise generators: unit RMS, seeded, and with the spectra they promise, measured
with Welch's method rather than read back from their parameters."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import stft, welch

from edge_sdk.train import noise_data

SR = noise_data.SAMPLE_RATE
NEW = ("sloped", "rumble", "fan", "traffic", "howl", "buffeting")


def psd(x: np.ndarray, nperseg: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    return welch(x.astype(np.float64), SR, nperseg=nperseg)


def fitted_slope(x: np.ndarray, lo: float, hi: float = 6000.0) -> float:
    """Least-squares slope of the power spectrum in dB per octave between ``lo`` and ``hi`` Hz."""
    f, p = psd(x)
    band = (f >= lo) & (f <= hi)
    return float(np.polyfit(np.log2(f[band]), 10 * np.log10(p[band]), 1)[0])


def share_below(x: np.ndarray, hz: float) -> float:
    f, p = psd(x)
    return float(p[f < hz].sum() / p.sum())


@pytest.mark.parametrize("kind", NEW)
def test_unit_rms_and_deterministic_per_seed(kind: str) -> None:
    gen = noise_data.GENERATORS[kind]
    a, b = gen(SR * 3, np.random.default_rng(5)), gen(SR * 3, np.random.default_rng(5))
    other = gen(SR * 3, np.random.default_rng(6))
    assert a.shape == (SR * 3,) and a.dtype == np.float32 and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, other)
    assert abs(float(np.sqrt(np.mean(a.astype(np.float64) ** 2))) - 1.0) < 1e-3


@pytest.mark.parametrize("slope", [-18.0, -12.0, -6.0, 0.0, 3.0])
def test_sloped_noise_has_the_asked_slope(slope: float) -> None:
    x = noise_data.sloped_noise(SR * 8, np.random.default_rng(1), slope, knee=200.0)
    assert fitted_slope(x, lo=800.0) == pytest.approx(slope, abs=0.5)
    # and flat below the knee
    assert abs(fitted_slope(x, lo=30.0, hi=150.0)) < 3.0


def test_random_slopes_stay_in_range_and_lean_low() -> None:
    slopes = [
        fitted_slope(noise_data.sloped_noise(SR * 4, np.random.default_rng(s)), lo=1000.0) for s in range(12)
    ]
    lo, hi = noise_data.SLOPE_RANGE
    assert all(lo - 1.0 <= s <= hi + 1.0 for s in slopes), slopes
    assert sum(s <= -5.5 for s in slopes) >= 6, slopes  # mostly -6 dB/octave or steeper
    assert max(slopes) - min(slopes) > 8, slopes  # and they do vary


def test_rumble_is_band_limited_below_1khz() -> None:
    for seed in range(4):
        x = noise_data.rumble(SR * 6, np.random.default_rng(seed))
        assert share_below(x, 1000.0) > 0.97, seed
        assert share_below(x, 15.0) < 0.2, seed  # high-passed: no DC drift


def test_fan_has_a_blade_pass_line_over_broadband_noise() -> None:
    for seed in range(6):
        x = noise_data.fan(SR * 10, np.random.default_rng(seed))
        f, p = psd(x)
        low = (f > 25) & (f < 600)
        peak = int(np.argmax(np.where(low, p, 0)))
        near = (np.abs(f - f[peak]) > 10) & (np.abs(f - f[peak]) < 60)
        assert 10 * np.log10(p[peak] / np.median(p[near])) > 6, seed
        assert 0.02 < share_below(x, 1000.0) and share_below(x, 20.0) < 0.5, seed  # broadband too


def test_traffic_is_low_and_swells() -> None:
    for seed in range(4):
        x = noise_data.traffic(SR * 20, np.random.default_rng(seed))
        assert share_below(x, 1000.0) > 0.9, seed
        levels = 20 * np.log10(np.sqrt(np.mean(x.reshape(-1, SR // 2).astype(np.float64) ** 2, axis=1)))
        assert levels.max() - levels.min() > 6, seed  # vehicles passing, not a steady hiss


def band_shares(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per 64 ms frame: the frequency of the strongest bin, and the share of the frame's power within a
    sixth of an octave of it."""
    f, _, z = stft(x.astype(np.float64), SR, nperseg=1024)
    p = np.abs(z[:, 1:-1]) ** 2
    peak = f[np.argmax(p, axis=0)]
    near = (f[:, None] > peak / 2 ** (1 / 6)) & (f[:, None] < peak * 2 ** (1 / 6))
    return peak, (p * near).sum(axis=0) / p.sum(axis=0)


def test_howl_is_narrowband_noise_whose_band_wanders() -> None:
    _, white_share = band_shares(noise_data.white_noise(SR * 10, np.random.default_rng(0)))
    assert np.median(white_share) < 0.2  # the measure's floor: broadband noise
    moved = 0
    for seed in range(8):
        peak, share = band_shares(noise_data.howl(SR * 10, np.random.default_rng(seed)))
        assert np.median(share) > 0.35, seed
        assert 100 < np.median(peak) < 3200, seed
        moved += np.std(np.log2(peak[peak > 0])) > 0.05
    assert moved >= 6  # the bands move over time in most draws, unlike a fixed resonance


def test_buffeting_is_low_and_jumps_in_level() -> None:
    for seed in range(6):
        x = noise_data.buffeting(SR * 20, np.random.default_rng(seed))
        assert share_below(x, 1000.0) > 0.85, seed
        levels = 10 * np.log10(np.mean(x.reshape(-1, SR // 20).astype(np.float64) ** 2, axis=1))
        assert np.percentile(levels, 95) - np.percentile(levels, 5) > 12, seed


def test_the_bank_holds_the_new_kinds() -> None:
    bank = noise_data.noise_bank(4.0, np.random.default_rng(0), pieces=2)
    assert set(NEW) <= set(bank) and set(noise_data.BROAD_KINDS) <= set(bank)
    for kind in NEW:
        assert len(bank[kind]) == 4 * SR and bank[kind].dtype == np.float32
