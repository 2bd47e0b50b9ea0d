"""A live microphone as an audio source, on PyAudio (PortAudio).

PortAudio calls ``_callback`` on its own thread every ``frames_per_buffer`` frames. That callback only
copies the bytes into a ``RingBuffer`` and returns: no numpy, no logging, nothing that can block the
audio thread or raise. The consumer (``__iter__``) waits on the ring with a short timeout, so Ctrl-C
lands, turns int16 into float32, mixes channels, resamples if the device could not run at
``sample_rate``, and cuts fixed-size blocks.

Opening PortAudio on Linux prints a screenful of ALSA and JACK complaints about devices that are not
there. They are kept out of the terminal (stderr is pointed at /dev/null around PortAudio calls and
ALSA's error handler goes to our logger) unless this module's logger is at DEBUG.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge_sdk.devices.sources.audio import ClosingSource
from edge_sdk.devices.sources.resample import StreamResampler
from edge_sdk.devices.sources.ring_buffer import DropPolicy, RingBuffer
from edge_sdk.errors import BadInputError, DeviceError, MissingExtraError

log = logging.getLogger(__name__)

_PA_INPUT_OVERFLOW = 0x2  # paInputOverflow in PortAudio's callback status flags
_PA_CONTINUE = 0


@dataclass(frozen=True)
class InputDevice:
    """An audio input PortAudio offers: its index, name, channels, default rate and host API."""

    index: int
    name: str
    max_input_channels: int
    default_sample_rate: float
    host_api: str

    def __str__(self) -> str:
        return (
            f"[{self.index}] {self.name} ({self.host_api}, {self.max_input_channels} ch, "
            f"{self.default_sample_rate:g} Hz)"
        )


def _import_pyaudio() -> Any:
    try:
        import pyaudio
    except ImportError:
        raise MissingExtraError("pyaudio", "audio", "Capturing from a microphone") from None
    return pyaudio


# --- keeping ALSA/JACK noise out of the terminal -------------------------------------------------

_quiet_lock = threading.Lock()
_alsa_handler: Any = None  # the ctypes callback must outlive every ALSA call that might use it


def _install_alsa_error_handler() -> None:
    """Send ALSA's error messages to our logger instead of stderr (they also come from PortAudio's
    audio thread, e.g. on an xrun, long after the /dev/null redirection below has ended)."""
    global _alsa_handler
    if _alsa_handler is not None:
        return
    name = ctypes.util.find_library("asound")
    if name is None:
        return
    try:
        lib = ctypes.CDLL(name)
        # void handler(const char *file, int line, const char *function, int err, const char *fmt, ...)
        proto = ctypes.CFUNCTYPE(
            None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p
        )

        def handler(file: bytes, line: int, function: bytes, err: int, fmt: bytes) -> None:
            try:
                text = [(b or b"?").decode(errors="replace") for b in (file, function, fmt)]
                log.debug("ALSA %s:%d (%s) err=%d: %s", text[0], line, text[1], err, text[2])
            except Exception:  # noqa: BLE001 - an exception must never unwind into C
                pass

        _alsa_handler = proto(handler)
        lib.snd_lib_error_set_handler(_alsa_handler)
    except (OSError, AttributeError):
        _alsa_handler = None


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for the duration (unless logging at DEBUG).

    PortAudio's ALSA and JACK back ends write straight to fd 2 from C, which ``sys.stderr`` tricks
    cannot catch. This is process-wide, so it is held only around PortAudio calls.
    """
    if log.isEnabledFor(logging.DEBUG):
        yield
        return
    _install_alsa_error_handler()
    with _quiet_lock:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)


# --- devices -----------------------------------------------------------------------------------


def _input_devices(pa: Any) -> list[InputDevice]:
    devices = []
    for i in range(pa.get_device_count()):
        info = pa.get_device_info_by_index(i)
        if int(info.get("maxInputChannels", 0)) <= 0:
            continue
        api = pa.get_host_api_info_by_index(info["hostApi"])["name"]
        devices.append(
            InputDevice(
                i, str(info["name"]), int(info["maxInputChannels"]), float(info["defaultSampleRate"]), api
            )
        )
    return devices


def list_input_devices() -> list[InputDevice]:
    """The audio inputs PortAudio sees on this machine (may be empty)."""
    pyaudio = _import_pyaudio()
    with _quiet_stderr():
        pa = pyaudio.PyAudio()
    try:
        return _input_devices(pa)
    finally:
        with _quiet_stderr():
            pa.terminate()


def _describe(devices: list[InputDevice]) -> str:
    if not devices:
        return "this machine has no audio input devices (PortAudio found none)"
    return "input devices here: " + "; ".join(str(d) for d in devices)


