"""AudioLoop on the bundled speech clip: events to callbacks and JSONL, recording, statistics, and every
way a loop ends (end of stream, max_seconds, stop(), Ctrl-C, a stage failing)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from edge_sdk import AudioLoop, LatencyHistogram, LoopSummary
from edge_sdk.errors import BadInputError
from edge_sdk.live.audio import StageFailed
from edge_sdk.live.events import read_events
from edge_sdk.stages import Block, Event, SpeechSegment, Stage
from edge_sdk.stages.record import WavWriter
from edge_sdk.stages.vad import EnergyVAD

RATE = 16000


class Blocks:
    """Test data shaped like an audio source: fixed blocks of a clip with the source attributes.
    ``then`` runs after the given block is handed out (to press Ctrl-C, say)."""

    def __init__(self, audio: np.ndarray, block: int = 320, then: tuple[int, object] | None = None) -> None:
        self.name, self.sample_rate, self.block_size = "clip", RATE, block
        self.overruns, self.overflows, self.closed = 0, 0, False
        self.blocks = [audio[i : i + block] for i in range(0, len(audio) - block + 1, block)]
        self.then = then

    def __iter__(self) -> Iterator[np.ndarray]:
        for i, b in enumerate(self.blocks):
            yield b
            if self.then and i == self.then[0]:
                self.then[1]()  # type: ignore[operator]

    def close(self) -> None:
        self.closed = True


class Delay(Stage):
    """A real delay line of ``latency`` samples (what a frame-based denoiser does to the audio)."""

    name = "delay"

    def __init__(self, latency: int) -> None:
        self.latency = latency
        self._held = np.zeros(latency, np.float32)

    def process(self, block: Block) -> Block:
        x = np.concatenate([self._held, block.samples])
        self._held = x[len(block.samples) :]
        return block.with_samples(x[: len(block.samples)])


class Broken(Stage):
    name = "broken"

    def __init__(self, at: int) -> None:
        self.at, self.closed = at, False

    def process(self, block: Block) -> Block:
        if block.index == self.at:
            raise ValueError("bad sample")
        return block

    def close(self) -> None:
        self.closed = True


def test_events_recording_and_summary(clip: np.ndarray, tmp_path: Path) -> None:
    seen: list[Event] = []
    source = Blocks(clip)
    rec = tmp_path / "out.wav"
    loop = AudioLoop(
        source,
        [EnergyVAD(), WavWriter(rec)],
        on_event=seen.append,
        events_path=tmp_path / "ev.jsonl",
        notes=["a note"],
    )
    s = loop.run()
    assert source.closed and not s.interrupted and s.ending == "done"
    assert s.blocks == len(source.blocks) and s.audio_seconds == pytest.approx(s.blocks * 320 / RATE)
    assert [st.name for st in s.stages] == ["vad.energy", "record.wav"]
    assert all(st.blocks == s.blocks and 0 < st.p50_ms <= st.p99_ms <= st.max_ms for st in s.stages)
    assert s.total.rtf == pytest.approx(sum(st.rtf for st in s.stages), rel=1e-6) and s.total.rtf < 1
    assert s.events == {"speech_start": 2, "speech_segment": 2} and s.notes == ["a note"]
    # The same events, in the same order, reached the callback and the log, with wall-clock stamps.
    logged = read_events(tmp_path / "ev.jsonl")
    assert [e.to_dict() for e in seen] == [
        {k: v for k, v in r.items() if not k.startswith("wall")} for r in logged
    ]
    assert all(r["stage"] == "vad.energy" and r["wall"].endswith("+00:00") for r in logged)
    assert abs(logged[0]["wall_time"] - time.time()) < 60
    # The recording is the audio that went through, 16-bit, and nothing half-written is left behind.
    with wave.open(str(rec)) as w:
        assert (w.getframerate(), w.getsampwidth(), w.getnchannels()) == (RATE, 2, 1)
        got = np.frombuffer(w.readframes(w.getnframes()), "<i2") / 32767.0
    np.testing.assert_allclose(got, np.concatenate(source.blocks), atol=1 / 32767)
    assert {p.name for p in tmp_path.iterdir()} == {"out.wav", "ev.jsonl"}
    d = s.to_dict()
    json.dumps(d)
    assert d["stages"][0]["name"] == "vad.energy" and "p99_ms" in d["total"]
    text = s.text()
    assert "vad.energy" in text and "record.wav" in text and "note: a note" in text


def test_stage_latency_keeps_event_times_on_the_source_clock(clip: np.ndarray) -> None:
    direct = [e for e in _events(Blocks(clip), [EnergyVAD()]) if isinstance(e, SpeechSegment)]
    delayed = [e for e in _events(Blocks(clip), [Delay(480), EnergyVAD()]) if isinstance(e, SpeechSegment)]
    assert len(direct) == len(delayed) == 2
    for a, b in zip(direct, delayed, strict=True):
        assert abs(a.start - b.start) <= 0.02 and abs(a.end - b.end) <= 0.02


def _events(source: Blocks, stages: list[Stage]) -> list[Event]:
    seen: list[Event] = []
    AudioLoop(source, stages, on_event=seen.append).run()
    return seen


def test_max_seconds_and_stop_from_a_callback(clip: np.ndarray) -> None:
    s = AudioLoop(Blocks(clip), [EnergyVAD()]).run(max_seconds=2.0)
    assert s.audio_seconds == pytest.approx(2.0) and s.ending == "done"
    # stop() in the first event's callback: the loop ends after that block; the open segment is
    # still closed by the flush.
    loop: AudioLoop
    seen: list[Event] = []

    def first(e: Event) -> None:
        seen.append(e)
        loop.stop()

    loop = AudioLoop(Blocks(clip), [EnergyVAD()], on_event=first)
    s = loop.run()
    assert s.ending == "stopped" and s.audio_seconds < 1.0
    assert [e.kind for e in seen] == ["speech_start", "speech_segment"]


def test_stop_and_summary_from_another_thread(clip: np.ndarray) -> None:
    source = Blocks(np.tile(clip, 50))  # ten minutes: far longer than the test waits
    loop = AudioLoop(source, [EnergyVAD()])
    result: list[LoopSummary] = []
    worker = threading.Thread(target=lambda: result.append(loop.run()))
    worker.start()
    deadline = time.monotonic() + 30
    while loop.summary().blocks < 50 and time.monotonic() < deadline:
        time.sleep(0.01)
    live = loop.summary()
    assert live.running and live.blocks >= 50 and live.stages[0].blocks >= 50
    loop.stop()
    worker.join(30)
    assert not worker.is_alive() and result[0].ending == "stopped" and not result[0].running
    assert result[0].blocks < len(source.blocks) and source.closed


def ran_in_own_interpreter(test: str) -> bool:
    """Run ``test`` in a child interpreter and check it passed there; False inside that child, which runs
    the test itself. A real signal in the full suite's process, which by then holds every backend's native
    objects, crashed the interpreter on CI; these tests are about the loop alone."""
    if os.environ.get("EDGE_SDK_TEST_CHILD") == "1":
        return False
    child = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"{__file__}::{test}"],
        env={**os.environ, "EDGE_SDK_TEST_CHILD": "1"}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert child.returncode == 0, child.stdout[-3000:] + child.stderr[-3000:]
    assert "1 passed" in child.stdout
    return True


def test_ctrl_c_flushes_closes_and_returns_the_summary(clip: np.ndarray, tmp_path: Path) -> None:
    if ran_in_own_interpreter("test_ctrl_c_flushes_closes_and_returns_the_summary"):
        return
    # A shell starts background jobs with SIGINT ignored, and Python keeps an ignored SIGINT: give it the
    # handler an interactive terminal gives it, or a suite run from a script could not test Ctrl-C.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # A real SIGINT mid-speech (block 200 = 4 s, inside the first sentence), as Ctrl-C delivers it.
    source = Blocks(clip, then=(200, lambda: signal.raise_signal(signal.SIGINT)))
    rec = WavWriter(tmp_path / "rec.wav")
    seen: list[Event] = []
    s = AudioLoop(source, [EnergyVAD(), rec], on_event=seen.append, events_path=tmp_path / "e.jsonl").run()
    assert s.interrupted and s.ending == "interrupted" and source.closed
    assert s.blocks == 201
    (segment,) = [e for e in seen if isinstance(e, SpeechSegment)]
    assert segment.end == pytest.approx(201 * 320 / RATE)  # closed by the flush at the stream's end
    assert len(read_events(tmp_path / "e.jsonl")) == 2
    with wave.open(str(tmp_path / "rec.wav")) as w:
        assert w.getnframes() == 201 * 320


class Watch(Stage):
    """Notes the SIGTERM and SIGHUP handlers in force while the loop runs."""

    name = "watch"

    def __init__(self) -> None:
        self.handlers: list[tuple[object, object]] = []

    def process(self, block: Block) -> Block:
        if block.index == 0:
            self.handlers.append((signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)))
        return block


def test_sigterm_ends_the_loop_as_ctrl_c_does_and_the_handlers_are_put_back(
    clip: np.ndarray, tmp_path: Path
) -> None:
    if ran_in_own_interpreter("test_sigterm_ends_the_loop_as_ctrl_c_does_and_the_handlers_are_put_back"):
        return
    caught: list[int] = []

    def previous(signum: int, frame: object) -> None:
        caught.append(signum)

    signal.signal(signal.SIGTERM, previous)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as under nohup: it must stay ignored
    watch = Watch()
    source = Blocks(clip, then=(200, lambda: signal.raise_signal(signal.SIGTERM)))
    rec = WavWriter(tmp_path / "rec.wav")
    s = AudioLoop(source, [EnergyVAD(), watch, rec], events_path=tmp_path / "e.jsonl").run()
    assert s.interrupted and s.blocks == 201 and source.closed and not caught
    assert len(read_events(tmp_path / "e.jsonl")) == 2  # the segment closed by the flush
    with wave.open(str(tmp_path / "rec.wav")) as w:
        assert w.getnframes() == 201 * 320
    during_term, during_hup = watch.handlers[0]
    assert during_term is not previous and during_hup is signal.SIG_IGN
    assert signal.getsignal(signal.SIGTERM) is previous and signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    # On another thread signal.signal cannot be called: the loop runs with the handlers as they are.
    worker = threading.Thread(target=lambda: AudioLoop(Blocks(clip[: 10 * 320]), [watch]).run())
    worker.start()
    worker.join(30)
    assert not worker.is_alive() and watch.handlers[1] == (previous, signal.SIG_IGN)


def test_a_failing_stage_stops_the_loop_with_a_clear_error(clip: np.ndarray, tmp_path: Path) -> None:
    broken = Broken(at=10)
    source = Blocks(clip)
    with pytest.raises(StageFailed, match=r"stage broken failed on block 10 .*ValueError: bad sample") as e:
        AudioLoop(source, [WavWriter(tmp_path / "r.wav"), broken]).run()
    assert e.value.exit_code == 1 and e.value.summary.blocks == 10
    assert broken.closed and source.closed
    with wave.open(str(tmp_path / "r.wav")) as w:  # the recording up to the failure is kept, whole
        assert w.getnframes() == 11 * 320
    # A stage's own edge-sdk error keeps its exit code (bad input stays 2).
    with pytest.raises(StageFailed, match="8000 Hz") as e:
        AudioLoop(Blocks(clip), [_Rate()]).run()
    assert e.value.exit_code == 2


class _Rate(Stage):
    name = "rate"

    def process(self, block: Block) -> Block:
        raise BadInputError("built for 8000 Hz audio")


def test_wav_writer_is_atomic_and_handles_an_empty_stream(tmp_path: Path) -> None:
    w = WavWriter(tmp_path / "a.wav")
    w.process(Block(np.full(100, 2.0, np.float32), RATE, 0.0, 0))  # clipped, not wrapped
    assert not (tmp_path / "a.wav").exists()  # only the hidden part file until close
    (part,) = tmp_path.iterdir()
    assert part.name.startswith(".a.wav.") and part.suffix == ".part"
    w.close()
    w.close()
    assert [p.name for p in tmp_path.iterdir()] == ["a.wav"]
    with wave.open(str(tmp_path / "a.wav")) as f:
        assert np.all(np.frombuffer(f.readframes(100), "<i2") == 32767)
    empty = WavWriter(tmp_path / "e.wav", sample_rate=8000)
    empty.close()
    with wave.open(str(tmp_path / "e.wav")) as f:
        assert f.getnframes() == 0 and f.getframerate() == 8000
    with pytest.raises(BadInputError, match="not a folder"):
        WavWriter(tmp_path / "nowhere" / "x.wav")


def test_histogram_quantiles_in_constant_memory() -> None:
    rng = np.random.default_rng(0)
    x = rng.lognormal(mean=math.log(2e-3), sigma=0.6, size=200_000)
    h = LatencyHistogram()
    bins = len(h.bins)
    for v in x:
        h.add(float(v))
    assert len(h.bins) == bins and h.count == len(x)
    for q in (0.5, 0.9, 0.99):
        assert h.quantile(q) == pytest.approx(np.quantile(x, q), rel=0.03)
    assert h.max == x.max() and h.mean == pytest.approx(x.mean())
    assert LatencyHistogram().quantile(0.5) == 0.0


def test_real_wav_file_source(tmp_path: Path) -> None:
    wav_file = pytest.importorskip("edge_sdk.devices.sources.wav_file")
    clip_path = resources.files("edge_sdk") / "samples" / "librivox-sense-and-sensibility.wav"
    with resources.as_file(clip_path) as p:
        source = wav_file.WavFile(p, block_size=320)
        s = AudioLoop(source, [EnergyVAD(), WavWriter(tmp_path / "r.wav")]).run()
    assert s.source == "librivox-sense-and-sensibility.wav" and s.blocks == source.num_blocks
    assert s.events == {"speech_start": 2, "speech_segment": 2}


class _Slow(Stage):
    """Takes longer than real time on some blocks and notes where each block sits on the stream clock."""

    name = "slow"

    def __init__(self) -> None:
        self.seen: list[tuple[float, np.ndarray]] = []

    def process(self, block: Block) -> Block:
        self.seen.append((block.start, block.samples.copy()))
        if block.index % 4 == 0:
            time.sleep(0.12)
        return block


def test_blocks_a_paced_source_drops_keep_their_place_on_the_source_clock(clip: np.ndarray) -> None:
    wav_file = pytest.importorskip("edge_sdk.devices.sources.wav_file")
    clip_path = resources.files("edge_sdk") / "samples" / "librivox-sense-and-sensibility.wav"
    slow = _Slow()
    with resources.as_file(clip_path) as p:
        source = wav_file.WavFile(p, block_size=320, realtime=True, buffer_blocks=2)
        summary = AudioLoop(source, [slow]).run(max_seconds=1.0)
    assert summary.overruns > 0 and source.dropped_samples == summary.overruns * 320
    for start, samples in slow.seen:
        at = int(round(start * RATE))
        np.testing.assert_array_equal(samples, clip[at : at + 320])


class Seen(Stage):
    """Passes blocks on, keeping a copy of each, to show what the stages after the source received."""

    name = "seen"

    def __init__(self) -> None:
        self.blocks: list[np.ndarray] = []

    def process(self, block: Block) -> Block:
        self.blocks.append(block.samples.copy())
        return block


def test_nan_and_infinite_samples_go_on_as_silence_and_are_counted() -> None:
    audio = np.full(320 * 5, 0.25, np.float32)
    audio[320 + 7] = np.nan
    audio[3 * 320 : 3 * 320 + 4] = [np.inf, -np.inf, np.nan, 1.0]
    seen = Seen()
    s = AudioLoop(Blocks(audio), [seen]).run()
    assert s.blocks == 5 and s.nonfinite == 2 and "non-finite blocks 2" in s.headline()
    assert all(np.isfinite(b).all() for b in seen.blocks)
    assert seen.blocks[1][7] == 0.0 and seen.blocks[1][8] == 0.25 and list(seen.blocks[3][:4]) == [0, 0, 0, 1]
    clean = AudioLoop(Blocks(np.zeros(640, np.float32)), [Seen()]).run()
    assert clean.nonfinite == 0 and "non-finite" not in clean.headline()
