"""The keyword spotting stage on real audio (Asterisk's spoken digits, tones, silence) through the real
AudioLoop and WavFile source, with small KWS models built by hand to the model contract: their logits
are a fixed linear function of the window's mean MFCCs, so which label a window drives is known."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from edge_sdk import zoo
from edge_sdk.audio.features import KwsFeatureConfig, kws_features
from edge_sdk.devices.sources.wav_file import WavFile
from edge_sdk.errors import BadInputError
from edge_sdk.live.audio import AudioLoop
from edge_sdk.live.events import read_events
from edge_sdk.stages import Block, Event, KeywordDetected, make, names_of
from edge_sdk.stages.chain import audio_stages
from edge_sdk.stages.kws import KeywordSpotter, detection_latency, read_kws_metadata
from edge_sdk.stages.vad import EnergyVAD

RATE = 16000
CFG = KwsFeatureConfig()
DIGITS = Path("/usr/share/asterisk/sounds/en/digits")
EXE = shutil.which("edge-sdk", path=str(Path(sys.executable).parent)) or "edge-sdk"

needs_digits = pytest.mark.skipif(
    not (DIGITS / "1.wav").is_file(), reason="asterisk-core-sounds-en not installed"
)


# -- models and audio ---------------------------------------------------------------------------------


def make_model(
    path: Path,
    labels: list[str],
    weights: np.ndarray,
    bias: np.ndarray,
    *,
    cfg: KwsFeatureConfig = CFG,
    thresholds: dict[str, float] | None = None,
    meta: dict[str, str] | None = None,
    frames: int | None = None,
    batch: str | int = "batch",
) -> Path:
    """A contract KWS model: logits = mean over frames of the features @ weights + bias."""
    dims = cfg.dims()
    x = helper.make_tensor_value_info(
        "features", TensorProto.FLOAT, [batch, 1, frames or cfg.n_frames(), dims]
    )
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, len(labels)])
    w = helper.make_tensor("w", TensorProto.FLOAT, [dims, len(labels)], weights.astype(np.float32).ravel())
    b = helper.make_tensor("b", TensorProto.FLOAT, [len(labels)], bias.astype(np.float32))
    nodes = [
        helper.make_node("ReduceMean", ["features"], ["m"], axes=[1, 2], keepdims=0),
        helper.make_node("MatMul", ["m", "w"], ["z"]),
        helper.make_node("Add", ["z", "b"], ["logits"]),
    ]
    graph = helper.make_graph(nodes, "kws", [x], [y], initializer=[w, b])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    props = {"edge_sdk.kws.labels": json.dumps(labels), "edge_sdk.kws.features": json.dumps(cfg.to_dict())}
    if thresholds is not None:
        props["edge_sdk.kws.thresholds"] = json.dumps(thresholds)
    props.update(meta or {})
    props = {k: v for k, v in props.items() if v is not None}
    helper.set_model_props(model, props)
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def loudness_model(path: Path, slope: float = 0.5, ref: float = -65.0, **kw: object) -> Path:
    """ "yes" when the window is loud (mean c0 above ``ref``), "_silence_" when quiet; "_unknown_" never."""
    w = np.zeros((CFG.dims(), 3))
    w[0, 2] = slope
    return make_model(path, ["_silence_", "_unknown_", "yes"], w, np.array([0.0, -5.0, -slope * ref]), **kw)


def tone_model(path: Path) -> Path:
    """Loud and low (c1 > 0) is "yes", loud and high (c1 < 0) is "no"."""
    w = np.zeros((CFG.dims(), 4))
    w[0, 2:] = 0.5
    w[1, 2], w[1, 3] = 0.3, -0.3
    return make_model(path, ["_silence_", "_unknown_", "yes", "no"], w, np.array([0.0, -5.0, 35.0, 35.0]))


@pytest.fixture
def loud(tmp_path: Path) -> Path:
    return loudness_model(tmp_path / "loud.onnx")


def digit(d: str) -> tuple[np.ndarray, float, float]:
    """A spoken digit at 16 kHz and where its speech is (seconds): 10 ms frames within 30 dB of the
    loudest frame."""
    from edge_sdk.train.speech_data import load_16k

    x = load_16k(DIGITS / f"{d}.wav")
    rms = np.sqrt(np.mean(x[: len(x) // 160 * 160].reshape(-1, 160) ** 2, axis=1))
    on = np.flatnonzero(rms > rms.max() / 10**1.5)
    return x, on[0] * 0.01, (on[-1] + 1) * 0.01


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(round(seconds * RATE)), np.float32)


def tone(hz: float, seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def sequence(*parts: np.ndarray | tuple[str, str]) -> tuple[np.ndarray, list[tuple[str, float, float]]]:
    """Concatenate silences/tones and ("word", "digit") pairs; return the audio and the truth."""
    audio, truth, at = [], [], 0.0
    for p in parts:
        if isinstance(p, tuple):
            x, s, e = digit(p[1])
            truth.append((p[0], at + s, at + e))
        else:
            x = p
        audio.append(np.asarray(x, np.float32))
        at += len(x) / RATE
    return np.concatenate(audio), truth


def write_wav(path: Path, x: np.ndarray) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def run_loop(stages: list, wav: Path, block: int = 320) -> list[Event]:
    events: list[Event] = []
    AudioLoop(WavFile(wav, block_size=block), stages, on_event=events.append).run()
    return events


def keywords(events: list[Event]) -> list[KeywordDetected]:
    return [e for e in events if isinstance(e, KeywordDetected)]


def offline_posteriors(model: Path, audio: np.ndarray, hop_frames: int = 5) -> list[tuple[float, np.ndarray]]:
    """(window end in s, softmax posterior) of every window the stage classifies, computed on the whole
    signal at once: the reference the streaming stage must reproduce."""
    feats = kws_features(audio, CFG)
    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    n = CFG.n_frames()
    out = []
    for f in range(n, len(feats) + 1, hop_frames):
        z = sess.run(None, {"features": feats[f - n : f][None, None]})[0][0].astype(np.float64)
        p = np.exp(z - z.max())
        out.append((((f - 1) * CFG.hop + CFG.win) / RATE, p / p.sum()))
    return out


def quantized(wav: Path) -> np.ndarray:
    """What the WavFile source hands the loop: the 16-bit samples as floats."""
    return WavFile(wav).samples.astype(np.float32)


# -- the stage ----------------------------------------------------------------------------------------


def test_registered_and_built_by_name(loud: Path) -> None:
    assert "onnx" in names_of("kws")
    stage = make("kws", "onnx", model=str(loud))
    assert isinstance(stage, KeywordSpotter) and stage.latency == 0
    assert stage.info.keywords == ("yes",) and stage.thresholds == {"yes": 0.5}


@needs_digits
@pytest.mark.parametrize("block", [320, 160, 1000, 16000])
def test_streaming_matches_the_offline_windows_at_any_block_size(
    loud: Path, tmp_path: Path, block: int
) -> None:
    audio, truth = sequence(silence(1.5), ("yes", "1"), silence(1.5))
    wav = write_wav(tmp_path / "one.wav", audio)
    ref = offline_posteriors(loud, quantized(wav))
    found = keywords(run_loop([KeywordSpotter(loud, smoothing=1, threshold=0.6)], wav, block))
    assert len(found) == 1, found
    e = found[0]
    # It fired at the first window whose posterior reached the threshold, with that posterior.
    end, p = next((end, p) for end, p in ref if p[2] >= 0.6)
    assert (e.word, e.end, e.start) == ("yes", pytest.approx(end), pytest.approx(end - 1.0))
    assert e.score == pytest.approx(p[2], abs=1e-4)
    assert e.stage == "kws.onnx"
    # Reported at the end of the block that completed the window: at once when blocks are 20 ms.
    assert e.end <= e.time < e.end + block / RATE
    if block in (160, 320):
        assert e.time == pytest.approx(e.end)
    assert e.start < truth[0][2] and e.end > truth[0][1]


@needs_digits
def test_smoothing_averages_the_last_windows(loud: Path, tmp_path: Path) -> None:
    audio, _ = sequence(silence(1.5), ("yes", "1"), silence(1.5))
    wav = write_wav(tmp_path / "one.wav", audio)
    ref = offline_posteriors(loud, quantized(wav))
    ends = [end for end, _ in ref]
    yes = np.array([p[2] for _, p in ref])
    smooth = np.array([yes[max(0, i - 2) : i + 1].mean() for i in range(len(yes))])
    first = int(np.argmax(smooth >= 0.6))
    [e] = keywords(run_loop([KeywordSpotter(loud, smoothing=3, threshold=0.6)], wav))
    assert e.end == pytest.approx(ends[first]) and e.score == pytest.approx(smooth[first], abs=1e-4)
    [raw] = keywords(run_loop([KeywordSpotter(loud, smoothing=1, threshold=0.6)], wav))
    assert raw.end <= e.end  # smoothing only delays


@needs_digits
def test_hop_sets_how_often_windows_are_classified(loud: Path, tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "x.wav", sequence(silence(1.0), ("yes", "1"), silence(1.0))[0])
    n = WavFile(wav).num_samples
    frames = CFG.n_frames(-(-n // 320) * 320)  # the padded last block is heard too
    for hop, step in [(0.1, 5), (0.02, 1), (0.04, 2)]:
        stage = KeywordSpotter(loud, hop=hop)
        events = keywords(run_loop([stage], wav))
        assert stage.windows == 1 + (frames - CFG.n_frames()) // step
        for e in events:  # every window ends on the hop grid after the first second
            assert (e.end - 1.0) / hop == pytest.approx(round((e.end - 1.0) / hop), abs=1e-6)
    for bad in (0.03, 0.0, 2.0):
        with pytest.raises(BadInputError, match="multiple of the front end's frame hop"):
            KeywordSpotter(loud, hop=bad)


@needs_digits
def test_thresholds_from_metadata_from_options_and_per_word(tmp_path: Path) -> None:
    audio, _ = sequence(silence(1.5), ("yes", "1"), silence(1.5))
    wav = write_wav(tmp_path / "one.wav", audio)
    # A gentle slope, so the posterior tops out well below 1 and a tuned threshold can sit above it.
    top = max(p[2] for _, p in offline_posteriors(loudness_model(tmp_path / "a.onnx", 0.1), quantized(wav)))
    assert 0.5 < top < 0.99
    tuned = loudness_model(tmp_path / "tuned.onnx", 0.1, thresholds={"yes": round(top + 1e-3, 6)})
    assert read_kws_metadata(tuned).thresholds == {"yes": round(top + 1e-3, 6)}
    assert keywords(run_loop([KeywordSpotter(tuned, smoothing=1)], wav)) == []  # never reached
    assert len(keywords(run_loop([KeywordSpotter(tuned, smoothing=1, threshold=0.5)], wav))) == 1
    assert len(keywords(run_loop([KeywordSpotter(tuned, smoothing=1, threshold={"yes": 0.5})], wav))) == 1
    with pytest.raises(BadInputError, match="'maybe', which is not a keyword"):
        KeywordSpotter(tuned, threshold={"maybe": 0.5})
    with pytest.raises(BadInputError, match=r"number in \(0, 1\]"):
        KeywordSpotter(tuned, threshold=1.5)


@needs_digits
def test_one_detection_per_utterance_and_the_refractory_period(loud: Path, tmp_path: Path) -> None:
    # Three digits back to back: the window stays loud, so "yes" fires once however long it lasts.
    run_on = write_wav(
        tmp_path / "run.wav", sequence(silence(1), ("yes", "1"), ("yes", "9"), ("yes", "2"))[0]
    )
    assert len(keywords(run_loop([KeywordSpotter(loud, refractory=0.0)], run_on))) == 1
    # Two utterances 1.2 s apart: the score falls between them, so both fire...
    audio, truth = sequence(silence(1.2), ("yes", "1"), silence(1.2), ("yes", "9"), silence(1.2))
    wav = write_wav(tmp_path / "two.wav", audio)
    two = keywords(run_loop([KeywordSpotter(loud)], wav))
    assert [e.word for e in two] == ["yes", "yes"]
    assert two[1].time - two[0].time > 1.0
    # ...unless the refractory period is longer than the gap.
    gap = two[1].end - two[0].end
    assert len(keywords(run_loop([KeywordSpotter(loud, refractory=gap + 0.1)], wav))) == 1
    assert detection_latency(two, truth).hits == 2


def test_two_words_and_never_the_fillers(tmp_path: Path) -> None:
    model = tone_model(tmp_path / "tones.onnx")
    wav = write_wav(
        tmp_path / "t.wav", np.concatenate([silence(1.0), tone(300, 1.2), silence(1.2), tone(3000, 1.2)])
    )
    found = keywords(run_loop([KeywordSpotter(model)], wav))
    assert [e.word for e in found] == ["yes", "no"] and all(e.score >= 0.5 for e in found)
    # A model sure of "_silence_" and "_unknown_" everywhere, at the lowest threshold: still nothing.
    w = np.zeros((CFG.dims(), 3))
    fillers = make_model(
        tmp_path / "fill.onnx", ["_silence_", "_unknown_", "yes"], w, np.array([9.0, 9.0, 0.0])
    )
    assert keywords(run_loop([KeywordSpotter(fillers, threshold=1e-3)], wav)) == []


def test_silence_and_quiet_noise_give_nothing(loud: Path, tmp_path: Path) -> None:
    quiet = np.random.default_rng(0).normal(0, 1e-5, 5 * RATE).astype(np.float32)
    for name, x in [("zeros", silence(5)), ("noise", quiet)]:
        assert keywords(run_loop([KeywordSpotter(loud)], write_wav(tmp_path / f"{name}.wav", x))) == []


@needs_digits
def test_vad_gate_skips_windows_without_speech(tmp_path: Path, loud: Path) -> None:
    # A model that says "yes" to quiet: ungated it fires in the leading silence; gated it never runs there.
    quiet = loudness_model(tmp_path / "quiet.onnx", slope=-0.5, ref=-60.0)
    audio, truth = sequence(silence(3.0), ("yes", "1"), silence(2.0))
    wav = write_wav(tmp_path / "g.wav", audio)
    ungated = keywords(run_loop([EnergyVAD(), KeywordSpotter(quiet)], wav))
    assert ungated and ungated[0].end == pytest.approx(1.0)
    gated_stage = KeywordSpotter(quiet, gate="vad")
    gated = keywords(run_loop([EnergyVAD(), gated_stage], wav))
    assert all(e.start > 2.0 for e in gated)  # nothing from the windows of pure silence
    assert gated_stage.skipped > gated_stage.windows > 0
    # ...and its front end did not compute the silence either (only the second held before speech).
    ungated_stage = KeywordSpotter(quiet)
    run_loop([EnergyVAD(), ungated_stage], wav)
    assert gated_stage.heard < ungated_stage.heard - 16000
    # The real word is still found through the gate, as without it; a hop earlier at most, since the
    # smoothing then averages only windows heard since the gate opened (not the silence before).
    through = keywords(run_loop([EnergyVAD(), KeywordSpotter(loud, gate="vad")], wav))
    plain = keywords(run_loop([EnergyVAD(), KeywordSpotter(loud)], wav))
    assert len(plain) == len(through) == 1 and through[0].word == plain[0].word == "yes"
    assert plain[0].end - 0.1 - 1e-6 <= through[0].end <= plain[0].end
    assert detection_latency(through, truth).hits == 1
    with pytest.raises(BadInputError, match="gate"):
        KeywordSpotter(loud, gate="energy")


@needs_digits
def test_reset_replays_the_same_and_flush_adds_nothing(loud: Path) -> None:
    audio, _ = sequence(silence(1.0), ("yes", "1"), silence(1.0))
    stage = KeywordSpotter(loud)

    def feed() -> list[Event]:
        out: list[Event] = []
        for i, k in enumerate(range(0, len(audio), 700)):
            out += stage.process(Block(audio[k : k + 700], RATE, k / RATE, i)).events
        end = Block(np.zeros(0, np.float32), RATE, len(audio) / RATE, 0)
        stage.flush(end)
        assert end.events == []
        return out

    first = feed()
    assert len(first) == 1
    stage.reset()
    assert feed() == first


# -- detection latency --------------------------------------------------------------------------------


def test_detection_latency_matches_events_to_truth() -> None:
    ev = [
        KeywordDetected("kws", 2.0, "yes", 0.9, 1.0, 2.0),
        {"event": "speech_start", "time": 0.5},  # other kinds are ignored
        {"event": "keyword", "time": 2.3, "word": "yes", "score": 0.8, "start": 1.3, "end": 2.3},  # repeat
        {"event": "keyword", "time": 6.0, "word": "no", "score": 0.8, "start": 5.0, "end": 6.0},  # wrong word
    ]
    truth = [("yes", 1.2, 1.7), {"word": "no", "start": 3.0, "end": 3.5}]
    r = detection_latency(ev, truth)
    assert r.latencies == [pytest.approx(0.3), None]
    assert (r.hits, r.misses, len(r.false_alarms)) == (1, 1, 2)
    assert detection_latency(ev, truth, delay=0.01).latencies[0] == pytest.approx(0.31)
    assert detection_latency(ev, truth, max_latency=0.2).hits == 0
    assert r.to_dict()["latency_p50"] == pytest.approx(0.3)


@needs_digits
def test_detection_latency_through_the_loop(loud: Path, tmp_path: Path) -> None:
    audio, truth = sequence(silence(1.5), ("yes", "1"), silence(1.5), ("yes", "9"), silence(1.5))
    wav = write_wav(tmp_path / "l.wav", audio)
    log = tmp_path / "ev.jsonl"
    AudioLoop(WavFile(wav), [KeywordSpotter(loud)], events_path=log).run()
    r = detection_latency(read_events(log), truth)
    assert r.hits == 2 and r.false_alarms == []
    # The loud-window model fires once about half a second of speech fills the window: before the word
    # ends or a few hops after it; never more than a window late.
    assert all(-1.0 < x < 1.0 for x in r.latencies if x is not None)


# -- model file errors --------------------------------------------------------------------------------


def test_wrong_metadata_is_a_clear_error(tmp_path: Path) -> None:
    w, b = np.zeros((CFG.dims(), 3)), np.zeros(3)
    labels = ["_silence_", "_unknown_", "yes"]
    cases = [
        ({"edge_sdk.kws.labels": None}, "has no metadata 'edge_sdk.kws.labels'"),
        ({"edge_sdk.kws.features": None}, "has no metadata 'edge_sdk.kws.features'"),
        ({"edge_sdk.kws.labels": json.dumps(["yes", "no", "up"])}, "starting \\['_silence_', '_unknown_'\\]"),
        ({"edge_sdk.kws.labels": "[not json"}, "is not JSON"),
        ({"edge_sdk.kws.features": json.dumps({"n_mfcc": 10, "colour": 3})}, "unknown KWS feature settings"),
        ({"edge_sdk.kws.thresholds": json.dumps({"no": 0.5})}, "'no', which is not a keyword"),
    ]
    for i, (meta, message) in enumerate(cases):
        path = make_model(tmp_path / f"m{i}.onnx", labels, w, b, meta=meta)
        with pytest.raises(BadInputError, match=message):
            KeywordSpotter(path)
    # The metadata says 13 MFCCs but the model takes 10: the message says what was expected.
    other = KwsFeatureConfig(n_mfcc=13)
    path = make_model(
        tmp_path / "shape.onnx", labels, w, b, meta={"edge_sdk.kws.features": json.dumps(other.to_dict())}
    )
    with pytest.raises(BadInputError, match=r"needs float32\[batch, 1, 49, 13\]"):
        KeywordSpotter(path)
    path = make_model(tmp_path / "frames.onnx", labels, w, b, frames=40)
    with pytest.raises(
        BadInputError, match=r"features: float32\[batch, 1, 40, 10\].*needs float32\[batch, 1, 49, 10\]"
    ):
        KeywordSpotter(path)
    with pytest.raises(BadInputError, match="does not exist"):
        KeywordSpotter(tmp_path / "missing.onnx")
    with pytest.raises(BadInputError, match="expects 16000 Hz"):
        KeywordSpotter(make_model(tmp_path / "ok.onnx", labels, w, b), sample_rate=8000)


def test_a_model_with_a_fixed_batch_of_one(tmp_path: Path) -> None:
    model = loudness_model(tmp_path / "b1.onnx", batch=1)
    wav = write_wav(tmp_path / "t.wav", np.concatenate([silence(1.0), tone(300, 1.5), silence(1.0)]))
    batched = keywords(run_loop([KeywordSpotter(loudness_model(tmp_path / "bn.onnx"))], wav, 16000))
    single = keywords(run_loop([KeywordSpotter(model)], wav, 16000))
    assert single == batched and len(single) == 1


# -- zoo, chain and CLI -------------------------------------------------------------------------------


def test_zoo_resolves_bundled_models_before_the_catalog(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGE_SDK_CACHE", str(tmp_path / "cache"))
    shipped = zoo.BUNDLED_ROOT / "tiny-denoiser" / "model.onnx"
    assert zoo.bundled("zoo:tiny-denoiser") == shipped == zoo.resolve("zoo:tiny-denoiser")
    assert zoo.bundled("../zoo") is None and zoo.bundled("no-such-model") is None
    assert not (tmp_path / "cache").exists()  # no cache, no network
    with pytest.raises(
        BadInputError, match="'no-such-model'; bundled: .*tiny-denoiser.*catalog holds: .*silero"
    ):
        zoo.resolve("zoo:no-such-model")


def test_chain_puts_the_spotter_after_the_vad(loud: Path, tmp_path: Path) -> None:
    chain, notes = audio_stages(
        vad="energy", kws=str(loud), kws_threshold=0.7, kws_gate=True, record=tmp_path / "r.wav"
    )
    try:
        assert [s.name for s in chain] == ["vad.energy", "kws.onnx", "record.wav"] and notes == []
        assert chain[1].gate == "vad" and chain[1].thresholds == {"yes": 0.7}
    finally:
        for s in chain:
            s.close()
    with pytest.raises(BadInputError, match="needs both a keyword model and a VAD"):
        audio_stages(kws=str(loud), kws_gate=True)


@needs_digits
def test_cli_prints_and_logs_keyword_events(loud: Path, tmp_path: Path) -> None:
    audio, truth = sequence(silence(1.5), ("yes", "1"), silence(1.5))
    wav = write_wav(tmp_path / "in.wav", audio)
    events = tmp_path / "out.jsonl"
    args = ["run", "audio", "--source", str(wav), "--denoise", "none", "--vad", "energy", "--kws", str(loud)]
    r = subprocess.run(
        [EXE, *args, "--events", str(events)],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ),
    )
    assert r.returncode == 0, r.stderr
    line = next(line for line in r.stdout.splitlines() if "keyword" in line)
    assert "kws.onnx" in line and "YES" in line and "score=" in line and "window " in line
    logged = [e for e in read_events(events) if e["event"] == "keyword"]
    assert len(logged) == 1 and logged[0]["word"] == "yes" and logged[0]["stage"] == "kws.onnx"
    assert {"time", "score", "start", "end", "wall_time"} <= logged[0].keys()
    assert detection_latency(logged, truth).hits == 1
    r = subprocess.run(
        [EXE, *args, "--kws-gate", "--kws-threshold", "0.99", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert [s["name"] for s in summary["stages"]] == ["vad.energy", "kws.onnx"]
    bad = make_model(tmp_path / "bad.onnx", ["yes"], np.zeros((10, 1)), np.zeros(1))
    r = subprocess.run(
        [EXE, "run", "audio", "--source", str(wav), "--vad", "none", "--kws", str(bad)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 2 and "edge_sdk.kws.labels" in r.stderr
