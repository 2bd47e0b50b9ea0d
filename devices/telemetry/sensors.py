"""Generic Linux sensors: thermal zones (/sys/class/thermal) and hwmon devices (/sys/class/hwmon).

Both exist on nearly every Linux board (Jetson, Raspberry Pi, x86), so they are the fallback for
temperatures, and hwmon also carries power where a driver measures it (``power*_input``/``power*_average``
of e.g. amdgpu or an INA2xx, or an INA3221's voltage × current). A sensor whose read fails (a Wi-Fi zone
with the interface down gives ENODATA) is left out of that sample, not treated as a broken source.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from pathlib import Path

from edge_sdk.devices.telemetry import (
    SENSOR_OFF_BELOW_C,
    TelemetryReader,
    TelemetrySample,
    read_number,
    read_sysfs,
    register_reader,
    unique_key,
)
from edge_sdk.errors import DeviceError

log = logging.getLogger("edge_sdk.devices.telemetry")

_NUMBERED = re.compile(r"(\d+)")


def _natural(path: Path) -> list[object]:
    """Sort key that puts hwmon10 after hwmon9."""
    return [int(part) if part.isdigit() else part for part in _NUMBERED.split(path.name)]


def _sensor_files(directory: Path, kind: str, suffixes: tuple[str, ...]) -> list[tuple[int, Path]]:
    """(N, path) for the ``{kind}{N}{suffix}`` files (temp1_input); per N, the first suffix found wins."""
    found: dict[int, Path] = {}
    for suffix in suffixes:
        for path in directory.glob(f"{kind}*{suffix}"):
            middle = path.name[len(kind) : -len(suffix)]
            if middle.isdigit():
                found.setdefault(int(middle), path)
    return sorted(found.items())


def _read_label(path: Path) -> str | None:
    try:
        return read_sysfs(path) or None
    except OSError:
        return None


def _label(directory: Path, kind: str, n: int) -> str:
    """The driver's label for sensor N (``temp1_label``: "Package id 0"), else ``temp1``."""
    return _read_label(directory / f"{kind}{n}_label") or f"{kind}{n}"


@register_reader
class ThermalZoneReader(TelemetryReader):
    """``/sys/class/thermal/thermal_zone*/{type,temp}`` (milli-°C), keyed by zone type."""

    name = "thermal_zone"
    base = "/sys/class/thermal"

    def _zones(self) -> list[tuple[str, Path]]:
        zones = sorted(self.path(self.base).glob("thermal_zone*"), key=_natural)
        types = {}
        for zone in zones:
            try:
                types[zone] = read_sysfs(zone / "type")
            except OSError:
                types[zone] = zone.name
        counts = Counter(types.values())
        return [(unique_key(types[z], z.name, counts), z / "temp") for z in zones]

    def available(self) -> tuple[bool, str]:
        zones = self._zones()
        if not zones:
            return False, f"no thermal zones under {self.path(self.base)}"
        if not self.read().temperature_c:
            return False, f"none of the {len(zones)} thermal zones under {self.path(self.base)} is readable"
        return True, ""

    def read(self) -> TelemetrySample:
        temps: dict[str, float] = {}
        for key, path in self._zones():
            try:
                celsius = read_number(path) / 1000.0
            except (OSError, ValueError) as exc:
                log.debug("thermal zone %s unreadable: %s", path, exc)
                continue
            if celsius > SENSOR_OFF_BELOW_C:
                temps[key] = celsius
        return TelemetrySample(self._clock(), temperature_c=temps)


@register_reader
class HwmonReader(TelemetryReader):
    """``/sys/class/hwmon/hwmon*``: ``temp*_input`` (milli-°C) and ``power*_input``/``power*_average``
    (µW), keyed ``<device name>/<label>``; where a device gives no power but labels channels that have both
    ``in{N}_input`` (mV) and ``curr{N}_input`` (mA), as an INA3221 does, their product. ``power_w`` stays
    None: hwmon rails are parts (a GPU, a sensor chip's channel), never the whole board."""

    name = "hwmon"
    base = "/sys/class/hwmon"

    def _devices(self) -> list[tuple[str, Path]]:
        devices = sorted(self.path(self.base).glob("hwmon*"), key=_natural)
        names = {}
        for device in devices:
            names[device] = device.name
            for candidate in (device / "name", device / "device" / "name"):  # old drivers: device/name
                try:
                    names[device] = read_sysfs(candidate)
                    break
                except OSError:
                    continue
        counts = Counter(names.values())
        return [(unique_key(names[d], d.name, counts), d) for d in devices]

    def available(self) -> tuple[bool, str]:
        devices = self._devices()
        if not devices:
            return False, f"no hwmon devices under {self.path(self.base)}"
        sample = self.read()  # cannot raise now: the devices exist, and unreadable sensors are left out
        if not (sample.temperature_c or sample.rails_w):
            names = ", ".join(name for name, _ in devices)
            return False, f"hwmon devices ({names}) have no readable temperature or power sensor"
        return True, ""

    def read(self) -> TelemetrySample:
        temps: dict[str, float] = {}
        rails: dict[str, float] = {}
        devices = self._devices()
        if not devices:
            raise DeviceError(f"no hwmon devices under {self.path(self.base)}")
        for device_name, device in devices:
            for n, path in _sensor_files(device, "temp", ("_input",)):
                value = _read(path)
                if value is not None and value / 1000.0 > SENSOR_OFF_BELOW_C:
                    temps[f"{device_name}/{_label(device, 'temp', n)}"] = value / 1000.0
            powers = _sensor_files(device, "power", ("_input", "_average"))
            for n, path in powers:
                value = _read(path)
                if value is not None:
                    rails[f"{device_name}/{_label(device, 'power', n)}"] = value / 1e6
            if powers:
                continue  # the driver measures power itself; volts × amps would count it twice
            # Only labelled channels pair up: the label says in{N} and curr{N} are one rail (an INA3221's
            # curr4 is the sum of its channels and in4 a shunt voltage, which must not be multiplied).
            for n, amps_path in _sensor_files(device, "curr", ("_input",)):
                label = _read_label(device / f"in{n}_label")
                volts, amps = _read(device / f"in{n}_input"), _read(amps_path)
                if label not in (None, "NC") and volts is not None and amps is not None:  # NC: not connected
                    rails[f"{device_name}/{label}"] = volts * amps / 1e6
        return TelemetrySample(self._clock(), rails_w=rails, temperature_c=temps)


def _read(path: Path) -> float | None:
    """A numeric attribute, or None when it is missing or its driver will not give a value now."""
    try:
        return read_number(path)
    except (OSError, ValueError) as exc:
        log.debug("hwmon attribute %s unreadable: %s", path, exc)
        return None
