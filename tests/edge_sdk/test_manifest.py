"""The artifact contract: artifact.json round trip, validation with clear errors, and atomic writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import edge_sdk
from edge_sdk.manifest import (
    MANIFEST_NAME,
    SCHEMA_VERSION,
    Artifact,
    FileEntry,
    TensorSpec,
    file_entry,
    is_artifact,
    load_artifact,
    sha256_file,
    staging_dir,
    validate_manifest,
    write_manifest,
)

MODEL_BYTES = bytes(range(256)) * 8


def _artifact(directory: Path) -> Artifact:
    """A hand-made artifact: a model file (any bytes; the manifest does not parse it) and its manifest."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "model.onnx").write_bytes(MODEL_BYTES)
    art = Artifact(
        name="hand-onnx-fp32",
        format="onnx",
        precision="fp32",
        files=[file_entry(directory, "model.onnx")],
        inputs=[TensorSpec("audio", ["batch", 16000], "float32", layout="NT", stored_layout="NT")],
        outputs=[TensorSpec("scores", ["batch", 12], "float32")],
        source={"path": "hand.onnx", "sha256": "0" * 64, "framework": "onnx"},
        recipe={"target": "onnx:fp32"},
        versions={"edge_sdk": edge_sdk.__version__},
        created="2024-01-01T00:00:00+00:00",
        quantization={},
        parity={"max_abs_error": 0.0},
    )
    write_manifest(art, directory)
    art.path = directory
    return art


@pytest.fixture
def art(tmp_path: Path) -> Artifact:
    return _artifact(tmp_path / "hand-onnx-fp32")


def _edit(art: Artifact, change: Any) -> Path:
    """Apply ``change(manifest_dict)`` to the artifact's manifest on disk; returns the manifest path."""
    assert art.path is not None
    path = art.path / MANIFEST_NAME
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
    return path


# -- round trip ---------------------------------------------------------------------------------------


def test_round_trip(art: Artifact) -> None:
    loaded = load_artifact(art.path)
    assert loaded == art
    assert loaded.path == art.path
    assert loaded.model_file == art.path / "model.onnx"
    assert loaded.size == len(MODEL_BYTES)
    assert loaded.inputs[0].shape == ["batch", 16000] and loaded.inputs[0].layout == "NT"
    assert load_artifact(art.path / MANIFEST_NAME) == art  # the manifest file itself works too


def test_schema_version_is_written_first(art: Artifact) -> None:
    text = (art.path / MANIFEST_NAME).read_text()
    data = json.loads(text)
    assert data["schema_version"] == SCHEMA_VERSION == 1
    assert next(iter(data)) == "schema_version"
    assert "path" not in data  # where the artifact lies is not part of it
    assert data["files"] == [
        {"path": "model.onnx", "sha256": sha256_file(art.path / "model.onnx"), "size": len(MODEL_BYTES)}
    ]


REQUIRED = [
    "schema_version",
    "name",
    "format",
    "precision",
    "files",
    "inputs",
    "outputs",
    "source",
    "recipe",
    "versions",
    "created",
]


def test_converted_artifacts_carry_a_valid_manifest(tiny_artifacts: dict[str, Any]) -> None:
    for a in tiny_artifacts.values():
        path = a.path / MANIFEST_NAME
        data = json.loads(path.read_text())
        assert data["schema_version"] == SCHEMA_VERSION
        validate_manifest(data, path)
        for key in [*REQUIRED, "parity"]:
            assert data[key], key
        assert [f["path"] for f in data["files"]] == ["model.onnx"]
        assert data["files"][0]["sha256"] == sha256_file(a.path / "model.onnx")


def test_is_artifact(art: Artifact, tmp_path: Path) -> None:
    assert is_artifact(art.path) and is_artifact(art.path / MANIFEST_NAME)
    assert not is_artifact(tmp_path) and not is_artifact(art.path / "model.onnx")


def test_model_file_needs_a_directory(art: Artifact) -> None:
    art.path = None
    with pytest.raises(edge_sdk.BadInputError, match="no directory"):
        _ = art.model_file


