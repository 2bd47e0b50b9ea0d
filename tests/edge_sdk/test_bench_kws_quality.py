"""Smoke test of bench/kws_quality.py: every measurement (held-out voices, real digits, false accepts and
latency through the streaming stage, fp32/int8 per format) runs end to end on a tiny model the recipe
trains for two steps, and the document carries its header and tables. The benchmark itself is a script."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from edge_sdk.train import speech_data

pytestmark = [
    pytest.mark.torch,
    pytest.mark.skipif(not speech_data.tts_available("espeak-ng"), reason="espeak-ng is not installed"),
]


def smoke_settings(kq: ModuleType, **sizes: object) -> object:
    """The benchmark's settings at their smallest, with ``sizes`` on top."""
    smallest = dict(calib_per_word=1, harvard_voices=1, latency_per_word=1, real_positions=1, latency_runs=5)
    smallest.update(noise_seconds=1.0, real_snrs=(10,), fa_snrs=(10,), chunk_seconds=20.0, cost_seconds=3.0)
    return kq.Settings(**{**smallest, **sizes})


@pytest.fixture(scope="module")
def kq(bench_module: Callable[..., ModuleType]) -> ModuleType:
    """bench/kws_quality.py imported as a module."""
    return bench_module("kws_quality", "torch", "soxr")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A KWS model for 'yes' and 'seven' (a digit, so the real-digit set is not empty): two steps of
    the recipe on a handful of synthesised clips; what it scores does not matter here."""
    from edge_sdk.train import kws

    out = tmp_path_factory.mktemp("kws")
    argv = ["--words", "yes,seven", "--out", str(out), "--per-word", "4", "--test-per-word", "2"]
    argv += ["--steps", "2", "--batch", "8", "--noise-seconds", "1", "--engines", "espeak-ng"]
    args = kws.build_arg_parser().parse_args(argv)
    args.argv = argv
    kws.train(args)
    return out / "model.onnx"


def test_negative_text_filter(kq: ModuleType) -> None:
    banned = kq.banned_words(["yes", "two", "stop"])
    assert {"two", "to", "too", "four", "for", "nine", "yes", "stop"} <= banned
    assert kq.is_keyword_free("The birch canoe slid on the smooth planks.", kq.banned_words(["yes"]))
    assert not kq.is_keyword_free("Please press 1.", banned)
    assert not kq.is_keyword_free("Press # to continue", banned)
    assert not kq.is_keyword_free("Welcome to the system", banned)  # "to" sounds like "two"
    assert not kq.is_keyword_free("Stop!", banned)
    assert kq.is_keyword_free("Stopping at nonstop stores", banned)  # whole words only
    assert not kq.is_keyword_free("A non-stop flight", banned)  # "stop" is spoken there


def test_every_measurement_runs_on_a_tiny_model(
    kq: ModuleType, tiny_model: Path, tmp_path: Path, bench_module: Callable[..., ModuleType]
) -> None:
    kws_quality_report = bench_module("kws_quality_report")

    r = kq.measure(
        str(tiny_model), smoke_settings(kq, per_word=2, asterisk_limit=3, jobs=2), log=lambda m: None
    )
    assert r["labels"] == ["_silence_", "_unknown_", "yes", "seven"]
    for cond in ("clean", "noisy"):
        assert r["synthetic"][cond]["n"] >= 4 and 0 <= r["synthetic"][cond]["accuracy"] <= 1
    kinds = r["real_noise"]["kinds"]
    assert "babble" in kinds and not {"white", "pink"} & set(kinds)  # recorded noise only
    fa = r["false_accepts"]
    assert fa["all"]["hours"] > 0 and fa["synthetic"]["per_hour"] is not None
    want = {"clean"} | {f"{k} 10 dB" for k in kinds}
    assert {row["condition"] for row in fa["rows"]} == want
    assert {row["corpus"] for row in fa["rows"] if not row["real"]} == {"harvard-tts"}
    assert r["negatives"]["synthetic_utterances"] > 0
    if speech_data.ASTERISK_TRANSCRIPTS.exists():
        assert fa["real"]["hours"] > 0 and fa["distinct_hours"] > 0
        stream = r["real_stream"]
        assert stream["conditions"] == ["clean"] + [f"{k} 10 dB" for k in kinds]
        seven = stream["clean"]["digits"]  # the model's one digit, said in the Asterisk prompts
        assert seven["keywords"] >= 2 and 0 <= seven["hits"] <= seven["keywords"]
    cost = r["cost"]["runs"]
    assert cost["ungated"]["kws_skipped"] == 0 and cost["ungated"]["cpu_per_audio_second"] > 0
    # the gate skips windows (each opening restarts the front end on its own grid: no exact sum)
    assert cost["gated"]["kws_skipped"] > 0 and cost["gated"]["kws_windows"] < cost["ungated"]["kws_windows"]
    lat = r["latency"]
    assert lat["keywords"] == 2 and 0 <= lat["detection_rate"] <= 1
    rows = {(row["format"], row["precision"]): row for row in r["formats"]}
    assert set(rows) == {(f, p) for f in ("onnx", "openvino", "tflite") for p in ("fp32", "int8")}
    for row in rows.values():  # a failure is reported, not hidden; onnx must work here
        assert "error" in row or ("synthetic-clean" in row and row["ms_per_inference"] > 0)
    assert "error" not in rows["onnx", "int8"]
    assert rows["onnx", "fp32"]["synthetic-clean"] == pytest.approx(r["synthetic"]["clean"]["accuracy"])
    if (speech_data.ASTERISK_ROOT / "digits" / "7.wav").exists():
        assert r["real"]["real-clean"]["n"] >= 1 and "real-noisy" in r["real"]
        assert set(r["real"]["real-noisy"]["per_class"]) == {"seven"}

    r.update(argv=["--model", str(tiny_model)], load_average_at_start=0.0, cpus=2)
    md = kws_quality_report.to_markdown(r)
    assert md.startswith("# Keyword spotter quality\n\nGenerated by `nice -n 10 .venv/bin/python bench/")
    assert "Do not edit by hand." in md
    headings = ("## Summary", "## False accepts per hour", "## Detection latency", "## Formats")
    headings += ("## The loop's CPU",)
    if speech_data.ASTERISK_TRANSCRIPTS.exists():
        headings += ("## Real keyword recordings, streamed", "## Real recordings used")
    for heading in headings:
        assert heading in md
    assert "held-out" in md and "en-029" in md


def test_the_running_speech_development_set_scores_every_window(
    tiny_model: Path, bench_module: Callable[..., ModuleType]
) -> None:
    from edge_sdk.stages.kws import hop_frames, read_kws_metadata
    from edge_sdk.train import kws_running

    dev = bench_module("kws_running_dev")
    utts = kws_running.synthesize_running(["yes", "seven"], "train", 6, seed=77, engines=("espeak-ng",))
    said = sum(u.keyword is not None for u in utts)
    assert said >= 1
    got = dev.score(tiny_model, utts, seed=77, fixed=(1e-6, 1.0))
    assert got["keywords"] == 2 * said  # each utterance heard clean and in noise
    # a threshold nothing misses: every keyword heard, every negative window over it (one each hop)
    cfg = read_kws_metadata(tiny_model).features
    per_hour = 3600 / (hop_frames(cfg) * cfg.hop / cfg.sample_rate)
    assert got["1e-06"]["recall"] == 1.0
    assert got["1e-06"]["windows_per_hour"] == pytest.approx(per_hour, rel=1e-3)
    assert got["1"]["windows_per_hour"] <= got["own"]["windows_per_hour"] <= per_hour


@pytest.mark.network
def test_a_ctc_spotter_verified_by_whisper_goes_through_the_same_measurements(
    kq: ModuleType,
    embedding_cache: Path,
    whisper_cache: Path,
    monkeypatch: pytest.MonkeyPatch,
    bench_module: Callable[..., ModuleType],
) -> None:
    from edge_sdk.asr.whisper_build import whisper_model

    monkeypatch.setenv("EDGE_SDK_CACHE", str(embedding_cache))
    whisper = whisper_model("zoo:whisper-tiny.en", cache_dir=whisper_cache)
    s = smoke_settings(
        kq, per_word=1, asterisk_limit=2, formats=("onnx",), verify=str(whisper), cost_seconds=10.0
    )
    r = kq.measure("zoo:commands-ctc", s, log=lambda m: None)
    assert (r["spotter"], r["first_stage"], r["verify"]) == ("kws.verify", "kws.ctc", str(whisper))
    assert r["labels"][:2] == ["_silence_", "_unknown_"] and len(r["labels"]) == 22
    # windows are judged by kws.ctc at its own thresholds, streams by proposals at the verifier's
    assert set(r["thresholds"].values()) == {0.85}
    assert set(r["false_accepts"]["thresholds"].values()) == {0.3}
    assert "kws.verify" in r["cost"]["stage_names"]
    for run in r["cost"]["runs"].values():
        v = run["verifier"]
        assert v["confirmed"] == run["keyword_events"] and v["proposed"] >= v["confirmed"]
        assert 0 < v["transcripts"] <= v["proposed"]  # real digits: the recogniser was asked
    rows = {(row["format"], row["precision"]): row for row in r["formats"]}
    assert "error" not in rows["onnx", "fp32"] and "error" not in rows["onnx", "int8"]
    # the Session's scores of the windows are the benchmark's own (one scoring for both)
    assert rows["onnx", "fp32"]["synthetic-clean"] == pytest.approx(r["synthetic"]["clean"]["accuracy"])
    r.update(argv=["--model", "zoo:commands-ctc"], load_average_at_start=0.0, cpus=2)
    md = bench_module("kws_quality_report").to_markdown(r)
    assert "the `kws.verify` stage: the `kws.ctc` stage" in md and "0.8 s longer" in md
    assert "judge `kws.ctc` alone" in md
