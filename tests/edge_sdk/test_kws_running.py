"""Running speech with keywords said inside it: the labels of its windows, the utterances, the mining."""

from __future__ import annotations

import numpy as np
import pytest

from edge_sdk.audio.features import KwsFeatureConfig
from edge_sdk.audio.mix import rms
from edge_sdk.train import kws_data, kws_running, speech_data
from edge_sdk.train.kws_data import SILENCE, UNKNOWN, AugmentConfig

needs_tts = pytest.mark.skipif(
    not speech_data.tts_available("espeak-ng"), reason="espeak-ng is not installed"
)
SR = 16000
LABELS = [SILENCE, UNKNOWN, "left", "stop"]


def _window_spans(n_windows: int, cfg: KwsFeatureConfig) -> tuple[np.ndarray, np.ndarray]:
    n = cfg.n_frames()
    starts = np.arange(n_windows) * cfg.hop
    return starts, starts + (n - 1) * cfg.hop + cfg.win


def test_windows_are_the_keyword_only_when_they_hold_it_whole() -> None:
    cfg = KwsFeatureConfig()
    frames = cfg.n_frames(4 * SR)
    span = (int(1.6 * SR), int(2.0 * SR))
    y = kws_running.window_labels(frames, cfg, span, keyword=3)
    starts, ends = _window_spans(len(y), cfg)
    assert len(y) == frames - cfg.n_frames() + 1
    margin = int(0.05 * SR)
    whole = (starts <= span[0] - margin) & (ends >= span[1] + margin)
    assert whole.any() and np.all(y[whole] == 3) and np.all(y[~whole] != 3)
    overlap = np.clip(np.minimum(ends, span[1]) - np.maximum(starts, span[0]), 0, None)
    # a negative holds at most a fifth of the keyword; the windows between are left out, not mislabelled
    assert np.all(overlap[y == 1] <= 0.2 * (span[1] - span[0]))
    assert set(np.unique(y)) == {kws_running.IGNORE, 1, 3}
    # no keyword: every window is a negative
    assert np.all(kws_running.window_labels(frames, cfg, None, keyword=3) == 1)


def test_carriers_never_say_a_keyword_digit_or_homophone() -> None:
    banned = kws_running.banned_words(["left", "two"])
    assert {"left", "two", "to", "too", "one", "won", "nine", "for"} <= banned
    sentences = kws_running.prose_sentences()
    assert len(sentences) > 500 and all(s == s.lower() for s in sentences)
    others = kws_data.unknown_words(["left", "two"])
    rng = np.random.default_rng(3)
    for _ in range(300):
        words = kws_running.carrier(rng, sentences, others, banned)
        assert not set(" ".join(words).split()) & banned


@needs_tts
def test_utterances_say_the_keyword_where_their_span_says() -> None:
    utts = kws_running.synthesize_running(["left", "stop"], "train", 16, seed=5, engines=("espeak-ng",))
    again = kws_running.synthesize_running(["left", "stop"], "train", 16, seed=5, engines=("espeak-ng",))
    assert [u.text for u in utts] == [u.text for u in again]
    assert 0 < sum(u.keyword is not None for u in utts) < len(utts)
    banned = kws_running.banned_words(["left", "stop"])
    for u in utts:
        assert kws_data.voice_split(u.voice.split("@")[0]) == "train"
        said = u.text.split()
        if u.keyword is None:
            assert u.span is None and not set(said) & banned
            continue
        assert said.count(u.keyword) == 1 and not (set(said) - {u.keyword}) & banned
        start, end = u.span  # type: ignore[misc]
        assert 0 <= start < end <= len(u.audio)
        assert 0.08 * SR < end - start < 1.0 * SR  # a word's length, not a whole phrase's
        # the span is speech, not a pause between words
        assert rms(u.audio[start:end]) > 0.1 * rms(u.audio)


@needs_tts
def test_running_windows_are_labelled_frames_of_the_whole_utterance() -> None:
    cfg = KwsFeatureConfig()
    utts = kws_running.synthesize_running(["left", "stop"], "train", 8, seed=6, engines=("espeak-ng",))
    rng = np.random.default_rng(0)
    x, y = kws_running.running_windows(utts, LABELS, cfg, rng, {}, AugmentConfig.none())
    assert x.shape[1:] == (1, cfg.n_frames(), cfg.dims()) and x.dtype == np.float32
    assert len(x) == len(y) and kws_running.IGNORE not in y
    said = {LABELS.index(u.keyword) for u in utts if u.keyword}
    assert set(np.unique(y)) == {1} | said