def _choose_device(pa: Any, device: int | str | None) -> InputDevice:
    devices = _input_devices(pa)
    if not devices:
        raise DeviceError(f"no microphone to open: {_describe(devices)}")
    if device is None:
        try:
            index = int(pa.get_default_input_device_info()["index"])
        except OSError:
            raise DeviceError(
                f"there is no default audio input; pick one by name or index. {_describe(devices)}"
            ) from None
        found = [d for d in devices if d.index == index]
        if found:
            return found[0]
        raise DeviceError(
            f"the default audio input (index {index}) has no input channels; {_describe(devices)}"
        )
    if isinstance(device, int) and not isinstance(device, bool):
        found = [d for d in devices if d.index == device]
        if not found:
            raise DeviceError(f"no audio input has index {device}; {_describe(devices)}")
        return found[0]
    if not isinstance(device, str) or not device:
        raise BadInputError(f"a microphone is chosen by index or name substring, not {device!r}")
    wanted = device.casefold()
    exact = [d for d in devices if d.name.casefold() == wanted]
    if len(exact) == 1:  # "default" must not be ambiguous just because "sysdefault" exists
        return exact[0]
    matches = exact or [d for d in devices if wanted in d.name.casefold()]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise DeviceError(f"no audio input matches {device!r}; {_describe(devices)}")
    raise DeviceError(
        f"{device!r} matches {len(matches)} audio inputs: {'; '.join(map(str, matches))}. "
        "Use a longer part of the name or the index."
    )


def _supports(pa: Any, pyaudio: Any, index: int, rate: int, channels: int) -> tuple[bool, str]:
    try:
        with _quiet_stderr():
            ok = pa.is_format_supported(
                rate, input_device=index, input_channels=channels, input_format=pyaudio.paInt16
            )
        return bool(ok), ""
    except ValueError as e:  # PyAudio raises ValueError(message, code) for "not supported"
        return False, str(e.args[0] if e.args else e)


