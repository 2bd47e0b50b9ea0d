"""The keyword-spotting recipe end to end on real synthesised speech: the voice split, a short training
through the CLI that writes a loadable ONNX with the contract's metadata, and the Speech Commands loader."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np
import pytest

from edge_sdk.audio.features import KwsFeatureConfig, kws_features
from edge_sdk.stages.base import Block
from edge_sdk.train import kws_data, speech_data
from edge_sdk.train.kws_data import SILENCE, UNKNOWN

pytestmark = pytest.mark.torch

needs_tts = pytest.mark.skipif(
    not speech_data.tts_available("espeak-ng"), reason="espeak-ng is not installed"
)


def _write_wav(path: Path, x: np.ndarray, rate: int = 16000) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())


def test_voice_split_never_trains_on_a_held_out_voice() -> None:
    assert kws_data.voice_split("espeak-ng:en-029+m1@160/50") == "test"
    assert kws_data.voice_split({"engine": "espeak-ng", "voice": "en-us+f2"}) == "test"
    assert kws_data.voice_split(kws_data.Voice("flite", "rms", 150, 40)) == "test"
    assert kws_data.voice_split("espeak-ng:en-us+m1") == "train"
    assert kws_data.voice_split("flite:slt") == "train"
    if not (speech_data.tts_available("espeak-ng") or speech_data.tts_available("flite")):
        pytest.skip("no speech synthesiser installed")
    train, test = kws_data.base_voices("train"), kws_data.base_voices("test")
    assert train and test and not set(train) & set(test)
    rng = np.random.default_rng(3)
    drawn = kws_data.draw_voices(300, "train", rng)
    assert all(kws_data.voice_split(v) == "train" for v in drawn)
    assert {v.engine for v in drawn} >= {e for e, _ in train}
    # Speed and pitch never change a voice's side.
    for v in kws_data.draw_voices(50, "test", rng):
        assert kws_data.voice_split(v.desc()) == "test"


def test_unknown_words_leave_out_keywords_and_homophones() -> None:
    others = kws_data.unknown_words(["no", "two", "right", "up"])
    assert len(others) > 300
    for w in ("no", "know", "two", "to", "too", "right", "write", "up", "seven up"):
        assert w not in others
    for near_miss in ("yet", "upon", "dog", "tree", "often", "goal", "nope"):
        assert near_miss in others
    with pytest.raises(kws_data.BadInputError):
        kws_data.labels_for(["yes", "yes"])
    assert kws_data.labels_for(["Yes", "no"]) == [SILENCE, UNKNOWN, "yes", "no"]


@needs_tts
def test_synthesised_clips_are_trimmed_and_augment_gives_one_second() -> None:
    clips = kws_data.synthesize_words(["yes"], "test", 3, seed=1, n_unknown=2, engines=("espeak-ng",))
    assert [c.label for c in clips] == ["yes"] * 3 + [UNKNOWN] * 2
    assert all(kws_data.voice_split(c.voice) == "test" for c in clips)
    raw = speech_data.synthesize(
        "yes", **kws_data.Voice(*clips[0].voice.split(":")[0:1], "en-029+m1").kwargs()
    )
    assert 0 < len(kws_data.trim_speech(raw)) < len(raw)
    rng = np.random.default_rng(0)
    noise = kws_data.make_noise(2.0, 0, clips)
    assert "babble" in noise and "pink" in noise
    for c in [*clips, *kws_data.silence_clips(3)]:
        x = kws_data.augment(c, rng, noise, kws_data.AugmentConfig(p_reverb=1.0, p_telephone=0.5))
        assert x.shape == (16000,) and x.dtype == np.float32 and np.isfinite(x).all()
        assert np.abs(x).max() <= 1.0
    tel = kws_data.telephone(kws_data.augment(clips[0], rng, {}, kws_data.AugmentConfig.none()))
    spec = np.abs(np.fft.rfft(tel)) ** 2
    assert spec[4200:].sum() < 1e-3 * spec.sum()  # bins are 1 Hz: nothing above ~4.2 kHz


@needs_tts
def test_train_kws_cli_writes_a_model_matching_the_contract(tmp_path: Path) -> None:
    import onnx
    import torch

    from edge_sdk.cli.main import main
    from edge_sdk.train import kws

    out = tmp_path / "kws"
    argv = ["train", "kws", "--words", "yes,no", "--out", str(out), "--per-word", "6", "--test-per-word", "4"]
    argv += ["--steps", "3", "--batch", "8", "--noise-seconds", "2", "--engines", "espeak-ng,flite", "-q"]
    assert main([*argv, "--front-end", "mfcc"]) == 0
    for name in ("model.onnx", "MODEL_CARD.md", "eval.json", "eval.md", "train_log.jsonl"):
        assert (out / name).is_file(), name
    m = onnx.load(str(out / "model.onnx"))
    meta = {p.key: p.value for p in m.metadata_props}
    labels = json.loads(meta["edge_sdk.kws.labels"])
    assert labels == [SILENCE, UNKNOWN, "yes", "no"]
    assert KwsFeatureConfig.from_dict(json.loads(meta["edge_sdk.kws.features"])) == KwsFeatureConfig()
    assert set(json.loads(meta["edge_sdk.kws.thresholds"])) == {"yes", "no"}
    (inp,), (outp,) = m.graph.input, m.graph.output
    assert inp.name == "features" and outp.name == "logits"
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert dims[1:] == [1, 49, 10] and isinstance(dims[0], str)
    report = json.loads((out / "eval.json").read_text())
    assert report["parameters"] <= kws.MAX_PARAMS and report["training"]["steps"] == 3
    assert {"test-clean", "test-noisy"} <= set(report["eval"])
    assert report["onnx_max_abs_diff"] < 1e-4
    assert "en-029" in (out / "MODEL_CARD.md").read_text()
    # running speech by default, at 0.3 utterances per keyword clip here (its windows computed once)
    running = report["data"]["running"]
    assert 1 <= running["utterances"] <= 4 and running["windows"] > running["keyword_windows"] >= 0
    assert report["training"]["passes"] == 1 and "Sentences (" in (out / "MODEL_CARD.md").read_text()

    # onnxruntime equals torch on real speech features, for a batch of any size.
    model = kws.make_model(len(labels))
    model.eval()
    kws.export_onnx(model, tmp_path / "fresh.onnx", labels, KwsFeatureConfig())
    speech = speech_data.synthesize("no", "en-us+m2")
    clips = np.stack([np.pad(speech, (0, 16000))[i * 1000 : i * 1000 + 16000] for i in range(5)])
    x = kws_features(clips)[:, None]
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(kws.onnx_logits(tmp_path / "fresh.onnx", x), ref, atol=1e-4, rtol=1e-4)


def _speech_commands_folder(root: Path) -> Path:
    """A small dataset in the Speech Commands layout: yes/no/house by four espeak-ng voices, a held-out
    speaker, a real Asterisk digit when installed, a noise folder, and test/validation lists."""
    voices = ["en-us+m1", "en+f3", "en-gb-x-rp+m4", "en-gb-scotland+f1"]
    for word in ("yes", "no", "house"):
        for i, v in enumerate(voices):
            x = kws_data.trim_speech(speech_data.synthesize(word, v))
            _write_wav(root / word / f"spk{i}_nohash_0.wav", np.pad(x, (2000, 16000 - 2000 - len(x))))
    # Speaker "voice9" hashes into the test split once the lists are gone (below), so the recipe has
    # held-out clips to evaluate whether or not the Asterisk digit is installed.
    held = kws_data.trim_speech(speech_data.synthesize("no", voices[0]))
    _write_wav(root / "no" / "voice9_nohash_0.wav", np.pad(held, (2000, 16000 - 2000 - len(held))))
    digit = speech_data.ASTERISK_ROOT / "digits" / "7.wav"
    if digit.exists():  # real 8 kHz speech: read and resampled by the loader
        x, rate = speech_data.read_wav(digit)
        _write_wav(root / "seven" / "asterisk_nohash_0.wav", x, rate)
    rng = np.random.default_rng(0)
    _write_wav(root / "_background_noise_" / "pink.wav", 0.1 * kws_data.noise_data.pink_noise(32000, rng))
    (root / "testing_list.txt").write_text(
        "yes/spk3_nohash_0.wav\nno/spk3_nohash_0.wav\nhouse/spk3_nohash_0.wav\n"
    )
    (root / "validation_list.txt").write_text("yes/spk2_nohash_0.wav\n")
    return root


@needs_tts
def test_speech_commands_layout(tmp_path: Path) -> None:
    root = _speech_commands_folder(tmp_path / "sc")
    digit = speech_data.ASTERISK_ROOT / "digits" / "7.wav"
    rng = np.random.default_rng(0)
    data = kws_data.load_speech_commands(root, ["yes", "no"])
    assert data.labels == [SILENCE, UNKNOWN, "yes", "no"]
    test = {c.source for c in data.clips["test"] if c.label != SILENCE}
    assert test == {f"speech-commands/{w}/spk3_nohash_0.wav" for w in ("yes", "no", "house")}
    assert [c.source for c in data.clips["val"] if c.label != SILENCE] == [
        "speech-commands/yes/spk2_nohash_0.wav"
    ]
    train = [c for c in data.clips["train"] if c.label != SILENCE]
    assert {c.label for c in train} == {"yes", "no", UNKNOWN}
    assert sum(c.label == UNKNOWN for c in train) == 3 + digit.exists()
    assert all(c.placed and c.audio.dtype == np.float32 and len(c.audio) <= 16000 for c in train)
    assert any(c.label == SILENCE for c in data.clips["train"])
    assert set(data.noise["train"]) == {"pink"}
    x = kws_data.augment(train[0], rng, data.noise["train"], kws_data.AugmentConfig())
    assert x.shape == (16000,)

    # Without lists, the speaker decides the split: one speaker is never in two splits.
    for f in ("testing_list.txt", "validation_list.txt"):
        (root / f).unlink()
    data = kws_data.load_speech_commands(root, ["yes", "no"])
    where: dict[str, set[str]] = {}
    for split, clips in data.clips.items():
        for c in clips:
            if c.label != SILENCE:
                where.setdefault(c.voice, set()).add(split)
    assert all(len(s) == 1 for s in where.values())
    with pytest.raises(kws_data.BadInputError, match="up"):
        kws_data.load_speech_commands(root, ["yes", "up"])

    # The whole recipe trains from the folder (speaker split), denoising half its windows on the way.
    from edge_sdk.cli.main import main

    out = tmp_path / "kws-sc"
    argv = ["train", "kws", "--words", "yes,no", "--data", str(root), "--out", str(out), "--steps", "3"]
    assert (
        main(
            [*argv, "--batch", "4", "--noise-seconds", "2", "--denoised", "0.5", "-q", "--front-end", "mfcc"]
        )
        == 0
    )
    report = json.loads((out / "eval.json").read_text())
    assert report["data"]["source"] == f"speech-commands:{root}"
    assert report["training"]["steps"] == 3 and report["denoised"] == 0.5
    assert {"test-clean", "test-noisy", "test-noisy-denoised"} <= set(report["eval"])
    assert report["onnx_max_abs_diff"] < 1e-4


@needs_tts
def test_running_speech_windows_hold_the_keyword_whole_or_no_keyword() -> None:
    clips = kws_data.synthesize_context(["left", "stop"], "train", 6, 3, seed=4, engines=("espeak-ng",))
    again = kws_data.synthesize_context(["left", "stop"], "train", 6, 3, seed=4, engines=("espeak-ng",))
    assert [c.source for c in clips] == [c.source for c in again]
    assert all(np.array_equal(a.audio, b.audio) for a, b in zip(clips, again, strict=True))
    context = [c for c in clips if c.label != UNKNOWN]
    phrases = [c for c in clips if c.label == UNKNOWN]
    assert len(context) == 6 and len(phrases) == 6  # two crops of each of three phrases
    for c in clips:
        assert c.placed and c.audio.shape == (16000,) and c.audio.dtype == np.float32
        assert kws_data.voice_split(c.voice.split("@")[0]) == "train"
    for c in context:
        before, word, after = c.source.rsplit("/", 1)[1].split()
        assert word == c.label and before not in ("left", "stop") and after not in ("left", "stop")
        # the keyword sits whole inside, with other speech around it: sound on both sides of a gap
        voice = c.voice.split("@")[0].split(":", 1)[1]
        speed, pitch = (int(v) for v in c.voice.split("@")[1].split("/"))
        alone = kws_data.trim_speech(
            speech_data.synthesize(word, voice, "espeak-ng", speed=speed, pitch=pitch)
        )
        corr = np.correlate(c.audio, alone, "valid")
        at = int(np.argmax(corr))
        np.testing.assert_allclose(c.audio[at : at + len(alone)], alone, atol=1e-6)
        assert 0 < at and at + len(alone) < 16000
    for c in phrases:
        assert not any(w in c.source.rsplit("/", 1)[1].split() for w in ("left", "stop"))


def test_time_masks_and_cepstral_mean_normalisation() -> None:
    import torch

    from edge_sdk.train import kws

    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 1, 49, 10)).astype(np.float32)
    masked = kws.time_mask(x, np.random.default_rng(1), 2)
    assert masked.shape == x.shape and not np.array_equal(masked, x)
    changed = np.any(masked != x, axis=3)[:, 0]  # [batch, frames]
    assert 0 < changed.sum(axis=1).max() <= 12
    np.testing.assert_array_equal(kws.time_mask(x, rng, 0), x)
    # CMN: a constant offset per coefficient (a fixed channel colouring) changes nothing
    model = kws.make_model(5)
    model.eval()
    offset = rng.standard_normal((1, 1, 1, 10)).astype(np.float32) * 3
    with torch.no_grad():
        a, b = model(torch.from_numpy(x)), model(torch.from_numpy(x + offset))
    np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-4)
    plain = kws.make_model(5, cmn=False)
    plain.eval()
    with torch.no_grad():
        assert not np.allclose(
            plain(torch.from_numpy(x)).numpy(), plain(torch.from_numpy(x + offset)).numpy()
        )


@needs_tts
def test_thresholds_tuned_on_running_speech_bound_its_windows(tmp_path: Path) -> None:
    import onnx

    from edge_sdk.stages.kws import read_kws_metadata
    from edge_sdk.train import kws, kws_thresholds

    labels = [SILENCE, UNKNOWN, "yes", "stop"]
    model = kws.make_model(len(labels))
    model.eval()
    path = kws.export_onnx(model, tmp_path / "m.onnx", labels, KwsFeatureConfig(), {"yes": 0.5, "stop": 0.5})
    audio = kws_thresholds.negative_speech(["yes", "stop"], 0.1, seed=3, engines=("espeak-ng",))
    assert audio.dtype == np.float32 and len(audio) >= 6 * 16000 and np.abs(audio).max() <= 0.3 + 1e-6
    got_labels, smooth = kws_thresholds.smoothed_posteriors(path, audio)
    assert got_labels == labels and smooth.shape == ((len(audio) - 16000) // 1600 + 1, 4)
    np.testing.assert_allclose(smooth.sum(axis=1), 1.0, atol=1e-4)
    hours = len(audio) / 16000 / 3600
    allowed = 2 / hours  # two windows may reach each threshold
    thresholds = kws_thresholds.tune(labels, smooth, hours, allowed, floor=0.0)
    assert set(thresholds) == {"yes", "stop"}
    for j, word in ((2, "yes"), (3, "stop")):
        assert np.sum(smooth[:, j] >= thresholds[word]) <= 2 < np.sum(smooth[:, j] >= thresholds[word] - 2e-4)
    out = kws_thresholds.write_thresholds(path, thresholds, tmp_path / "tuned.onnx")
    assert read_kws_metadata(out).thresholds == pytest.approx(thresholds)
    kept = {p.key for p in onnx.load(str(out)).metadata_props}
    assert {"edge_sdk.kws.labels", "edge_sdk.kws.features", "edge_sdk.kws.thresholds"} <= kept


@needs_tts
@pytest.mark.network
def test_the_recipe_trains_a_head_on_the_speech_embedding_from_a_dataset(
    tmp_path: Path, embedding_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import onnx

    from edge_sdk.cli.main import main
    from edge_sdk.stages.kws import KeywordSpotter

    monkeypatch.setenv("EDGE_SDK_CACHE", str(embedding_cache))
    root = _speech_commands_folder(tmp_path / "sc")
    out = tmp_path / "kws-emb"
    argv = ["train", "kws", "--words", "yes,no", "--data", str(root), "--out", str(out), "--steps", "3"]
    argv += ["--passes", "1"]  # the features of one augmented pass computed once, then steps on them
    argv += ["--running", "3"]  # a user's recordings, and a few synthesised sentences
    assert main([*argv, "--batch", "4", "--noise-seconds", "2", "--denoised", "0.5", "-q"]) == 0
    report = json.loads((out / "eval.json").read_text())
    assert report["front_end"] == "speech-embedding" and report["cmn"] is False
    assert report["head"] == "conv" and report["data"]["running"]["utterances"] >= 1
    assert report["training"]["passes"] == 1 and report["training"]["steps"] == 3
    assert report["parameters"] <= 100_000 and report["onnx_max_abs_diff"] < 1e-4
    m = onnx.load(str(out / "model.onnx"))
    meta = {p.key: p.value for p in m.metadata_props}
    assert json.loads(meta["edge_sdk.kws.features"])["front_end"] == "speech-embedding"
    dims = [d.dim_param or d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim]
    assert dims[1:] == [1, 9, 96]  # 1.5 s windows by default
    assert "speech-embedding" in (out / "MODEL_CARD.md").read_text()

    # The stage runs it on a stream: one window each 80 ms (one embedding) once a whole window is heard.
    spotter = KeywordSpotter(out, threshold=0.99)
    assert spotter.hop == pytest.approx(0.08)
    audio = np.zeros(16000 * 2, np.float32)
    audio[4000:8000] = kws_data.trim_speech(speech_data.synthesize("yes", "en-us+m1"))[:4000]
    for i in range(0, len(audio), 700):
        spotter.process(Block(audio[i : i + 700], 16000, i / 16000, i // 700))
    embeddings = 1 + (len(audio) - 12512) // 1280
    assert spotter.windows == embeddings - 9 + 1


def test_embedding_heads_fit_the_budget_and_an_unknown_head_is_refused() -> None:
    import torch

    from edge_sdk.audio import front_end
    from edge_sdk.errors import BadInputError
    from edge_sdk.train import kws

    cfg = front_end.make("speech-embedding")
    x = torch.randn(4, 1, cfg.n_frames(), cfg.dims())
    for head in kws.HEADS:
        model = kws.make_head(22, cfg, kind=head).eval()
        assert kws.n_params(model) <= kws.MAX_PARAMS
        assert model(x).shape == (4, 22)
    with pytest.raises(BadInputError, match="unknown head 'gru'"):
        kws.make_head(22, cfg, kind="gru")
    with pytest.raises(BadInputError, match="at least 5 frames"):
        kws.make_head(22, front_end.make("speech-embedding", clip_seconds=0.9), kind="conv")
