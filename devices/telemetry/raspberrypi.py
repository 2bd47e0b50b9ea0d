"""Raspberry Pi telemetry through the firmware's ``vcgencmd``: SoC temperature, ARM and core clocks, and on
a Pi 5 the PMIC's per-rail voltages and currents (``pmic_read_adc``).

The PMIC rails are what the SoC, memory and I/O draw behind the PMIC; the 5 V input (``EXT5V_V``) has no
current sensor, so ``power_w`` is the sum of the paired rails, which leaves out USB devices and the PMIC's
own losses. Boards before the Pi 5 have no PMIC ADC: there ``power_w`` is None and ``available()`` says so.
"""

from __future__ import annotations

import re
import subprocess

from edge_sdk.devices.telemetry import TelemetryReader, TelemetrySample, command_failure, register_reader
from edge_sdk.errors import DeviceError

_TEMP = re.compile(r"temp=(-?\d+(?:\.\d+)?)'C")
_FREQ = re.compile(r"frequency\(\d+\)=(\d+)")
# "   VDD_CORE_A current(7)=0.65596000A" / "   VDD_CORE_V volt(15)=0.72102600V"
_PMIC = re.compile(r"^\s*(\S+)_([AV]) (?:current|volt)\(\d+\)=(-?\d+(?:\.\d+)?)[AV]\s*$", re.MULTILINE)
# The firmware's answer to a command it refuses: error=2 error_msg="Command not registered"
_ERROR = re.compile(r'error=(\d+)\s+error_msg="([^"]*)"')

CLOCKS = ("arm", "core")


def parse_temp(text: str) -> float:
    """``temp=48.3'C`` → 48.3."""
    found = _TEMP.search(text)
    if not found:
        raise ValueError(f"unexpected measure_temp output: {text.strip()[:120]!r}")
    return float(found.group(1))


def parse_clock_mhz(text: str) -> float:
    """``frequency(48)=1500345728`` (Hz) → 1500.345728 MHz."""
    found = _FREQ.search(text)
    if not found:
        raise ValueError(f"unexpected measure_clock output: {text.strip()[:120]!r}")
    return int(found.group(1)) / 1e6


def parse_pmic_read_adc(text: str) -> dict[str, float]:
    """Rail → watts from ``pmic_read_adc``, pairing each ``<rail>_A current`` with its ``<rail>_V volt``.
    Raises ``ValueError`` when no rail has both (e.g. the command is not supported on this board)."""
    amps: dict[str, float] = {}
    volts: dict[str, float] = {}
    for rail, unit, value in _PMIC.findall(text):
        (amps if unit == "A" else volts)[rail] = float(value)
    rails = {rail: amps[rail] * volts[rail] for rail in amps if rail in volts}
    if not rails:
        raise ValueError(
            f"no rail with both current and voltage in pmic_read_adc output: {text.strip()[:120]!r}"
        )
    return rails


@register_reader
class VcgencmdReader(TelemetryReader):
    """Polls ``vcgencmd`` (one short process per query, about 10 ms each). Needs the user to be in the
    ``video`` group (access to /dev/vcio or /dev/vchiq)."""

    name = "vcgencmd"
    _pmic: bool | None = None  # whether pmic_read_adc works here; probed once
    pmic_note = ""

    def available(self) -> tuple[bool, str]:
        try:
            self._query("measure_temp")
        except FileNotFoundError:
            return False, "vcgencmd is not installed (it ships with Raspberry Pi OS: not a Raspberry Pi?)"
        except DeviceError as exc:
            return False, str(exc)
        self._probe_pmic()
        return True, self.pmic_note

    def read(self) -> TelemetrySample:
        try:
            temps = {"soc": parse_temp(self._query("measure_temp"))}
            clocks = {clock: parse_clock_mhz(self._query("measure_clock", clock)) for clock in CLOCKS}
        except (OSError, ValueError) as exc:
            raise DeviceError(f"vcgencmd: {command_failure(exc)}") from exc
        rails: dict[str, float] = {}
        if self._probe_pmic():
            try:
                rails = parse_pmic_read_adc(self._query("pmic_read_adc"))
            except (OSError, ValueError, DeviceError) as exc:
                raise DeviceError(f"vcgencmd pmic_read_adc: {exc}") from exc
        return TelemetrySample(self._clock(), sum(rails.values()) if rails else None, rails, temps, clocks)

    def _probe_pmic(self) -> bool:
        """Whether the PMIC ADC answers; the reason it does not is kept in ``pmic_note``."""
        if self._pmic is None:
            try:
                parse_pmic_read_adc(self._query("pmic_read_adc"))
                self._pmic = True
            except (OSError, ValueError, DeviceError) as exc:
                self._pmic = False
                self.pmic_note = (
                    "no power readings: vcgencmd pmic_read_adc is not supported here "
                    f"(only the Raspberry Pi 5 has the PMIC ADC): {exc}"
                )
        return self._pmic

    def _query(self, *args: str) -> str:
        """vcgencmd's output for ``args``; a firmware error (which vcgencmd prints on stdout, often with a
        non-zero status) becomes a ``DeviceError`` carrying the firmware's message."""
        try:
            text = self._run(["vcgencmd", *args])
        except subprocess.CalledProcessError as exc:
            text = f"{exc.output or ''}\n{exc.stderr or ''}"
            if not _ERROR.search(text):
                raise DeviceError(
                    f"vcgencmd {' '.join(args)}: {command_failure(exc)}{_access_hint(text)}"
                ) from exc
        except subprocess.SubprocessError as exc:
            raise DeviceError(f"vcgencmd {' '.join(args)}: {command_failure(exc)}") from exc
        error = _ERROR.search(text)
        if error:
            raise DeviceError(f"vcgencmd {' '.join(args)}: firmware error {error.group(1)}: {error.group(2)}")
        return text


def _access_hint(text: str) -> str:
    """How to fix the usual cause when vcgencmd cannot reach the firmware."""
    if "vcio" in text or "vchiq" in text.lower() or "VCHI" in text:
        return " (add the user to the 'video' group: sudo usermod -aG video $USER, then log in again)"
    return ""
