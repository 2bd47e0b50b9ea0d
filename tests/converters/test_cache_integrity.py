"""Damaged cache entries are never used silently: a cached build whose files changed (or whose record
has no sha256) is built again with a warning; one whose outputs collapse is built again once; damaged
activation ranges are calibrated again; a conversion whose parity collapses fails whatever the gates,
in the API and the CLI."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import edge_sdk
from edge_sdk.converters.cache import BUILD_RECORD, builds_dir, conversions_dir
from edge_sdk.converters.parity import ParityCollapsed
from edge_sdk.manifest import sha256_file

EXE = shutil.which("edge-sdk", path=str(Path(sys.executable).parent)) or "edge-sdk"


def _flip_weights(model_file: Path) -> str:
    """Flip every bit of the largest initializer's bytes in ``model_file`` in place (the file still
    parses, its weights are garbage); returns that initializer's name."""
    proto = onnx.load(str(model_file))
    largest = max(proto.graph.initializer, key=lambda t: len(t.raw_data))
    data = model_file.read_bytes()
    at = data.find(largest.raw_data)
    assert len(largest.raw_data) >= 16 and at >= 0
    flipped = bytes(b ^ 0xFF for b in largest.raw_data)
    model_file.write_bytes(data[:at] + flipped + data[at + len(flipped) :])
    return largest.name


def _only_build() -> Path:
    (entry,) = [p for p in builds_dir().iterdir() if not p.name.startswith(".")]
    return entry


def _convert(source: Path, target: str, out: Path, calib: list | None, **kw: Any) -> edge_sdk.Artifact:
    (art,) = edge_sdk.convert(source, target, out=out, calibration=calib, **kw)
    return art


