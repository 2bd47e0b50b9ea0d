"""``record.wav``: a sink stage that writes the audio passing through it to a 16-bit PCM WAV file."""

from __future__ import annotations

import os
import tempfile
import wave
from pathlib import Path

import numpy as np

from edge_sdk.errors import BadInputError
from edge_sdk.stages import stages
from edge_sdk.stages.base import Block, Stage


@stages.register("record.wav")
class WavWriter(Stage):
    """Records the audio as it is at this point of the loop (after a denoiser, the denoised audio) as
    mono 16-bit PCM WAV, samples clipped to [-1, 1].

    The file is written under a hidden temporary name in the same folder and renamed to ``path`` on
    ``close``, so a crash leaves a ``.NAME.*.part`` file, never a file at ``path`` that looks whole.
    The block passes through unchanged. ``sample_rate`` is only used when no block ever arrives.
    """

    name = "record.wav"

    def __init__(self, path: str | os.PathLike[str], *, sample_rate: int = 16000) -> None:
        self.path = Path(path)
        self.sample_rate = sample_rate
        self.frames = 0
        self._wav: wave.Wave_write | None = None
        self._tmp: Path | None = None
        if not self.path.parent.is_dir():
            raise BadInputError(f"cannot record to {self.path}: {self.path.parent} is not a folder")

    def _open(self, sample_rate: int) -> wave.Wave_write:
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".part", dir=self.path.parent)
        os.close(fd)  # wave closes only files it opened itself, so it gets the name
        self._tmp = Path(tmp)
        w = wave.open(str(self._tmp), "wb")
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        self.sample_rate = sample_rate
        return w

    def process(self, block: Block) -> Block:
        if self._wav is None:
            self._wav = self._open(block.sample_rate)
        elif block.sample_rate != self.sample_rate:
            raise BadInputError(f"{self.path}: recording at {self.sample_rate} Hz, got {block.sample_rate}")
        x = np.clip(np.asarray(block.samples, np.float32).reshape(-1), -1.0, 1.0)
        # 32767, not 32768: +1.0 must not wrap to -32768.
        self._wav.writeframes((x * 32767.0).round().astype("<i2").tobytes())
        self.frames += len(x)
        return block

    def reset(self) -> None:
        """Keep recording into the same file: a reset stream is still one recording."""

    def close(self) -> None:
        """Finish the header and move the file to ``path`` (an empty recording if nothing came)."""
        if self._wav is None and self._tmp is None:
            self._wav = self._open(self.sample_rate)
        if self._wav is not None:
            # wave patches the header's sizes on close; the rename happens only after that.
            self._wav.close()
            self._wav = None
            assert self._tmp is not None
            os.replace(self._tmp, self.path)
