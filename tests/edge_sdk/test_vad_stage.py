"""The VAD stages on real speech (the bundled LibriVox clip), in silence, and in noise."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from edge_sdk.audio.mix import mix_at_snr, pink_noise
from edge_sdk.errors import BadInputError, DownloadError
from edge_sdk.stages import SpeechSegment, SpeechStart, Stage, make, names_of
from edge_sdk.stages.base import Block, Event
from edge_sdk.stages.vad import EnergyVAD, SegmentRules, SegmentTracker, SileroVAD, vad_with_fallback

RATE = 16000
# Where the clip's two utterances are (edge_sdk/samples/README.md: 0.5 s, 7.10 s, 1.0 s, 2.99 s, 0.5 s).
TRUTH = [(0.5, 7.6), (8.6, 11.59)]


# Silero VAD comes from its PyPI wheel; the energy VAD needs nothing.
VADS = [pytest.param("silero", marks=pytest.mark.network), "energy"]


@pytest.fixture(scope="module")
def silero(silero_cache: Path) -> SileroVAD:
    return SileroVAD(cache_dir=str(silero_cache))


def vad_named(name: str, request: pytest.FixtureRequest) -> Stage:
    return request.getfixturevalue("silero") if name == "silero" else EnergyVAD()


def stream(stage: Stage, audio: np.ndarray, block: int = 320) -> list[Event]:
    """Feed ``audio`` block by block, then flush, as the loop does; return every event in order."""
    stage.reset()
    events: list[Event] = []
    for n, i in enumerate(range(0, len(audio), block)):
        events += stage.process(Block(audio[i : i + block], RATE, i / RATE, n)).events
    end = Block(np.zeros(0, np.float32), RATE, len(audio) / RATE, n + 1)
    stage.flush(end)
    return events + end.events


def segments(events: list[Event]) -> list[tuple[float, float]]:
    return [(e.start, e.end) for e in events if isinstance(e, SpeechSegment)]


def assert_matches_truth(found: list[tuple[float, float]], truth: list[tuple[float, float]]) -> None:
    """Each true utterance is covered by exactly one segment whose edges are within 0.35 s of it, and no
    segment lies outside the speech."""
    assert len(found) == len(truth), found
    for (s, e), (ts, te) in zip(found, truth, strict=True):
        assert abs(s - ts) < 0.35 and abs(e - te) < 0.35, (found, truth)


def test_registered_for_the_cli() -> None:
    assert {"silero", "energy"} <= set(names_of("vad"))
    assert isinstance(make("vad", "energy"), EnergyVAD)


@pytest.mark.parametrize("name", VADS)
def test_finds_the_utterances(name: str, clip: np.ndarray, request: pytest.FixtureRequest) -> None:
    vad = vad_named(name, request)
    events = stream(vad, clip)
    assert_matches_truth(segments(events), TRUTH)
    # Each segment is announced once, before it closes, at its start.
    starts = [e for e in events if isinstance(e, SpeechStart)]
    assert [e.time for e in starts] == [s for s, _ in segments(events)]
    kinds = [e.kind for e in events]
    assert kinds == ["speech_start", "speech_segment"] * 2
    assert all(e.stage == f"vad.{name}" for e in events)


@pytest.mark.parametrize("name", VADS)
def test_padded_and_noisy_speech(name: str, clip: np.ndarray, request: pytest.FixtureRequest) -> None:
    vad = vad_named(name, request)
    pad = np.zeros(2 * RATE, np.float32)
    padded = np.concatenate([pad, clip, pad])
    shifted = [(s + 2, e + 2) for s, e in TRUTH]
    assert_matches_truth(segments(stream(vad, padded)), shifted)
    noisy = mix_at_snr(padded, pink_noise(len(padded), np.random.default_rng(0)), 20.0)[0]
    assert_matches_truth(segments(stream(vad, noisy)), shifted)


@pytest.mark.parametrize("name", VADS)
def test_silence_and_noise_alone_give_nothing(name: str, request: pytest.FixtureRequest) -> None:
    vad = vad_named(name, request)
    assert stream(vad, np.zeros(3 * RATE, np.float32)) == []
    hum = 0.01 * pink_noise(3 * RATE, np.random.default_rng(1))
    assert stream(vad, hum) == []


@pytest.mark.network
def test_silero_same_segments_whatever_the_block_size(clip: np.ndarray, silero: SileroVAD) -> None:
    reference = stream(silero, clip, 512)
    for block in (160, 320, 1000):
        assert stream(silero, clip, block) == reference


@pytest.mark.network
def test_reset_forgets_the_stream(clip: np.ndarray, silero: SileroVAD) -> None:
    first = stream(silero, clip)
    # Leave the detector mid-speech with a recurrent state full of it; reset must make it as new.
    for n, i in enumerate(range(0, 3 * RATE, 320)):
        silero.process(Block(clip[RATE + i : RATE + i + 320], RATE, i / RATE, n))
    assert silero.tracker.in_speech
    assert stream(silero, clip) == first


@pytest.mark.network
def test_segment_open_at_the_end_is_closed_by_flush(clip: np.ndarray, silero: SileroVAD) -> None:
    cut = clip[: 5 * RATE]  # ends mid-sentence
    events = stream(silero, cut)
    (start, end) = segments(events)[0]
    assert abs(start - 0.5) < 0.35 and end == pytest.approx(5.0, abs=0.04)


def test_tracker_rules() -> None:
    rules = SegmentRules(threshold=0.5, neg_threshold=0.35, min_speech=0.1, min_silence=0.1, pad=0.0)
    t = SegmentTracker("x", rules)
    step = 0.02

    def feed(probs: list[float], t0: float) -> list[Event]:
        out: list[Event] = []
        for i, p in enumerate(probs):
            out += t.update(p, t0 + i * step, t0 + (i + 1) * step)
        return out

    assert feed([0.9, 0.9, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1], 0.0) == []  # 40 ms: too short to count
    # Hysteresis: 0.4 is below the opening threshold but above the closing one, so speech holds.
    events = feed([0.9] * 5 + [0.4] * 20 + [0.1] * 10, 1.0)
    assert segments(events) == [(1.0, pytest.approx(1.5))]
    with pytest.raises(BadInputError, match="thresholds"):
        SegmentRules(threshold=0.3, neg_threshold=0.5)


@pytest.mark.network
def test_wrong_rate_is_bad_input(silero: SileroVAD, silero_cache: Path) -> None:
    with pytest.raises(BadInputError, match="8000 Hz"):
        silero.process(Block(np.zeros(320, np.float32), 8000, 0.0, 0))
    with pytest.raises(BadInputError, match="22050"):
        SileroVAD(sample_rate=22050, cache_dir=str(silero_cache))


def test_silero_unavailable_falls_back_to_energy_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Another test may have run the CLI in this process, which sets the root logger to ERROR.
    caplog.set_level(logging.WARNING, logger="edge_sdk")
    # An empty cache and an index that refuses connections: the pull fails as it would offline.
    monkeypatch.setenv("EDGE_SDK_PYPI_INDEX", "http://127.0.0.1:9/simple")
    with pytest.raises(DownloadError):
        make("vad", "silero", cache_dir=str(tmp_path))
    stage, notes = vad_with_fallback("silero", cache_dir=str(tmp_path), threads=1, min_silence=0.5)
    assert isinstance(stage, EnergyVAD) and stage.tracker.rules.min_silence == 0.5
    assert len(notes) == 1 and "fell back to vad.energy" in notes[0]
    assert "fell back to vad.energy" in caplog.text
    stage, notes = vad_with_fallback("energy")
    assert isinstance(stage, EnergyVAD) and notes == []