# -- what load_artifact refuses -----------------------------------------------------------------------


@pytest.mark.parametrize("field", REQUIRED)
def test_missing_required_field(art: Artifact, field: str) -> None:
    path = _edit(art, lambda d: d.pop(field))
    with pytest.raises(edge_sdk.BadInputError) as e:
        load_artifact(art.path)
    assert f"required field '{field}' is missing" in str(e.value)
    assert str(path) in str(e.value)


@pytest.mark.parametrize(
    ("where", "change"),
    [
        ("files[0].sha256", lambda d: d["files"][0].pop("sha256")),
        ("inputs[0].dtype", lambda d: d["inputs"][0].pop("dtype")),
        ("outputs[0].name", lambda d: d["outputs"][0].pop("name")),
    ],
)
def test_missing_nested_field(art: Artifact, where: str, change: Any) -> None:
    _edit(art, change)
    with pytest.raises(edge_sdk.BadInputError) as e:
        load_artifact(art.path)
    assert f"required field '{where}' is missing" in str(e.value)


def test_optional_fields_may_be_absent(art: Artifact) -> None:
    _edit(art, lambda d: (d.pop("quantization"), d.pop("parity")))
    loaded = load_artifact(art.path)
    assert loaded.parity is None and loaded.quantization == {}


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("name", 5, ["'name'", "a string", "int"]),
        ("schema_version", "1", ["'schema_version'", "an integer"]),
        ("schema_version", True, ["'schema_version'", "an integer", "bool"]),
        ("files", "model.onnx", ["'files'", "a list"]),
        ("recipe", [], ["'recipe'", "an object"]),
        ("parity", "good", ["'parity'", "an object or null"]),
    ],
)
def test_wrong_type(art: Artifact, field: str, value: Any, words: list[str]) -> None:
    _edit(art, lambda d: d.__setitem__(field, value))
    with pytest.raises(edge_sdk.BadInputError) as e:
        load_artifact(art.path)
    for word in words:
        assert word in str(e.value), str(e.value)


Q8 = {"scale": 0.1, "zero_point": 0, "dtype": "int8"}


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda d: d["files"][0].__setitem__("size", "2048"), ["'files[0].size'", "an integer"]),
        (lambda d: d["inputs"][0].__setitem__("shape", "1,3"), ["'inputs[0].shape'", "a list"]),
        (lambda d: d["inputs"][0].__setitem__("shape", [1, 2.5]), ["'inputs[0].shape'", "2.5"]),
        (lambda d: d["outputs"][0].__setitem__("shape", [True]), ["'outputs[0].shape'", "True"]),
        (lambda d: d["inputs"].__setitem__(0, "audio"), ["'inputs[0]'", "an object"]),
        (lambda d: d["inputs"][0].__setitem__("layout", 3), ["'inputs[0].layout'"]),
        (lambda d: d["inputs"][0].__setitem__("dtype", "notadtype"), ["'inputs[0].dtype'", "numpy dtype"]),
        (lambda d: d["inputs"][0].__setitem__("layout", "NCHW"), ["'inputs[0].layout'", "the 2 dims"]),
        (lambda d: d["inputs"][0].__setitem__("stored_layout", "NN"), ["'inputs[0].stored_layout'"]),
        (
            lambda d: d.__setitem__("quantization", {"audio": {**Q8, "scale": "x"}}),
            ["'quantization.audio.scale'", "a number"],
        ),
        (
            lambda d: d.__setitem__("quantization", {"audio": {**Q8, "dtype": "float32"}}),
            ["'quantization.audio.dtype'", "integer dtype"],
        ),
        (lambda d: d.__setitem__("quantization", {"audio": 3}), ["'quantization.audio'", "a table"]),
    ],
    ids=[
        "size",
        "shape-str",
        "dim-float",
        "dim-bool",
        "spec-str",
        "layout",
        "dtype",
        "layout-rank",
        "layout-twice",
        "scale",
        "q-dtype",
        "q-entry",
    ],
)
def test_wrong_nested_type(art: Artifact, change: Any, words: list[str]) -> None:
    _edit(art, change)
    with pytest.raises(edge_sdk.BadInputError) as e:
        load_artifact(art.path)
    for word in words:
        assert word in str(e.value), str(e.value)


