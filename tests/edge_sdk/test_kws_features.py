"""The keyword-spotting front end (edge_sdk.audio.features) on real speech: shapes, streaming equals whole,
the mel filterbank, MFCC against scipy's DCT, batch equals per-row, and clear errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge_sdk.audio.features import (
    FeatureInputError,
    KwsFeatureConfig,
    KwsFeatureStream,
    kws_features,
    log_mel,
    mel_filterbank,
    mfcc,
)
from edge_sdk.errors import BadInputError

DIGIT_FIVE = Path("/usr/share/asterisk/sounds/en/digits/5.wav")


@pytest.fixture(scope="module")
def speech(clip: np.ndarray) -> np.ndarray:
    """Real speech at 16 kHz: the bundled LibriVox clip (a few seconds of it)."""
    return clip[: 16000 * 4].astype(np.float32)


def test_one_second_gives_49_by_10(speech: np.ndarray) -> None:
    cfg = KwsFeatureConfig()
    assert cfg.n_frames() == 49 and cfg.dims() == 10 and cfg.clip_samples == 16000
    f = kws_features(speech[16000:32000])
    assert f.shape == (49, 10) and f.dtype == np.float32
    assert np.isfinite(f).all()
    assert log_mel(speech[:16000]).shape == (49, 40)
    # Frames not covering a whole window are not produced.
    assert kws_features(speech[:639]).shape == (0, 10)
    assert kws_features(speech[:640]).shape == (1, 10)
    assert kws_features(speech[:959]).shape == (1, 10)
    assert kws_features(speech[:960]).shape == (2, 10)
    assert cfg.n_frames(len(speech)) == kws_features(speech).shape[0]


def test_telephone_digit_resampled_to_16k() -> None:
    if not DIGIT_FIVE.exists():
        pytest.skip("Asterisk's English prompts are not installed")
    from edge_sdk.train.speech_data import read_wav, resample

    x, rate = read_wav(DIGIT_FIVE)
    assert rate == 8000
    with pytest.raises(FeatureInputError, match="16000 Hz"):
        kws_features(x, sample_rate=rate)
    y = resample(x, rate, 16000)
    f = kws_features(y, sample_rate=16000)
    assert f.shape == (KwsFeatureConfig().n_frames(len(y)), 10)
    # The spoken part has more energy (c0) than the quietest frames.
    assert f[:, 0].max() - f[:, 0].min() > 5.0


@pytest.mark.parametrize("chunks", [[1, 7, 333, 1000, 2, 4097], [160], [641, 319, 320, 5000]])
def test_stream_is_bit_identical_to_whole(speech: np.ndarray, chunks: list[int]) -> None:
    whole = kws_features(speech)
    stream = KwsFeatureStream()
    got, pos, i = [], 0, 0
    while pos < len(speech):
        n = chunks[i % len(chunks)]
        got.append(stream.push(speech[pos : pos + n]))
        pos += n
        i += 1
    frames = np.concatenate(got)
    assert frames.dtype == np.float32 and frames.shape == whole.shape
    assert np.array_equal(frames, whole)
    assert stream.frames_out == len(whole) and stream.samples_in == len(speech)
    stream.reset()
    assert np.array_equal(stream.push(speech[:16000]), whole[:49])


def test_stream_log_mel_config(speech: np.ndarray) -> None:
    cfg = KwsFeatureConfig(n_mfcc=0)
    assert cfg.dims() == 40
    stream = KwsFeatureStream(cfg)
    frames = np.concatenate([stream.push(speech[i : min(i + 777, 20000)]) for i in range(0, 20000, 777)])
    assert np.array_equal(frames, log_mel(speech[:20000], cfg))
    assert np.array_equal(kws_features(speech[:20000], cfg), frames)


def test_mel_filterbank_properties() -> None:
    cfg = KwsFeatureConfig()
    fb = mel_filterbank(cfg)
    assert fb.shape == (cfg.n_fft // 2 + 1, cfg.n_mels)
    assert np.all(fb >= 0)
    np.testing.assert_allclose(fb.max(axis=0), 1.0)
    freqs = np.arange(fb.shape[0]) * cfg.sample_rate / cfg.n_fft
    covered = fb.sum(axis=1) > 0
    assert covered[(freqs > cfg.fmin) & (freqs < cfg.fmax)].all()
    assert not covered[(freqs <= cfg.fmin) | (freqs >= cfg.fmax)].any()
    # Filters rise in frequency and each is one contiguous triangle.
    peaks = fb.argmax(axis=0)
    assert np.all(np.diff(peaks) > 0)
    for j in range(cfg.n_mels):
        nz = np.flatnonzero(fb[:, j])
        assert np.array_equal(nz, np.arange(nz[0], nz[-1] + 1))
    with pytest.raises(FeatureInputError, match="between FFT bins"):
        mel_filterbank(KwsFeatureConfig(n_fft=128, win=128, hop=64, n_mels=80, n_mfcc=10))


def test_log_mel_matches_a_direct_computation(speech: np.ndarray) -> None:
    cfg = KwsFeatureConfig()
    x = speech[5000:21000]
    frames = np.stack([x[i * 320 : i * 320 + 640] for i in range(49)]).astype(np.float64)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(640) / 640)
    power = np.abs(np.fft.rfft(frames * hann, n=1024, axis=1)) ** 2
    ref = np.log(power @ mel_filterbank(cfg) + 1e-6)
    np.testing.assert_allclose(log_mel(x), ref, rtol=1e-5, atol=1e-5)


def test_mfcc_is_orthonormal_dct_of_log_mel(speech: np.ndarray) -> None:
    fft = pytest.importorskip("scipy.fft")
    x = speech[:32000]
    lm = log_mel(x).astype(np.float64)
    ref = fft.dct(lm, type=2, norm="ortho", axis=-1)[:, :10]
    np.testing.assert_allclose(mfcc(x), ref, rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(kws_features(x), mfcc(x))


def test_batch_equals_per_row(speech: np.ndarray) -> None:
    clips = np.stack([speech[i * 8000 : i * 8000 + 16000] for i in range(6)]).reshape(2, 3, 16000)
    batch = kws_features(clips)
    assert batch.shape == (2, 3, 49, 10)
    for a in range(2):
        for b in range(3):
            assert np.array_equal(batch[a, b], kws_features(clips[a, b]))
    # float64 input is accepted and means the same float32 samples.
    assert np.array_equal(kws_features(clips[0, 0].astype(np.float64)), batch[0, 0])


def test_bad_input_is_a_clear_error(speech: np.ndarray) -> None:
    pcm = (speech[:16000] * 32767).astype(np.int16)
    with pytest.raises(FeatureInputError, match="int16 PCM: divide by 32768"):
        kws_features(pcm)
    with pytest.raises(BadInputError, match="dtype complex64"):
        log_mel(speech[:16000].astype(np.complex64))
    with pytest.raises(ValueError, match="shape"):
        kws_features(np.float32(0.5))
    stream = KwsFeatureStream()
    with pytest.raises(FeatureInputError, match="1-D"):
        stream.push(np.zeros((2, 100), np.float32))
    with pytest.raises(FeatureInputError, match="8000 Hz"):
        KwsFeatureStream(sample_rate=8000)
    with pytest.raises(FeatureInputError, match="n_mfcc=0"):
        mfcc(speech[:16000], KwsFeatureConfig(n_mfcc=0))
    with pytest.raises(FeatureInputError, match="fmax"):
        KwsFeatureConfig(fmax=9000.0)
    with pytest.raises(FeatureInputError, match="n_fft"):
        KwsFeatureConfig(win=2048)


def test_config_round_trips_through_json() -> None:
    cfg = KwsFeatureConfig(n_mfcc=13, fmax=7600.0)
    d = json.loads(json.dumps(cfg.to_dict()))
    assert KwsFeatureConfig.from_dict(d) == cfg
    assert KwsFeatureConfig.from_dict(KwsFeatureConfig().to_dict()) == KwsFeatureConfig()
    with pytest.raises(FeatureInputError, match="unknown KWS feature settings.*preemph"):
        KwsFeatureConfig.from_dict({**cfg.to_dict(), "preemph": 0.97})
    with pytest.raises(FeatureInputError, match="must be an int"):
        KwsFeatureConfig.from_dict({**cfg.to_dict(), "hop": 320.5})
