"""What a capture loop reads audio from, and how a user names it: ``mic``, ``mic:NAME`` or a .wav path.

Every source is an iterable of fixed-size blocks: float32 mono numpy arrays in [-1, 1] of exactly
``block_size`` samples at ``sample_rate`` (a file's last partial block is zero-padded). ``AudioLoop``
relies on nothing else.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Protocol, TypeVar, runtime_checkable

import numpy as np

from edge_sdk.errors import BadInputError

_S = TypeVar("_S", bound="ClosingSource")


@runtime_checkable
class AudioSource(Protocol):
    """A stream of audio blocks with the counters a loop reports.

    ``overruns`` counts blocks lost because the consumer fell behind; ``overflows`` counts input
    overflows the audio driver reported (always 0 for a file). ``dropped_samples`` is how much audio,
    at ``sample_rate``, those overruns lost, so a loop keeps its stream clock on the source's clock.
    ``close`` ends the stream; sources are context managers.
    """

    name: str
    sample_rate: int
    block_size: int

    @property
    def overruns(self) -> int: ...

    @property
    def overflows(self) -> int: ...

    @property
    def dropped_samples(self) -> int: ...

    def __iter__(self) -> Iterator[np.ndarray]: ...

    def close(self) -> None: ...

    def __enter__(self) -> AudioSource: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class ClosingSource:
    """What every source does the same way: ``with source:`` closes it at the end of the block."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self: _S) -> _S:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def open_audio_source(
    spec: str, *, sample_rate: int = 16000, block_size: int = 320, realtime: bool | None = None
) -> AudioSource:
    """Open the source ``spec`` names: ``"mic"`` (the default input), ``"mic:NAME"`` (a name substring
    or a PortAudio index) or the path of a WAV file.

    ``realtime`` paces a file like a live input (None: as fast as possible). A microphone is always
    real time, so ``realtime=False`` with one is a ``BadInputError``.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise BadInputError(f"an audio source is 'mic', 'mic:NAME' or a .wav path, not {spec!r}")
    spec = spec.strip()
    if spec == "mic" or spec.startswith("mic:"):
        if realtime is False:
            raise BadInputError("a microphone always runs in real time; realtime=False only applies to files")
        from edge_sdk.devices.sources.microphone import Microphone

        name = spec[4:].strip()
        if spec.startswith("mic:") and not name:
            raise BadInputError(
                "'mic:' needs a device name or index after the colon, e.g. 'mic:USB' or 'mic:2'"
            )
        device: int | str | None = (int(name) if name.isdigit() else name) if name else None
        return Microphone(device, sample_rate=sample_rate, block_size=block_size)
    from edge_sdk.devices.sources.wav_file import WavFile

    path = Path(spec).expanduser()
    if not path.exists() and path.suffix.lower() != ".wav":
        raise BadInputError(f"audio source {spec!r} is neither 'mic', 'mic:NAME' nor an existing .wav file")
    return WavFile(path, sample_rate=sample_rate, block_size=block_size, realtime=bool(realtime))