@pytest.mark.parametrize(
    ("where", "value", "words"),
    [
        (("recipe", "int8_weights"), {"bits": None}, ["'recipe.int8_weights.bits'", "an integer"]),
        (("recipe", "int8_weights"), "8bit", ["'recipe.int8_weights'", "an object"]),
        (("parity", "measured_on"), "here", ["'parity.measured_on'", "an object"]),
        (
            ("parity", "measured_on"),
            {"cpu": {"features": 5}},
            ["'parity.measured_on.cpu.features'", "a list"],
        ),
        (("parity", "measured_on"), {"cpu": {"features": [["avx2"]]}}, ["'parity.measured_on.cpu.features'"]),
    ],
    ids=["bits-null", "int8-weights-str", "measured-on-str", "features-int", "features-nested"],
)
def test_a_record_loading_reads_back_is_checked(
    art: Artifact, where: tuple[str, str], value: Any, words: list[str]
) -> None:
    """Choosing int8 kernels reads recipe.int8_weights and the CPU-class warning reads parity.measured_on:
    malformed, they were a TypeError or AttributeError out of load() on some CPUs."""
    _edit(art, lambda d: d.setdefault(where[0], {}).__setitem__(where[1], value))
    with pytest.raises(edge_sdk.BadInputError) as e:
        load_artifact(art.path)
    for word in words:
        assert word in str(e.value), str(e.value)