@pytest.mark.parametrize("target", ["onnx:int8", "onnx:fp32"])
def test_a_cached_build_with_altered_weights_is_built_again_with_a_warning(
    target: str, tiny_onnx: Path, tiny_calibration: list, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = _convert(tiny_onnx, target, tmp_path / "a", tiny_calibration)
    entry = _only_build()
    good = (entry / "model.onnx").read_bytes()
    _flip_weights(entry / "model.onnx")
    with caplog.at_level(logging.WARNING, logger="edge_sdk"):
        # another name: the whole artifact is not cached, the build is, so it would be reused
        again = _convert(tiny_onnx, target, tmp_path / "b", tiny_calibration, name="renamed")
    warned = [r.getMessage() for r in caplog.records if "is damaged" in r.getMessage()]
    assert len(warned) == 1 and str(entry) in warned[0] and "model.onnx has sha256" in warned[0]
    assert "building again" in warned[0]
    assert (again.path / "model.onnx").read_bytes() == good  # built again, not the damaged bytes
    assert (entry / "model.onnx").read_bytes() == good  # and the entry replaced
    assert again.parity["cosine_similarity"] == pytest.approx(first.parity["cosine_similarity"], abs=1e-9)
    assert again.parity["cosine_similarity"] > 0.99


def test_a_cached_build_recording_no_hashes_is_built_again(
    tiny_onnx: Path, tiny_calibration: list, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An entry stored before builds recorded their files' sha256 cannot be checked, so it is not used."""
    _convert(tiny_onnx, "onnx:fp32", tmp_path / "a", tiny_calibration)
    record_file = _only_build() / BUILD_RECORD
    record = json.loads(record_file.read_text())
    assert set(record["sha256"]) == set(record["files"]) == {"model.onnx"}
    del record["sha256"]
    record_file.write_text(json.dumps(record))
    with caplog.at_level(logging.WARNING, logger="edge_sdk"):
        _convert(tiny_onnx, "onnx:fp32", tmp_path / "b", tiny_calibration, name="renamed")
    assert any("records no sha256" in r.getMessage() for r in caplog.records)
    assert "sha256" in json.loads(record_file.read_text())  # stored again, with its hashes


def test_a_cached_build_that_collapses_is_built_again_once(
    tiny_onnx: Path, tiny_calibration: list, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Files that match their record but no longer follow the source (damaged before they were hashed)
    are not trusted either: the build is made again from scratch, and the artifact is right."""
    first = _convert(tiny_onnx, "onnx:fp32", tmp_path / "a", tiny_calibration)
    entry = _only_build()
    _flip_weights(entry / "model.onnx")
    record = json.loads((entry / BUILD_RECORD).read_text())
    record["sha256"] = {"model.onnx": sha256_file(entry / "model.onnx")}
    (entry / BUILD_RECORD).write_text(json.dumps(record))
    with caplog.at_level(logging.WARNING, logger="edge_sdk"):
        again = _convert(tiny_onnx, "onnx:fp32", tmp_path / "b", tiny_calibration, name="renamed")
    warned = [r.getMessage() for r in caplog.records if "collapsed" in r.getMessage()]
    assert len(warned) == 1 and "building it again" in warned[0]
    assert again.parity["cosine_similarity"] == pytest.approx(first.parity["cosine_similarity"], abs=1e-9)
    assert (again.path / "model.onnx").read_bytes() == (first.path / "model.onnx").read_bytes()
    assert (entry / "model.onnx").read_bytes() == (first.path / "model.onnx").read_bytes()


def test_a_damaged_cached_artifact_is_replaced(tiny_onnx: Path, tmp_path: Path) -> None:
    """The whole-artifact level already refused a damaged entry; now the conversion made instead replaces
    it, so the next identical request is reused again."""
    _convert(tiny_onnx, "onnx:fp32", tmp_path / "a", None)
    (entry,) = list(conversions_dir().iterdir())
    _flip_weights(entry / "model.onnx")
    rebuilt = _convert(tiny_onnx, "onnx:fp32", tmp_path / "b", None)
    assert not getattr(rebuilt, "reused_from", "")
    again = _convert(tiny_onnx, "onnx:fp32", tmp_path / "c", None)
    assert again.reused_from == str(entry)
    edge_sdk.load_artifact(entry, verify=True)


def test_damaged_activation_ranges_are_calibrated_again(
    tiny_onnx: Path, tiny_calibration: list, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from edge_sdk.integrity import sidecar

    _convert(tiny_onnx, "onnx:int8", tmp_path / "a", tiny_calibration)
    (ranges,) = (conversions_dir().parent / "calibration").glob("*.json")
    assert sidecar(ranges).is_file()
    ranges.write_text(ranges.read_text().replace("1", "7"))  # still JSON, other ranges
    calls: list[str] = []
    with caplog.at_level(logging.WARNING, logger="edge_sdk"):
        edge_sdk.convert(
            tiny_onnx,
            "onnx:int8",
            out=tmp_path / "b",
            calibration=tiny_calibration,
            options={"per_channel": False},  # another build, from the same ranges
            progress=lambda stage, done, total: calls.append(stage),
        )
    assert any("calibration cache" in r.getMessage() and "damaged" in r.getMessage() for r in caplog.records)
    assert "calibrate" in calls


# -- parity that collapses -----------------------------------------------------------------------------


def _beyond_fp16(path: Path) -> Path:
    """y = x · 1e6 + x · (-999e3) = 1000 x: both factors are past float16's largest value, so the fp16
    converter clamps them to ±65504 and the fp16 model's outputs are all zero where the source's vary."""
    f = helper.make_tensor_value_info
    values = (("big", 1e6), ("neg", -999e3))
    consts = [numpy_helper.from_array(np.array(v, np.float32), n) for n, v in values]
    nodes = [
        helper.make_node("Mul", ["x", "big"], ["a"]),
        helper.make_node("Mul", ["x", "neg"], ["b"]),
        helper.make_node("Add", ["a", "b"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "g", [f("x", TensorProto.FLOAT, [1, 64])], [f("y", TensorProto.FLOAT, [1, 64])], consts
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9), str(path))
    return path


def test_a_collapsed_parity_fails_whatever_the_gate(tmp_path: Path) -> None:
    model = _beyond_fp16(tmp_path / "beyond.onnx")
    with pytest.raises(ParityCollapsed, match=r"output 'y': its values are 0× the size of the source's"):
        edge_sdk.convert(model, "onnx:fp16", out=tmp_path / "o", max_error=1e30)
    assert not (tmp_path / "o" / "beyond-onnx-fp16").exists()
    assert [p for p in builds_dir().iterdir() if not p.name.startswith(".")] == []  # not kept either
    assert not conversions_dir().exists() or list(conversions_dir().iterdir()) == []


def test_the_cli_exits_non_zero_on_a_collapsed_parity_with_the_reason(tmp_path: Path) -> None:
    model = _beyond_fp16(tmp_path / "beyond.onnx")
    args = [EXE, "convert", str(model), "--out", str(tmp_path / "o"), "--to"]
    r = subprocess.run(
        [*args, "onnx:fp32,onnx:fp16", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ),
    )
    assert r.returncode == 1, r.stderr
    report = json.loads(r.stdout)
    assert [a["name"] for a in report["artifacts"]] == ["beyond-onnx-fp32"]  # the other target is made
    assert "no longer follow the source" in report["failures"]["onnx:fp16"]
    r = subprocess.run(
        [*args, "onnx:fp16"], capture_output=True, text=True, timeout=300, env=dict(os.environ)
    )
    assert r.returncode == 1
    assert "no longer follow the source" in r.stderr and "0× the size of the source's" in r.stderr


def test_the_cli_says_a_damaged_build_was_built_again(tiny_onnx: Path, tmp_path: Path) -> None:
    def run(name: str) -> subprocess.CompletedProcess[str]:
        args = [EXE, "convert", str(tiny_onnx), "--to", "onnx:fp32", "--out", str(tmp_path), "--name", name]
        return subprocess.run(args, capture_output=True, text=True, timeout=300, env=dict(os.environ))

    assert run("a").returncode == 0
    _flip_weights(_only_build() / "model.onnx")
    r = run("b")
    assert r.returncode == 0
    assert "is damaged" in r.stderr and "model.onnx" in r.stderr and "building again" in r.stderr


def _report(ref: np.ndarray, got: np.ndarray) -> dict[str, Any]:
    from edge_sdk.converters.parity import compare

    return compare([{"y": ref}], [{"y": got}], "test")


@pytest.mark.parametrize(
    "damage,why",
    [
        (lambda r: np.where(r > 1.5, np.nan, r), "values are NaN or infinite"),
        (lambda r: np.random.default_rng(1).standard_normal(r.shape), "cosine similarity"),
        (lambda r: -r, "cosine similarity -1.000"),
        (lambda r: r * 300 + 300 * np.random.default_rng(2).standard_normal(r.shape), "× the size"),
        (lambda r: r / 10 + 0.1 * np.random.default_rng(3).standard_normal(r.shape), "× the size"),
        (lambda r: np.full_like(r, float(np.abs(r).mean())), "every value is"),
    ],
)
def test_collapsed_outputs_are_named(damage: Any, why: str) -> None:
    from edge_sdk.converters.parity import collapsed, gate

    ref = np.random.default_rng(0).standard_normal((4, 256)) + 0.5
    report = _report(ref, damage(ref))
    assert why in (report["outputs"]["y"]["collapsed"] or "")
    assert collapsed(report)[0].startswith("output 'y': ")
    with pytest.raises(ParityCollapsed, match="no longer follow the source"):
        gate(report, 1e9, "x")  # whatever the gate


def test_what_legitimate_precisions_do_is_not_collapse() -> None:
    """Rounding to 8 bits over the output's range, float16, an error as large as the worst legitimate
    conversion measured (cosine 0.86), an all-zero output, and a source that is itself non-finite."""
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((4, 256))
    step = np.ptp(ref) / 255
    candidates = [
        ref * 18,  # an output near zero (a VAD over silence) that int8 makes larger, pointing the same way
        np.round(ref / step) * step,
        ref.astype(np.float16).astype(np.float64),
        ref + 0.59 * rng.standard_normal(ref.shape),  # cosine about 0.86
    ]
    for got in candidates:
        assert _report(ref, got)["outputs"]["y"]["collapsed"] is None
    narrow = ref * 0.01 + 5.0  # 1% spread: 8 bits may round it to one value, and that is not collapse
    assert _report(narrow, np.full_like(narrow, 5.0))["outputs"]["y"]["collapsed"] is None
    assert _report(np.zeros(8), rng.standard_normal(8) * 1e-3)["outputs"]["y"]["collapsed"] is None
    nan_ref = np.where(ref > 2, np.nan, ref)
    assert _report(nan_ref, nan_ref)["outputs"]["y"]["collapsed"] is None


def test_on_random_inputs_only_scale_and_finite_values_judge_collapse() -> None:
    """Far from the data a model was made for, a quantised recurrent model may point elsewhere (Silero VAD
    int8-dynamic: cosine 0.23 on random normal inputs); its scale and finite values still must hold."""
    from edge_sdk.converters.parity import compare

    rng = np.random.default_rng(2)
    ref = np.abs(rng.standard_normal((8, 1)))  # probabilities of 8 unrelated random inputs
    elsewhere = np.roll(ref, 1)  # same scale, another direction
    figures = compare([{"p": ref}], [{"p": elsewhere}], "random normal")
    assert (
        figures["outputs"]["p"]["cosine_similarity"] < 0.99 and figures["outputs"]["p"]["collapsed"] is None
    )
    assert compare([{"p": ref}], [{"p": -ref}], "calibration")["outputs"]["p"]["collapsed"]
    assert (
        compare([{"p": ref}], [{"p": -ref}], "random normal, free dims 16")["outputs"]["p"]["collapsed"]
        is None
    )
    for damage in (elsewhere * 300, np.where(ref > 0.5, np.inf, ref)):
        assert compare([{"p": ref}], [{"p": damage}], "random normal")["outputs"]["p"]["collapsed"]
