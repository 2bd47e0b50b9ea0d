"""Telemetry readers on recorded output and fake sysfs trees (tests/devices/fixtures/telemetry), the merged
``open_telemetry`` view, and on this machine whatever RAPL/hwmon/thermal sources really exist.

Commands are the one I/O boundary replaced: readers get a ``run`` that returns recorded output (or raises
what subprocess would), so the parsing and merging under test are the real code.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edge_sdk.devices.telemetry import (
    READERS,
    Telemetry,
    TelemetrySample,
    energy_over,
    open_telemetry,
    run_first_line,
    telemetry_sources,
)
from edge_sdk.devices.telemetry.jetson import Ina3221Reader, TegrastatsReader, parse_tegrastats
from edge_sdk.devices.telemetry.rapl import RaplReader, counter_delta
from edge_sdk.devices.telemetry.raspberrypi import VcgencmdReader, parse_pmic_read_adc
from edge_sdk.devices.telemetry.sensors import HwmonReader, ThermalZoneReader
from edge_sdk.errors import BadInputError

FIXTURES = Path(__file__).parent / "fixtures" / "telemetry"
TREES = FIXTURES / "trees"
TEGRASTATS = ["tegrastats", "--interval", "100"]
RAPL_MAX = 262143328850  # max_energy_range_uj in the x86_laptop tree


def tegrastats_line(board: str) -> str:
    return (FIXTURES / "tegrastats" / f"{board}.txt").read_text().strip()


def recorded(outputs: dict[str, str | BaseException]) -> Callable[[list[str]], str]:
    """A ``run`` that answers from recordings keyed by the command line; a program with no recording at
    all is "not installed" (FileNotFoundError, as subprocess says), an unrecorded subcommand a test bug."""

    def run(cmd: list[str]) -> str:
        key = " ".join(cmd)
        if key not in outputs:
            if not any(k.split()[0] == cmd[0] for k in outputs):
                raise FileNotFoundError(2, "No such file or directory", cmd[0])
            raise AssertionError(f"no recording for {key!r}")
        answer = outputs[key]
        if isinstance(answer, BaseException):
            raise answer
        return answer

    return run


def vcgencmd_recordings(board: str) -> dict[str, str | BaseException]:
    """``vcgencmd/<board>/measure_clock.arm.txt`` as {"vcgencmd measure_clock arm": output}, and so on."""
    return {
        "vcgencmd " + f.stem.replace(".", " "): f.read_text()
        for f in (FIXTURES / "vcgencmd" / board).glob("*.txt")
    }


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def laptop(tmp_path: Path) -> Path:
    """A writable copy of the x86 laptop tree (RAPL counters change between reads)."""
    root = tmp_path / "x86_laptop"
    shutil.copytree(TREES / "x86_laptop", root)
    return root


def set_energy(root: Path, zone: str, uj: int) -> None:
    (root / "sys/class/powercap" / zone / "energy_uj").write_text(f"{uj}\n")


# -- registry -------------------------------------------------------------------------------------------


def test_every_source_a_profile_may_name_is_registered() -> None:
    assert set(telemetry_sources()) >= {"tegrastats", "ina3221", "vcgencmd", "thermal_zone", "rapl", "hwmon"}
    assert READERS.get("rapl") is RaplReader


def test_an_unknown_source_is_bad_input() -> None:
    with pytest.raises(BadInputError, match="tegrastat.*known:.*tegrastats"):
        open_telemetry(["tegrastat"])


# -- tegrastats ----------------------------------------------------------------------------------------


def test_tegrastats_orin_nano_jetpack6() -> None:
    s = parse_tegrastats(tegrastats_line("orin_nano_jp6"), timestamp=5.0)
    assert s.timestamp == 5.0
    assert s.rails_w == {"VDD_IN": 4.929, "VDD_CPU_GPU_CV": 0.479, "VDD_SOC": 1.397}
    assert s.power_w == 4.929
    # cv0@-256C is a powered-off sensor, not a reading
    assert s.temperature_c == {
        "cpu": 45.5,
        "soc2": 44.1,
        "soc0": 44.906,
        "gpu": 43.812,
        "tj": 45.5,
        "soc1": 44.031,
    }
    # two cores are off; EMC/GR3D print no clock for a non-root user
    assert s.clocks_mhz == {"cpu0": 1510.0, "cpu1": 1510.0, "cpu2": 1510.0, "cpu3": 1510.0}
    assert s.energy_j is None


def test_tegrastats_agx_orin_has_rails_but_no_input_rail() -> None:
    s = parse_tegrastats(tegrastats_line("agx_orin_jp5"), timestamp=0.0)
    assert s.rails_w == {
        "VDD_GPU_SOC": 3.176,
        "VDD_CPU_CV": 0.794,
        "VIN_SYS_5V0": 3.53,
        "VDDQ_VDD2_1V8AO": 0.503,
    }
    assert s.power_w is None  # no VDD_IN: summing sub-rails would be a guess
    assert s.temperature_c == {"CPU": 47.375, "SOC2": 43.843, "SOC0": 45.125, "tj": 47.375, "SOC1": 44.5}
    assert s.clocks_mhz == {
        **{f"cpu{i}": 729.0 for i in range(4)},
        **{f"cpu{i}": 2201.0 for i in range(4, 8)},
        "emc": 2133.0,
        "gpu": 305.0,
    }


def test_tegrastats_nano_jetpack4_pom_rails() -> None:
    s = parse_tegrastats(tegrastats_line("nano_jp4"), timestamp=0.0)
    # "RAM 1566/3956MB", "SWAP 0/1978MB" and "IRAM 0/252kB" look like rails but carry units: not rails
    assert s.rails_w == {"POM_5V_IN": 2.361, "POM_5V_GPU": 0.039, "POM_5V_CPU": 0.511}
    assert s.power_w == 2.361
    assert s.temperature_c == {
        "PLL": 33.5,
        "CPU": 38.5,
        "PMIC": 100.0,
        "GPU": 36.5,
        "AO": 43.0,
        "thermal": 37.25,
    }
    assert s.clocks_mhz == {
        "cpu0": 1479.0,
        "cpu1": 1479.0,
        "cpu2": 1479.0,
        "cpu3": 1479.0,
        "emc": 1600.0,
        "gpu": 76.0,
    }


def test_tegrastats_xavier_nx_unitless_vdd_in() -> None:
    s = parse_tegrastats(tegrastats_line("xavier_nx_jp4"), timestamp=0.0)
    assert s.rails_w == {"VDD_IN": 3.917, "VDD_CPU_GPU_CV": 0.558, "VDD_SOC": 1.196}
    assert s.power_w == 3.917
    assert s.temperature_c["CPU"] == 37.0 and s.temperature_c["thermal"] == 36.6


def test_tegrastats_reader_reads_one_line_per_sample() -> None:
    clock = FakeClock(42.0)
    reader = TegrastatsReader(
        run=recorded({" ".join(TEGRASTATS): tegrastats_line("orin_nano_jp6")}), clock=clock
    )
    assert reader.available() == (True, "")
    s = reader.read()
    assert (s.timestamp, s.power_w) == (42.0, 4.929)


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        (
            subprocess.CalledProcessError(1, TEGRASTATS, "", "Error: must be run as root"),
            "must be run as root",
        ),
        (subprocess.TimeoutExpired(TEGRASTATS, 3.0), "printed nothing within 3 s"),
        ("garbage\n", "not a tegrastats line"),
    ],
)
def test_tegrastats_that_fails_says_why(failure: str | BaseException, reason: str) -> None:
    ok, why = TegrastatsReader(run=recorded({" ".join(TEGRASTATS): failure})).available()
    assert not ok and reason in why


# -- the first-line runner behind tegrastats: real processes, none left behind --------------------------


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # a reaped process no longer exists; a zombie still would
    except ProcessLookupError:
        return True
    return False


def test_first_line_returns_one_line_and_stops_the_command(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    code = (
        "import os, sys, time\n"
        f"open({str(pidfile)!r}, 'w').write(str(os.getpid()))\n"
        "print('VDD_IN 1000mW/1000mW', flush=True)\n"
        "print('second line', flush=True)\n"
        "time.sleep(30)\n"
    )
    assert run_first_line([sys.executable, "-c", code], timeout=10) == "VDD_IN 1000mW/1000mW"
    assert _gone(int(pidfile.read_text()))


def test_first_line_times_out_and_stops_a_silent_command(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    code = f"import os, time\nopen({str(pidfile)!r}, 'w').write(str(os.getpid()))\ntime.sleep(30)\n"
    with pytest.raises(subprocess.TimeoutExpired):
        run_first_line([sys.executable, "-c", code], timeout=0.5)
    assert _gone(int(pidfile.read_text()))


def test_first_line_of_a_command_that_fails_carries_its_error() -> None:
    code = "import sys; sys.stderr.write('no INA sensors\\n'); sys.exit(3)"
    with pytest.raises(subprocess.CalledProcessError) as err:
        run_first_line([sys.executable, "-c", code], timeout=10)
    assert err.value.returncode == 3 and "no INA sensors" in err.value.stderr


# -- INA3221 sysfs -------------------------------------------------------------------------------------


def test_ina3221_hwmon_layout_orin_nano() -> None:
    s = Ina3221Reader(TREES / "orin_nano", clock=FakeClock(7.0)).read()
    # in{N}_input mV × curr{N}_input mA; the "sum of shunt voltages" channel has no current and is left out
    assert s.rails_w == pytest.approx({"VDD_IN": 4.95936, "VDD_CPU_GPU_CV": 0.483072, "VDD_SOC": 1.4112})
    assert list(s.rails_w) == ["VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"]
    assert s.power_w == pytest.approx(4.95936)
    assert s.timestamp == 7.0


def test_ina3221_iio_layout_nano_jetpack4() -> None:
    reader = Ina3221Reader(TREES / "nano_jp4")
    assert reader.available() == (True, "")
    s = reader.read()
    assert s.rails_w == {"POM_5V_IN": 2.361, "POM_5V_GPU": 0.039, "POM_5V_CPU": 0.511}
    assert s.power_w == 2.361


# -- vcgencmd ------------------------------------------------------------------------------------------

PI5_PMIC = {  # rail: (A, V), as in vcgencmd/pi5/pmic_read_adc.txt; EXT5V and BATT have no current
    "3V7_WL_SW": (0.0, 3.609496),
    "3V3_SYS": (0.05172, 3.3119),
    "1V8_SYS": (0.1766454, 1.804022),
    "DDR_VDD2": (0.020496, 1.112636),
    "DDR_VDDQ": (0.0, 0.6043956),
    "1V1_SYS": (0.187394, 1.103006),
    "0V8_SYS": (0.323055, 0.8007324),
    "VDD_CORE": (0.65596, 0.721026),
    "3V3_DAC": (0.0004884, 3.30402),
    "3V3_ADC": (0.00042735, 3.307683),
    "0V8_AON": (0.0034188, 0.8021978),
    "HDMI": (0.0214218, 5.14602),
}


def test_vcgencmd_pi5_pairs_pmic_current_and_voltage() -> None:
    reader = VcgencmdReader(run=recorded(vcgencmd_recordings("pi5")))
    assert reader.available() == (True, "")
    s = reader.read()
    assert s.rails_w == pytest.approx({rail: a * v for rail, (a, v) in PI5_PMIC.items()})
    assert s.power_w == pytest.approx(sum(a * v for a, v in PI5_PMIC.values()))
    assert s.temperature_c == {"soc": 48.3}
    assert s.clocks_mhz == {"arm": 2400.033792, "core": 910.007424}


@pytest.mark.parametrize("exit_status", [0, 2])
def test_vcgencmd_pi4_has_no_pmic_so_no_power_and_says_why(exit_status: int) -> None:
    outputs = vcgencmd_recordings("pi4")
    if exit_status:  # vcgencmd may also exit non-zero with the firmware's error on stdout
        pmic = outputs["vcgencmd pmic_read_adc"]
        outputs["vcgencmd pmic_read_adc"] = subprocess.CalledProcessError(2, ["vcgencmd"], pmic, "")
    reader = VcgencmdReader(run=recorded(outputs))
    ok, note = reader.available()
    assert ok and "Command not registered" in note and "Raspberry Pi 5" in note
    s = reader.read()
    assert s.power_w is None and s.rails_w == {}
    assert s.temperature_c == {"soc": 52.1}
    assert s.clocks_mhz == {"arm": 1500.345728, "core": 500.0}


def test_vcgencmd_without_access_to_the_firmware_says_how_to_fix_it() -> None:
    denied = subprocess.CalledProcessError(255, ["vcgencmd"], "Can't open device file: /dev/vcio\n", "")
    ok, why = VcgencmdReader(run=recorded({"vcgencmd measure_temp": denied})).available()
    assert not ok and "/dev/vcio" in why and "video" in why


def test_pmic_output_without_pairs_is_rejected() -> None:
    with pytest.raises(ValueError, match="no rail with both"):
        parse_pmic_read_adc("         EXT5V_V volt(24)=5.14725000V\n")


# -- thermal zones and hwmon ---------------------------------------------------------------------------


def test_thermal_zones_x86_laptop() -> None:
    reader = ThermalZoneReader(TREES / "x86_laptop")
    assert reader.available() == (True, "")
    # two "acpitz" zones are told apart by their directory; iwlwifi_1 has no readable temp
    assert reader.read().temperature_c == {
        "acpitz@thermal_zone0": 27.8,
        "x86_pkg_temp": 52.0,
        "acpitz@thermal_zone3": 29.8,
    }


def test_thermal_zones_jetson_drop_powered_off_sensors() -> None:
    temps = ThermalZoneReader(TREES / "orin_nano").read().temperature_c
    assert temps == {"cpu-thermal": 45.5, "gpu-thermal": 43.812, "soc0-thermal": 44.906, "tj-thermal": 45.5}


def test_hwmon_x86_laptop() -> None:
    reader = HwmonReader(TREES / "x86_laptop")
    assert reader.available() == (True, "")
    s = reader.read()
    assert s.temperature_c == {
        "acpitz/temp1": 27.8,
        "nvme@hwmon1/Composite": 38.85,
        "nvme@hwmon1/Sensor 1": 38.85,
        "coretemp/Package id 0": 52.0,
        "coretemp/Core 0": 49.0,
        "coretemp/Core 1": 51.0,
        "nvme@hwmon3/Composite": 41.85,
        "amdgpu/edge": 44.0,
    }
    assert s.rails_w == {"amdgpu/PPT": 8.125}  # power1_average in µW
    assert s.power_w is None  # a GPU's power is not the board's


@pytest.fixture
def hwmon_class_tree(tmp_path: Path) -> Path:
    """The Orin's ina3221 hwmon directory placed at sys/class/hwmon/hwmon1, as the kernel links it."""
    src = TREES / "orin_nano/sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon1"
    shutil.copytree(src, tmp_path / "sys/class/hwmon/hwmon1")
    return tmp_path


