"""Property-based tests of the recipe loader: whatever an edge.toml holds (any key, known or not, with any
value; damaged text), ``load_recipe`` and what a loaded recipe answers (its source, targets and
``convert()`` keywords) either work or raise an ``EdgeSDKError``; nothing else escapes."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edge_sdk.converters.recipe import BY_PATH, KEYS, load_function, load_recipe
from edge_sdk.errors import EdgeSDKError

pytest.importorskip("hypothesis")
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

# Values each kind of key takes, and near misses: targets, drops, function specs, paths with NUL and
# traversal, device names. A function spec's module is never one that exists, so no test imports
# whatever the generator happens to spell.
ODD_STRINGS = st.one_of(
    st.text(max_size=12),
    st.text(alphabet="ab.:%/\x00_-1", max_size=8),  # the characters that matter in names and paths
    st.sampled_from(
        [
            "", "..", "../model.onnx", "/etc/passwd", "a\x00b", "model.onnx", "zoo:", "zoo:nosuch",
            "onnx:int8", "onnx:fp32,openvino:fp16", "onnx:", ":int8", "nosuch:fp32", "1%", "-1%", "nan%",
            "inf%", "%", "1e999%", "x86-64", "generic", "jetson-orin", "nosuch-board", ":f", ".x:f", "..:f",
            ":", "f.py:", "nosuch_edge_sdk_fuzz.py:f", "nosuch_edge_sdk_fuzz.mod:f", "\x00:f", "a.py\x00:f",
            "channels", "sparsity", "layer", "global", "per_channel", "calibrator", "openvino.calibrator",
        ]
    ),
)  # fmt: skip
NUMBERS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, -1, 2**63, 10**400]),
    st.floats(allow_nan=True, allow_infinity=True),
)
VALUES = st.recursive(
    st.one_of(st.booleans(), NUMBERS, ODD_STRINGS),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(ODD_STRINGS, kids, max_size=4),
    max_leaves=10,
)
# Known key paths and table names mostly, so most recipes get past the unknown-key check.
KEY_NAMES = st.one_of(
    st.sampled_from([k.path for k in KEYS] + sorted({k.path.split(".")[0] for k in KEYS})), ODD_STRINGS
)


def _exercise(path: Path) -> None:
    """Load the recipe and ask it what ``edge-sdk convert`` would; any EdgeSDKError is an answer."""
    try:
        recipe = load_recipe(path)
        recipe.source  # noqa: B018 - the property reads it
        recipe.targets  # noqa: B018
        if "quantize.evaluate" in recipe.values:
            # only a spec that cannot import a real module (see ODD_STRINGS) reaches here
            load_function(recipe.values["quantize.evaluate"])
        recipe.merged({})
    except EdgeSDKError:
        pass


def _write(scratch: Path, text: str | bytes) -> Path:
    directory = Path(tempfile.mkdtemp(dir=scratch))
    path = directory / "edge.toml"
    path.write_bytes(text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text)
    return path


@given(entries=st.lists(st.tuples(KEY_NAMES, VALUES), max_size=6))
def test_any_recipe_loads_or_is_an_edge_sdk_error(
    scratch: Path, toml_text: Callable[[list[tuple[str, Any]]], str], entries: list[tuple[str, Any]]
) -> None:
    _exercise(_write(scratch, toml_text(entries)))


def _valid(key: str) -> Any:
    key_ = BY_PATH[key]
    if key_.choices:
        return key_.choices[0]
    return {
        "source": "model.onnx", "targets": ["onnx:fp32"], "device": "generic", "path": "data.npz",
        "str": "name", "nonneg": 0.5, "ratio": 0.5, "drop": "1%",
        "int": 2, "bool": True, "float": 1.0, "scalars": {"sr": 16000}, "shapes": {"x": [1, 4]},
        "options": {"per_channel": False}, "function": "nosuch_edge_sdk_fuzz.py:f",
    }[key_.kind]  # fmt: skip


@given(data=st.data())
def test_a_damaged_recipe_text_is_an_edge_sdk_error(
    scratch: Path, toml_text: Callable[[list[tuple[str, Any]]], str], data: st.DataObject
) -> None:
    raw = toml_text([(k.path, _valid(k.path)) for k in KEYS]).encode()
    start = data.draw(st.integers(0, len(raw)), label="start")
    end = data.draw(st.integers(start, min(len(raw), start + 32)), label="end")
    _exercise(_write(scratch, raw[:start] + data.draw(st.binary(max_size=16), label="insert") + raw[end:]))


def test_the_valid_recipe_the_damage_starts_from_loads(
    scratch: Path, toml_text: Callable[[list[tuple[str, Any]]], str]
) -> None:
    """Without this, the damaged-text test could pass on a recipe that never loads at all."""
    recipe = load_recipe(_write(scratch, toml_text([(k.path, _valid(k.path)) for k in KEYS])))
    assert set(recipe.values) == {k.path for k in KEYS}
