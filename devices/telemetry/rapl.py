"""x86 RAPL energy counters through powercap: /sys/class/powercap/intel-rapl:*/{name,energy_uj,...}.

RAPL gives energy, not power: each zone's ``energy_uj`` counts up and wraps at ``max_energy_range_uj``.
Power is Δenergy/Δt between two reads, so the first read has no power, and ``energy_j`` is the energy
counted since the reader's first read (wrap-arounds unfolded), so ``after.energy_j - before.energy_j`` is
what a block of work cost. Top-level zones are CPU packages (``package-N``) and, on recent laptops, the
platform (``psys``), which contains the packages; subzones (core, uncore, dram) are parts of their
package. The total is therefore ``psys`` where present, else the sum of the packages.

Since Linux 5.10 ``energy_uj`` is readable by root only (CVE-2020-8694, the Platypus attack), so on most
systems a normal user sees the zones but cannot read them; ``available()`` then says how to allow it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edge_sdk.devices.telemetry import (
    TelemetryReader,
    TelemetrySample,
    read_number,
    read_sysfs,
    register_reader,
)
from edge_sdk.errors import DeviceError

ENABLE_HINT = "run as root, or allow reading: sudo chmod a+r /sys/class/powercap/intel-rapl:*/energy_uj"


@dataclass(frozen=True)
class Zone:
    """One RAPL zone: ``key`` is its name, prefixed by its package's for a subzone ("package-0/core")."""

    key: str
    path: Path
    max_range_uj: int
    in_total: bool


def counter_delta(now_uj: int, before_uj: int, max_range_uj: int) -> int:
    """µJ counted from ``before_uj`` to ``now_uj`` by a counter that runs 0..``max_range_uj`` and then
    wraps to 0 (assumes at most one wrap between reads: at a package's 100 W, a wrap takes ~45 minutes)."""
    return (now_uj - before_uj) % (max_range_uj + 1)


@register_reader
class RaplReader(TelemetryReader):
    """Package and platform power from RAPL counters; ``rails_w`` has every zone."""

    name = "rapl"
    base = "/sys/class/powercap"

    _zones: list[Zone] | None = None
    _last: tuple[float, dict[str, int]] | None = None  # (time, counters) of the previous read
    _energy_j = 0.0

    def zones(self) -> list[Zone]:
        """The RAPL zones, found once. Raises ``OSError`` when their attributes cannot be read."""
        if self._zones is None:
            dirs = sorted(self.path(self.base).glob("intel-rapl:*"), key=lambda d: _numbers(d.name))
            names = {d.name: read_sysfs(d / "name") for d in dirs}
            top = [d for d in dirs if d.name.count(":") == 1]
            has_psys = any(names[d.name] == "psys" for d in top)
            zones = []
            for d in dirs:
                parent = d.name.rsplit(":", 1)[0]
                key = names[d.name] if d in top else f"{names.get(parent, parent)}/{names[d.name]}"
                counted = d in top and (names[d.name] == "psys" or not has_psys)
                zones.append(Zone(key, d / "energy_uj", int(read_number(d / "max_energy_range_uj")), counted))
            self._zones = zones
        return self._zones

    def available(self) -> tuple[bool, str]:
        where = self.path(self.base)
        try:
            zones = self.zones()
            if not zones:
                return False, (
                    f"no RAPL zones under {where}/intel-rapl:* (x86 only; is the intel_rapl_common module "
                    "loaded? inside a VM or container RAPL is usually not exposed)"
                )
            for zone in zones:
                read_number(zone.path)
        except PermissionError as exc:
            return (
                False,
                f"permission denied reading {exc.filename}: RAPL counters are root-only; {ENABLE_HINT}",
            )
        except (OSError, ValueError) as exc:
            return False, f"RAPL counters unreadable: {exc}"
        return True, ""

    def read(self) -> TelemetrySample:
        try:
            zones = self.zones()
            now = self._clock()
            counters = {zone.key: int(read_number(zone.path)) for zone in zones}
        except PermissionError as exc:
            raise DeviceError(f"RAPL: permission denied reading {exc.filename}; {ENABLE_HINT}") from exc
        except (OSError, ValueError) as exc:
            raise DeviceError(f"RAPL: {exc}") from exc
        sample = TelemetrySample(now)
        if self._last is not None:
            then, before = self._last
            deltas = {z.key: counter_delta(counters[z.key], before[z.key], z.max_range_uj) for z in zones}
            self._energy_j += sum(deltas[z.key] for z in zones if z.in_total) / 1e6
            if now > then:  # two reads at the same instant give no power, not a division by zero
                sample.rails_w = {key: uj / 1e6 / (now - then) for key, uj in deltas.items()}
                sample.power_w = sum(sample.rails_w[z.key] for z in zones if z.in_total)
        sample.energy_j = self._energy_j
        self._last = (now, counters)
        return sample


def _numbers(name: str) -> list[int]:
    """The numbers in a zone's name (intel-rapl:0:1 → [0, 1]), so zones sort as numbers, not text."""
    return [int(part) for part in name.split(":")[1:] if part.isdigit()]
