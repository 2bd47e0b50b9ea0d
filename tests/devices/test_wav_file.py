"""WavFile and read_wav on the bundled speech sample written out in every format, open_audio_source's
parsing, the resampling paths, real-time pacing, and the errors bad files give.

The WAV variants are written with the stdlib ``wave`` module (and, for WAVE_FORMAT_EXTENSIBLE and
float, by hand), so the reader is checked against an independent writer.
"""

from __future__ import annotations

import struct
import sys
import wave
from functools import cache
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest

from edge_sdk.devices import AudioSource, WavFile, open_audio_source
from edge_sdk.devices.sources import wav_file
from edge_sdk.devices.sources.wav_file import read_wav
from edge_sdk.errors import BadInputError

SAMPLE = Path(str(files("edge_sdk") / "samples" / "librivox-sense-and-sensibility.wav"))


@cache
def speech() -> np.ndarray:
    """The bundled sample as int16 (16 kHz mono)."""
    with wave.open(str(SAMPLE)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").copy()


def write_wav(path: Path, frames: np.ndarray, rate: int, width: int) -> Path:
    """``frames`` (int, shape (n,) or (n, channels)) as integer PCM of ``width`` bytes, via stdlib wave."""
    frames = frames.reshape(len(frames), -1)
    if width == 1:
        data = (frames + 128).astype(np.uint8).tobytes()
    elif width == 3:
        b = frames.astype("<i4").reshape(-1, 1).view(np.uint8).reshape(-1, 4)
        data = b[:, :3].tobytes()
    else:
        data = frames.astype(f"<i{width}").tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(frames.shape[1])
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(data)
    return path


def riff(fmt: bytes, data: bytes, extra_chunks: bytes = b"") -> bytes:
    """A RIFF/WAVE file from a fmt chunk body and data bytes (with an optional chunk in between)."""
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + extra_chunks
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def test_the_sample_is_read_exactly_and_cut_into_padded_blocks() -> None:
    ref = speech().astype(np.float32) / 32768
    with WavFile(SAMPLE) as src:
        assert isinstance(src, AudioSource)
        assert (src.name, src.sample_rate, src.block_size) == (SAMPLE.name, 16000, 320)
        assert src.num_samples == len(ref) == 193440 and src.resample_method is None
        assert src.duration == pytest.approx(12.09) and (src.overruns, src.overflows) == (0, 0)
        blocks = list(src)
    assert len(blocks) == src.num_blocks == -(-len(ref) // 320)
    assert all(b.shape == (320,) and b.dtype == np.float32 for b in blocks)
    np.testing.assert_array_equal(np.concatenate(blocks)[: len(ref)], ref)
    # 193440 = 604.5 blocks: the last one is half speech, half zero padding
    assert not blocks[-1][160:].any()


def test_an_odd_block_size_and_reiteration() -> None:
    src = WavFile(SAMPLE, block_size=1000)
    first, second = list(src), list(src)
    assert len(first) == len(second) == 194
    np.testing.assert_array_equal(np.concatenate(first), np.concatenate(second))
    assert not first[-1][440:].any() and first[-1][:440].any()


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_integer_widths_decode_to_the_same_speech(tmp_path: Path, width: int) -> None:
    s = speech().astype(np.int64)
    ints = s >> 8 if width == 1 else s << (8 * (width - 2))  # the same signal at each width
    path = write_wav(tmp_path / f"w{width}.wav", ints, 16000, width)
    x, rate, channels = read_wav(path)
    assert (rate, channels, x.dtype) == (16000, 1, np.float32)
    tolerance = 1 / 128 if width == 1 else 1e-7  # 8-bit loses the low byte
    np.testing.assert_allclose(x, speech() / 32768, atol=tolerance)
    assert np.abs(x).max() <= 1.0


def test_stereo_is_mixed_to_mono_by_mean(tmp_path: Path) -> None:
    s = speech().astype(np.int64)
    left, right = s, -(s // 2)
    path = write_wav(tmp_path / "stereo.wav", np.stack([left, right], axis=1), 16000, 2)
    x, _, channels = read_wav(path)
    assert channels == 2
    np.testing.assert_allclose(x, (left + right) / 2 / 32768, atol=1e-7)


def test_extensible_24_bit_and_float_files(tmp_path: Path) -> None:
    s = speech().astype("<i4") << 8
    data24 = s.reshape(-1, 1).view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    pcm_guid = struct.pack("<H", 1) + bytes.fromhex("000000001000800000aa00389b71")
    fmt = (
        struct.pack("<HHIIHH", 0xFFFE, 1, 16000, 16000 * 3, 3, 24) + struct.pack("<HHI", 22, 24, 4) + pcm_guid
    )
    list_chunk = b"LIST" + struct.pack("<I", 5) + b"INFOx" + b"\0"  # odd size: padded to even
    (tmp_path / "ext.wav").write_bytes(riff(fmt, data24, list_chunk))
    x, rate, _ = read_wav(tmp_path / "ext.wav")
    np.testing.assert_allclose(x, speech() / 32768, atol=1e-7)
    f = (speech() / 32768).astype("<f4")
    (tmp_path / "f.wav").write_bytes(riff(struct.pack("<HHIIHH", 3, 1, 16000, 64000, 4, 32), f.tobytes()))
    np.testing.assert_array_equal(read_wav(tmp_path / "f.wav")[0], f)


def test_a_48k_file_is_resampled_and_says_how(tmp_path: Path) -> None:
    soxr = pytest.importorskip("soxr")
    ref = speech().astype(np.float32) / 32768
    up = soxr.resample(ref, 16000, 48000)
    path = write_wav(
        tmp_path / "48k.wav", np.round(np.clip(up, -1, 1 - 2**-15) * 32768).astype(int), 48000, 2
    )
    src = WavFile(path)
    assert (src.file_sample_rate, src.resample_method, src.num_samples) == (48000, "soxr", len(ref))
    got = np.concatenate(list(src))[: len(ref)]
    err = got[100:-100] - ref[100:-100]
    assert 10 * np.log10(np.sum(ref**2) / np.sum(err**2)) > 40


@pytest.mark.parametrize("missing", [("soxr",), ("soxr", "scipy")], ids=["scipy", "numpy"])
def test_resampling_without_soxr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, missing: tuple) -> None:
    soxr = pytest.importorskip("soxr")
    pytest.importorskip("scipy.signal")
    down = soxr.resample(speech().astype(np.float32) / 32768, 16000, 8000)
    path = write_wav(tmp_path / "8k.wav", np.round(down * 32768).astype(int), 8000, 2)
    x8k = read_wav(path)[0]
    want = soxr.resample(x8k, 8000, 16000, quality="HQ")
    # A None entry in sys.modules makes `import soxr` raise ImportError, as if it were not installed.
    for name in missing:
        monkeypatch.setitem(sys.modules, name, None)
    if "scipy" in missing:
        monkeypatch.setitem(sys.modules, "scipy.signal", None)
    src = WavFile(path)
    assert src.resample_method == ("polyphase" if "scipy" in missing else "scipy")
    assert src.num_samples == len(want) == len(speech())
    got = np.concatenate(list(src))[: len(want)]
    # the same speech, not shifted in time; both fallbacks keep a little less of 3.7-4 kHz than soxr
    err = got - want
    assert 10 * np.log10(np.sum(want**2) / np.sum(err**2)) > 25


class Clock:
    """The replay's clock, run by the test: ``sleep`` moves it on at once, so pacing is checked in exact
    steps however loaded the machine is (the WavFile code under test is the real one)."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(wav_file, "time", c)
    return c


def test_realtime_replay_is_paced_without_drift(clock: Clock) -> None:
    src = WavFile(SAMPLE, block_size=800, realtime=True)  # 50 ms blocks
    times = []
    for i, _ in enumerate(src):
        times.append(clock.now)
        if i == 11:
            break
        clock.sleep(0.02)  # the consumer's own work: a relative sleep per block would add it up
    # block i is handed out when its last sample would have been recorded, (i + 1) x 50 ms: not earlier,
    # and not 12 x 70 ms later as a pacing that adds the consumer's time would give
    np.testing.assert_allclose(times, 0.05 * np.arange(1, 13), rtol=0, atol=1e-9)
    assert src.overruns == 0


def test_a_slow_consumer_of_a_realtime_replay_loses_the_oldest_blocks(tmp_path: Path, clock: Clock) -> None:
    words = speech()[8000:17600]  # 0.6 s of speech: 60 blocks of 10 ms
    src = WavFile(
        write_wav(tmp_path / "w.wav", words, 16000, 2), block_size=160, realtime=True, buffer_blocks=3
    )
    it = iter(src)
    first = next(it)  # at 10 ms
    clock.sleep(0.3)  # 30 blocks "recorded" meanwhile, 3 of them kept
    nxt = next(it)
    assert abs(src.overruns - 27) <= 1  # 30 - 3, give or take the rounding of a 10 ms period
    index = src.overruns + 1  # the block after the dropped ones
    np.testing.assert_array_equal(nxt, words[index * 160 : (index + 1) * 160] / 32768)
    np.testing.assert_array_equal(first, words[:160] / 32768)
    # every block is handed out or counted as lost
    rest = sum(1 for _ in it)
    assert src.overruns + 2 + rest == src.num_blocks == 60


def test_loop_replays_forever_across_the_end() -> None:
    src = WavFile(SAMPLE, block_size=100000, loop=True)
    assert src.num_blocks is None
    it = iter(src)
    blocks = [next(it) for _ in range(3)]
    flat = np.concatenate(blocks)
    ref = speech().astype(np.float32) / 32768
    np.testing.assert_array_equal(flat[: len(ref)], ref)
    np.testing.assert_array_equal(flat[len(ref) : 2 * len(ref)], ref[: 300000 - len(ref)])
    src.close()
    assert list(it) == []


def test_open_audio_source_parses_specs(tmp_path: Path) -> None:
    src = open_audio_source(str(SAMPLE), block_size=160, realtime=True)
    assert isinstance(src, WavFile) and src.realtime and src.block_size == 160
    assert open_audio_source(f"  {SAMPLE}  ").realtime is False
    for spec, words in [
        ("", "'mic', 'mic:NAME'"),
        ("mic:", "needs a device name"),
        ("nonsense", "neither 'mic'"),
        (str(tmp_path / "missing.wav"), "does not exist"),
    ]:
        with pytest.raises(BadInputError, match=words):
            open_audio_source(spec)
    with pytest.raises(BadInputError, match="always runs in real time"):
        open_audio_source("mic", realtime=False)


def test_bad_files_say_which_file_and_what_is_wrong(tmp_path: Path) -> None:
    good = SAMPLE.read_bytes()
    cases = {
        "missing.wav": (None, "does not exist"),
        "text.wav": (b"hello, this is not audio at all", "RIFF/WAVE header"),
        "truncated.wav": (good[: len(good) // 2], "truncated"),
        "nodata.wav": (good[:36], "no data chunk"),
        "nofmt.wav": (b"RIFF\x0c\0\0\0WAVEdata\0\0\0\0", "no fmt chunk"),
        "alaw.wav": (riff(struct.pack("<HHIIHH", 6, 1, 8000, 8000, 1, 8), b"\0" * 10), "format tag 0x6"),
        "12bit.wav": (riff(struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 12), b"\0" * 10), "12-bit"),
        "align.wav": (riff(struct.pack("<HHIIHH", 1, 2, 8000, 32000, 2, 16), b"\0" * 8), "block align"),
        # resampled to 16 kHz, 1 Hz would be x16000 the samples: refused before anything is allocated
        "1hz.wav": (riff(struct.pack("<HHIIHH", 1, 1, 1, 2, 2, 16), b"\0" * 10), "at 1 Hz"),
        "9mhz.wav": (riff(struct.pack("<HHIIHH", 1, 1, 9000000, 18000000, 2, 16), b"\0" * 10), "9000000 Hz"),
    }
    for name, (content, words) in cases.items():
        path = tmp_path / name
        if content is not None:
            path.write_bytes(content)
        with pytest.raises(BadInputError, match=words) as e:
            WavFile(path)
        assert name in str(e.value)
    with pytest.raises(BadInputError, match="directory"):
        WavFile(tmp_path)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(riff(struct.pack("<HHIIHH", 1, 1, 16000, 32000, 2, 16), b""))
    assert list(WavFile(empty)) == []
    with pytest.raises(BadInputError, match="cannot be looped"):
        WavFile(empty, loop=True)