class Microphone(ClosingSource):
    """A live microphone: float32 mono blocks of ``block_size`` samples at ``sample_rate``.

    ``device`` is None (the default input), a PortAudio index, or a name substring (an exact name wins;
    ambiguous or unknown names raise ``DeviceError`` listing the inputs there are). The device is
    opened for 16-bit capture at ``sample_rate``; if it cannot do that rate (or ``device_rate`` asks
    for another) it is opened at its own rate and resampled as a stream: ``opened_rate``,
    ``resample_method`` and ``rate_reason`` say what happened. The ring between PortAudio's thread
    and the consumer holds ``buffer_blocks`` blocks; when the consumer falls that far behind, the
    ``drop`` policy decides which data goes and ``overruns`` counts the blocks lost. ``overflows``
    counts the input overflows PortAudio reported (data lost before it reached us). Iterating raises
    ``DeviceError`` if no audio arrives for ``timeout`` seconds.
    """

    def __init__(
        self,
        device: int | str | None = None,
        *,
        sample_rate: int = 16000,
        block_size: int = 320,
        channels: int = 1,
        buffer_blocks: int = 50,
        drop: DropPolicy = "oldest",
        device_rate: int | None = None,
        timeout: float = 2.0,
    ) -> None:
        if sample_rate <= 0 or block_size <= 0 or channels <= 0 or buffer_blocks <= 0:
            raise BadInputError(
                f"sample_rate, block_size, channels and buffer_blocks must be positive, got {sample_rate}, "
                f"{block_size}, {channels}, {buffer_blocks}"
            )
        pyaudio = _import_pyaudio()
        self.sample_rate = sample_rate
        self.block_size = block_size
        self.channels = channels
        self.timeout = timeout
        self.overflows = 0
        self._stream: Any = None
        self._callback_error: BaseException | None = None
        self._closed = False
        with _quiet_stderr():
            self._pa = pyaudio.PyAudio()
        try:
            self.device = _choose_device(self._pa, device)
            self.name = self.device.name
            self._open(pyaudio, device_rate, buffer_blocks, drop)
        except BaseException:
            self.close()
            raise

    def _open(self, pyaudio: Any, device_rate: int | None, buffer_blocks: int, drop: DropPolicy) -> None:
        dev, wanted = self.device, self.sample_rate
        native = int(round(dev.default_sample_rate))
        # (rate, reason) to try in order; a None reason means "the fallback to the native rate"
        candidates: list[tuple[int, str | None]]
        why_not = "not supported"
        if device_rate is not None:
            candidates = [(device_rate, f"device_rate={device_rate} was asked for")]
        else:
            ok, why = _supports(self._pa, pyaudio, dev.index, wanted, self.channels)
            candidates = [(wanted, f"the device supports {wanted} Hz")] if ok else []
            why_not = why or why_not
            if native != wanted:
                candidates.append((native, None))
        errors = []
        for rate, reason in candidates:
            frames = max(1, round(self.block_size * rate / wanted))  # one block's worth of time
            self._chunk_bytes = frames * 2 * self.channels
            self._ring = RingBuffer(self._chunk_bytes * buffer_blocks, drop=drop)
            try:
                with _quiet_stderr():
                    self._stream = self._pa.open(
                        rate, self.channels, pyaudio.paInt16, input=True, input_device_index=dev.index,
                        frames_per_buffer=frames, stream_callback=self._callback, start=False,
                    )  # fmt: skip
            except (OSError, ValueError) as e:  # is_format_supported can say yes and open still fail
                errors.append(f"{rate} Hz: {e}")
                why_not = f"opening at {rate} Hz failed: {e}"
                continue
            self.opened_rate = rate
            self.rate_reason = (
                reason
                or f"the device cannot capture at {wanted} Hz ({why_not}); opened its native {native} Hz"
            )
            break
        else:
            tried = "; ".join(errors) or f"it does not support {wanted} Hz ({why_not}) and has no other rate"
            raise DeviceError(f"cannot open {dev} for {self.channels}-channel 16-bit capture: {tried}")
        self._resampler = StreamResampler(self.opened_rate, wanted) if self.opened_rate != wanted else None
        self.resample_method: str | None = self._resampler.method if self._resampler else None
        if self._resampler is not None:
            self.rate_reason += f"; resampled to {wanted} Hz with {self.resample_method}"
            log.info("%s: %s", dev.name, self.rate_reason)

    def _callback(
        self, in_data: bytes | None, frame_count: int, time_info: Any, status: int
    ) -> tuple[None, int]:
        """PortAudio's thread: copy and go. Never raises; a failure is handed to the consumer."""
        try:
            if status & _PA_INPUT_OVERFLOW:
                self.overflows += 1
            if in_data:
                self._ring.write(in_data)
        except BaseException as e:  # noqa: BLE001 - raising here would kill the stream silently
            if self._callback_error is None:
                self._callback_error = e
        return None, _PA_CONTINUE

    @property
    def overruns(self) -> int:
        """Blocks lost because the consumer did not keep up (the ring buffer was full)."""
        return -(-self._ring.dropped_bytes // self._chunk_bytes) if self._stream else 0

    @property
    def dropped_samples(self) -> int:
        """Audio lost to overruns, in samples at ``sample_rate`` (the ring holds the device's rate)."""
        if not self._stream:
            return 0
        frames = self._ring.dropped_bytes // (2 * self.channels)
        return int(round(frames * self.sample_rate / self.opened_rate))

    def start(self) -> None:
        """Start capturing (iterating does this); audio from then on is buffered for the consumer."""
        if self._closed:
            raise DeviceError(f"microphone {self.name!r} is closed")
        if not self._stream.is_active():
            with _quiet_stderr():
                self._stream.start_stream()

    def _to_float(self, data: bytes) -> np.ndarray:
        x = np.frombuffer(data, dtype="<i2").astype(np.float32) * (1.0 / 32768.0)
        if self.channels > 1:
            x = x.reshape(-1, self.channels).mean(axis=1, dtype=np.float32)
        if self._resampler is not None:
            x = self._resampler.process(x)
        return x

    def __iter__(self) -> Iterator[np.ndarray]:
        """Yield blocks as the microphone delivers them, until ``close``; starts the stream."""
        self.start()
        pending = np.zeros(0, dtype=np.float32)
        last_data = time.monotonic()
        frame_bytes = 2 * self.channels
        while not self._closed:
            data = self._ring.read(timeout=0.1)
            if self._callback_error is not None:
                raise DeviceError(f"microphone {self.name!r} callback failed: {self._callback_error!r}")
            if not data:
                if self._closed or self._ring.closed:
                    return
                if time.monotonic() - last_data > self.timeout:
                    active = self._stream.is_active()
                    raise DeviceError(
                        f"microphone {self.name!r} delivered no audio for {self.timeout:g} s "
                        f"(stream {'active' if active else 'stopped'}); was it unplugged?"
                    )
                continue
            last_data = time.monotonic()
            data = data[: len(data) - len(data) % frame_bytes]
            pending = np.concatenate([pending, self._to_float(data)])
            n = len(pending) // self.block_size
            for i in range(n):
                yield pending[i * self.block_size : (i + 1) * self.block_size].copy()
            pending = pending[n * self.block_size :]

    def close(self) -> None:
        """Stop the stream and free PortAudio; idempotent."""
        if self._closed:
            return
        self._closed = True
        ring = getattr(self, "_ring", None)
        if ring is not None:
            ring.close()
        with _quiet_stderr():
            if self._stream is not None:
                with contextlib.suppress(OSError):
                    self._stream.stop_stream()
                self._stream.close()
            if getattr(self, "_pa", None) is not None:
                self._pa.terminate()

    def __repr__(self) -> str:
        return f"Microphone({self.name!r}, {self.sample_rate} Hz, opened at {self.opened_rate} Hz)"
