"""The microphone path for real: PyAudio → PortAudio → ALSA, with no sound card.

tests/devices/alsa/edgesdk.conf defines ALSA capture devices that read raw speech from a file (the
bundled LibriVox sample). ALSA reads its configuration when PortAudio initialises, so every scenario
runs in a subprocess (tests/devices/alsa/capture.py) with ALSA_CONFIG_PATH set; the samples it read
come back as .npy and are compared with the file. Those devices are not paced in real time (they
deliver as fast as PortAudio asks), which makes a consumer that does not read overrun at once.

The streaming resampler tests at the end need no PyAudio.
"""

from __future__ import annotations

import json
import subprocess
import sys
import wave
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_sdk.devices.sources.resample import PolyphaseResampler, StreamResampler

ALSA_DIR = Path(__file__).parent / "alsa"
WORDS = 8000  # the sample's first word starts 0.5 s in
SYSTEM_ALSA_CONF = Path("/usr/share/alsa/alsa.conf")

try:
    import pyaudio  # noqa: F401

    _PYAUDIO_ERROR = ""
except ImportError as e:
    _PYAUDIO_ERROR = f"pyaudio is not importable ({e}); pip install 'edge-sdk[audio]'"

_MARKS = (
    pytest.mark.audio,
    pytest.mark.skipif(bool(_PYAUDIO_ERROR), reason=_PYAUDIO_ERROR),
    pytest.mark.skipif(
        not sys.platform.startswith("linux") or not SYSTEM_ALSA_CONF.exists(),
        reason="needs Linux with ALSA's configuration in /usr/share/alsa",
    ),
)


def needs_alsa(test: Any) -> Any:
    """Mark a test as needing PyAudio on ALSA (skipped with the reason otherwise)."""
    for mark in _MARKS:
        test = mark(test)
    return test


