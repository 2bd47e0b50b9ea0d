"""Telemetry: power, temperature and clock readings from whatever the board exposes, behind one interface.

Each source (tegrastats, INA3221 sysfs, vcgencmd, thermal zones, RAPL, hwmon) is a ``TelemetryReader``
registered by name in ``READERS``, so a device profile lists its sources by name. ``open_telemetry`` opens
the ones that work here, records why the others were skipped, and ``Telemetry.read`` merges their samples.
The readers are the modules of this package (``jetson``, ``raspberrypi``, ``rapl``, ``sensors``); each
registers itself when the registry first imports it.

Every reader takes ``root``, a path prefix for /sys, so tests point it at a recorded tree; command-based
readers also take ``run(cmd) -> str``, the one place they touch a subprocess, so tests hand them recorded
output. Energy for a block of work is ``energy_over([before, after])``.
"""

from __future__ import annotations

import logging
import os
import select
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any, ClassVar

from edge_sdk.errors import DeviceError
from edge_sdk.registry import Registry

log = logging.getLogger("edge_sdk.devices.telemetry")

Runner = Callable[[list[str]], str]
"""Runs a command and returns its standard output; raises ``FileNotFoundError`` when the program is not
installed and ``subprocess.CalledProcessError`` (carrying the output) when it exits non-zero."""

Clock = Callable[[], float]

# Sensors that are powered off report -256 °C (Jetson CV/GPU zones when idle); nothing that is running is
# colder than this, so such readings are dropped rather than reported.
SENSOR_OFF_BELOW_C = -200.0