def test_a_manifest_nested_too_deeply_is_bad_input(art: Artifact) -> None:
    (art.path / "artifact.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(edge_sdk.BadInputError, match="nested too deeply"):
        load_artifact(art.path)


def test_no_files_listed(art: Artifact) -> None:
    _edit(art, lambda d: d.__setitem__("files", []))
    with pytest.raises(edge_sdk.BadInputError, match="no model file"):
        load_artifact(art.path)


def test_newer_schema_version(art: Artifact) -> None:
    _edit(art, lambda d: d.__setitem__("schema_version", SCHEMA_VERSION + 1))
    with pytest.raises(edge_sdk.BadInputError, match="upgrade edge-sdk"):
        load_artifact(art.path)


def test_unknown_top_level_field_is_ignored(art: Artifact) -> None:
    _edit(art, lambda d: d.__setitem__("signed_by", "someone"))
    assert load_artifact(art.path) == art


@pytest.mark.parametrize(
    "change",
    [lambda d: d["inputs"][0].__setitem__("scale", 0.5), lambda d: d["files"][0].__setitem__("mtime", 1)],
    ids=["tensor-spec", "file-entry"],
)
def test_unknown_nested_field_is_ignored_or_refused_clearly(art: Artifact, change: Any) -> None:
    _edit(art, change)
    try:
        loaded = load_artifact(art.path)
    except edge_sdk.BadInputError:
        return
    assert loaded.inputs == art.inputs and loaded.files == art.files


def test_changed_byte_in_model_file(art: Artifact) -> None:
    model = art.path / "model.onnx"
    data = bytearray(model.read_bytes())
    data[100] ^= 0x01  # same size, one bit off
    model.write_bytes(bytes(data))
    with pytest.raises(edge_sdk.BadInputError) as e:
        load_artifact(art.path)
    assert "'model.onnx'" in str(e.value) and "sha256" in str(e.value)
    # verify=False is the explicit way to skip the check
    assert load_artifact(art.path, verify=False).name == art.name


def test_truncated_model_file(art: Artifact) -> None:
    (art.path / "model.onnx").write_bytes(MODEL_BYTES[:100])
    with pytest.raises(edge_sdk.BadInputError, match="sha256"):
        load_artifact(art.path)


def test_listed_file_missing(art: Artifact) -> None:
    (art.path / "model.onnx").unlink()
    with pytest.raises(edge_sdk.BadInputError, match="'model.onnx' is missing"):
        load_artifact(art.path)


@pytest.mark.parametrize("content", [b'{"schema_version": 1, "name": ', b"\xff\xfe not utf-8", b""])
def test_invalid_json(art: Artifact, content: bytes) -> None:
    (art.path / MANIFEST_NAME).write_bytes(content)
    with pytest.raises(edge_sdk.BadInputError, match="not valid JSON"):
        load_artifact(art.path)


@pytest.mark.parametrize("content", ["[]", "1", '"artifact"'])
def test_json_that_is_not_an_object(art: Artifact, content: str) -> None:
    (art.path / MANIFEST_NAME).write_text(content)
    with pytest.raises(edge_sdk.BadInputError, match="must be an object"):
        load_artifact(art.path)


def test_no_manifest(tmp_path: Path) -> None:
    with pytest.raises(edge_sdk.BadInputError, match="not an artifact"):
        load_artifact(tmp_path)


# -- atomic writes ------------------------------------------------------------------------------------


class Boom(Exception):
    pass


def test_staging_dir_leaves_nothing_when_the_block_raises(tmp_path: Path) -> None:
    final = tmp_path / "out" / "kws-onnx-int8"
    with pytest.raises(Boom):
        with staging_dir(final) as stage:
            _artifact(stage)  # a complete-looking artifact, written inside the block
            assert stage.parent == final.parent and stage.name.startswith(".")
            raise Boom
    assert not final.exists()
    assert list(final.parent.iterdir()) == []  # no partial directory, hidden or not


def test_staging_dir_keeps_the_old_artifact_when_the_block_raises(tmp_path: Path) -> None:
    final = tmp_path / "kws-onnx-int8"
    old = _artifact(final)
    with pytest.raises(KeyboardInterrupt):
        with staging_dir(final) as stage:
            (stage / "model.onnx").write_bytes(b"new")
            raise KeyboardInterrupt
    assert load_artifact(final) == old
    assert [p.name for p in tmp_path.iterdir()] == [final.name]


def test_staging_dir_publishes_on_success(tmp_path: Path) -> None:
    final = tmp_path / "out" / "kws-onnx-int8"
    with staging_dir(final) as stage:
        made = _artifact(stage)
        assert not final.exists()  # nothing under the final name until the block completes
    assert not stage.exists()
    loaded = load_artifact(final)
    assert loaded == made
    assert [p.name for p in final.parent.iterdir()] == [final.name]


def test_staging_dir_replaces_an_existing_artifact(tmp_path: Path) -> None:
    final = tmp_path / "kws-onnx-int8"
    _artifact(final)
    (final / "stale.bin").write_bytes(b"from the old conversion")
    with staging_dir(final) as stage:
        (stage / "model.onnx").write_bytes(b"new model")
        new = Artifact(
            name="kws-onnx-int8",
            format="onnx",
            precision="int8",
            files=[file_entry(stage, "model.onnx")],
            inputs=[],
            outputs=[],
            source={},
            recipe={},
            versions={},
            created="2024-01-02T00:00:00+00:00",
        )
        write_manifest(new, stage)
        # Until the block completes the old artifact is intact under the final name.
        assert load_artifact(final).name == "hand-onnx-fp32"
    loaded = load_artifact(final)
    assert loaded.name == "kws-onnx-int8" and loaded.precision == "int8"
    assert sorted(p.name for p in final.iterdir()) == [MANIFEST_NAME, "model.onnx"]  # no stale files
    assert [p.name for p in tmp_path.iterdir()] == [final.name]  # no .old or .partial left beside it


def test_write_manifest_leaves_no_temp_file(art: Artifact) -> None:
    write_manifest(art, art.path)
    assert sorted(p.name for p in art.path.iterdir()) == [MANIFEST_NAME, "model.onnx"]


def test_file_entry(tmp_path: Path) -> None:
    (tmp_path / "m.bin").write_bytes(b"abc")
    assert file_entry(tmp_path, "m.bin") == FileEntry(
        "m.bin", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", 3
    )