def test_hwmon_reads_an_ina3221_in_class_hwmon(hwmon_class_tree: Path) -> None:
    s = HwmonReader(hwmon_class_tree).read()
    assert s.rails_w == pytest.approx(
        {"ina3221/VDD_IN": 4.95936, "ina3221/VDD_CPU_GPU_CV": 0.483072, "ina3221/VDD_SOC": 1.4112}
    )


def test_hwmon_pi5() -> None:
    s = HwmonReader(TREES / "pi5").read()
    assert s.temperature_c == {"cpu_thermal/temp1": 48.3, "rp1_adc/temp1": 52.0}
    assert s.rails_w == {}


# -- RAPL ----------------------------------------------------------------------------------------------


def test_rapl_power_is_energy_over_time_between_reads(laptop: Path) -> None:
    clock = FakeClock(100.0)
    reader = RaplReader(laptop, clock=clock)
    assert reader.available() == (True, "")
    first = reader.read()
    assert (first.timestamp, first.power_w, first.rails_w, first.energy_j) == (100.0, None, {}, 0.0)

    set_energy(laptop, "intel-rapl:0", 71342011204 + 12_000_000)  # package: 12 J
    set_energy(laptop, "intel-rapl:0:0", 30114750421 + 6_000_000)  # core: 6 J
    set_energy(laptop, "intel-rapl:0:1", 1553922100 + 1_000_000)  # uncore: 1 J
    set_energy(laptop, "intel-rapl:1", 188123456789 + 20_000_000)  # psys: 20 J
    clock.t = 102.0
    second = reader.read()
    assert second.rails_w == {"package-0": 6.0, "package-0/core": 3.0, "package-0/uncore": 0.5, "psys": 10.0}
    assert second.power_w == 10.0  # psys holds the package: it is the total, not package + psys
    assert second.energy_j == 20.0
    assert energy_over([first, second]) == 20.0