@dataclass
class TelemetrySample:
    """One reading. ``timestamp`` is in seconds on the reader's clock (monotonic by default), so only
    differences between timestamps mean something. ``power_w`` is the board's (or package's) total where
    the source measures one; ``rails_w`` holds every rail it measures, in watts; ``energy_j`` is a
    cumulative counter (only sources with a hardware energy counter set it); ``power_source`` names the
    reader that gave ``power_w`` (set by ``Telemetry.read``, which merges several)."""

    timestamp: float
    power_w: float | None = None
    rails_w: dict[str, float] = field(default_factory=dict)
    temperature_c: dict[str, float] = field(default_factory=dict)
    clocks_mhz: dict[str, float] = field(default_factory=dict)
    energy_j: float | None = None
    power_source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The sample as plain JSON-ready data."""
        return asdict(self)


class TelemetryReader(ABC):
    """One telemetry source. ``available()`` says whether it works here and, if not, why (or, when it
    works only in part, what is missing); ``read()`` returns a sample or raises ``DeviceError``.

    ``root`` prefixes every sysfs path; ``run`` executes commands (default: a subprocess); ``clock`` gives
    timestamps and time steps (default: ``time.monotonic``).
    """

    name: ClassVar[str] = ""

    def __init__(
        self, root: str | os.PathLike[str] = "/", *, run: Runner | None = None, clock: Clock | None = None
    ) -> None:
        self.root = Path(root)
        self._run: Runner = run if run is not None else self.default_run
        self._clock: Clock = clock if clock is not None else time.monotonic

    @staticmethod
    def default_run(cmd: list[str]) -> str:
        """How this reader runs a command when no ``run`` is given."""
        return run_command(cmd)

    def path(self, absolute: str) -> Path:
        """``absolute`` (e.g. "/sys/class/hwmon") under this reader's root."""
        return self.root / absolute.lstrip("/")

    @abstractmethod
    def available(self) -> tuple[bool, str]:
        """(True, "") when the source works here; (True, note) when it works in part; (False, why) when
        not. Never raises."""

    @abstractmethod
    def read(self) -> TelemetrySample:
        """One sample now; raises ``DeviceError`` when the source fails."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={str(self.root)!r})"


READERS: Registry[type[TelemetryReader]] = Registry("telemetry source", __name__)


def register_reader(cls: type[TelemetryReader]) -> type[TelemetryReader]:
    """Class decorator: file a reader in ``READERS`` under its ``name``."""
    if not cls.name:
        raise TypeError(f"{cls.__name__} has no name")
    return READERS.register(cls.name)(cls)


def telemetry_sources() -> list[str]:
    """Names of every telemetry source, as device profiles spell them."""
    return READERS.names()


# -- the I/O boundary: commands and sysfs files ---------------------------------------------------------


def run_command(cmd: list[str], timeout: float = 5.0) -> str:
    """Run ``cmd`` to completion and return its standard output (the default ``Runner``)."""
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise subprocess.CalledProcessError(done.returncode, cmd, done.stdout, done.stderr)
    return done.stdout


def run_first_line(cmd: list[str], timeout: float = 3.0) -> str:
    """Start a command that prints lines forever (``tegrastats``), return its first line, and stop it.

    The process is terminated (then killed) and reaped in every case, including a timeout, so a reader
    polled for hours leaves no processes behind. Raises ``subprocess.TimeoutExpired`` when no full line
    arrives in ``timeout`` seconds and ``CalledProcessError`` when the command exits without one.
    """
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    try:
        fd = proc.stdout.fileno()
        buf = b""
        deadline = time.monotonic() + timeout
        # os.read on the raw descriptor after select, not readline: a buffered readline would block past
        # the deadline on a partial line.
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired(cmd, timeout, output=buf)
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 4096)
            if not chunk:  # end of output: the command exited
                break
            buf += chunk
        if b"\n" not in buf:
            code = proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            err = proc.stderr.read().decode(errors="replace")
            if code != 0 or not buf.strip():
                raise subprocess.CalledProcessError(code, cmd, buf.decode(errors="replace"), err)
        return buf.split(b"\n", 1)[0].decode(errors="replace").strip()
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate, then kill, and always reap ``proc`` and close its pipes."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


def read_sysfs(path: Path) -> str:
    """The stripped text of one sysfs attribute."""
    return path.read_text().strip()


def read_number(path: Path) -> float:
    """One numeric sysfs attribute."""
    return float(read_sysfs(path))


def command_failure(exc: BaseException) -> str:
    """A one-line account of why a command failed, with what it printed."""
    if isinstance(exc, FileNotFoundError):
        return f"{exc.filename or 'the program'} is not installed (not found on PATH)"
    if isinstance(exc, subprocess.CalledProcessError):
        said = " ".join(f"{exc.output or ''} {exc.stderr or ''}".split())
        return f"'{' '.join(map(str, exc.cmd))}' exited with status {exc.returncode}" + (
            f": {said}" if said else ""
        )
    if isinstance(exc, subprocess.TimeoutExpired):
        return f"'{' '.join(map(str, exc.cmd))}' printed nothing within {exc.timeout:g} s"
    return str(exc) or type(exc).__name__


def unique_key(name: str, where: str, taken: dict[str, int]) -> str:
    """``name``, or ``name@where`` when several sensors share a name (two ``nvme`` hwmon devices, several
    ``acpitz`` zones): ``taken`` counts how often each name occurs among them."""
    return name if taken.get(name, 0) <= 1 else f"{name}@{where}"


# -- several readers as one ----------------------------------------------------------------------------


class Telemetry:
    """The readers that work here, read as one. ``skipped`` maps each source that does not work to why,
    ``notes`` each working source to what it cannot measure (e.g. power on a Raspberry Pi 4), and
    ``errors`` each source to its last failed read (a hiccup is logged and skipped, never raised: telemetry
    must not break the work it watches)."""

    def __init__(
        self,
        readers: Sequence[TelemetryReader],
        skipped: dict[str, str] | None = None,
        notes: dict[str, str] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.readers = list(readers)
        self.skipped = dict(skipped or {})
        self.notes = dict(notes or {})
        self.errors: dict[str, str] = {}
        self._clock: Clock = clock if clock is not None else time.monotonic

    @property
    def sources(self) -> list[str]:
        """Names of the readers in use, in preference order."""
        return [r.name for r in self.readers]

    def read(self) -> TelemetrySample:
        """One merged sample. On a name read by several sources, and for ``power_w`` and ``energy_j``, the
        first source (in the order asked for) wins; ``timestamp`` is that of the power source's sample,
        else the first sample's."""
        samples: list[tuple[str, TelemetrySample]] = []
        for reader in self.readers:
            try:
                samples.append((reader.name, reader.read()))
                self.errors.pop(reader.name, None)
            except (DeviceError, OSError) as exc:
                self.errors[reader.name] = str(exc)
                log.warning("telemetry source %s failed: %s", reader.name, exc)
        return merge_samples(samples, default_timestamp=self._clock)

    def __str__(self) -> str:
        lines = [f"  used     {n}" + (f": {self.notes[n]}" if n in self.notes else "") for n in self.sources]
        lines += [f"  skipped  {n}: {why}" for n, why in self.skipped.items()]
        return "telemetry\n" + "\n".join(lines) if lines else "telemetry: no sources asked for"

    def to_dict(self) -> dict[str, Any]:
        """What is used and skipped, and why, as plain data."""
        return {"sources": self.sources, "skipped": self.skipped, "notes": self.notes, "errors": self.errors}


