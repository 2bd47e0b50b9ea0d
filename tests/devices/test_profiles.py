"""Device profiles as data: the shipped files are valid and consistent with the backends, a malformed
file is refused with its file and key named, and a new file is a new profile with no code."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edge_sdk.devices import detect, load_profiles
from edge_sdk.devices.profile import ENV_PROFILES, TELEMETRY_SOURCES
from edge_sdk.errors import BadInputError
from edge_sdk.runtimes import BACKENDS

SHIPPED = Path(__file__).parents[2] / "devices" / "profiles"
FIXTURES = Path(__file__).parent / "fixtures"
REQUIRED = {
    "jetson-orin", "jetson-nano-xavier", "raspberry-pi-4", "raspberry-pi-5", "intel-core-ultra-npu",
    "x86-64", "aarch64", "coral", "generic",
}  # fmt: skip


def test_the_shipped_profiles_load_and_cover_the_boards() -> None:
    profiles = load_profiles()
    assert REQUIRED <= set(profiles)
    assert profiles == load_profiles(SHIPPED)  # the package data is the folder in the repository
    assert profiles["coral"].addon and not any(p.addon for n, p in profiles.items() if n != "coral")
    # generic profiles come last: every board outranks them
    boards = [p for p in profiles.values() if not p.addon and p.arch and p.match]
    assert min(p.priority for p in boards) > max(
        profiles[n].priority for n in ("x86-64", "aarch64", "generic")
    )


def test_shipped_accelerators_use_the_backends_own_names() -> None:
    """Every (backend, accelerator) names a registered backend and one of its accelerators (HailoRT,
    which edge-sdk has no backend for, excepted), and every telemetry source is one the reader knows."""
    from edge_sdk.runtimes import onnxruntime, openvino, tflite

    known = {
        "onnxruntime": set(onnxruntime.PROVIDERS),
        "openvino": set(openvino.AUTO_ORDER),
        "tflite": set(tflite.ACCELERATORS),
    }
    assert set(known) <= set(BACKENDS.names())
    for profile in load_profiles().values():
        assert profile.accelerators, profile.name
        assert set(profile.telemetry) <= set(TELEMETRY_SOURCES)
        for a in profile.accelerators:
            assert a.backend in known or a.backend == "hailort", (profile.name, a)
            if a.backend in known:
                assert a.accelerator in known[a.backend], (profile.name, a)


H = 'name = "board"\ndescription = "x"\n'  # a valid head for the broken tails below
BAD = [
    ('description = "x"', "key 'name': missing"),
    ('name = "other"\ndescription = "x"', "key 'name': must be the file's name 'board'"),
    (H + "priorty = 3", "key 'priorty': unknown key"),
    (H + 'priority = "high"', "key 'priority': expected int, got str"),
    (H + "threads = 0", "key 'threads': expected a positive count"),
    (H + 'telemetry = ["tegrastat"]', "key 'telemetry[0]': unknown source"),
    (H + '[[match]]\nmodel = ["Pi"]', "key 'match[0].model': unknown rule"),
    (H + '[[match]]\npci = ["8086:7D1D"]', "key 'match[0].pci': expected lower"),
    (
        H + '[[accelerators]]\nbackend = "onnxruntime"\naccelerator = "TensorRT"',
        "key 'accelerators[0].accelerator': onnxruntime has no accelerator 'TensorRT'",
    ),
    (
        H + '[[accelerators]]\nbackend = "openvino"',
        "key 'accelerators[0].accelerator': missing",
    ),
    (H + "addon = true", "an add-on needs at least one [[match]]"),
    (H + 'arch = "aarch64"', "key 'arch': expected list"),
    ('name = "board"\ndescription = [', "not valid TOML"),
    # pathlib's ValueError on an empty or a '***' pattern before; '**' would walk the whole tree
    (H + '[[match]]\ndev = ["/"]', "key 'match[0].dev': expected globs of nodes like '/dev/apex_*'"),
    (H + '[[match]]\ndev = ["/dev/***"]', "key 'match[0].dev': expected globs"),
    (H + '[[match]]\ndev = ["/dev/**/x"]', "key 'match[0].dev': expected globs"),
    (H + '[[match]]\ndev = ["/dev/../etc/*"]', "key 'match[0].dev': expected globs"),
    (H + "telemetry = " + "[" * 100_000 + "]" * 100_000, "nested too deeply"),  # a RecursionError before
]


@pytest.mark.parametrize(("text", "message"), BAD, ids=[m for _, m in BAD])
def test_a_malformed_profile_names_the_file_and_the_key(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "board.toml").write_text(text)
    with pytest.raises(BadInputError) as info:
        load_profiles(tmp_path)
    assert str(tmp_path / "board.toml") in str(info.value) and message in str(info.value)


NEW_BOARD = """
name = "rock-5b"
description = "Radxa ROCK 5B (RK3588): the Mali GPU through the TFLite GPU delegate"
priority = 80
arch = ["aarch64"]
threads = 8
telemetry = ["thermal_zone"]

[[match]]
device_tree_model = ["ROCK 5B"]

[[accelerators]]
backend = "tflite"
accelerator = "gpu"
precisions = ["fp16"]

[[accelerators]]
backend = "tflite"
accelerator = "cpu"
"""


def test_a_new_profile_is_a_new_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A board the shipped profiles do not know becomes detectable by dropping a file into a directory
    named by $EDGE_SDK_DEVICE_PROFILES; no code changes."""
    tree = shutil.copytree(FIXTURES / "aarch64-server", tmp_path / "tree")
    (tree / "proc/device-tree").mkdir(parents=True)
    (tree / "proc/device-tree/model").write_bytes(b"Radxa ROCK 5B\0")
    (tree / "dev").mkdir()
    (tree / "dev/mali0").write_text("")
    assert detect(tree, probe_backends=False).profile.name == "aarch64"
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine/rock-5b.toml").write_text(NEW_BOARD)
    (tmp_path / "mine/old.toml").mkdir()  # a folder named like a profile is not one
    monkeypatch.setenv(ENV_PROFILES, str(tmp_path / "mine"))
    d = detect(tree, probe_backends=False)
    assert d.profile.name == "rock-5b" and d.threads == 8
    gpu = d.accelerators[0]
    assert (gpu.backend, gpu.accelerator) == ("tflite", "gpu") and "/dev/mali0 present" in gpu.reason
    assert "libtensorflowlite_gpu_delegate.so not found" in gpu.reason


def test_a_user_profile_replaces_a_shipped_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (SHIPPED / "raspberry-pi-4.toml").read_text().replace("threads = 4", "threads = 3")
    (tmp_path / "raspberry-pi-4.toml").write_text(text)
    monkeypatch.setenv(ENV_PROFILES, str(tmp_path))
    assert load_profiles()["raspberry-pi-4"].threads == 3
    assert detect(FIXTURES / "raspberry-pi-4", probe_backends=False).threads == 3


def test_a_missing_profile_directory_is_bad_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(BadInputError, match="no such directory"):
        load_profiles(tmp_path / "nope")
    monkeypatch.setenv(ENV_PROFILES, str(tmp_path / "nope"))
    with pytest.raises(BadInputError, match=ENV_PROFILES):
        load_profiles()
