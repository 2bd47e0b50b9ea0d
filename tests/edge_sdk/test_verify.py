"""Parity that says where it was measured, travels with the artifact, and can be measured again: the
reference set, ``edge_sdk.verify`` / ``edge-sdk verify``, and the warning ``load()`` gives on another
class of CPU."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import edge_sdk
from edge_sdk.devices.cpu import this_cpu
from edge_sdk.errors import BadInputError
from edge_sdk.manifest import sha256_file
from edge_sdk.verification import reference_set

EXE = shutil.which("edge-sdk", path=str(Path(sys.executable).parent)) or "edge-sdk"


@pytest.fixture(scope="module")
def artifacts(
    saturating_onnx: Path, saturating_samples: Any, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, edge_sdk.Artifact]:
    out = tmp_path_factory.mktemp("verify")
    arts = edge_sdk.convert(
        saturating_onnx, ["onnx:fp32", "onnx:int8"], calibration=saturating_samples, out=out, name="sat"
    )
    return {a.precision: a for a in arts}


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=300)


def test_parity_records_the_cpu_backend_and_a_reference_set(artifacts: dict[str, edge_sdk.Artifact]) -> None:
    art = artifacts["int8"]
    where = art.parity["measured_on"]  # type: ignore[index]
    assert where["cpu"] == this_cpu().to_dict()
    assert where["backend"].startswith("onnxruntime ") and where["accelerator"] == "cpu"
    assert where["int8_kernels"] in ("default", "exact u8×u8")
    record = art.parity["reference_set"]  # type: ignore[index]
    assert record["path"] == "reference.npz" and 1 <= record["samples"] <= reference_set.MAX_SAMPLES
    assert record["inputs"] == ["x"] and record["outputs"] == ["y"]
    assert sha256_file(art.path / "reference.npz") == record["sha256"]  # type: ignore[operator]
    # within the budget, or the one sample that is always kept
    assert record["size"] <= reference_set.BUDGET_BYTES or record["samples"] == 1
    inputs, fp32, built = reference_set.read(art)
    reference = edge_sdk.load(artifacts["fp32"].path).run(inputs[0])["y"]
    np.testing.assert_allclose(fp32[0]["y"], reference, rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(built[0]["y"], edge_sdk.load(art.path).run(inputs[0])["y"])
    # the reference set is evidence, not a model file: the artifact's size is the model's
    assert [f.path for f in art.files] == ["model.onnx"]


def test_verify_here_passes_and_matches_the_conversion(artifacts: dict[str, edge_sdk.Artifact]) -> None:
    for art in artifacts.values():
        report = edge_sdk.verify(art.path)  # type: ignore[arg-type]
        assert report.passed, report.text()
        assert report.measured_on["cpu"] == this_cpu().to_dict()
        assert report.difference_from_converted == {"y": 0.0}  # the same machine computes the same
        assert report.converted_on == art.parity["measured_on"]  # type: ignore[index]


def test_the_cli_exits_1_when_an_output_misses_its_limits(
    artifacts: dict[str, edge_sdk.Artifact], copy_artifact: Callable[..., Path]
) -> None:
    good = cli("verify", str(artifacts["int8"].path), "--json")
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout)["passed"] is True
    # An artifact that computes 3 % off what its source gave: as a CPU whose kernels differ would.
    path = copy_artifact(artifacts["int8"])
    art = edge_sdk.load_artifact(path)
    inputs, fp32, built = reference_set.read(art)
    record = reference_set.write(path, inputs, [{"y": s["y"] * 1.03} for s in fp32], built)
    manifest = json.loads((path / "artifact.json").read_text())
    manifest["parity"]["reference_set"].update(sha256=record["sha256"], size=record["size"])
    (path / "artifact.json").write_text(json.dumps(manifest))
    bad = cli("verify", str(path))
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "FAILED" in bad.stdout and "missed: output 'y': max abs error" in bad.stdout


def test_a_damaged_or_missing_reference_set_is_bad_input(
    artifacts: dict[str, edge_sdk.Artifact], copy_artifact: Callable[..., Path]
) -> None:
    path = copy_artifact(artifacts["int8"])
    with open(path / "reference.npz", "r+b") as f:
        f.seek(200)
        f.write(b"\xff\xff\xff\xff")
    r = cli("verify", str(path))
    assert r.returncode == 2 and "does not match its recorded sha256" in r.stderr
    manifest = json.loads((path / "artifact.json").read_text())
    del manifest["parity"]["reference_set"]
    (path / "artifact.json").write_text(json.dumps(manifest))
    r = cli("verify", str(path))
    assert r.returncode == 2 and "has no reference set" in r.stderr and "convert it again" in r.stderr


def test_the_users_max_error_is_the_limit(
    saturating_onnx: Path, saturating_samples: Any, tmp_path: Path
) -> None:
    (art,) = edge_sdk.convert(
        saturating_onnx, "onnx:int8", calibration=saturating_samples, out=tmp_path, max_error=5.0
    )
    assert art.parity["reference_set"]["limits"]["y"]["max_abs_error"] == 5.0  # type: ignore[index]


def test_load_warns_once_on_another_class_of_cpu(
    artifacts: dict[str, edge_sdk.Artifact],
    copy_artifact: Callable[..., Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = copy_artifact(artifacts["int8"])
    manifest = json.loads((path / "artifact.json").read_text())
    other = "aarch64" if this_cpu().arch == "x86_64" else "x86_64"
    manifest["parity"]["measured_on"]["cpu"] = {"arch": other, "model": "elsewhere", "features": []}
    (path / "artifact.json").write_text(json.dumps(manifest))
    with caplog.at_level(logging.WARNING, logger="edge_sdk"):
        edge_sdk.load(path)
        edge_sdk.load(path)
    warned = [r.getMessage() for r in caplog.records if "parity was measured on" in r.getMessage()]
    assert len(warned) == 1, warned
    assert "elsewhere" in warned[0] and f"edge-sdk verify {path}" in warned[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="edge_sdk"):
        edge_sdk.load(artifacts["int8"].path)  # measured here: nothing to say
    assert not [r for r in caplog.records if "parity was measured on" in r.getMessage()]


def test_a_cpu_qemu_cannot_emulate_is_refused(artifacts: dict[str, edge_sdk.Artifact]) -> None:
    with pytest.raises(BadInputError, match="QEMU emulates neither AVX-VNNI nor AVX-512"):
        edge_sdk.verify(artifacts["int8"].path, emulate="intel-core-ultra-npu")  # type: ignore[arg-type]
    with pytest.raises(BadInputError, match="unknown device profile 'pi9'"):
        edge_sdk.verify(artifacts["int8"].path, emulate="pi9")  # type: ignore[arg-type]


def test_an_output_that_collapsed_fails_whatever_the_limits(saturating_onnx: Path, tmp_path: Path) -> None:
    """The user's loose max_error is not a licence for outputs off by a factor of ten and pointing the other
    way (as a machine whose kernels overflow might give): verify fails them as collapsed."""
    (art,) = edge_sdk.convert(saturating_onnx, "onnx:fp32", out=tmp_path, max_error=1e9)
    assert art.path is not None
    inputs, fp32, built = reference_set.read(art)
    record = reference_set.write(art.path, inputs, [{"y": -s["y"] * 10} for s in fp32], built)
    manifest = json.loads((art.path / "artifact.json").read_text())
    manifest["parity"]["reference_set"].update(sha256=record["sha256"], size=record["size"])
    (art.path / "artifact.json").write_text(json.dumps(manifest))
    report = edge_sdk.verify(art.path)
    assert not report.passed
    assert report.failures[0] == "output 'y': its values are 0.1× the size of the source's (root mean square)"