def merge_samples(
    samples: Sequence[tuple[str, TelemetrySample]], default_timestamp: Clock
) -> TelemetrySample:
    """Merge (source, sample) pairs in order; the first source wins wherever two say the same thing."""
    merged = TelemetrySample(timestamp=samples[0][1].timestamp if samples else default_timestamp())
    for source, sample in samples:
        if merged.power_w is None and sample.power_w is not None:
            merged.power_w, merged.power_source = sample.power_w, source
            merged.timestamp = sample.timestamp
        if merged.energy_j is None and sample.energy_j is not None:
            merged.energy_j = sample.energy_j
        for mine, theirs in (
            (merged.rails_w, sample.rails_w),
            (merged.temperature_c, sample.temperature_c),
            (merged.clocks_mhz, sample.clocks_mhz),
        ):
            for key, value in theirs.items():
                mine.setdefault(key, value)
    return merged


def open_telemetry(
    sources: Sequence[str],
    root: str | os.PathLike[str] = "/",
    *,
    run: Runner | None = None,
    clock: Clock | None = None,
) -> Telemetry:
    """Open the named sources that work here, in order, and skip the others with the reason.

    An unknown name is a ``BadInputError`` (a profile typo should not pass silently); a source that is
    merely absent or unreadable is skipped and listed in ``Telemetry.skipped``.
    """
    readers: list[TelemetryReader] = []
    skipped: dict[str, str] = {}
    notes: dict[str, str] = {}
    for name in dict.fromkeys(sources):  # keep order, drop repeats
        reader = READERS.get(name)(root, run=run, clock=clock)
        try:
            ok, why = reader.available()
        except Exception as exc:  # available() must not raise; if one does, skip it rather than fail the job
            log.warning("telemetry source %s: availability check raised", name, exc_info=True)
            ok, why = False, f"availability check failed: {type(exc).__name__}: {exc}"
        if ok:
            readers.append(reader)
            if why:
                notes[name] = why
        else:
            skipped[name] = why
            log.info("telemetry source %s skipped: %s", name, why)
    return Telemetry(readers, skipped, notes, clock)


def energy_over(samples: Sequence[TelemetrySample]) -> float | None:
    """Joules spent between the first and the last sample, e.g. ``energy_over([before, after])`` around a
    block of work: the difference of ``energy_j`` where both ends carry the counter, else the trapezoid
    integral of ``power_w`` over the samples that have it (with only two samples, mean power × time; read
    more samples during the work for a source without a counter). None when neither is possible."""
    if len(samples) >= 2 and samples[0].energy_j is not None and samples[-1].energy_j is not None:
        return samples[-1].energy_j - samples[0].energy_j
    powered = [(s.timestamp, s.power_w) for s in samples if s.power_w is not None]
    if len(powered) < 2:
        return None
    return sum((t1 - t0) * (p0 + p1) / 2 for (t0, p0), (t1, p1) in pairwise(powered))
