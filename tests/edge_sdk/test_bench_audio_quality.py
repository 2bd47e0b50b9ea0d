"""Smoke test of bench/audio_quality.py: its pieces run end to end on one real utterance (noisy input
only, white noise), and its alignment finds a known delay. The benchmark itself is a script, not a test."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import numpy as np
import pytest


@pytest.fixture(scope="module")
def aq(bench_module: Callable[..., ModuleType]) -> ModuleType:
    """bench/audio_quality.py imported as a module."""
    return bench_module("audio_quality", "pesq", "pystoi", "soxr", "edge_sdk.train.speech_data")


def test_align_finds_a_known_delay(aq: ModuleType) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(8000).astype(np.float32)
    delayed = np.concatenate([np.zeros(37, np.float32), x])
    out, lag = aq.align(delayed, x)
    assert lag == 37
    np.testing.assert_array_equal(out, x)


def test_one_utterance_noisy_only(aq: ModuleType) -> None:
    corpus = aq.corpus
    if not corpus.SPHINX.exists():
        pytest.skip("pocketsphinx-testdata is not installed")
    clip = corpus.sphinx_clips()[0]
    mixes = corpus.mixtures([clip], corpus.NoiseBank(), ("white",), (5,))
    again = corpus.mixtures([clip], corpus.NoiseBank(), ("white",), (5,))
    np.testing.assert_array_equal(mixes[0].noisy, again[0].noisy)  # seeded: the same mixture every run
    noisy = aq.BUILDERS["noisy"]()
    scores = [aq.score(m, noisy) for m in mixes]
    summary = aq.summarize(scores, [noisy])
    overall = summary["methods"]["noisy input"]["overall"]
    assert overall["d_si_sdr"] == 0.0 and 3.0 < overall["si_sdr"] < 7.0  # 5 dB SNR, white noise
    assert summary["pesq_scored"] == 1 and 1.0 <= overall["pesq"] <= 4.7
    doc = aq.to_markdown(summary, [clip], 1.0)
    assert "| noisy input | 0 |" in doc and "bench/audio_quality.py" in doc


def test_paired_difference_pairs_mixtures_and_resamples_utterances(
    bench_module: Callable[..., ModuleType],
) -> None:
    pd = bench_module("paired_difference")
    rows = []
    for clip, corpus, edge in (("c/one", "c", 0.3), ("c/two", "c", -0.1), ("d/three", "d", 0.1)):
        for snr in (0, 5):
            rows.append(
                {"clip": clip, "corpus": corpus, "noise": "w", "snr": snr, "method": "a", "pesq": 2 + edge}
            )
            rows.append(
                {"clip": clip, "corpus": corpus, "noise": "w", "snr": snr, "method": "b", "pesq": 2.0}
            )
    rows.append(
        {"clip": "d/four", "corpus": "d", "noise": "w", "snr": 0, "method": "a", "pesq": 9.0}
    )  # unpaired
    a, b, clips, corpora = pd.paired(rows, "a", "b", "pesq")
    assert len(a) == 6 and list(corpora).count("d") == 2
    means = pd.bootstrap(a - b, clips, n=500)
    assert means.min() >= -0.1 - 1e-9 and means.max() <= 0.3 + 1e-9  # means of whole utterances only
    assert abs(means.mean() - (0.3 - 0.1 + 0.1) / 3) < 0.03
