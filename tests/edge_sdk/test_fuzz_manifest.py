"""Property-based tests of the artifact contract: whatever a manifest holds (a real one from a small
converted model, mutated: wrong types, missing and extra keys, odd strings, paths with ``..`` or NUL, huge
numbers, nested structures) and whatever ``run()`` is handed, ``load_artifact``, ``load()`` and
``Session.run`` either work or raise an ``EdgeSDKError``; nothing else escapes."""

from __future__ import annotations

import contextlib
import copy
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import edge_sdk
from edge_sdk.errors import BadInputError, EdgeSDKError
from edge_sdk.manifest import MANIFEST_NAME, load_artifact

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

# Strings a manifest's fields have, and strings no field should: traversal, NUL, absolute paths, huge
# text, and names of real dtypes, formats, tensors and files, so mutations often land on something that
# loads and then runs.
ODD_STRINGS = st.one_of(
    st.text(max_size=12),
    st.text(alphabet="xyz./\x00:_-1", max_size=8),  # the characters that matter in names and paths
    st.sampled_from(
        [
            "", ".", "..", "../model.onnx", "../../etc/passwd", "/etc/passwd", "model.onnx\x00", "a\x00b",
            "x" * 5000, "model.onnx", "reference.npz", "artifact.json", "x", "y", "z", "nosuch", "NC", "CN",
            "NCHW", "float32", "float64", "int8", "uint8", "bool", "object", "O", "V8", "S0", "i4,", "M8",
            "<U4", "fp32", "fp16", "int8-dynamic", "onnx", "openvino", "tflite", "f32", "bf16", "device",
        ]
    ),
)  # fmt: skip
NUMBERS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, -1, 7, 8, 2**31, 2**63, 10**30, 10**400]),
    st.floats(allow_nan=True, allow_infinity=True),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, ODD_STRINGS)
VALUES = st.recursive(
    SCALARS,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(ODD_STRINGS, kids, max_size=4),
    max_leaves=12,
)

# Places a mutation is aimed at directly, besides anywhere in the tree: the fields that readers past the
# schema check look into.
TARGETED = [
    ("format",),
    ("precision",),
    ("files", 0, "path"),
    ("inputs",),
    ("inputs", 0),
    ("inputs", 0, "name"),
    ("inputs", 1, "name"),
    ("inputs", 0, "stored_name"),
    ("inputs", 0, "dtype"),
    ("inputs", 0, "shape"),
    ("inputs", 0, "shape", 0),
    ("inputs", 0, "layout"),
    ("inputs", 0, "stored_layout"),
    ("outputs", 0, "name"),
    ("outputs", 0, "stored_name"),
    ("outputs", 0, "dtype"),
    ("quantization",),
    ("quantization", "x"),
    ("quantization", "x", "scale"),
    ("quantization", "x", "zero_point"),
    ("quantization", "x", "dtype"),
    ("quantization", "z"),
    ("recipe", "int8_weights"),
    ("recipe", "int8_weights", "bits"),
    ("recipe", "inference_precision"),
    ("parity",),
    ("parity", "measured_on"),
    ("parity", "measured_on", "cpu"),
    ("parity", "measured_on", "cpu", "features"),
    ("parity", "reference_set"),
    ("parity", "reference_set", "path"),
]