def test_rapl_without_psys_totals_the_packages_and_unfolds_a_wrap(laptop: Path) -> None:
    shutil.rmtree(laptop / "sys/class/powercap/intel-rapl:1")
    clock = FakeClock(10.0)
    set_energy(laptop, "intel-rapl:0", RAPL_MAX - 499_999)
    reader = RaplReader(laptop, clock=clock)
    reader.read()
    set_energy(laptop, "intel-rapl:0", 1_000_000)  # wrapped past max_energy_range_uj
    clock.t = 10.5
    s = reader.read()
    assert s.rails_w["package-0"] == 3.0  # 1.5 J in 0.5 s
    assert s.power_w == 3.0
    assert s.energy_j == 1.5
    assert counter_delta(5, 3, RAPL_MAX) == 2


def test_rapl_two_reads_at_one_instant_give_no_power(laptop: Path) -> None:
    reader = RaplReader(laptop, clock=FakeClock(1.0))
    reader.read()
    s = reader.read()
    assert s.power_w is None and s.energy_j == 0.0


def _available_as_nobody(root: Path) -> tuple[bool, str]:
    """``RaplReader(root).available()`` in a forked child that dropped root (root reads any file)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns into pytest
        try:
            os.close(read_end)
            os.setgid(65534)
            os.setuid(65534)
            result: object = list(RaplReader(root).available())
        except Exception as exc:  # report anything, so the parent can skip or fail with it
            result = {"error": f"{type(exc).__name__}: {exc}"}
        os.write(write_end, json.dumps(result).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        answer = json.loads(pipe.read())
    os.waitpid(pid, 0)
    if isinstance(answer, dict):
        pytest.skip(f"cannot drop root to test unreadable counters: {answer['error']}")
    return answer[0], answer[1]


@pytest.fixture
def root_only_rapl() -> Iterator[Path]:
    """The laptop tree with energy_uj readable by nobody but root, in a directory others can traverse."""
    top = Path(tempfile.mkdtemp(prefix="rapl-"))
    try:
        top.chmod(0o755)
        root = top / "x86_laptop"
        shutil.copytree(TREES / "x86_laptop", root)
        for d in [root, *root.rglob("*")]:
            d.chmod(0o755 if d.is_dir() else 0o644)
        for energy in root.glob("sys/class/powercap/intel-rapl:*/energy_uj"):
            energy.chmod(0o000 if os.geteuid() else 0o400)  # 0o400 as root: what the kernel sets
        yield root
    finally:
        shutil.rmtree(top)


def test_rapl_counters_readable_by_root_only_say_how_to_allow_them(root_only_rapl: Path) -> None:
    if os.geteuid() == 0:
        ok, why = _available_as_nobody(root_only_rapl)
    else:
        ok, why = RaplReader(root_only_rapl).available()
    assert not ok
    assert "permission denied" in why and "energy_uj" in why
    assert "root" in why and "chmod a+r" in why


# -- absent sources ------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["tegrastats", "ina3221", "vcgencmd", "thermal_zone", "rapl", "hwmon"])
def test_an_absent_source_is_unavailable_with_a_reason(source: str, tmp_path: Path) -> None:
    ok, why = READERS.get(source)(tmp_path, run=recorded({})).available()
    assert not ok
    expected = {
        "tegrastats": "not installed",
        "ina3221": "no INA3221 power monitor",
        "vcgencmd": "not installed",
        "thermal_zone": "no thermal zones",
        "rapl": "no RAPL zones",
        "hwmon": "no hwmon devices",
    }[source]
    assert expected in why


# -- several sources as one ----------------------------------------------------------------------------


def test_orin_tegrastats_with_thermal_zones_and_ina_merged() -> None:
    run = recorded({" ".join(TEGRASTATS): tegrastats_line("orin_nano_jp6")})
    tel = open_telemetry(
        ["tegrastats", "ina3221", "thermal_zone", "rapl", "vcgencmd"], TREES / "orin_nano", run=run
    )
    assert tel.sources == ["tegrastats", "ina3221", "thermal_zone"]
    assert set(tel.skipped) == {"rapl", "vcgencmd"}
    assert "no RAPL zones" in tel.skipped["rapl"] and "not installed" in tel.skipped["vcgencmd"]
    s = tel.read()
    assert s.power_w == 4.929 and s.power_source == "tegrastats"  # the first reader wins the total
    assert s.rails_w == {"VDD_IN": 4.929, "VDD_CPU_GPU_CV": 0.479, "VDD_SOC": 1.397}  # and each rail
    assert s.temperature_c["cpu"] == 45.5  # from tegrastats
    assert s.temperature_c["cpu-thermal"] == 45.5 and "cv0-thermal" not in s.temperature_c  # from the zones
    assert s.clocks_mhz["cpu0"] == 1510.0
    assert "skipped  rapl: no RAPL zones" in str(tel)


def test_the_order_of_sources_decides_the_total() -> None:
    run = recorded({" ".join(TEGRASTATS): tegrastats_line("orin_nano_jp6")})
    s = open_telemetry(["ina3221", "tegrastats"], TREES / "orin_nano", run=run).read()
    assert s.power_w == pytest.approx(4.95936) and s.power_source == "ina3221"


def test_pi5_vcgencmd_with_hwmon_and_thermal_zone() -> None:
    tel = open_telemetry(
        ["vcgencmd", "hwmon", "thermal_zone"], TREES / "pi5", run=recorded(vcgencmd_recordings("pi5"))
    )
    assert tel.sources == ["vcgencmd", "hwmon", "thermal_zone"] and tel.skipped == {}
    s = tel.read()
    assert s.power_w == pytest.approx(sum(a * v for a, v in PI5_PMIC.values()))
    assert s.temperature_c == {
        "soc": 48.3,
        "cpu_thermal/temp1": 48.3,
        "rp1_adc/temp1": 52.0,
        "cpu-thermal": 48.3,
    }


def test_pi4_notes_that_it_has_no_power() -> None:
    tel = open_telemetry(["vcgencmd"], TREES / "pi5", run=recorded(vcgencmd_recordings("pi4")))
    assert tel.sources == ["vcgencmd"] and "pmic_read_adc is not supported" in tel.notes["vcgencmd"]
    assert tel.read().power_w is None


def test_energy_of_a_block_of_work_from_before_and_after_reads(laptop: Path) -> None:
    clock = FakeClock(0.0)
    tel = open_telemetry(["rapl", "hwmon", "thermal_zone"], laptop, clock=clock)
    assert tel.sources == ["rapl", "hwmon", "thermal_zone"]
    before = tel.read()
    set_energy(laptop, "intel-rapl:1", 188123456789 + 45_000_000)
    clock.t = 3.0
    after = tel.read()
    assert energy_over([before, after]) == 45.0
    assert after.power_w == 15.0 and after.power_source == "rapl"
    assert after.rails_w["amdgpu/PPT"] == 8.125  # hwmon rails merged next to RAPL's


def test_a_source_that_fails_later_is_recorded_not_raised(laptop: Path) -> None:
    tel = open_telemetry(["rapl", "thermal_zone"], laptop)
    (laptop / "sys/class/powercap/intel-rapl:0/energy_uj").unlink()
    s = tel.read()
    assert "rapl" in tel.errors and s.energy_j is None
    assert s.temperature_c["x86_pkg_temp"] == 52.0


def test_energy_over_integrates_power_without_a_counter() -> None:
    samples = [TelemetrySample(0.0, power_w=4.0), TelemetrySample(1.0), TelemetrySample(2.0, power_w=6.0)]
    assert energy_over(samples) == 10.0  # mean 5 W for 2 s, the middle sample has no power
    assert energy_over(samples[:1]) is None
    assert energy_over([TelemetrySample(0.0, energy_j=1.0), TelemetrySample(1.0, energy_j=3.5)]) == 2.5


def test_no_sources_gives_empty_samples() -> None:
    tel = Telemetry([], clock=FakeClock(9.0))
    assert tel.read() == TelemetrySample(9.0)


# -- this machine --------------------------------------------------------------------------------------


def test_this_machine_reports_what_it_really_has() -> None:
    wanted = ["rapl", "hwmon", "thermal_zone"]
    tel = open_telemetry(wanted)
    for name in wanted:
        assert (name in tel.sources) != (name in tel.skipped)  # each is used, or skipped with a reason
        assert name in tel.sources or tel.skipped[name]
    first, second = tel.read(), tel.read()
    assert isinstance(first, TelemetrySample) and second.timestamp >= first.timestamp
    assert json.dumps(second.to_dict()) and str(tel)
