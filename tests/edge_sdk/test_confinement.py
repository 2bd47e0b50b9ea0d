"""An artifact reads only files inside its own folder.

A manifest entry that leaves the folder (``..``, an absolute path, a link pointing out) is refused before
anything looks at the target, with the same words whether the target exists or not, so a crafted
manifest can neither run an outside model nor probe the filesystem.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import edge_sdk
from edge_sdk.errors import BadInputError
from edge_sdk.manifest import MANIFEST_NAME, inside, load_artifact, sha256_file
from edge_sdk.runtimes import load

EXE = shutil.which("edge-sdk", path=str(Path(sys.executable).parent)) or "edge-sdk"
REFUSED = "must be a file inside the artifact folder"


@pytest.fixture
def artifact(tiny_onnx: Path, tmp_path: Path) -> Path:
    """A real onnx:fp32 artifact of the tiny classifier, converted into ``tmp_path/out``."""
    (made,) = edge_sdk.convert(tiny_onnx, "onnx:fp32", out=tmp_path / "out", name="tiny")
    assert made.path is not None
    return made.path


@pytest.fixture
def outside(tiny_onnx: Path, tmp_path: Path) -> Path:
    """A valid model beside the artifact folder, which the artifact must not reach."""
    return Path(shutil.copy(tiny_onnx, tmp_path / "out" / "outside.onnx"))


def _point_at(art: Path, entry: str, target: Path | None) -> None:
    """Rewrite the manifest's model entry to ``entry``, with ``target``'s real hash and size when given
    (a wrong one otherwise)."""
    manifest = art / MANIFEST_NAME
    data = json.loads(manifest.read_text())
    data["files"][0] = {
        "path": entry,
        "sha256": sha256_file(target) if target else "0" * 64,
        "size": target.stat().st_size if target else 1,
    }
    manifest.write_text(json.dumps(data))


def _refusal(art: Path, **kwargs: Any) -> str:
    with pytest.raises(BadInputError) as e:
        load_artifact(art, **kwargs)
    return str(e.value)


def test_a_normal_artifact_still_loads_and_runs(artifact: Path, tiny_x: np.ndarray) -> None:
    art = load_artifact(artifact)
    assert art.model_file == artifact / "model.onnx"
    assert load(artifact, threads=1).run({"x": tiny_x})


@pytest.mark.parametrize("verify", [True, False])
def test_a_parent_entry_is_refused(artifact: Path, outside: Path, verify: bool) -> None:
    _point_at(artifact, "../outside.onnx", outside)
    message = _refusal(artifact, verify=verify)
    assert f"file entry '../outside.onnx' {REFUSED}" in message
    with pytest.raises(BadInputError, match=REFUSED):
        load(artifact, threads=1)


def test_an_absolute_entry_is_refused(artifact: Path, outside: Path) -> None:
    _point_at(artifact, str(outside), outside)
    assert f"file entry '{outside}' {REFUSED}" in _refusal(artifact)


def test_an_absolute_entry_into_the_folder_is_refused(artifact: Path) -> None:
    # Inside or not, an absolute path ties the artifact to one machine's layout.
    model = artifact.resolve() / "model.onnx"
    _point_at(artifact, str(model), model)
    assert REFUSED in _refusal(artifact)


def test_a_link_pointing_out_is_refused(artifact: Path, outside: Path) -> None:
    model = artifact / "model.onnx"
    model.unlink()
    model.symlink_to(outside)
    _point_at(artifact, "model.onnx", outside)  # its hash matches the outside file
    assert f"file entry 'model.onnx' {REFUSED}" in _refusal(artifact)
    with pytest.raises(BadInputError, match=REFUSED):
        load(artifact, threads=1)


def test_a_link_inside_the_folder_is_allowed(artifact: Path) -> None:
    (artifact / "real.onnx").write_bytes((artifact / "model.onnx").read_bytes())
    (artifact / "model.onnx").unlink()
    (artifact / "model.onnx").symlink_to("real.onnx")
    assert load_artifact(artifact).model_file == artifact / "model.onnx"


@pytest.mark.parametrize("entry", [".", "", "sub/.."])
def test_the_folder_itself_is_refused(artifact: Path, entry: str) -> None:
    _point_at(artifact, entry, None)
    assert REFUSED in _refusal(artifact)


def test_the_refusal_does_not_tell_whether_the_target_exists(artifact: Path) -> None:
    depth = len(artifact.resolve().parts)
    real = "../" * depth + "etc/passwd"
    absent = "../" * depth + "etc/no-such-file-here"
    passwd = Path("/etc/passwd")
    texts = []
    for entry, target in [(real, passwd), (real, None), (absent, None)]:
        _point_at(artifact, entry, target)
        texts.append(_refusal(artifact).replace(entry, "ENTRY"))
    assert texts[0] == texts[1] == texts[2]
    assert REFUSED in texts[0] and "sha256" not in texts[0] and "missing" not in texts[0]


def test_a_reference_set_outside_is_refused(artifact: Path, tmp_path: Path) -> None:
    from edge_sdk.verification import reference_set

    art = load_artifact(artifact)
    assert reference_set.read(art)  # the converter's own reference set reads
    ref = artifact / reference_set.FILE
    moved = Path(shutil.move(ref, tmp_path / "elsewhere.npz"))
    ref.symlink_to(moved)
    with pytest.raises(BadInputError, match=f"file entry '{reference_set.FILE}' {REFUSED}"):
        reference_set.read(art)
    manifest = artifact / MANIFEST_NAME
    data = json.loads(manifest.read_text())
    data["parity"]["reference_set"]["path"] = "../elsewhere.npz"
    manifest.write_text(json.dumps(data))
    assert f"file entry '../elsewhere.npz' {REFUSED}" in _refusal(artifact)


def test_inside_refuses_before_looking(tmp_path: Path) -> None:
    assert inside(tmp_path, "a/b.onnx") == tmp_path / "a" / "b.onnx"  # need not exist yet
    for entry in ["../x", "/etc/passwd", "a/../../x", "nul\0byte"]:
        with pytest.raises(BadInputError, match=REFUSED):
            inside(tmp_path, entry)


def test_the_cli_refuses_an_outside_entry(artifact: Path, outside: Path, tiny_x: np.ndarray) -> None:
    _point_at(artifact, "../outside.onnx", outside)
    np.save(artifact.parent / "x.npy", tiny_x)
    r = subprocess.run(
        [EXE, "run", str(artifact), "--input", str(artifact.parent / "x.npy")],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ),
    )
    assert r.returncode == 2, r.stderr
    assert re.search(f"'../outside.onnx' {REFUSED}", r.stderr)


def test_a_reference_set_path_that_is_not_a_string_is_refused(artifact: Path) -> None:
    manifest = artifact / MANIFEST_NAME
    data = json.loads(manifest.read_text())
    data["parity"]["reference_set"]["path"] = ["reference.npz"]
    manifest.write_text(json.dumps(data))
    assert "'parity.reference_set.path' must be a string" in _refusal(artifact)
