"""The whisper-encoder KWS front end: its settings, frames that depend only on their own samples, a stream
that gives what ``features`` gives, and the encoder built once into the cache."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from edge_sdk.audio.whisper_encoder import CACHE_FOLDER, WhisperEncoderConfig, encoder_file
from edge_sdk.errors import BadInputError


def _audio(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000
    voiced = (
        0.3 * np.sin(2 * np.pi * (150 + 50 * np.sin(2 * np.pi * 2 * t)) * t) * (np.sin(2 * np.pi * 3 * t) > 0)
    )
    return (voiced + 0.01 * rng.standard_normal(n)).astype(np.float32)


# -- settings (no model needed) ------------------------------------------------------------------------


def test_the_defaults_give_frames_of_a_second_clip() -> None:
    cfg = WhisperEncoderConfig()
    assert cfg.win == 49 * 160 + 400 and cfg.clip_samples == 16000 and cfg.dims() == 384
    assert cfg.n_frames() == 1 + (16000 - cfg.win) // 1280 == 7
    assert cfg.n_frames(cfg.win - 1) == 0 and cfg.n_frames(cfg.win) == 1
    assert "whisper-tiny.en" in cfg.describe() and "50 mel frames" in cfg.describe()


def test_settings_round_trip_through_json_and_unknown_keys_are_refused() -> None:
    cfg = WhisperEncoderConfig(window_frames=50, pool="max", hop=640)
    d = json.loads(json.dumps(cfg.to_dict()))
    assert d["front_end"] == "whisper-encoder"
    assert WhisperEncoderConfig.from_dict(d) == cfg
    with pytest.raises(BadInputError, match=r"unknown KWS feature settings \['n_mels'\]"):
        WhisperEncoderConfig.from_dict({**d, "n_mels": 40})
    with pytest.raises(BadInputError, match="settings of front end 'mfcc' given to 'whisper-encoder'"):
        WhisperEncoderConfig.from_dict({**d, "front_end": "mfcc"})


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"window_frames": 63}, "window_frames must be even"),
        ({"window_frames": 3002}, "window_frames must be even"),
        ({"hop": 1000}, "multiple of 160"),
        ({"sample_rate": 8000}, "16000 Hz"),
        ({"pool": "median"}, "pool must be one of mean, max, last"),
        ({"window_frames": 100}, r"1.0 s clip is shorter than one frame's 1.015 s"),
        ({"hop": 1280.0}, "hop must be an int"),
    ],
)
def test_impossible_settings_are_refused(settings: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(BadInputError, match=message):
        WhisperEncoderConfig(**settings)


def test_non_float_audio_is_refused_before_any_model_is_fetched(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="float audio"):
        WhisperEncoderConfig().features(np.zeros(16000, np.int16), cache_dir=tmp_path)
    assert not tmp_path.joinpath("models").exists()


# -- the encoder at work (the zoo model) -------------------------------------------------------------


@pytest.mark.network
def test_features_shape_and_a_frame_depends_only_on_its_own_samples(whisper_cache: Path) -> None:
    cfg = WhisperEncoderConfig(window_frames=64)
    x = _audio(24000)
    frames = cfg.features(x, cache_dir=whisper_cache)
    n = cfg.n_frames(len(x))
    assert frames.shape == (n, 384) and frames.dtype == np.float32 and n == 11
    i = 5
    changed = x.copy()
    changed[: i * cfg.hop] = _audio(i * cfg.hop, seed=1)  # before frame i
    changed[i * cfg.hop + cfg.win :] = 0.5  # after it
    again = cfg.features(changed, cache_dir=whisper_cache)
    np.testing.assert_allclose(again[i], frames[i], atol=1e-5)
    assert not np.allclose(again[i - 1], frames[i - 1], atol=1e-3)
    assert not np.allclose(again[i + 1], frames[i + 1], atol=1e-3)
    # batches: [..., samples] -> [..., frames, 384], each clip on its own
    batch = cfg.features(np.stack([x, changed])[None], cache_dir=whisper_cache)
    assert batch.shape == (1, 2, n, 384)
    np.testing.assert_allclose(batch[0, 0], frames, atol=1e-4)
    assert cfg.features(x[: cfg.win - 1], cache_dir=whisper_cache).shape == (0, 384)


@pytest.mark.network
@pytest.mark.parametrize("pool", ["mean", "last"])
def test_the_stream_gives_the_frames_features_gives(whisper_cache: Path, pool: str) -> None:
    cfg = WhisperEncoderConfig(pool=pool)
    x = _audio(40000, seed=2)
    want = cfg.features(x, cache_dir=whisper_cache)
    stream = cfg.stream(cache_dir=whisper_cache)
    rng = np.random.default_rng(3)
    got, at = [], 0
    while at < len(x):
        step = int(rng.choice([1, 159, 160, 400, 1280, 3000, 9000]))
        out = stream.push(x[at : at + step])
        assert out.dtype == np.float32 and out.shape[1:] == (384,)
        got.append(out)
        at += step
        assert stream.samples_in == min(at, len(x))
        assert stream.frames_out == cfg.n_frames(stream.samples_in)
    np.testing.assert_allclose(np.concatenate(got), want, atol=1e-4)
    stream.reset()
    assert (stream.frames_out, stream.samples_in) == (0, 0)
    np.testing.assert_allclose(stream.push(x[: cfg.win]), want[:1], atol=1e-4)
    with pytest.raises(BadInputError, match="1-D"):
        stream.push(np.zeros((2, 10), np.float32))


@pytest.mark.network
def test_the_encoder_is_built_once_into_the_cache_and_rebuilt_when_damaged(
    whisper_cache: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "models").symlink_to(whisper_cache / "models", target_is_directory=True)
    path = encoder_file("whisper-tiny.en", 20, cache_dir=tmp_path)
    assert path.parent == tmp_path / CACHE_FOLDER and "-n20-" in path.name
    assert path.with_name(path.name + ".sha256").read_text().split()[0]
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []  # no partial files left
    made = path.stat().st_mtime_ns
    assert encoder_file("whisper-tiny.en", 20, cache_dir=tmp_path).stat().st_mtime_ns == made
    # A different window is another file; a damaged one is noticed and made again.
    other = encoder_file("whisper-tiny.en", 22, cache_dir=tmp_path)
    assert other != path
    from edge_sdk.audio import whisper_encoder

    whisper_encoder._VERIFIED.clear()  # a new process: nothing checked yet
    good = path.read_bytes()
    path.write_bytes(good[:-10] + b"0123456789")
    with caplog.at_level(logging.WARNING, logger="edge_sdk.integrity"):
        rebuilt = encoder_file("whisper-tiny.en", 20, cache_dir=tmp_path)
    assert "damaged" in caplog.text and rebuilt.read_bytes() == good


def test_an_unknown_model_is_named(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="no-such-model: not a zoo model"):
        WhisperEncoderConfig(model="no-such-model").features(np.zeros(16000, np.float32), cache_dir=tmp_path)


def test_it_is_registered_as_a_kws_front_end() -> None:
    from edge_sdk.audio import front_end

    cfg = WhisperEncoderConfig(window_frames=64)
    assert front_end.from_dict(cfg.to_dict()) == cfg
    assert front_end.make("whisper-encoder") == WhisperEncoderConfig()
