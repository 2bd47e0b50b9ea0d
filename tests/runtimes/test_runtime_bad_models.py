"""``edge_sdk.load`` on what cannot run: missing paths, broken files, ops onnxruntime has no kernel for.
Each is a BadInputError whose message says what is wrong and where, never a raw onnxruntime error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import edge_sdk
from edge_sdk.manifest import sha256_file


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(edge_sdk.BadInputError, match="no such file or directory") as e:
        edge_sdk.load(tmp_path / "nope")
    assert str(tmp_path / "nope") in str(e.value)


def test_directory_that_is_not_an_artifact(tmp_path: Path) -> None:
    (tmp_path / "model.onnx").write_bytes(b"")
    with pytest.raises(edge_sdk.BadInputError, match="not an artifact directory"):
        edge_sdk.load(tmp_path)


def test_file_of_unknown_format(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(b"\x80\x02")
    with pytest.raises(edge_sdk.BadInputError) as e:
        edge_sdk.load(path)
    assert ".onnx" in str(e.value)


def _truncated(tiny_artifacts: dict[str, Any], path: Path) -> Path:
    data = tiny_artifacts["fp32"].model_file.read_bytes()
    assert len(data) > 1000
    path.write_bytes(data[:1000])
    return path


def test_truncated_onnx_file(tiny_artifacts: dict[str, Any], tmp_path: Path) -> None:
    path = _truncated(tiny_artifacts, tmp_path / "truncated.onnx")
    with pytest.raises(edge_sdk.BadInputError, match="truncated or corrupt"):
        edge_sdk.load(path)


def test_truncated_model_inside_an_artifact(tiny_artifacts: dict[str, Any], copy_artifact: Any) -> None:
    """The manifest is rewritten to match the truncated file, so it is onnxruntime that meets it."""
    directory = copy_artifact(tiny_artifacts["fp32"])
    model = _truncated(tiny_artifacts, directory / "model.onnx")
    manifest = json.loads((directory / "artifact.json").read_text())
    manifest["files"][0].update(sha256=sha256_file(model), size=model.stat().st_size)
    (directory / "artifact.json").write_text(json.dumps(manifest))
    with pytest.raises(edge_sdk.BadInputError, match="truncated or corrupt"):
        edge_sdk.load(directory)


def test_changed_model_inside_an_artifact(tiny_artifacts: dict[str, Any], copy_artifact: Any) -> None:
    directory = copy_artifact(tiny_artifacts["fp32"])
    model = directory / "model.onnx"
    data = bytearray(model.read_bytes())
    data[-10] ^= 0xFF
    model.write_bytes(bytes(data))
    with pytest.raises(edge_sdk.BadInputError, match="sha256"):
        edge_sdk.load(directory)


def test_custom_domain_op(custom_op_onnx: Path) -> None:
    path = custom_op_onnx
    with pytest.raises(edge_sdk.BadInputError) as e:
        edge_sdk.load(path)
    msg = str(e.value)
    assert "'Frobnicate'" in msg and "'com.example'" in msg and "'frob_1'" in msg
    assert str(path) in msg


def test_standard_op_without_a_kernel_for_its_type(erf_double_onnx: Path) -> None:
    path = erf_double_onnx
    with pytest.raises(edge_sdk.BadInputError) as e:
        edge_sdk.load(path)
    msg = str(e.value)
    assert "'Erf'" in msg and "'n1'" in msg
    assert "Could not find an implementation" not in msg  # explained, not passed through raw


def test_no_backend_for_the_format(tiny_artifacts: dict[str, Any]) -> None:
    with pytest.raises(edge_sdk.BadInputError, match="unknown backend 'no-such-backend'"):
        edge_sdk.load(tiny_artifacts["fp32"].path, backend="no-such-backend")


# -- a manifest that does not match its model file -------------------------------------------------


def _renamed(copy_artifact: Any, artifact: Any, change: Any) -> Path:
    directory = copy_artifact(artifact)
    manifest = json.loads((directory / "artifact.json").read_text())
    change(manifest)
    (directory / "artifact.json").write_text(json.dumps(manifest))
    return directory


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (
            lambda m: m["inputs"][0].update(name="image"),
            ["the manifest names input 'image'", "its inputs: x", "does not match its model file"],
        ),
        (
            lambda m: m["inputs"][0].update(stored_name="input_1"),
            ["the manifest names input 'input_1'", "its inputs: x"],
        ),
        (lambda m: m["inputs"].clear(), ["the model file takes input 'x'", "does not declare"]),
        (
            lambda m: m["outputs"][0].update(name="probs"),
            ["the manifest names output 'probs'", "its outputs: logits"],
        ),
    ],
    ids=["input-renamed", "stored-name", "input-missing", "output-renamed"],
)
def test_a_manifest_naming_tensors_its_model_lacks_is_refused_at_load(
    tiny_artifacts: dict[str, Any], copy_artifact: Any, change: Any, words: list[str]
) -> None:
    """Before, load() took it and every run failed inside onnxruntime (RunFailed, exit 1)."""
    directory = _renamed(copy_artifact, tiny_artifacts["fp32"], change)
    for accelerator in ("auto", "cpu"):
        with pytest.raises(edge_sdk.BadInputError) as e:
            edge_sdk.load(directory, accelerator=accelerator)
        for word in words:
            assert word in str(e.value), str(e.value)
        assert str(directory / "model.onnx") in str(e.value)
        # with an accelerator named, the model is still what is blamed, not the accelerator's name
        assert "no backend knows" not in str(e.value)


@pytest.mark.parametrize(
    ("feeds", "outputs", "words"),
    [
        ({"x": [[1.0, 2.0], [3.0]]}, None, ["input 'x' is not an array", "inhomogeneous"]),
        ({"x": "X"}, 5, ["outputs= takes a list of output names", "int 5"]),
        ({"x": "X"}, "logits", ["outputs= takes a list of output names", "str 'logits'"]),
    ],
    ids=["ragged", "outputs-int", "outputs-str"],
)
def test_run_refuses_what_is_not_an_array_or_a_list_of_names(
    tiny_artifacts: dict[str, Any], tiny_x: np.ndarray, feeds: dict, outputs: Any, words: list[str]
) -> None:
    """A ragged list was numpy's ValueError and a non-list outputs= a TypeError out of run()."""
    session = edge_sdk.load(tiny_artifacts["fp32"].path)
    with pytest.raises(edge_sdk.BadInputError) as e:
        session.run({k: tiny_x if v == "X" else v for k, v in feeds.items()}, outputs)
    for word in words:
        assert word in str(e.value), str(e.value)
