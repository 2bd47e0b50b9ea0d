"""Replay a WAV file as an audio source: fixed-size float32 mono blocks, in real time or flat out.

The RIFF reader is our own rather than the stdlib ``wave`` module: ``wave`` before Python 3.12 rejects
WAVE_FORMAT_EXTENSIBLE, which is how most tools write 24-bit and multichannel files.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from edge_sdk.devices.sources.audio import ClosingSource
from edge_sdk.devices.sources.resample import resample
from edge_sdk.errors import BadInputError

_PCM, _FLOAT, _EXTENSIBLE = 1, 3, 0xFFFE
MIN_RATE, MAX_RATE = 1000, 768000  # sample rates a WAV file may declare
# Writers that stream a WAV put 0 or 0xFFFFFFFF in sizes they cannot know; read to the end then.
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)


def read_wav(path: str | Path) -> tuple[np.ndarray, int, int]:
    """Read a PCM (8/16/24/32-bit int) or IEEE-float WAV; returns (float32 mono in [-1, 1], rate, channels).

    Several channels are mixed to mono by their mean. Anything else raises ``BadInputError`` saying
    which file and what is wrong with it.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise BadInputError(f"audio file {path} does not exist") from None
    except IsADirectoryError:
        raise BadInputError(f"audio file {path} is a directory, not a WAV file") from None
    except OSError as e:
        raise BadInputError(f"cannot read audio file {path}: {e.strerror or e}") from None

    def bad(what: str) -> BadInputError:
        return BadInputError(f"{path} is not a usable WAV file: {what}")

    if len(raw) < 12 or raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        raise bad("it does not start with a RIFF/WAVE header")
    fmt: tuple[int, int, int, int, int] | None = None
    data: bytes | None = None
    pos = 12
    while pos + 8 <= len(raw):
        cid, size = raw[pos : pos + 4], struct.unpack_from("<I", raw, pos + 4)[0]
        body = pos + 8
        if cid == b"fmt ":
            if size < 16 or body + size > len(raw):
                raise bad(f"its fmt chunk is {size} bytes long, too short or cut off")
            tag, channels, rate, _, align, bits = struct.unpack_from("<HHIIHH", raw, body)
            if tag == _EXTENSIBLE and size >= 40:
                tag = struct.unpack_from("<H", raw, body + 24)[0]  # first 2 bytes of the SubFormat GUID
            fmt = (tag, channels, rate, align, bits)
        elif cid == b"data":
            end = len(raw) if size in _UNKNOWN_SIZES else body + size
            if end > len(raw):
                raise bad(
                    f"it is truncated: its header announces {size} bytes of audio, the file holds "
                    f"{len(raw) - body}"
                )
            data = raw[body:end]
            break
        pos = body + size + (size & 1)  # chunks are padded to even lengths
    if fmt is None:
        raise bad("it has no fmt chunk")
    if data is None:
        raise bad("it has no data chunk")
    tag, channels, rate, align, bits = fmt
    # Resampling a rate far outside what audio uses would allocate without bound (1 Hz to 16 kHz is x16000).
    if channels < 1 or not MIN_RATE <= rate <= MAX_RATE:
        raise bad(f"its header says {channels} channels at {rate} Hz ({MIN_RATE}-{MAX_RATE} Hz is audio)")
    if (tag, bits) not in {(_PCM, 8), (_PCM, 16), (_PCM, 24), (_PCM, 32), (_FLOAT, 32), (_FLOAT, 64)}:
        kind = {_PCM: "integer PCM", _FLOAT: "float"}.get(tag, f"format tag {tag:#x}")
        raise bad(f"{bits}-bit {kind} is not supported (8/16/24/32-bit integer PCM or 32/64-bit float)")
    width = bits // 8
    if align != width * channels:
        raise bad(f"its block align is {align}, expected {width * channels} for {channels} x {bits}-bit")
    data = data[: len(data) - len(data) % align]  # a torn last frame is dropped, not misread
    if tag == _FLOAT:
        x = np.frombuffer(data, dtype="<f4" if bits == 32 else "<f8").astype(np.float32)
    elif bits == 8:
        x = (np.frombuffer(data, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif bits == 24:
        b = np.frombuffer(data, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        ints = (b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)) << 8 >> 8  # sign-extend from bit 23
        x = ints.astype(np.float32) / float(1 << 23)
    else:
        dtype = "<i2" if bits == 16 else "<i4"
        x = np.frombuffer(data, dtype=dtype).astype(np.float32) / float(1 << (bits - 1))
    x = x.reshape(-1, channels)
    mono = x[:, 0].copy() if channels == 1 else x.mean(axis=1, dtype=np.float32)
    return mono, rate, channels


class WavFile(ClosingSource):
    """A WAV file as an audio source: float32 mono blocks of ``block_size`` samples at ``sample_rate``.

    The file is read and, if its rate differs, resampled once when opened (``resample_method`` says
    with what: ``"soxr"``, ``"scipy"``, ``"polyphase"``, or None when the rates match). The final
    block is zero-padded; ``num_samples`` is the true length. With ``realtime=True`` block ``i`` is
    handed out when its last sample would have been recorded (``(i + 1) * block_size / sample_rate``
    after the first ``next``, on a monotonic clock, so sleeps never add up to drift); a consumer more
    than ``buffer_blocks`` behind loses the oldest blocks, as with a microphone, and ``overruns``
    counts them. ``loop=True`` replays the file forever.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        sample_rate: int = 16000,
        block_size: int = 320,
        realtime: bool = False,
        loop: bool = False,
        buffer_blocks: int = 50,
    ) -> None:
        if sample_rate <= 0 or block_size <= 0 or buffer_blocks <= 0:
            raise BadInputError(
                f"sample_rate, block_size and buffer_blocks must be positive, got {sample_rate}, "
                f"{block_size}, {buffer_blocks}"
            )
        self.path = Path(path)
        self.name = self.path.name
        self.sample_rate = sample_rate
        self.block_size = block_size
        self.realtime = realtime
        self.loop = loop
        self.buffer_blocks = buffer_blocks
        self.overruns = 0
        self.overflows = 0  # a file never overflows; kept for the AudioSource protocol
        samples, self.file_sample_rate, self.file_channels = read_wav(self.path)
        if self.loop and len(samples) == 0:
            raise BadInputError(f"{self.path} holds no audio, so it cannot be looped")
        self.resample_method: str | None = None
        if self.file_sample_rate != sample_rate:
            samples, self.resample_method = resample(samples, self.file_sample_rate, sample_rate)
        self.samples = np.clip(samples, -1.0, 1.0)
        self._closed = False

    @property
    def num_samples(self) -> int:
        """Samples in the file at ``sample_rate`` (without the zero padding of the last block)."""
        return len(self.samples)

    @property
    def duration(self) -> float:
        """Seconds of audio in the file."""
        return self.num_samples / self.sample_rate

    @property
    def num_blocks(self) -> int | None:
        """Blocks one pass yields (None when looping forever)."""
        return None if self.loop else -(-self.num_samples // self.block_size)

    @property
    def dropped_samples(self) -> int:
        """Audio skipped because a paced consumer fell behind, in samples."""
        return self.overruns * self.block_size

    def _block(self, i: int) -> np.ndarray:
        start, n, total = i * self.block_size, self.block_size, self.num_samples
        if self.loop:
            idx = (start + np.arange(n)) % total
            return self.samples[idx]
        block = np.zeros(n, dtype=np.float32)
        chunk = self.samples[start : start + n]
        block[: len(chunk)] = chunk
        return block

    def __iter__(self) -> Iterator[np.ndarray]:
        """Yield the blocks, paced if ``realtime``; each call to ``iter`` starts from the beginning."""
        total = self.num_blocks
        period = self.block_size / self.sample_rate
        t0 = time.monotonic()
        i = 0
        while not self._closed and (total is None or i < total):
            if self.realtime:
                # blocks "recorded" by now that the consumer has not taken yet
                ready = int((time.monotonic() - t0) / period) - i
                if ready > self.buffer_blocks:
                    skip = ready - self.buffer_blocks
                    if total is not None:
                        skip = min(skip, total - i)
                    self.overruns += skip
                    i += skip
                    continue
                if ready < 1:
                    time.sleep(max(0.0, t0 + (i + 1) * period - time.monotonic()))
            yield self._block(i)
            i += 1

    def close(self) -> None:
        """End any iteration in progress; the samples stay readable."""
        self._closed = True

    def __repr__(self) -> str:
        return (
            f"WavFile({str(self.path)!r}, {self.num_samples} samples at {self.sample_rate} Hz"
            f" (file: {self.file_sample_rate} Hz, {self.file_channels} ch), realtime={self.realtime})"
        )
