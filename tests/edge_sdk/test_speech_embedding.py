"""The speech-embedding KWS front end on the real openWakeWord models (pulled from their PyPI wheel):
streaming equals whole-file, frames are local, batches do not leak into each other, settings round-trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from edge_sdk.audio import front_end
from edge_sdk.audio.features import FeatureInputError, KwsFeatureConfig, kws_features
from edge_sdk.audio.speech_embedding import DIMS, SpeechEmbeddingConfig, _frame_local_mel
from edge_sdk.errors import BadInputError

pytestmark = pytest.mark.network

CFG = SpeechEmbeddingConfig()


@pytest.fixture(scope="module")
def speech(clip: np.ndarray) -> np.ndarray:
    return clip[: 16000 * 6]


def test_geometry_matches_the_models(speech: np.ndarray, embedding_cache: Path) -> None:
    # 512-sample mel frames every 160, 76 of them per embedding, every 8: 12512 samples every 1280
    assert (CFG.win, CFG.hop, CFG.dims(), CFG.n_frames()) == (12512, 1280, DIMS, 9)
    for n in (CFG.win - 1, CFG.win, CFG.win + CFG.hop - 1, CFG.win + CFG.hop, len(speech)):
        got = CFG.features(speech[:n], cache_dir=embedding_cache)
        assert got.shape == (CFG.n_frames(n), DIMS)
        assert got.dtype == np.float32 and np.isfinite(got).all()


def test_stream_equals_whole_file_for_any_blocks(speech: np.ndarray, embedding_cache: Path) -> None:
    whole = CFG.features(speech, cache_dir=embedding_cache)
    for seed in (0, 1):
        rng = np.random.default_rng(seed)
        stream = CFG.stream(cache_dir=embedding_cache)
        parts, i = [], 0
        while i < len(speech):
            n = int(rng.choice([1, 159, 160, 511, 1280, 4000]))
            parts.append(stream.push(speech[i : i + n]))
            i += n
        got = np.concatenate(parts)
        assert stream.frames_out == len(got) == len(whole)
        assert stream.samples_in == len(speech)
        np.testing.assert_allclose(got, whole, atol=1e-3 * np.abs(whole).max())
        stream.reset()
        assert stream.frames_out == 0 and len(stream.push(speech[: CFG.win - 1])) == 0


def test_a_frame_depends_only_on_its_own_samples(speech: np.ndarray, embedding_cache: Path) -> None:
    x = speech[: CFG.win + 4 * CFG.hop].copy()
    before = CFG.features(x, cache_dir=embedding_cache)
    y = x.copy()
    y[2 * CFG.hop + CFG.win :] = np.random.default_rng(0).uniform(-0.9, 0.9, len(y) - 2 * CFG.hop - CFG.win)
    after = CFG.features(y, cache_dir=embedding_cache)
    tol = 1e-3 * np.abs(before).max()
    np.testing.assert_allclose(after[:3], before[:3], atol=tol)  # frames 0-2 end at or before the change
    assert np.abs(after[3:] - before[3:]).max() > 100 * tol  # the later ones heard it


def test_clips_in_one_batch_do_not_change_each_other(speech: np.ndarray, embedding_cache: Path) -> None:
    # The shipped mel graph floors everything at its whole input's maximum minus 80 dB; a loud clip
    # beside a quiet one would lift the quiet one's floor. The front end floors each frame on its own.
    quiet = (speech[:16000] * 1e-3).astype(np.float32)
    loud = np.clip(speech[16000:32000] * 30, -1, 1).astype(np.float32)
    alone = CFG.features(quiet, cache_dir=embedding_cache)
    both = CFG.features(np.stack([quiet, loud]), cache_dir=embedding_cache)
    assert both.shape == (2, CFG.n_frames(16000), DIMS)
    np.testing.assert_allclose(both[0], alone, atol=1e-3 * np.abs(alone).max())


def test_kws_features_dispatches_on_the_front_end(
    speech: np.ndarray, embedding_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGE_SDK_CACHE", str(embedding_cache))
    clips = np.stack([speech[:16000], speech[16000:32000]])
    via = kws_features(clips, CFG)
    assert via.shape == (2, 3, DIMS)  # 3 embeddings in each 1 s clip
    np.testing.assert_allclose(via, CFG.features(clips, cache_dir=embedding_cache), atol=1e-4)
    assert kws_features(clips, KwsFeatureConfig()).shape == (2, 49, 10)


def test_the_mel_model_must_be_the_one_it_knows(tmp_path: Path) -> None:
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, None])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, None])
    model = helper.make_model(
        helper.make_graph([helper.make_node("Relu", ["input"], ["output"])], "g", [x], [y])
    )
    path = tmp_path / "mel.onnx"
    onnx.save(model, path)
    with pytest.raises(FeatureInputError, match="not the openWakeWord mel model"):
        _frame_local_mel(path)


def test_settings_round_trip_and_errors() -> None:
    d = CFG.to_dict()
    assert d["front_end"] == "speech-embedding"
    assert front_end.from_dict(d) == CFG
    old = {k: v for k, v in KwsFeatureConfig().to_dict().items() if k != "front_end"}
    assert front_end.from_dict(old) == KwsFeatureConfig()  # models from before front ends had names
    with pytest.raises(FeatureInputError, match="unknown KWS feature settings"):
        front_end.from_dict({**d, "window": 3})
    with pytest.raises(BadInputError, match="unknown KWS front end 'wav2vec'.*speech-embedding"):
        front_end.from_dict({"front_end": "wav2vec"})
    with pytest.raises(FeatureInputError, match="16000 Hz"):
        SpeechEmbeddingConfig(sample_rate=8000)
    assert SpeechEmbeddingConfig(clip_seconds=1.0).n_frames() == 3
    with pytest.raises(FeatureInputError, match="shorter than one embedding"):
        SpeechEmbeddingConfig(clip_seconds=0.5)
    with pytest.raises(FeatureInputError, match="int16 PCM"):
        CFG.features(np.zeros(16000, np.int16))
