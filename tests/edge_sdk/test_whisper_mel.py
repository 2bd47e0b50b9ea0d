"""Whisper's log-mel in numpy against the reference formula computed the slow way: Slaney filters from
their definition, a direct DFT, Whisper's clamp and scaling."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edge_sdk.audio import whisper_mel
from edge_sdk.errors import BadInputError


def _slaney_mel(f: float) -> float:
    return f / (200 / 3) if f < 1000 else 15 + math.log(f / 1000) * 27 / math.log(6.4)


def _slaney_hz(m: float) -> float:
    return m * (200 / 3) if m < 15 else 1000 * math.exp((m - 15) * math.log(6.4) / 27)


def reference_filters(n_mels: int = 80, n_fft: int = 400, sr: int = 16000) -> np.ndarray:
    """Triangles between Slaney-mel-spaced edges, each scaled by 2 / (its width in Hz): [bins, n_mels]."""
    top = _slaney_mel(sr / 2)
    edges = [_slaney_hz(top * i / (n_mels + 1)) for i in range(n_mels + 2)]
    fb = np.zeros((n_fft // 2 + 1, n_mels))
    for j in range(n_mels):
        lo, mid, hi = edges[j], edges[j + 1], edges[j + 2]
        for b in range(n_fft // 2 + 1):
            f = b * sr / n_fft
            rise, fall = (f - lo) / (mid - lo), (hi - f) / (hi - mid)
            fb[b, j] = max(0.0, min(rise, fall)) * 2 / (hi - lo)
    return fb


def reference_log_mel(x: np.ndarray, *, center: bool, floor: float | None) -> np.ndarray:
    """Whisper's log_mel_spectrogram with a direct DFT (reflect padding and the dropped last frame when
    centred; max - 8 clamp when ``floor`` is None)."""
    x = np.asarray(x, np.float64)
    if center:
        x = np.concatenate([x[200:0:-1], x, x[-2:-202:-1]])
    n = np.arange(400)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * n / 400)
    k = np.arange(201)[:, None]
    basis = np.exp(-2j * np.pi * k * n[None, :] / 400)
    frames = [x[t * 160 : t * 160 + 400] for t in range(1 + (len(x) - 400) // 160)]
    if center:
        frames = frames[:-1]
    power = np.array([np.abs(basis @ (f * window)) ** 2 for f in frames])
    mel = np.log10(np.maximum(power @ reference_filters(), 1e-10))
    mel = np.maximum(mel, mel.max() - 8 if floor is None else floor)
    return (mel + 4) / 4


def _speechlike(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000
    tone = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))
    return (tone + 0.02 * rng.standard_normal(n)).astype(np.float32)


def test_the_filters_are_slaneys() -> None:
    np.testing.assert_allclose(whisper_mel.mel_filters(), reference_filters(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(("center", "floor"), [(False, whisper_mel.FLOOR), (True, None), (False, -9.0)])
def test_log_mel_matches_the_direct_formula(center: bool, floor: float | None) -> None:
    x = _speechlike(2400)
    ours = whisper_mel.log_mel(x, center=center, floor=floor)
    ref = reference_log_mel(x, center=center, floor=floor)
    assert ours.dtype == np.float32 and ours.shape == ref.shape == ((15, 80) if center else (13, 80))
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_batches_are_computed_per_item_and_silence_sits_at_the_floor() -> None:
    x = np.stack([_speechlike(4000, 1), np.zeros(4000, np.float32)])
    mel = whisper_mel.log_mel(x[None])  # [1, 2, frames, 80]
    assert mel.shape == (1, 2, whisper_mel.n_mel_frames(4000), 80)
    np.testing.assert_allclose(mel[0, 0], whisper_mel.log_mel(x[0]), atol=1e-6)
    assert np.all(mel[0, 1] == (whisper_mel.FLOOR + 4) / 4)
    # Whisper's own rule floors each input at its own max - 8: silence sits at log10(1e-10)
    assert np.all(whisper_mel.log_mel(x[1], floor=None) == np.float32((-10 + 4) / 4))


def test_an_uncentred_frame_depends_only_on_its_own_samples() -> None:
    x = _speechlike(4000)
    y = x.copy()
    y[160 * 5 + 400 :] = 0.9  # everything after frame 5's last sample
    a, b = whisper_mel.log_mel(x), whisper_mel.log_mel(y)
    np.testing.assert_array_equal(a[:6], b[:6])
    assert not np.allclose(a[6:], b[6:])


def test_short_or_non_float_audio() -> None:
    assert whisper_mel.log_mel(np.zeros(399, np.float32)).shape == (0, 80)
    with pytest.raises(BadInputError, match="float audio"):
        whisper_mel.log_mel(np.zeros(1000, np.int16))
    with pytest.raises(BadInputError, match="more than 200 samples"):
        whisper_mel.log_mel(np.zeros(100, np.float32), center=True)
