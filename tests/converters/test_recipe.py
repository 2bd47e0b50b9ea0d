"""Recipes: an edge.toml gives the same artifacts as the equivalent flags, flags override it, every invalid
key or value is named with what it allows, and docs/recipes.md lists every key."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import edge_sdk
from edge_sdk.converters.options import option_table
from edge_sdk.converters.recipe import (
    KEYS,
    add_arguments,
    from_args,
    key_table,
    load_recipe,
    recipe_from_dict,
)

EXE = shutil.which("edge-sdk", path=str(Path(sys.executable).parent)) or "edge-sdk"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "recipes.md"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=300, env=dict(os.environ))


@pytest.fixture
def project(tiny_onnx: Path, tiny_calibration: list, tmp_path: Path) -> Path:
    """A folder with a model, calibration data and an edge.toml using paths relative to itself."""
    shutil.copy(tiny_onnx, tmp_path / "model.onnx")
    np.savez(tmp_path / "calib.npz", x=np.stack([s["x"] for s in tiny_calibration]))
    (tmp_path / "edge.toml").write_text(
        'source = "model.onnx"\n'
        'targets = ["onnx:fp32", "onnx:int8"]\n'
        'out = "from-recipe"\n'
        "[calibration]\n"
        'data = "calib.npz"\n'
        "[parity]\n"
        "max_error = 0.5\n"
        "[options]\n"
        'calibrate_method = "minmax"\n'
    )
    return tmp_path


def _files(out: Path) -> dict[str, dict[str, object]]:
    arts = {p.name: edge_sdk.load_artifact(p) for p in sorted(out.iterdir())}
    return {n: {"files": [(f.path, f.sha256) for f in a.files], "recipe": a.recipe} for n, a in arts.items()}


def test_recipe_gives_the_same_artifacts_as_the_flags(project: Path) -> None:
    r = cli("convert", "--recipe", str(project / "edge.toml"), "--json", "--no-cache")
    assert r.returncode == 0, r.stderr
    flags = cli(
        "convert",
        str(project / "model.onnx"),
        "--to",
        "onnx:fp32,onnx:int8",
        "--calib",
        str(project / "calib.npz"),
        "--max-error",
        "0.5",
        "--option",
        "calibrate_method=minmax",
        "--out",
        str(project / "from-flags"),
        "--json",
        "--no-cache",
    )
    assert flags.returncode == 0, flags.stderr
    assert _files(project / "from-recipe") == _files(project / "from-flags")
    assert sorted(_files(project / "from-recipe")) == ["model-onnx-fp32", "model-onnx-int8"]


def test_flags_override_the_recipe(project: Path) -> None:
    r = cli(
        "convert",
        "--recipe",
        str(project / "edge.toml"),
        "--to",
        "onnx:fp16",
        "--out",
        str(project / "override"),
        "--option",
        "per_channel=false",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    (art,) = json.loads(r.stdout)["artifacts"]
    assert art["precision"] == "fp16" and Path(art["path"]).parent == project / "override"
    recipe = load_recipe(project / "edge.toml").merged({"options": {"per_channel": False}})
    assert recipe.values["options"] == {"calibrate_method": "minmax", "per_channel": False}  # tables merge


def test_python_recipe_maps_to_convert_keywords(project: Path) -> None:
    recipe = load_recipe(project / "edge.toml")
    kwargs = recipe.convert_kwargs()
    assert kwargs["calibration"] == str(project / "calib.npz")  # relative to the recipe file
    assert kwargs["max_error"] == 0.5 and kwargs["out"] == str(project / "from-recipe")
    arts = edge_sdk.convert(recipe.source, recipe.targets, **kwargs)
    assert [a.precision for a in arts] == ["fp32", "int8"]


@pytest.mark.parametrize(
    ("doc", "needles"),
    [
        ({"quantize": {"max_drop": "lots"}}, ["quantize.max_drop", "percentage"]),
        ({"device": [1]}, ["device = [1]", "a profile name or a Profile"]),
        ({"quantize": {"max_dorp": 0.01}}, ["quantize.max_dorp", "did you mean 'quantize.max_drop'"]),
        ({"calibraton": {"data": "x"}}, ["calibraton", "did you mean 'calibration'"]),
        ({"parity": {"max_error": -1}}, ["parity.max_error", ">= 0"]),
        ({"parity": {"samples": 0}}, ["parity.samples", "integer >= 1"]),
        ({"prune": {"ratio": 1.5}}, ["prune.ratio", "between 0 and 1"]),
        ({"prune": {"method": "magic"}}, ["prune.method", "channels, sparsity"]),
        ({"targets": ["onnx:int9"]}, ["targets", "int9", "did you mean 'onnx:int8'"]),
        ({"targets": 3}, ["targets", "FORMAT:PRECISION"]),
        ({"input": {"shapes": {"x": [1, "a"]}}}, ["input.shapes", "integer dims"]),
        ({"input": {"shapes": {"x": [-5, 16]}}}, ["input.shapes", "positive integer dims"]),
        ({"input": {"fix": {"sr": [1]}}}, ["input.fix", "number, string or boolean"]),
        ({"cache": "yes"}, ["cache", "true or false"]),
        ({"quantize": {"evaluate": "nocolon"}}, ["quantize.evaluate", "file.py:function"]),
        # importlib's own ValueError (empty module name) and TypeError (relative import) before
        ({"quantize": {"evaluate": ":f"}}, ["quantize.evaluate", "file.py:function"]),
        ({"quantize": {"evaluate": ".x:f"}}, ["quantize.evaluate", "file.py:function"]),
        ({"quantize": {"evaluate": "x.py:"}}, ["quantize.evaluate", "file.py:function"]),
        # a ValueError out of Path.resolve() before
        ({"out": "a\x00b"}, ["out", "NUL character"]),
        ({"quantize": {"evaluate": "a\x00.py:f"}}, ["quantize.evaluate", "NUL character"]),
        ({"quantize": 0.01}, ["quantize", "must be a table", "quantize.max_drop"]),
        ({"sorce": "m.onnx"}, ["sorce", "did you mean 'source'"]),
    ],
)
def test_invalid_recipe_names_the_key(doc: dict, needles: list[str]) -> None:
    with pytest.raises(edge_sdk.BadInputError) as e:
        recipe_from_dict(doc, "edge.toml: ")
    for needle in needles:
        assert needle in str(e.value)


def test_paths_resolve_against_the_recipe_folder_and_a_module_spec_stays(tmp_path: Path) -> None:
    recipe = recipe_from_dict({"out": "arts", "quantize": {"evaluate": "pkg.metrics:score"}}, base=tmp_path)
    assert recipe.values == {
        "out": str(tmp_path.resolve() / "arts"),
        "quantize.evaluate": "pkg.metrics:score",
    }


def test_a_recipe_nested_too_deeply_is_bad_input(tmp_path: Path) -> None:
    """The TOML parser recursed into a RecursionError."""
    (tmp_path / "edge.toml").write_text("source = " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(edge_sdk.BadInputError, match="nested too deeply"):
        load_recipe(tmp_path / "edge.toml")


def test_invalid_recipe_file_on_the_cli_exits_2(project: Path) -> None:
    (project / "bad.toml").write_text('source = "model.onnx"\n[quantize]\nmax_drop = "lots"\n')
    r = cli("convert", "--recipe", str(project / "bad.toml"), "--to", "onnx:fp32")
    assert r.returncode == 2
    assert "quantize.max_drop" in r.stderr and "bad.toml" in r.stderr
    r = cli("convert", str(project / "model.onnx"), "--to", "onnx:fp32", "--parity-samples", "zero")
    assert r.returncode == 2 and "parity.samples" in r.stderr


def test_device_picks_the_targets(project: Path) -> None:
    recipe = recipe_from_dict({"source": "m.onnx", "device": "x86-64"}, "", project)
    assert recipe.targets and all(":" in t for t in recipe.targets)
    with pytest.raises(edge_sdk.BadInputError, match="did you mean 'raspberry-pi-5'"):
        recipe_from_dict({"device": "raspberry-pi5"})


def test_docs_list_every_key() -> None:
    text = DOCS.read_text()
    for key in KEYS:
        assert f"`{key.path}`" in text, key.path
        if key.flag != "source":
            assert key.flag in text, key.flag
    assert "edge-sdk convert --recipe" in text
    assert key_table() in text  # the generated table is the current one
    assert option_table() in text  # and so is the table of the formats' options


def test_recipe_options_for_one_format(tmp_path: Path) -> None:
    """An [options.FORMAT] table and TOML's dotted FORMAT.NAME under [options] are the same key, the
    --option FORMAT.NAME=VALUE of the command line."""
    (tmp_path / "edge.toml").write_text(
        "[options]\n"
        "per_channel = false\n"
        'tflite.calibrator = "onnxruntime"\n'
        "[options.openvino]\n"
        'calibrator = "nncf"\n'
        'exclude_nodes = ["a", "b"]\n'
    )
    want = {
        "per_channel": False,
        "tflite.calibrator": "onnxruntime",
        "openvino.calibrator": "nncf",
        "openvino.exclude_nodes": ["a", "b"],
    }
    assert load_recipe(tmp_path / "edge.toml").values["options"] == want
    assert recipe_from_dict({"options": {"openvino.calibrator": "nncf"}}).values["options"] == {
        "openvino.calibrator": "nncf"
    }


@pytest.mark.parametrize(
    ("options", "needles"),
    [
        ({"openvno": {"calibrator": "nncf"}}, ["options", "unknown target format 'openvno'"]),
        ({"tflite": {"preset": "mixed"}}, ["options", "unknown option 'preset'", "for tflite"]),
        ({"colour": "red"}, ["options", "unknown option 'colour'"]),
        ({"openvino": {"calibrator": {"deeper": 1}}}, ["options.openvino.calibrator", "must be a number"]),
    ],
)
def test_invalid_recipe_options_name_the_key(options: dict, needles: list[str]) -> None:
    with pytest.raises(edge_sdk.BadInputError) as e:
        recipe_from_dict({"options": options}, "edge.toml: ")
    for needle in ["edge.toml: ", *needles]:
        assert needle in str(e.value)


def test_option_flag_takes_a_format_prefix() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)  # the arguments of edge-sdk convert
    args = parser.parse_args(
        ["m.onnx", "--option", "openvino.calibrator=nncf", "--option", "per_channel=false"]
    )
    # the values stay text: the option's declared type reads them (false → False) in convert()
    assert from_args(args)["options"] == {"openvino.calibrator": "nncf", "per_channel": "false"}


def test_an_option_for_a_format_not_converted_exits_2(project: Path) -> None:
    r = cli(
        "convert", str(project / "model.onnx"), "--to", "onnx:fp32", "--option", "openvino.calibrator=nncf",
        "--out", str(project / "o"),
    )  # fmt: skip
    assert r.returncode == 2
    assert "openvino is not among the requested formats (onnx)" in r.stderr
    assert not (project / "o").exists()


def test_recipe_evaluate_and_max_drop_make_int8_accuracy_aware(project: Path) -> None:
    (project / "metric.py").write_text(
        "from pathlib import Path\n"
        "import numpy as np\n"
        "def score(session):  # share of samples whose logits are all finite\n"
        "    x = np.load(Path(__file__).parent / 'calib.npz')['x']\n"
        "    return float(np.mean([np.isfinite(session.run({'x': s})['logits']).all() for s in x]))\n"
    )
    with (project / "edge.toml").open("a") as f:
        f.write('[quantize]\nevaluate = "metric.py:score"\nmax_drop = 0.5\n')
    recipe = load_recipe(project / "edge.toml")
    kwargs = recipe.convert_kwargs()
    assert callable(kwargs["evaluate"]) and kwargs["max_drop"] == 0.5
    arts = edge_sdk.convert(recipe.source, ["onnx:int8"], **kwargs)
    assert "accuracy_aware" in arts[0].recipe
    assert not getattr(arts[0], "reused_from", "")
    with pytest.raises(edge_sdk.BadInputError, match="max_drop needs evaluate"):
        edge_sdk.convert(
            recipe.source, "onnx:int8", out=project / "x", calibration=kwargs["calibration"], max_drop=0.1
        )


def test_recipe_prune_keys_prune_a_torch_source(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("torch_pruning")
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(16, 16, 3, padding=1),
        torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(16, 4),
    )  # fmt: skip
    recipe = recipe_from_dict({"targets": ["onnx:fp32"], "prune": {"ratio": 0.5}, "out": str(tmp_path)})
    kwargs = recipe.convert_kwargs()
    assert kwargs["prune"] == {"ratio": 0.5}
    (art,) = edge_sdk.convert(net, recipe.targets, example_inputs=torch.randn(1, 3, 8, 8), **kwargs)
    pruning = art.recipe["pruning"]
    assert pruning and json.dumps(pruning)  # recorded in the manifest, as JSON
    assert net[0].out_channels == 16  # the user's module is left as it was
    with pytest.raises(edge_sdk.BadInputError, match="PyTorch module"):
        edge_sdk.convert(str(tmp_path / "m.onnx"), "onnx:fp32", prune=0.5)