def _model(path: Path) -> Path:
    """``z = x @ w + y``: two inputs, x float32[1,4] and y float32[1,3], and a MatMul for int8 to quantise."""
    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Add", ["m", "y"], ["z"])],
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4]),
            helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3]),
        ],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 3])],
        initializer=[w],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9), path)
    return path


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The model converted to fp32 and int8-dynamic: precision → artifact directory (read-only)."""
    root = tmp_path_factory.mktemp("fuzz-model")
    made = edge_sdk.convert(_model(root / "add.onnx"), ["onnx:fp32", "onnx:int8-dynamic"], out=root / "out")
    return {a.precision: a.path for a in made if a.path is not None}


@pytest.fixture(scope="module")
def session(artifacts: dict[str, Path]) -> edge_sdk.Session:
    return edge_sdk.load(artifacts["fp32"])


@contextlib.contextmanager
def _copy(artifact: Path, scratch: Path) -> Iterator[Path]:
    """A copy of ``artifact`` to mutate, removed afterwards."""
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        directory = Path(tmp) / artifact.name
        shutil.copytree(artifact, directory)
        yield directory


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    """Put ``value`` at ``path``, making the objects on the way; a path through a list too short or a
    scalar is left alone (the mutation then changes nothing, which is a valid case too)."""
    node = doc
    for key in path[:-1]:
        if isinstance(node, dict):
            node = node.setdefault(key, {})
        elif isinstance(node, list) and isinstance(key, int) and key < len(node):
            node = node[key]
        else:
            return
    last = path[-1]
    if isinstance(node, dict):
        node[last] = value
    elif isinstance(node, list) and isinstance(last, int) and last < len(node):
        node[last] = value


def _mutate(data: st.DataObject, doc: dict[str, Any]) -> dict[str, Any]:
    """One to four mutations: at a targeted field, or at a node reached by a random walk from the root."""
    doc = copy.deepcopy(doc)
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        if data.draw(st.booleans(), label="targeted"):
            _set(doc, data.draw(st.sampled_from(TARGETED), label="path"), data.draw(VALUES, label="value"))
            continue
        parent: Any = None
        key: Any = None
        node: Any = doc
        while isinstance(node, (dict, list)) and node and data.draw(st.booleans(), label="descend"):
            keys = list(node) if isinstance(node, dict) else list(range(len(node)))
            parent, key = node, data.draw(st.sampled_from(keys), label="key")
            node = node[key]
        op = data.draw(st.sampled_from(["replace", "delete", "add", "duplicate"]), label="op")
        if op == "replace" and parent is not None:
            parent[key] = data.draw(VALUES, label="value")
        elif op == "delete" and parent is not None:
            del parent[key]
        elif op == "add" and isinstance(node, dict):
            node[data.draw(ODD_STRINGS, label="new key")] = data.draw(VALUES, label="value")
        elif op == "add" and isinstance(node, list):
            node.append(data.draw(VALUES, label="value"))
        elif op == "duplicate" and isinstance(node, list) and node:
            node.append(copy.deepcopy(node[0]))
    return doc


def _feeds(session: edge_sdk.Session) -> dict[str, np.ndarray] | None:
    """Zeros in the shape and dtype each input declares (1 for an open dim); None when that is not a
    small array numpy can make."""
    feeds = {}
    for spec in session.inputs:
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in spec.shape]
        if np.prod(shape, dtype=np.float64) > 1e5:
            return None
        feeds[spec.name] = np.zeros(shape, dtype=np.dtype(spec.dtype))
    return feeds


def _exercise(directory: Path) -> None:
    """Load and run the artifact as a user would; any EdgeSDKError is an acceptable answer."""
    try:
        load_artifact(directory)
        session = edge_sdk.load(directory)
    except EdgeSDKError:
        return
    feeds = _feeds(session)
    if feeds is not None:
        try:
            session.run(feeds)
        except EdgeSDKError:
            pass
    with pytest.raises(BadInputError, match="nosuch"):
        session.run({**(feeds or {}), "nosuch": np.zeros(1, np.float32)})


@pytest.mark.parametrize("precision", ["fp32", "int8-dynamic"])
@given(data=st.data())
def test_a_mutated_manifest_loads_and_runs_or_is_an_edge_sdk_error(
    artifacts: dict[str, Path], scratch: Path, precision: str, data: st.DataObject
) -> None:
    with _copy(artifacts[precision], scratch) as directory:
        manifest = directory / MANIFEST_NAME
        manifest.write_text(json.dumps(_mutate(data, json.loads(manifest.read_text()))))
        _exercise(directory)


@given(data=st.data())
def test_a_damaged_manifest_text_is_an_edge_sdk_error(
    artifacts: dict[str, Path], scratch: Path, data: st.DataObject
) -> None:
    with _copy(artifacts["fp32"], scratch) as directory:
        manifest = directory / MANIFEST_NAME
        raw = manifest.read_bytes()
        start = data.draw(st.integers(0, len(raw)), label="start")
        end = data.draw(st.integers(start, min(len(raw), start + 64)), label="end")
        manifest.write_bytes(raw[:start] + data.draw(st.binary(max_size=32), label="insert") + raw[end:])
        _exercise(directory)


FEED_VALUES = st.one_of(
    hnp.arrays(hnp.scalar_dtypes(), hnp.array_shapes(min_dims=0, max_dims=3, max_side=5)),
    hnp.arrays(np.float32, st.sampled_from([(1, 4), (1, 3), (4, 1), (1, 4, 1), (0, 4), (2, 4)])),
    VALUES,
)
OUTPUTS = st.one_of(st.none(), st.lists(ODD_STRINGS, max_size=3), ODD_STRINGS, NUMBERS)


@given(
    feeds=st.one_of(
        st.fixed_dictionaries({"x": FEED_VALUES, "y": FEED_VALUES}),
        st.dictionaries(st.sampled_from(["x", "y"]) | ODD_STRINGS, FEED_VALUES, max_size=3),
        VALUES,
    ),
    outputs=OUTPUTS,
)
def test_run_on_any_feeds_gives_outputs_or_an_edge_sdk_error(
    session: edge_sdk.Session, feeds: Any, outputs: Any
) -> None:
    try:
        result = session.run(feeds, outputs)
    except EdgeSDKError:
        return
    assert set(result) <= set(session.output_names)
