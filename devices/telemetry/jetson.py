"""Jetson telemetry: ``tegrastats`` output, and the INA3221 power monitors in sysfs.

Both report the same rails (the INA3221 channels are what tegrastats prints as ``VDD_IN 4929mW/...``).
The module's total is its input rail, ``VDD_IN`` (Orin, Xavier NX, TX2 NX) or ``POM_5V_IN`` (Nano); the
other rails are parts of it, so summing them would count twice. Boards with no input rail (AGX Xavier,
AGX Orin) report their rails with ``power_w`` None rather than a made-up total.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from edge_sdk.devices.telemetry import (
    SENSOR_OFF_BELOW_C,
    TelemetryReader,
    TelemetrySample,
    command_failure,
    read_number,
    read_sysfs,
    register_reader,
    run_first_line,
)
from edge_sdk.errors import DeviceError

INPUT_RAILS = ("VDD_IN", "POM_5V_IN")

# "VDD_IN 4929mW/4929mW" (JetPack 5/6) or "POM_5V_IN 2361/2361" (JetPack 4): current/average in mW. The
# lookahead rejects "RAM 2345/7620MB" and "SWAP 0/3810MB", which have the same shape plus a unit.
_RAIL = re.compile(r"\b([A-Z][A-Z0-9_]*) (\d+)(?:mW)?/(\d+)(?:mW)?(?=\s|$)")
# "cpu@45.5C", "CPU@38.5C", "CV0@-256C".
_TEMP = re.compile(r"\b([A-Za-z][A-Za-z0-9_]*)@(-?\d+(?:\.\d+)?)C\b")
# "CPU [12%@1510,8%@1510,off,off]": load%@MHz per core, "off" for a core that is down.
_CPUS = re.compile(r"\bCPU \[([^\]]*)\]")
_CORE = re.compile(r"\d+%@(\d+)")
# "EMC_FREQ 0%@2133" and "GR3D_FREQ 0%@[305]" / "GR3D_FREQ 0%@76"; without "@MHz" (non-root) no clock.
_EMC = re.compile(r"\bEMC_FREQ \d+%@(\d+)")
_GPU = re.compile(r"\bGR3D_FREQ \d+%@\[?(\d+)")


def input_power(rails_w: dict[str, float]) -> float | None:
    """The module's total: its input rail, if the board has one."""
    return next((rails_w[r] for r in INPUT_RAILS if r in rails_w), None)


def parse_tegrastats(line: str, timestamp: float) -> TelemetrySample:
    """One ``tegrastats`` line as a sample: rails in W (from the current, not the running average),
    temperatures (powered-off sensors dropped), per-core CPU clocks, and the EMC and GPU clocks when
    printed. Raises ``ValueError`` on a line with none of these."""
    rails = {name: int(now) / 1000.0 for name, now, _avg in _RAIL.findall(line)}
    temps = {name: float(c) for name, c in _TEMP.findall(line) if float(c) > SENSOR_OFF_BELOW_C}
    clocks: dict[str, float] = {}
    cpus = _CPUS.search(line)
    if cpus:
        for i, core in enumerate(cpus.group(1).split(",")):
            mhz = _CORE.match(core.strip())
            if mhz:
                clocks[f"cpu{i}"] = float(mhz.group(1))
    for key, pattern in (("emc", _EMC), ("gpu", _GPU)):
        found = pattern.search(line)
        if found:
            clocks[key] = float(found.group(1))
    if not (rails or temps or clocks):
        raise ValueError(f"not a tegrastats line: {line[:120]!r}")
    return TelemetrySample(timestamp, input_power(rails), rails, temps, clocks)


@register_reader
class TegrastatsReader(TelemetryReader):
    """Runs ``tegrastats --interval 100`` for one line per read (about 0.1 s), then stops it: a fresh
    short-lived process per read cannot be left running by a caller that forgets to close anything."""

    name = "tegrastats"
    command = ["tegrastats", "--interval", "100"]

    @staticmethod
    def default_run(cmd: list[str]) -> str:
        return run_first_line(cmd, timeout=3.0)

    def available(self) -> tuple[bool, str]:
        try:
            self._sample()
        except FileNotFoundError:
            return False, "tegrastats is not installed (it ships with NVIDIA JetPack / L4T: not a Jetson?)"
        except (OSError, subprocess.SubprocessError, ValueError) as exc:
            return False, f"tegrastats does not work here: {command_failure(exc)}"
        return True, ""

    def read(self) -> TelemetrySample:
        try:
            return self._sample()
        except (OSError, subprocess.SubprocessError, ValueError) as exc:
            raise DeviceError(f"tegrastats: {command_failure(exc)}") from exc

    def _sample(self) -> TelemetrySample:
        line = self._run(list(self.command))
        return parse_tegrastats(line, self._clock())


