"""An artifact's name is one plain path component: it names the folder ``out/NAME-FORMAT-PRECISION``, so
a separator or ``..`` would write outside ``out``; such a name is refused before any work."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import edge_sdk
from edge_sdk.errors import BadInputError

EXE = shutil.which("edge-sdk", path=str(Path(sys.executable).parent)) or "edge-sdk"


def _tree(root: Path) -> set[Path]:
    return {p.relative_to(root) for p in root.rglob("*")}


@pytest.mark.parametrize(
    "name", ["../../escaped", "a/b", "..\\escaped", "..", ".", "", ".hidden", "nul\0byte", "/abs"]
)
def test_a_name_that_is_not_one_plain_component_is_refused(
    name: str, tiny_onnx: Path, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    out = work / "a" / "out"
    out.mkdir(parents=True)
    before = _tree(tmp_path)
    with pytest.raises(BadInputError, match="must be a single plain file name"):
        edge_sdk.convert(tiny_onnx, "onnx:fp32", out=out, name=name)
    assert _tree(tmp_path) == before  # nothing written, inside out or outside it


def test_a_recipe_name_that_escapes_is_refused(tiny_onnx: Path, tmp_path: Path) -> None:
    shutil.copy(tiny_onnx, tmp_path / "model.onnx")
    (tmp_path / "deep" / "er").mkdir(parents=True)
    recipe = tmp_path / "deep" / "er" / "edge.toml"
    recipe.write_text(
        'source = "../../model.onnx"\ntargets = ["onnx:fp32"]\nout = "out"\nname = "../../escaped"\n'
    )
    before = _tree(tmp_path)
    r = subprocess.run(
        [EXE, "convert", "--recipe", str(recipe), "--no-cache"],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ),
    )
    assert r.returncode == 2, r.stderr
    assert "must be a single plain file name" in r.stderr
    assert _tree(tmp_path) == before


def test_a_plain_name_with_dots_inside_is_kept(tiny_onnx: Path, tmp_path: Path) -> None:
    (art,) = edge_sdk.convert(tiny_onnx, "onnx:fp32", out=tmp_path / "out", name="kws.v2")
    assert art.path == tmp_path / "out" / "kws.v2-onnx-fp32"
