"""Property-based tests of the device-profile loader: whatever a profile file holds (any key with any value,
rule sets and accelerators of any shape, damaged text), ``load_profiles`` and detection with the profile
either work or raise an ``EdgeSDKError``; nothing else escapes."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edge_sdk.devices import detect, load_profiles
from edge_sdk.devices.profile import RULES, TELEMETRY_SOURCES
from edge_sdk.errors import EdgeSDKError

pytest.importorskip("hypothesis")
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

SHIPPED = Path(__file__).parents[2] / "devices" / "profiles"
# A recorded board (a Raspberry Pi 5 with a Hailo card): rules look into it, not into this machine.
BOARD = Path(__file__).parent / "fixtures" / "raspberry-pi-5-hailo"

ODD_STRINGS = st.one_of(
    st.text(max_size=12),
    st.text(alphabet="/dev*a.\x00:1", max_size=8),  # the characters that matter in names and paths
    st.sampled_from(
        [
            "", "/", "..", "/dev/..", "/dev/../etc/*", "**", "/dev/**", "/dev/hailo*", "/dev/[", "a\x00b",
            "/etc/passwd", "board", "Board", "x86_64", "aarch64", "arm64", "onnxruntime", "openvino",
            "tflite", "hailort", "cpu", "CPU", "GPU", "cuda", "edgetpu", "onnx", "fp32", "int8", "all",
            "physical", "Raspberry Pi 5", "1e60:*", "1E60:*", "1e60:2864/12", "asimddp", "avx2", "Haswell",
            *TELEMETRY_SOURCES,
        ]
    ),
)  # fmt: skip
NUMBERS = st.one_of(st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=True))
VALUES = st.recursive(
    st.one_of(st.booleans(), NUMBERS, ODD_STRINGS),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(ODD_STRINGS, kids, max_size=3),
    max_leaves=8,
)
RULE_SETS = st.lists(
    st.dictionaries(st.sampled_from(sorted(RULES)) | ODD_STRINGS, st.lists(ODD_STRINGS, max_size=3) | VALUES),
    max_size=3,
)
ACCELERATOR = st.fixed_dictionaries(
    {"backend": ODD_STRINGS, "accelerator": ODD_STRINGS},
    optional={
        "formats": st.lists(ODD_STRINGS, max_size=3) | VALUES,
        "precisions": st.lists(ODD_STRINGS, max_size=3) | VALUES,
        "enable": ODD_STRINGS | VALUES,
        "when": RULE_SETS | VALUES,
    },
)
PROFILE = st.fixed_dictionaries(
    {"name": st.just("board") | ODD_STRINGS, "description": ODD_STRINGS | VALUES},
    optional={
        "priority": NUMBERS | VALUES,
        "addon": st.booleans() | VALUES,
        "arch": st.lists(ODD_STRINGS, max_size=3) | VALUES,
        "match": RULE_SETS | VALUES,
        "accelerators": st.lists(ACCELERATOR | VALUES, max_size=3) | VALUES,
        "formats": st.lists(ODD_STRINGS, max_size=3) | VALUES,
        "precisions": st.lists(ODD_STRINGS, max_size=3) | VALUES,
        "threads": st.integers(-2, 64) | ODD_STRINGS | VALUES,
        "telemetry": st.lists(ODD_STRINGS, max_size=3) | VALUES,
        "cpu": st.fixed_dictionaries(
            {}, optional={k: ODD_STRINGS | st.lists(ODD_STRINGS) | VALUES for k in ("core", "features")}
        )
        | VALUES,
    },
)


def _exercise(scratch: Path, text: bytes) -> None:
    """Load a directory holding the one file ``board.toml`` and detect the recorded board with it."""
    directory = Path(tempfile.mkdtemp(dir=scratch))
    (directory / "board.toml").write_bytes(text)
    try:
        profiles = load_profiles(directory)
        for profile in profiles.values():
            profile.to_dict()
        detect(BOARD, probe_backends=False, profiles=profiles).to_dict()
    except EdgeSDKError:
        pass


@given(profile=PROFILE, unknown=st.dictionaries(ODD_STRINGS, VALUES, max_size=1))
def test_any_profile_loads_and_detects_or_is_an_edge_sdk_error(
    scratch: Path,
    toml_text: Callable[[list[tuple[str, Any]]], str],
    profile: dict[str, Any],
    unknown: dict[str, Any],
) -> None:
    text = toml_text(list(profile.items()) + list(unknown.items()))
    _exercise(scratch, text.encode("utf-8", "surrogatepass"))


@given(data=st.data(), shipped=st.sampled_from(sorted(SHIPPED.glob("*.toml"))))
def test_a_damaged_shipped_profile_is_an_edge_sdk_error(
    scratch: Path, data: st.DataObject, shipped: Path
) -> None:
    raw = shipped.read_bytes().replace(f'name = "{shipped.stem}"'.encode(), b'name = "board"')
    start = data.draw(st.integers(0, len(raw)), label="start")
    end = data.draw(st.integers(start, min(len(raw), start + 32)), label="end")
    _exercise(scratch, raw[:start] + data.draw(st.binary(max_size=16), label="insert") + raw[end:])
