"""The recipes' recorded noise: kbsim's keyboards come out of the pinned wheel whole, licensed, at 16 kHz,
and become typing noise."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from edge_sdk.errors import BadInputError

pytest.importorskip("av", reason="the train extra (PyAV) decodes the MP3 recordings")
pytest.importorskip("soxr", reason="the train extra (soxr) resamples them")

from edge_sdk.train import noise_data  # noqa: E402


@pytest.fixture(scope="module")
def keyboards() -> list[noise_data.Keyboard]:
    return noise_data.recorded_keyboards()


def crest_db(x: np.ndarray) -> float:
    """Peak over RMS in dB: high for clicks, about 12 dB for Gaussian noise."""
    return float(20 * np.log10(np.max(np.abs(x)) / np.sqrt(np.mean(x**2))))


@pytest.mark.network
def test_seven_recorded_keyboards_of_presses_and_releases(keyboards: list[noise_data.Keyboard]) -> None:
    assert [kb.name for kb in keyboards] == list(noise_data.KBSIM_PROFILES)
    for kb in keyboards:
        assert len(kb.presses) >= 4 and len(kb.releases) >= 1, kb.name
        for sound in kb.presses + kb.releases:
            assert sound.dtype == np.float32 and 0.01 < len(sound) / 16000 < 0.5
            assert 0.01 < np.abs(sound).max() <= 1.0
            # a click: its energy is in the first tens of milliseconds, not spread over the clip
            energy = np.cumsum(sound.astype(np.float64) ** 2)
            assert np.searchsorted(energy, 0.9 * energy[-1]) < 0.06 * 16000, kb.name


@pytest.mark.network
def test_recorded_typing_is_transient_and_seeded(keyboards: list[noise_data.Keyboard]) -> None:
    n = 16000 * 4
    a = noise_data.typing_floor(n, np.random.default_rng(3), keyboards)
    b = noise_data.typing_floor(n, np.random.default_rng(3), keyboards)
    generated = noise_data.typing_floor(n, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    assert a.shape == (n,) and abs(np.sqrt(np.mean(a**2)) - 1) < 1e-3
    assert not np.allclose(a, generated)
    crests = [crest_db(noise_data.typing_floor(n, np.random.default_rng(s), keyboards)) for s in range(6)]
    assert np.median(crests) > 15, crests  # mostly clicks over a floor, not a stationary hiss


def test_a_profile_without_its_licence_is_refused(tmp_path: Path) -> None:
    wheel = tmp_path / "keyboardsounds-0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(f"keyboardsounds/profiles/{noise_data.KBSIM_PROFILES[0]}/press_key1.mp3", b"\0" * 100)
    with pytest.raises(BadInputError, match="licence"):
        noise_data.recorded_keyboards(wheel)
