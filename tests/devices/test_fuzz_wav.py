"""Property-based tests of the WAV reader: any bytes, and real WAV files with any header field set to any
value (sizes, format tags, channel counts, rates, block aligns, bit depths, an extensible sub-format),
either read as float32 mono audio or raise an ``EdgeSDKError``; nothing else escapes."""

from __future__ import annotations

import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest

from edge_sdk.devices import WavFile
from edge_sdk.devices.sources.wav_file import read_wav
from edge_sdk.errors import EdgeSDKError

pytest.importorskip("hypothesis")
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

# Where each field of a canonical 44-byte header (plus the extensible fmt's sub-format) lies, and its width.
FIELDS = {
    "riff size": (4, "<I"),
    "fmt size": (16, "<I"),
    "format tag": (20, "<H"),
    "channels": (22, "<H"),
    "rate": (24, "<I"),
    "byte rate": (28, "<I"),
    "block align": (32, "<H"),
    "bits": (34, "<H"),
    "cb size": (36, "<H"),
    "sub-format": (44, "<H"),
    "data size": (64, "<I"),
}
FIELD_VALUES = st.one_of(
    st.integers(0, 0xFFFF),
    st.sampled_from([0, 1, 2, 3, 8, 16, 24, 32, 64, 999, 1000, 8000, 16000, 768000, 768001, 0xFFFE, 0xFFFF]),
    st.sampled_from([0xFFFFFFFF, 0x7FFFFFFF, 1 << 20]),
)


def _extensible(channels: int, rate: int, bits: int, tag: int, frames: bytes) -> bytes:
    """A WAVE_FORMAT_EXTENSIBLE file: the fmt chunk is 40 bytes, so the data chunk's size sits at 64."""
    align = channels * bits // 8
    fmt = struct.pack("<HHIIHH", 0xFFFE, channels, rate, rate * align, align, bits)
    fmt += struct.pack("<HHI", 22, bits, 0) + struct.pack("<H", tag) + bytes(14)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(frames))
    return b"RIFF" + struct.pack("<I", len(body) + len(frames)) + body + frames


def _exercise(scratch: Path, raw: bytes) -> None:
    """Read the bytes as a WAV file, and replay them as a source at 16 kHz (resampling from any rate)."""
    path = Path(tempfile.mkdtemp(dir=scratch)) / "clip.wav"
    path.write_bytes(raw)
    try:
        audio, rate, channels = read_wav(path)
        assert audio.dtype == np.float32 and audio.ndim == 1 and channels >= 1 and rate > 0
        source = WavFile(path, sample_rate=16000, block_size=160)
        for block in source:
            assert block.shape == (160,)
    except EdgeSDKError:
        pass


@given(raw=st.binary(max_size=256) | st.binary(max_size=64).map(lambda b: b"RIFF\0\0\0\0WAVE" + b))
def test_any_bytes_read_or_are_an_edge_sdk_error(scratch: Path, raw: bytes) -> None:
    _exercise(scratch, raw)


@given(
    channels=st.integers(1, 3),
    rate=st.sampled_from([8000, 16000, 44100]),
    kind=st.sampled_from([(1, 8), (1, 16), (1, 24), (1, 32), (3, 32), (3, 64)]),
    frames=st.binary(max_size=96),
    changes=st.lists(st.tuples(st.sampled_from(sorted(FIELDS)), FIELD_VALUES), max_size=3),
    cut=st.integers(0, 200),
)
def test_a_real_header_with_any_field_changed_reads_or_is_an_edge_sdk_error(
    scratch: Path,
    channels: int,
    rate: int,
    kind: tuple[int, int],
    frames: bytes,
    changes: list[tuple[str, int]],
    cut: int,
) -> None:
    tag, bits = kind
    raw = bytearray(_extensible(channels, rate, bits, tag, frames))
    for field, value in changes:
        offset, fmt = FIELDS[field]
        struct.pack_into(fmt, raw, offset, value & (0xFFFF if fmt == "<H" else 0xFFFFFFFF))
    _exercise(scratch, bytes(raw[: len(raw) - cut] if cut < len(raw) else raw))
