"""The CPU as int8 arithmetic sees it, read from recorded /proc trees and from the device profiles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_sdk.devices import load_profiles
from edge_sdk.devices.cpu import ENV_EMULATED, Cpu, profile_cpu, read_cpu, this_cpu
from edge_sdk.errors import BadInputError

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize(
    ("board", "int8_class", "model", "saturates"),
    [
        ("raspberry-pi-4", "Arm64 NEON, no dot-product", "Cortex-A72", False),
        ("raspberry-pi-5", "Arm64 dot-product", "Cortex-A76", False),
        ("jetson-orin", "Arm64 dot-product", "Cortex-A78AE", False),
        ("jetson-nano", "Arm64 NEON, no dot-product", "Cortex-A57", False),
        ("x86-64-coral-pcie", "x86-64 AVX2, no VNNI", "AMD Ryzen 5 5600X 6-Core Processor", True),
        ("x86-64-xeon", "x86-64 AVX-512 VNNI", "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz", False),
        ("intel-core-ultra", "x86-64 AVX-VNNI", "Intel(R) Core(TM) Ultra 7 155H", False),
    ],
)
def test_a_recorded_cpu_has_its_int8_class(board: str, int8_class: str, model: str, saturates: bool) -> None:
    cpu = read_cpu(FIXTURES / board)
    assert cpu.int8_class == int8_class
    assert cpu.model == model
    assert cpu.saturates_8bit_weights is saturates
    assert Cpu.from_dict(json.loads(json.dumps(cpu.to_dict()))) == cpu


def test_profiles_say_what_they_know_of_their_cpu() -> None:
    profiles = load_profiles()
    pi4 = profile_cpu(profiles["raspberry-pi-4"])
    assert (pi4.model, pi4.int8_class, pi4.saturates_8bit_weights) == (
        "Cortex-A72",
        "Arm64 NEON, no dot-product",
        False,
    )
    assert profile_cpu(profiles["intel-core-ultra-npu"]).saturates_8bit_weights is False
    anything = profile_cpu(profiles["x86-64"])  # with or without VNNI: not known
    assert anything.int8_class == "x86-64 (any)" and anything.saturates_8bit_weights is None
    assert profile_cpu(profiles["aarch64"]).saturates_8bit_weights is False  # every Arm core
    # Each profile that emulates names a QEMU model; QEMU has no Cortex-A78AE, the A76 runs its kernels.
    assert profiles["jetson-orin"].cpu.emulate == "cortex-a76"  # type: ignore[union-attr]
    assert profiles["raspberry-pi-4"].cpu.emulate == "cortex-a72"  # type: ignore[union-attr]


def test_a_cpu_table_with_an_unknown_feature_is_refused(tmp_path: Path) -> None:
    (tmp_path / "board.toml").write_text(
        'name = "board"\ndescription = "a board"\narch = ["aarch64"]\n'
        '[cpu]\nfeatures = ["asimd", "dotprod"]\n'
    )
    with pytest.raises(
        BadInputError, match=r"board.toml: key 'cpu.features\[1\]': unknown int8 feature 'dotprod'"
    ):
        load_profiles(tmp_path)
    (tmp_path / "board.toml").write_text('name = "board"\ndescription = "a board"\n[cpu]\ncores = 4\n')
    with pytest.raises(BadInputError, match="key 'cpu.cores': unknown key"):
        load_profiles(tmp_path)


def test_an_emulated_cpu_is_the_one_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under qemu-x86_64 the guest reads the host's /proc/cpuinfo; the emulator says which CPU it runs."""
    haswell = Cpu("x86_64", "QEMU Haswell", "", ("avx2",))
    monkeypatch.setenv(ENV_EMULATED, json.dumps(haswell.to_dict()))
    assert this_cpu() == haswell
    monkeypatch.delenv(ENV_EMULATED)
    assert this_cpu() == read_cpu(Path("/"))


def test_edge_sdk_devices_shows_the_cpus_int8_class() -> None:
    import shutil
    import subprocess
    import sys

    exe = shutil.which("edge-sdk", path=str(Path(sys.executable).parent)) or "edge-sdk"
    root = str(FIXTURES / "x86-64-coral-pcie")
    r = subprocess.run(
        [exe, "devices", "--no-probe", "--root", root, "--json"], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["cpu"]["int8_class"] == "x86-64 AVX2, no VNNI"
    r = subprocess.run([exe, "devices", "--no-probe", "--root", root], capture_output=True, text=True)
    assert (
        "cpu: AMD Ryzen 5 5600X 6-Core Processor (x86-64 AVX2, no VNNI); its fast int8 kernels saturate"
        in r.stdout
    )
