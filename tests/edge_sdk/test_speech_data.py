"""The recipes' real speech: Asterisk's G.722 prompts are the 8 kHz prompts' recordings in the full band,
decoded right, and split the same way."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_sdk.errors import BadInputError

pytest.importorskip("av", reason="the train extra (PyAV) decodes G.722")
pytest.importorskip("soxr", reason="the train extra (soxr) resamples the 8 kHz prompts")

from edge_sdk.train import speech_data  # noqa: E402

EN = speech_data.ASTERISK_SOUNDS / "en"
needs_prompts = pytest.mark.skipif(
    not (EN / "seconds.g722").is_file() or not (EN / "seconds.wav").is_file(),
    reason="needs Debian's asterisk-core-sounds-en-wav and -en-g722 (.ci/system-deps installs them)",
)


def band_share_db(x: np.ndarray, lo: float, hi: float, rate: int = 16000) -> float:
    """Energy between ``lo`` and ``hi`` Hz relative to the whole signal's, in dB."""
    power = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
    f = np.fft.rfftfreq(len(x), 1 / rate)
    return float(10 * np.log10(power[(f >= lo) & (f < hi)].sum() / power.sum()))


@needs_prompts
def test_g722_prompt_is_the_wav_recording_with_its_upper_band() -> None:
    import soxr

    wide = speech_data.read_g722(EN / "seconds.g722")
    narrow, rate = speech_data.read_wav(EN / "seconds.wav")
    assert wide.dtype == np.float32 and rate == 8000 and 0.05 < np.abs(wide).max() <= 1.0
    assert abs(len(wide) / 16000 - len(narrow) / 8000) < 0.05
    # the same recording (the two files differ in polarity, a few samples of delay and their codecs'
    # phase, so compare 10 ms level envelopes): the wideband one in the telephone band follows the 8 kHz
    down = soxr.resample(wide, 16000, 8000)
    n = min(len(down), len(narrow)) // 80 * 80

    def envelope(x: np.ndarray) -> np.ndarray:
        return np.sqrt(np.mean(x[:n].reshape(-1, 80) ** 2, axis=1))

    corr = np.corrcoef(envelope(down), envelope(narrow))[0, 1]
    assert corr > 0.9, corr
    assert np.corrcoef(envelope(down), envelope(narrow[::-1]))[0, 1] < 0.5  # a check that can fail
    # ... and only it carries speech above 4 kHz ("seconds" is full of /s/)
    assert band_share_db(wide, 4000, 7000) > -30
    assert band_share_db(speech_data.resample(narrow, 8000), 4000, 7000) < -50


@needs_prompts
def test_english_prompts_are_split_as_the_8khz_ones_are() -> None:
    wide = speech_data.asterisk_wideband("test", ("en",))
    narrow = speech_data.asterisk_prompts("test")
    assert len(wide) > 50
    assert {u.name.split("/", 1)[1][: -len(".g722")] for u in wide} == {
        u.name.split("/", 1)[1][: -len(".wav")] for u in narrow
    }
    assert all(u.source == "asterisk-g722" and u.audio.dtype == np.float32 for u in wide)


@needs_prompts
def test_a_language_limit_keeps_a_seeded_choice(tmp_path: Path) -> None:
    a = speech_data.asterisk_wideband("train", ("en",), max_minutes=0.5, seed=3)
    b = speech_data.asterisk_wideband("train", ("en",), max_minutes=0.5, seed=3)
    c = speech_data.asterisk_wideband("train", ("en",), max_minutes=0.5, seed=4)
    assert [u.name for u in a] == [u.name for u in b] != [u.name for u in c]
    assert 20 < sum(len(u.audio) for u in a) / 16000 <= 30


def test_missing_language_names_the_package_and_bad_files_name_themselves(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="apt-get install asterisk-core-sounds-fr-g722"):
        speech_data.asterisk_wideband("train", ("fr",), root=tmp_path)
    with pytest.raises(ValueError, match="'de'.*'en'"):
        speech_data.asterisk_wideband("train", ("de",), root=tmp_path)
    with pytest.raises(BadInputError, match="nothing.g722"):
        speech_data.read_g722(tmp_path / "nothing.g722")
