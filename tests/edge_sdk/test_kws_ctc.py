"""The ``kws.ctc`` keyword spotter: a CTC recogniser of keywords and filler run on a stream, on real
Asterisk recordings through the shared speech-embedding front end; and the recipe's filler data."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from edge_sdk.errors import BadInputError
from edge_sdk.stages import Block, KeywordDetected, SpeechSegment, SpeechStart
from edge_sdk.stages.chain import audio_stages, keyword_spotter, keyword_stage_kind
from edge_sdk.stages.kws_ctc import CtcKeywordSpotter
from edge_sdk.train import asr_data

ZOO = Path(__file__).resolve().parents[2] / "edge_sdk" / "zoo"
DIGITS_ASR = ZOO / "digits-asr" / "model.onnx"
RATE = 16000


def stream(stage: CtcKeywordSpotter, audio: np.ndarray, block: int) -> list[KeywordDetected]:
    stage.reset()
    events: list[KeywordDetected] = []
    for i, at in enumerate(range(0, len(audio), block)):
        b = stage.process(Block(audio[at : at + block], RATE, at / RATE, i))
        events += [e for e in b.events if isinstance(e, KeywordDetected)]
    return events


# -- the recipe's filler data ---------------------------------------------------------------------------


def test_filler_tokens_collapse_runs_of_other_words() -> None:
    assert asr_data.token_symbols(filler=True)[-1] == asr_data.FILLER
    assert asr_data.tokens_txt(filler=True).splitlines()[-1] == f"{asr_data.FILLER} {len(asr_data.VOCAB) + 1}"
    unk = len(asr_data.VOCAB) + 1
    ids = asr_data.encode(["please", "say", "seven", "then", "the", "other", "two"], filler=True)
    assert ids == [unk, 8, unk, 3]
    assert asr_data.decode(ids) == f"{asr_data.FILLER} seven {asr_data.FILLER} two"
    with pytest.raises(BadInputError, match="vocabulary"):
        asr_data.encode(["please", "seven"])


def test_carriers_hold_no_vocabulary_word_or_homophone_but_the_ones_put_in() -> None:
    from edge_sdk.train.kws_running import prose_sentences

    banned = asr_data.banned_words()
    assert {"to", "for", "know", "write", "won", "ate", "oh"} <= banned
    others = [w for w in asr_data.kws_data.unknown_words(asr_data.VOCAB) if not set(w.split()) & banned]
    carriers = (prose_sentences(), others, banned)
    rng = np.random.default_rng(0)
    counts = []
    for _ in range(300):
        words = asr_data.draw_carrier_words(rng, carriers)
        inside = [w for w in words if w in asr_data.VOCAB]
        assert not [w for w in words if w in banned and w not in asr_data.VOCAB]
        assert len(words) > len(inside)  # always some other speech
        counts.append(len(inside))
    assert set(counts) == {0, 1, 2, 3}


# -- the stage ---------------------------------------------------------------------------------------------


def test_a_classifier_is_not_a_ctc_model_and_the_chain_knows_which_is_which(tmp_path: Path) -> None:
    from tests.edge_sdk.test_kws_stage import loudness_model

    classifier = loudness_model(tmp_path / "loud.onnx")
    assert keyword_stage_kind(classifier) == "onnx"
    assert keyword_stage_kind(DIGITS_ASR) == "ctc"
    with pytest.raises(BadInputError, match="not a CTC recogniser"):
        CtcKeywordSpotter(classifier)


@pytest.mark.network
def test_keywords_limit_what_fires_and_an_unknown_word_is_named(
    embedding_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGE_SDK_CACHE", str(embedding_cache))
    stage = keyword_spotter(DIGITS_ASR, keywords=["seven", "zero"])
    assert isinstance(stage, CtcKeywordSpotter)
    assert stage.info.labels == ("_silence_", "_unknown_", "zero", "seven")
    # "oh" fires as zero; every other word the model knows is heard as _unknown_
    words = [s.lstrip("▁") for s in asr_data.token_symbols()]
    assert stage._columns[words.index("oh"), 2] == 1 and stage._columns[words.index("one"), 1] == 1
    with pytest.raises(BadInputError, match="cannot spot.*banana"):
        keyword_spotter(DIGITS_ASR, keywords=["seven", "banana"])


@pytest.mark.network
def test_a_real_digit_fires_once_at_any_block_size_after_the_word(
    embedding_cache: Path, monkeypatch: pytest.MonkeyPatch, asterisk_prompt: Callable[..., np.ndarray]
) -> None:
    monkeypatch.setenv("EDGE_SDK_CACHE", str(embedding_cache))
    stage = CtcKeywordSpotter(DIGITS_ASR, keywords=["seven"])
    audio = asterisk_prompt("digits/7.wav")
    runs = [stream(stage, audio, block) for block in (320, 1600, 4000)]
    assert [e.word for e in runs[0]] == ["seven"]
    assert all([e.word for e in r] == ["seven"] for r in runs)
    # the decision frame is the same whatever the blocks: only the block end (when it is said) moves
    assert len({round(r[0].end, 6) for r in runs}) == 1
    event = runs[0][0]
    speech_end = 1.0 + len(asterisk_prompt("digits/7.wav", 0, 0)) / RATE
    assert event.end <= speech_end + 0.8 and event.time >= event.end


@pytest.mark.network
def test_the_vad_gate_runs_nothing_on_silence_and_still_hears_the_word(
    embedding_cache: Path, monkeypatch: pytest.MonkeyPatch, asterisk_prompt: Callable[..., np.ndarray]
) -> None:
    monkeypatch.setenv("EDGE_SDK_CACHE", str(embedding_cache))
    chain, _ = audio_stages(vad="energy", kws=str(DIGITS_ASR), kws_gate=True)
    vad, stage = chain
    assert isinstance(stage, CtcKeywordSpotter)
    audio = np.concatenate([np.zeros(3 * RATE, np.float32), asterisk_prompt("digits/7.wav", 0.0, 1.5)])
    events, starts = [], 0
    for i, at in enumerate(range(0, len(audio), 320)):
        b = stage.process(vad.process(Block(audio[at : at + 320], RATE, at / RATE, i)))
        events += [e.word for e in b.events if isinstance(e, KeywordDetected)]
        starts += sum(isinstance(e, SpeechStart | SpeechSegment) for e in b.events)
    assert starts >= 1 and "seven" in events
    assert stage.skipped > 0 and stage.heard < len(audio) - 2 * RATE


def test_the_encoder_hears_exactly_its_look_ahead_past_each_frame() -> None:
    torch = pytest.importorskip("torch")
    from edge_sdk.train.asr_model import CtcModel

    torch.manual_seed(0)
    for lookahead in (0, 1, 3):
        model = CtcModel(8, 5, 16, lookahead).eval()
        x = torch.randn(1, 20, 8)
        y = x.clone()
        y[0, 12:] += 1.0  # change frames 12 onwards
        with torch.no_grad():
            a, b = model(x)[0], model(y)[0]
        assert torch.allclose(a[: 12 - lookahead], b[: 12 - lookahead])
        assert not torch.allclose(a[12 - lookahead], b[12 - lookahead])
    with pytest.raises(ValueError, match="look-ahead"):
        CtcModel(8, 5, 16, 4)


# -- the bundled zoo:commands-ctc ----------------------------------------------------------------------------


def test_the_bundled_spotter_carries_its_tokens_look_ahead_and_threshold() -> None:
    from edge_sdk.asr.acoustic import model_info
    from edge_sdk.asr.frames import META_LOOKAHEAD
    from edge_sdk.stages.kws import META_THRESHOLDS
    from edge_sdk.train.asr import THRESHOLDS, spotted_words

    folder = ZOO / "commands-ctc"
    assert (folder / "tokens.txt").read_text() == asr_data.tokens_txt(filler=True)
    meta = model_info(folder / "model.onnx")[0]
    assert meta[META_LOOKAHEAD] == "1"
    thresholds = json.loads(meta[META_THRESHOLDS])
    assert set(thresholds) == set(spotted_words()) and len(set(thresholds.values())) == 1
    assert next(iter(thresholds.values())) in THRESHOLDS
    assert "kws.ctc" in (folder / "MODEL_CARD.md").read_text()


@pytest.mark.network
def test_the_bundled_spotter_hears_real_digits_and_not_the_number_words_near_them(
    embedding_cache: Path, monkeypatch: pytest.MonkeyPatch, asterisk_prompt: Callable[..., np.ndarray]
) -> None:
    monkeypatch.setenv("EDGE_SDK_CACHE", str(embedding_cache))
    stage = keyword_spotter("zoo:commands-ctc", threads=1)
    assert stage.name == "kws.ctc" and stage._lag == 1
    digits = "zero one two three four five six seven eight nine".split()
    heard = [[e.word for e in stream(stage, asterisk_prompt(f"digits/{d}.wav"), 1600)] for d in range(10)]
    # measured: 9 of the 10 (Allison Smith's 8 kHz prompts; "seven" is missed), nothing else fired
    assert sum(h == [w] for h, w in zip(heard, digits, strict=True)) >= 7, heard
    assert sum(len(h) for h in heard) <= 11
    # the nearest misses: "thirteen" is not "three", "sixty" is not "six" (measured: none fired)
    near = [*range(13, 20), *range(20, 100, 10)]
    fired = [
        w for n in near for w in (e.word for e in stream(stage, asterisk_prompt(f"digits/{n}.wav"), 1600))
    ]
    assert len(fired) <= 3, fired
