"""End to end through the installed ``edge-sdk``: ``run audio`` on a WAV file and ``devices --audio``."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import wave
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from edge_sdk.errors import BadInputError, DownloadError
from edge_sdk.live.events import read_events
from edge_sdk.stages import make, names_of

pytest.importorskip("edge_sdk.devices.sources.audio", reason="the audio sources have not landed")

EXE = shutil.which("edge-sdk", path=str(Path(sys.executable).parent)) or "edge-sdk"
RATE = 16000


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EXE, *args], capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})}
    )


@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled clip with a second of silence before and after: utterances at 1.5-8.6 s, 9.6-12.59 s."""
    with resources.as_file(
        resources.files("edge_sdk") / "samples" / "librivox-sense-and-sensibility.wav"
    ) as p:
        with wave.open(str(p)) as w:
            pcm = w.readframes(w.getnframes())
    silence = b"\0\0" * RATE
    path = tmp_path_factory.mktemp("audio") / "speech.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(silence + pcm + silence)
    return path


@pytest.mark.network
def test_run_audio_writes_events_recording_and_summary(
    speech_wav: Path, tmp_path: Path, silero_cache: Path
) -> None:
    events, rec = tmp_path / "ev.jsonl", tmp_path / "rec.wav"
    r = cli(
        "run", "audio", "--source", str(speech_wav), "--vad", "silero", "--record", str(rec),
        "--events", str(events), "--json", env={"EDGE_SDK_CACHE": str(silero_cache)},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)  # nothing but JSON on stdout
    assert [s["name"] for s in summary["stages"]] == ["vad.silero", "record.wav"]
    assert summary["total"]["name"] == "total" and summary["notes"] == []
    assert all(s["blocks"] == summary["blocks"] and s["rtf"] < 1 for s in summary["stages"])
    assert summary["events"] == {"speech_start": 2, "speech_segment": 2} and not summary["interrupted"]
    logged = read_events(events)
    assert [e["event"] for e in logged] == ["speech_start", "speech_segment"] * 2
    segments = [(e["start"], e["end"]) for e in logged if e["event"] == "speech_segment"]
    for (s, e), (ts, te) in zip(segments, [(1.5, 8.6), (9.6, 12.59)], strict=True):
        assert abs(s - ts) < 0.35 and abs(e - te) < 0.35
    assert all({"stage", "time", "wall", "wall_time"} <= e.keys() for e in logged)
    with wave.open(str(speech_wav)) as w:
        n = w.getnframes()
    with wave.open(str(rec)) as w:
        # every block went through: the file's length rounded up to whole 20 ms blocks
        assert w.getnframes() == summary["blocks"] * 320 == -(-n // 320) * 320
        assert w.getframerate() == RATE
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ev.jsonl", "rec.wav"]  # no part file left


def test_run_audio_for_people_prints_events_live_and_the_table(speech_wav: Path) -> None:
    r = cli("run", "audio", "--source", str(speech_wav), "--vad", "energy", "--seconds", "5")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert any("vad.energy" in line and "speech_start" in line for line in lines)
    # --seconds 5 cuts the first sentence: the flush closes it at 5 s.
    assert any("speech_segment" in line and "end=5.000" in line for line in lines)
    assert "per stage" in r.stdout and "p99 ms" in r.stdout and "total" in r.stdout
    assert "5.00 s of audio" in r.stdout


def test_silero_unavailable_falls_back_to_energy_and_says_so(speech_wav: Path, tmp_path: Path) -> None:
    # An empty cache and an index that refuses connections: what a device without network sees.
    offline = {"EDGE_SDK_CACHE": str(tmp_path / "cache"), "EDGE_SDK_PYPI_INDEX": "http://127.0.0.1:9/simple"}
    r = cli("run", "audio", "--source", str(speech_wav), "--vad", "silero", "--json", env=offline)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert [s["name"] for s in summary["stages"]] == ["vad.energy"]
    assert len(summary["notes"]) == 1 and "fell back to vad.energy" in summary["notes"][0]
    assert "fell back to vad.energy" in r.stderr  # the logged warning
    assert summary["events"]["speech_segment"] == 2


@pytest.mark.parametrize("denoiser", names_of("denoise"))
def test_run_audio_with_a_denoiser(denoiser: str, speech_wav: Path, tmp_path: Path) -> None:
    try:
        make("denoise", denoiser).close()
    except (BadInputError, DownloadError) as e:  # a model not trained or not fetchable here
        pytest.skip(f"denoise.{denoiser} cannot be built here: {e}")
    rec = tmp_path / "rec.wav"
    r = cli(
        "run", "audio", "--source", str(speech_wav), "--denoise", denoiser, "--vad", "energy",
        "--record", str(rec), "--json",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert [s["name"] for s in summary["stages"]][1:] == ["vad.energy", "record.wav"]
    assert summary["stages"][0]["name"].startswith("denoise.")
    assert summary["events"].get("speech_segment", 0) >= 1
    with wave.open(str(rec)) as w:
        assert w.getnframes() == summary["blocks"] * 320


def test_ctrl_c_prints_the_summary(
    speech_wav: Path, tmp_path: Path, signal_at_first_event: Callable[..., Any]
) -> None:
    events = tmp_path / "ev.jsonl"
    # the first speech_start comes ~1.5 s into the file, in real time
    argv = [EXE, "run", "audio", "--source", str(speech_wav), "--vad", "energy", "--realtime"]
    r = signal_at_first_event([*argv, "--events", str(events)], events)
    out, err = r.stdout, r.stderr
    assert r.returncode == 0, err
    assert "interrupted" in out and "per stage" in out
    logged = read_events(events)
    assert [e["event"] for e in logged] == ["speech_start", "speech_segment"]  # closed by the flush
    assert logged[1]["end"] < 8.6


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_stop_signal_ends_the_run_as_ctrl_c_does(
    signum: int, speech_wav: Path, tmp_path: Path, signal_at_first_event: Callable[..., Any]
) -> None:
    # systemd and `docker stop` send SIGTERM, a closing terminal SIGHUP: the recording must be whole.
    rec, events = tmp_path / "rec.wav", tmp_path / "ev.jsonl"
    r = signal_at_first_event(
        [EXE, "run", "audio", "--source", str(speech_wav), "--vad", "energy", "--realtime",
         "--record", str(rec), "--events", str(events), "--json"],
        events,
        signum,
    )  # fmt: skip
    out = r.stdout
    assert r.returncode == 0, r.stderr  # as after Ctrl-C
    summary = json.loads(out)
    assert summary["interrupted"] and 0 < summary["audio_seconds"] < 14
    lines = events.read_text().splitlines()
    assert [json.loads(line)["event"] for line in lines] == ["speech_start", "speech_segment"]
    with wave.open(str(rec)) as w:
        assert w.getnframes() == summary["blocks"] * 320 > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ev.jsonl", "rec.wav"]  # no .part left


def test_bad_source_and_missing_microphone() -> None:
    r = cli("run", "audio", "--source", "no-such-file.wav")
    assert r.returncode == 2 and "no-such-file.wav" in r.stderr
    r = cli("run", "audio", "--source", "mic:NoSuchMicrophone", "--vad", "energy")
    # DeviceError (exit 1): the microphone asked for is not there; the message lists those that are.
    assert r.returncode == 1, r.stderr
    assert "audio input" in r.stderr
    assert "Jack" not in r.stderr and "ALSA lib" not in r.stderr  # PortAudio's noise is kept out


def test_bad_keyword_model_options(speech_wav: Path, tmp_path: Path) -> None:
    # Detections themselves are tested end to end in test_kws_stage.py; here the usage errors (exit 2).
    r = cli("run", "audio", "--source", str(speech_wav), "--kws", str(tmp_path / "missing.onnx"))
    assert r.returncode == 2 and "missing.onnx" in r.stderr and "does not exist" in r.stderr
    r = cli("run", "audio", "--source", str(speech_wav), "--vad", "none", "--kws", "x.onnx", "--kws-gate")
    assert r.returncode == 2 and "needs both a keyword model and a VAD" in r.stderr
    r = cli("run", "audio", "--source", str(speech_wav), "--kws-verify", "zoo:whisper-tiny.en")
    assert r.returncode == 2 and "verifying keywords needs a keyword model" in r.stderr
    r = cli("run", "audio", "--help")
    assert "--kws" in r.stdout and "--kws-threshold" in r.stdout and "keyword spotter" in r.stdout
    assert "--kws-verify" in r.stdout


def test_devices_audio_lists_inputs() -> None:
    r = cli("devices", "--audio", "--json")
    assert r.returncode == 0, r.stderr
    devices = json.loads(r.stdout)
    assert isinstance(devices, list)
    assert all({"index", "name", "max_input_channels", "default_sample_rate"} <= d.keys() for d in devices)
    r = cli("devices", "--audio")
    assert r.returncode == 0, r.stderr
    assert "audio input" in r.stdout


def test_without_pyaudio_the_extra_is_named(tmp_path: Path) -> None:
    # A pyaudio that cannot be imported, first on the path: the state of an install without the extra.
    (tmp_path / "pyaudio.py").write_text("raise ImportError('No module named pyaudio')\n")
    env = {"PYTHONPATH": str(tmp_path)}
    for args in (["devices", "--audio"], ["run", "audio", "--source", "mic", "--vad", "energy"]):
        r = cli(*args, env=env)
        assert r.returncode == 2, (args, r.stderr)
        assert "pip install 'edge-sdk[audio]'" in r.stderr.replace("\n", " ")


def test_model_run_is_unchanged_by_run_audio(tmp_path: Path) -> None:
    r = cli("run", "--help")
    assert r.returncode == 0 and "artifact" in r.stdout and "run audio" in r.stdout
    r = cli("run", str(tmp_path / "nothing.onnx"), "--input", str(tmp_path / "x.npy"))
    assert r.returncode == 2  # still the model runner, which rejects the input