@dataclass(frozen=True)
class _Channel:
    """One INA3221 channel: its watts come from ``power`` in mW (iio layout), or from ``volts`` in mV
    times ``amps`` in mA (hwmon layout)."""

    rail: str
    power: Path | None = None
    volts: Path | None = None
    amps: Path | None = None

    def watts(self) -> float:
        if self.power is not None:
            return read_number(self.power) / 1000.0  # mW
        assert self.volts is not None and self.amps is not None
        return read_number(self.volts) * read_number(self.amps) / 1e6  # mV × mA


def _index(path: Path, prefix: str, suffix: str) -> int | None:
    """N from a name like ``in3_label`` (prefix "in", suffix "_label"), else None."""
    found = re.fullmatch(rf"{prefix}(\d+){suffix}", path.name)
    return int(found.group(1)) if found else None


@register_reader
class Ina3221Reader(TelemetryReader):
    """The INA3221 power monitors of a Jetson, read from sysfs.

    Two layouts: the mainline hwmon driver of JetPack 5/6 (``ina3221/*/hwmon/hwmon*/in{N}_label``,
    ``in{N}_input`` in mV, ``curr{N}_input`` in mA) and the iio driver of JetPack 4
    (``ina3221x/*/iio:device*/rail_name_{N}``, ``in_power{N}_input`` in mW). Unconnected channels
    (label "NC") and channels without a current (the "sum of shunt voltages" one) are left out.
    """

    name = "ina3221"
    drivers = "/sys/bus/i2c/drivers"

    _channels: list[_Channel] | None = None  # found on first use

    def channels(self) -> list[_Channel]:
        """Every connected channel, hwmon layout first; found once, then remembered."""
        if self._channels is None:
            found: list[_Channel] = []
            base = self.path(self.drivers)
            for hwmon in sorted(base.glob("ina3221*/*/hwmon/hwmon*")):
                for label in sorted(hwmon.glob("in*_label"), key=lambda p: _index(p, "in", "_label") or 0):
                    n = _index(label, "in", "_label")
                    amps = hwmon / f"curr{n}_input"
                    rail = read_sysfs(label)
                    if n is not None and rail != "NC" and amps.exists():
                        found.append(_Channel(rail, volts=hwmon / f"in{n}_input", amps=amps))
            for iio in sorted(base.glob("ina3221*/*/iio:device*")):
                for label in sorted(iio.glob("rail_name_*")):
                    n = label.name.rsplit("_", 1)[1]
                    rail = read_sysfs(label)
                    if rail != "NC":
                        found.append(_Channel(rail, power=iio / f"in_power{n}_input"))
            self._channels = found
        return self._channels

    def available(self) -> tuple[bool, str]:
        where = self.path(self.drivers) / "ina3221*"
        try:
            if not self.channels():
                return False, f"no INA3221 power monitor under {where} (Jetson only; the Nano 2GB has none)"
            self.read()
        except (OSError, ValueError, DeviceError) as exc:
            cause = exc.__cause__ if isinstance(exc, DeviceError) else exc
            if isinstance(cause, PermissionError):
                return False, f"permission denied reading {cause.filename}: run as root or make it readable"
            return False, f"INA3221 sysfs unreadable: {exc}"
        return True, ""

    def read(self) -> TelemetrySample:
        rails: dict[str, float] = {}
        failures: list[tuple[str, Exception]] = []
        try:
            channels = self.channels()
        except OSError as exc:
            raise DeviceError(f"INA3221: {exc}") from exc
        for channel in channels:
            try:
                rails.setdefault(channel.rail, channel.watts())
            except (OSError, ValueError) as exc:  # a disabled channel reads as ENODATA; keep the others
                failures.append((channel.rail, exc))
        if failures and not rails:
            said = "; ".join(f"{rail}: {exc}" for rail, exc in failures)
            raise DeviceError(f"INA3221: no channel could be read: {said}") from failures[0][1]
        return TelemetrySample(self._clock(), input_power(rails), rails)