@cache
def speech16() -> np.ndarray:
    """The bundled 16 kHz speech sample as int16."""
    path = files("edge_sdk") / "samples" / "librivox-sense-and-sensibility.wav"
    with wave.open(str(path)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").copy()


def run_scenario(env: dict[str, str], **args: Any) -> tuple[dict[str, Any], str]:
    """Run capture.py with ``args``; return its JSON result and its stderr."""
    proc = subprocess.run(
        [sys.executable, str(ALSA_DIR / "capture.py"), json.dumps(args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


def align(got: np.ndarray, ref: np.ndarray, search: int = 4000) -> int:
    """The offset in ``got`` where ``ref`` starts: the shift that best matches a stretch of speech.

    Least squares rather than plain correlation, which favours loud stretches over the right one.
    """
    probe = ref[8000:12000].astype(np.float64)  # 0.5 s in: the first words, not the leading silence
    windows = np.lib.stride_tricks.sliding_window_view(got[: 12000 + search].astype(np.float64), len(probe))
    start = 8000 - min(search, 8000)
    errors = np.sum((windows[start:] - probe) ** 2, axis=1)
    return int(np.argmin(errors)) + start - 8000


def to_int16(x: np.ndarray) -> np.ndarray:
    """Float samples back to the integers they came from (exact for int16 / 32768)."""
    return np.round(x * 32768).astype(np.int32)


def snr_db(got: np.ndarray, want: np.ndarray) -> float:
    """Signal-to-error ratio of ``got`` against ``want`` in dB (inf when identical)."""
    err = np.sum((got.astype(np.float64) - want) ** 2)
    return float("inf") if err == 0 else float(10 * np.log10(np.sum(want.astype(np.float64) ** 2) / err))


@needs_alsa
def test_listing_finds_the_fixture_pcms(alsa_env: dict[str, str]) -> None:
    result, _ = run_scenario(alsa_env, list=True)
    by_name = {d["name"]: d for d in result["devices"]}
    assert {"edgesdk_mic", "edgesdk_mic48", "edgesdk_words", "default"} <= set(by_name)
    mic = by_name["edgesdk_mic"]
    assert mic["max_input_channels"] >= 1 and mic["host_api"] == "ALSA" and mic["default_sample_rate"] > 0


@needs_alsa
def test_captured_samples_are_the_file_samples(alsa_env: dict[str, str], tmp_path: Path) -> None:
    ref = speech16()
    blocks = -(-len(ref) // 320) + 20
    # drop="newest" and a ring that holds the whole file: the device delivers far faster than real
    # time, so with "oldest" the start of the file would be gone before we read it
    result, _ = run_scenario(
        alsa_env, device="edgesdk_mic", drop="newest", buffer_blocks=blocks, wait=0.5, blocks=blocks,
        out=str(tmp_path / "got.npy"),
    )  # fmt: skip
    assert "error" not in result, result
    assert result["opened_rate"] == 16000 and result["resample_method"] is None
    assert "supports 16000 Hz" in result["rate_reason"]
    assert result["shapes"] == [320] and result["dtypes"] == ["float32"] and result["max_abs"] <= 1.0
    # the ring filled during the wait, so the device's later (stale) data was dropped and counted
    assert result["overruns_before_read"] > 0
    got = to_int16(np.load(tmp_path / "got.npy"))
    offset = align(got, ref)
    assert 0 <= offset < 320, offset
    # after the file's end the PCM returns stale buffer data: compare only the file's length
    np.testing.assert_array_equal(got[offset : offset + len(ref)], ref)


@needs_alsa
def test_default_input_through_open_audio_source(alsa_env: dict[str, str]) -> None:
    # the wait lets the unpaced device fill the ring before we read; without it, whether an overrun
    # happened depends on how fast this machine starts reading (CI once read fast enough for none)
    result, _ = run_scenario(alsa_env, spec="mic", blocks=50, wait=0.5)
    assert "error" not in result, result
    assert result["name"] == "default" and result["opened_rate"] == 16000
    assert result["shapes"] == [320] and result["dtypes"] == ["float32"]
    # default drop="oldest": the unpaced device has long filled the ring, so what comes out is its
    # latest (stale, after the file's end) data, and the loss is counted
    assert result["overruns_before_read"] > 0 and 0 < result["max_abs"] <= 1.0


@needs_alsa
def test_unknown_name_lists_the_inputs_there_are(alsa_env: dict[str, str]) -> None:
    result, _ = run_scenario(alsa_env, device="no-such-microphone")
    assert result["error"]["type"] == "DeviceError"
    message = result["error"]["message"]
    assert "no-such-microphone" in message and "edgesdk_mic" in message and "edgesdk_mic48" in message


@needs_alsa
def test_no_input_devices_at_all_says_so(alsa_env: dict[str, str]) -> None:
    env = dict(alsa_env, ALSA_CONFIG_PATH=str(SYSTEM_ALSA_CONF))  # without the edgesdk PCMs
    listed, _ = run_scenario(env, list=True)
    if listed["devices"]:
        pytest.skip(f"this machine has real audio inputs: {[d['name'] for d in listed['devices']]}")
    result, _ = run_scenario(env, spec="mic:anything")
    assert result["error"]["type"] == "DeviceError"
    assert "no audio input devices" in result["error"]["message"]


@needs_alsa
def test_ambiguous_name_and_bad_index(alsa_env: dict[str, str]) -> None:
    result, _ = run_scenario(alsa_env, device="edgesdk")
    assert result["error"]["type"] == "DeviceError"
    assert "matches 3 audio inputs" in result["error"]["message"]
    result, _ = run_scenario(alsa_env, spec="mic:4242")
    assert result["error"]["type"] == "DeviceError" and "index 4242" in result["error"]["message"]
    # an exact name wins over the longer names containing it
    result, _ = run_scenario(alsa_env, device="EDGESDK_MIC", blocks=1)
    assert result["name"] == "edgesdk_mic"


@needs_alsa
def test_alsa_and_jack_noise_stays_out_of_stderr(alsa_env: dict[str, str]) -> None:
    _, stderr = run_scenario(alsa_env, device="edgesdk_mic", blocks=5)
    assert "ALSA lib" not in stderr and "jack" not in stderr.lower(), stderr
    # the noise is real here: at DEBUG it is let through
    _, stderr = run_scenario(alsa_env, device="edgesdk_mic", blocks=5, debug=True)
    assert "ALSA lib" in stderr


@needs_alsa
def test_device_rate_is_resampled_to_the_rate_asked(alsa_env: dict[str, str], tmp_path: Path) -> None:
    ref = speech16()
    blocks = -(-len(ref) // 320) + 20
    result, _ = run_scenario(
        alsa_env, device="edgesdk_mic48", device_rate=48000, drop="newest", buffer_blocks=blocks, wait=0.5,
        blocks=blocks, out=str(tmp_path / "got.npy"),
    )  # fmt: skip
    assert "error" not in result, result
    assert result["opened_rate"] == 48000 and result["resample_method"] == "soxr"
    assert "device_rate=48000" in result["rate_reason"] and result["shapes"] == [320]
    got = np.load(tmp_path / "got.npy")
    offset = align(to_int16(got), ref)
    assert abs(offset) < 320, offset
    want = ref.astype(np.float32) / 32768
    snr = snr_db(got[offset + 100 : offset + len(ref) - 100], want[100 : len(ref) - 100])
    assert snr > 40, snr  # 16 kHz → 48 kHz (offline) → 16 kHz (streaming, in the microphone)


@needs_alsa
def test_unsupported_rate_falls_back_to_native_and_resamples(
    alsa_env: dict[str, str], tmp_path: Path
) -> None:
    soxr = pytest.importorskip("soxr")
    rate, block = 768000, 15360  # 20 ms: above what ALSA's null PCM accepts
    native_blocks = -(-len(speech16()) // 882) + 20  # 20 ms blocks at the device's 44.1 kHz
    result, _ = run_scenario(
        alsa_env, device="edgesdk_mic", sample_rate=rate, block_size=block, drop="newest",
        buffer_blocks=native_blocks, wait=0.5, blocks=200, out=str(tmp_path / "got.npy"),
    )  # fmt: skip
    assert "error" not in result, result
    if result["opened_rate"] == rate:
        pytest.skip(f"this ALSA accepts {rate} Hz on a null PCM, so there is nothing to fall back from")
    assert result["opened_rate"] == 44100 and result["resample_method"] == "soxr"
    assert f"cannot capture at {rate} Hz" in result["rate_reason"] and "native 44100" in result["rate_reason"]
    assert result["shapes"] == [block]
    # the device played the 16 kHz samples as if they were 44.1 kHz: that is what must come out
    want = soxr.resample(speech16().astype(np.float32) / 32768, 44100, rate)
    got = np.load(tmp_path / "got.npy")
    n = min(len(got), len(want)) - 1000
    snr = snr_db(got[1000:n], want[1000:n])
    assert snr > 40, snr


@needs_alsa
@pytest.mark.parametrize("drop", ["oldest", "newest"])
def test_a_consumer_that_does_not_read_overruns(alsa_env: dict[str, str], tmp_path: Path, drop: str) -> None:
    result, _ = run_scenario(
        alsa_env, device="edgesdk_words", buffer_blocks=4, drop=drop, wait=0.3, blocks=4,
        out=str(tmp_path / "got.npy"),
    )  # fmt: skip
    assert "error" not in result, result
    assert result["overruns_before_read"] > 10  # the device delivers hundreds of blocks in 0.3 s
    assert result["overruns"] >= result["overruns_before_read"]
    assert result["overflows"] == 0  # PortAudio reported no input overflow: the loss was ours
    got = to_int16(np.load(tmp_path / "got.npy"))
    words = speech16()[WORDS : WORDS + 4 * 320]
    if drop == "newest":  # what was buffered first survives: the start of the file
        np.testing.assert_array_equal(got, words)
    else:  # the start of the file was pushed out by later data
        assert not np.array_equal(got, words)


# --- the streaming resamplers, on real speech (no PyAudio needed) ---------------------------------


@pytest.mark.parametrize(("in_rate", "out_rate"), [(48000, 16000), (44100, 16000), (8000, 16000)])
@pytest.mark.parametrize("soxr_wanted", [True, False], ids=["soxr", "polyphase"])
def test_stream_resampler_matches_one_shot(in_rate: int, out_rate: int, soxr_wanted: bool) -> None:
    soxr = pytest.importorskip("soxr")
    x = soxr.resample(speech16().astype(np.float32) / 32768, 16000, in_rate)
    stream = StreamResampler(in_rate, out_rate, prefer_soxr=soxr_wanted)
    assert stream.method == ("soxr" if soxr_wanted else "polyphase")
    chunk = round(0.02 * in_rate)  # what a microphone callback delivers
    pieces = [stream.process(x[i : i + chunk]) for i in range(0, len(x), chunk)]
    pieces.append(stream.process(np.zeros(0, np.float32), last=True))
    y = np.concatenate(pieces)
    want = soxr.resample(x, in_rate, out_rate, quality="HQ")
    assert abs(len(y) - len(want)) <= 2
    n = min(len(y), len(want))
    snr = snr_db(y[:n], want[:n])
    # no shift in time, and a clean filter; soxr keeps more of the top of the band when upsampling
    floor = 80 if soxr_wanted else 50 if out_rate < in_rate else 25
    assert snr > floor, snr


def test_polyphase_in_chunks_equals_polyphase_at_once() -> None:
    x = speech16()[:40000].astype(np.float32) / 32768
    once = PolyphaseResampler(44100, 16000).process(x, last=True)
    stream = PolyphaseResampler(44100, 16000)
    sizes = np.random.default_rng(0).integers(1, 2000, size=100)
    pieces, i = [], 0
    for size in sizes:
        pieces.append(stream.process(x[i : i + size]))
        i += size
    pieces.append(stream.process(x[i:], last=True))
    np.testing.assert_allclose(np.concatenate(pieces), once, atol=1e-6)
    assert len(once) == -(-len(x) * 160 // 441)
