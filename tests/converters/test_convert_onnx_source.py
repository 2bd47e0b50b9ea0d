"""An .onnx file as the conversion source: simplified, converted to every precision, and compared with the
original file; and the source and target mistakes a user can make, each a BadInputError that says what."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import edge_sdk
from edge_sdk.manifest import sha256_file

PRECISIONS = ("fp32", "fp16", "int8", "int8-dynamic")
# precision → max abs error against the original file, as a fraction of the largest reference output
REL_LIMITS = {"fp32": 1e-5, "fp16": 1e-2, "int8": 5e-2, "int8-dynamic": 5e-2}


def _run_original(path: Path, samples: list[dict[str, np.ndarray]]) -> list[np.ndarray]:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return [sess.run(["logits"], s)[0] for s in samples]


def test_onnx_source_is_simplified_and_keeps_its_io(tiny_artifacts: dict[str, Any], tiny_onnx: Path) -> None:
    art = tiny_artifacts["fp32"]
    simplify = art.recipe["simplify"]
    assert simplify["status"] == "done"
    assert simplify["tool"].startswith("onnxslim")
    # The Identity and the constant Add of two initializers fold away.
    assert simplify["nodes_before"] == 7
    assert simplify["nodes_after"] < simplify["nodes_before"]
    ops = [n.op_type for n in onnx.load(str(art.model_file)).graph.node]
    assert "Identity" not in ops and "Add" not in ops
    assert len(ops) == simplify["nodes_after"]
    # Simplification must not rename what the user feeds and reads.
    assert [(s.name, s.shape, s.dtype) for s in art.inputs] == [("x", [1, 3, 8, 8], "float32")]
    assert [(s.name, s.shape, s.dtype) for s in art.outputs] == [("logits", [1, 10], "float32")]


def test_onnx_source_provenance(tiny_artifacts: dict[str, Any], tiny_onnx: Path) -> None:
    for art in tiny_artifacts.values():
        assert art.source["framework"] == "onnx"
        assert art.source["path"] == str(tiny_onnx)
        assert art.source["sha256"] == sha256_file(tiny_onnx)
        assert art.source["framework_version"] == "opset 17"
        assert art.parity["reference"] == "onnx source (fp32)"
        assert art.parity["inputs"] == "calibration"


@pytest.mark.parametrize("precision", PRECISIONS)
def test_parity_against_the_original_file(
    tiny_artifacts: dict[str, Any], tiny_onnx: Path, precision: str, make_samples: Any, tiny_calibration: list
) -> None:
    """Fresh inputs (not those conversion checked with), run through the artifact and through the original
    file with plain onnxruntime. Inputs are scaled into the calibrated range so static int8 is not
    measured on clipping."""
    samples = [{"x": 0.5 * s["x"]} for s in make_samples((1, 3, 8, 8), 6, seed=40)]
    ref = _run_original(tiny_onnx, samples)
    session = edge_sdk.load(tiny_artifacts[precision].path)
    got = [session.run(s)["logits"] for s in samples]
    scale = max(float(np.abs(r).max()) for r in ref)
    err = max(float(np.abs(r - g).max()) for r, g in zip(ref, got, strict=True))
    assert err <= REL_LIMITS[precision] * scale
    assert all(int(r.argmax()) == int(g.argmax()) for r, g in zip(ref, got, strict=True))
    # and what conversion recorded agrees with the same limit
    recorded = tiny_artifacts[precision].parity
    assert (
        recorded["max_abs_error"]
        <= REL_LIMITS[precision] * recorded["outputs"]["logits"]["reference_max_abs"]
    )
    assert recorded["top1_agreement"] == 1.0


def test_fp32_matches_the_original_on_the_conversion_inputs(
    tiny_artifacts: dict[str, Any], tiny_onnx: Path, tiny_calibration: list
) -> None:
    ref = _run_original(tiny_onnx, tiny_calibration)
    session = edge_sdk.load(tiny_artifacts["fp32"].path)
    got = [session.run(s)["logits"] for s in tiny_calibration]
    err = max(float(np.abs(r - g).max()) for r, g in zip(ref, got, strict=True))
    assert err <= 1e-5 * max(float(np.abs(r).max()) for r in ref)
    assert tiny_artifacts["fp32"].parity["max_abs_error"] == pytest.approx(err, abs=1e-6)


# -- mistakes -----------------------------------------------------------------------------------------


def test_missing_source_file(tmp_path: Path) -> None:
    with pytest.raises(edge_sdk.BadInputError, match="no such file") as e:
        edge_sdk.convert(tmp_path / "nope.onnx", "onnx:fp32", out=tmp_path / "out")
    assert "nope.onnx" in str(e.value)
    assert not (tmp_path / "out").exists()


def test_source_that_is_not_onnx(tmp_path: Path) -> None:
    path = tmp_path / "weights.pt"
    path.write_bytes(b"\x80\x02not onnx")
    with pytest.raises(edge_sdk.BadInputError, match="not an ONNX file"):
        edge_sdk.convert(path, "onnx:fp32", out=tmp_path / "out")


def test_truncated_source(tiny_artifacts: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "truncated.onnx"
    data = tiny_artifacts["fp32"].model_file.read_bytes()
    assert len(data) > 1000
    path.write_bytes(data[:1000])
    with pytest.raises(edge_sdk.BadInputError, match="truncated or corrupt"):
        edge_sdk.convert(path, "onnx:fp32", out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_unknown_custom_op_in_source(custom_op_onnx: Path, tmp_path: Path) -> None:
    path = custom_op_onnx
    with pytest.raises(edge_sdk.BadInputError) as e:
        edge_sdk.convert(path, "onnx:fp32", out=tmp_path / "out")
    msg = str(e.value)
    assert "Frobnicate" in msg and "com.example" in msg and "frob_1" in msg


def test_standard_op_without_a_kernel_in_convert(erf_double_onnx: Path, tmp_path: Path) -> None:
    path = erf_double_onnx
    with pytest.raises(edge_sdk.BadInputError) as e:
        edge_sdk.convert(path, "onnx:fp32", out=tmp_path / "out")
    assert "'Erf'" in str(e.value) and "'n1'" in str(e.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("target", "allowed"),
    [
        ("tflite2:fp32", ["onnx"]),
        ("onnx:int3", ["fp32", "fp16", "int8", "int8-dynamic"]),
    ],
)
def test_unknown_target_or_precision_lists_allowed_values(
    tiny_onnx: Path, tmp_path: Path, target: str, allowed: list[str]
) -> None:
    bad = target.split(":")[0] if target.startswith("tflite2") else target.split(":")[1]
    with pytest.raises(edge_sdk.BadInputError) as e:
        edge_sdk.convert(tiny_onnx, ["onnx:fp32", target], out=tmp_path / "out")
    msg = str(e.value)
    assert f"'{bad}'" in msg
    for value in allowed:
        assert value in msg
    # Targets are checked before any work: not even the valid fp32 target was made.
    assert not (tmp_path / "out").exists()


def test_no_targets(tiny_onnx: Path, tmp_path: Path) -> None:
    with pytest.raises(edge_sdk.BadInputError, match="no targets"):
        edge_sdk.convert(tiny_onnx, [], out=tmp_path / "out")


def test_comma_separated_targets(tiny_onnx: Path, tmp_path: Path) -> None:
    arts = edge_sdk.convert(tiny_onnx, "onnx:fp32,onnx:int8-dynamic", out=tmp_path / "out")
    assert [a.precision for a in arts] == ["fp32", "int8-dynamic"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "tiny-onnx-fp32",
        "tiny-onnx-int8-dynamic",
    ]
    # With neither calibration nor parity data, parity runs on random inputs and says so.
    assert arts[0].parity["inputs"] == "random normal"


def test_int8_of_an_old_opset_model_is_upgraded_to_13(onnx_file: Any, tmp_path: Path) -> None:
    """Per-channel Q/DQ nodes need opset 13; NSNet2 (opset 11) made unloadable int8 models before."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((4, 2, 3, 3)).astype(np.float32), "w")
    path = onnx_file(
        "old.onnx",
        [helper.make_node("Conv", ["x", "w"], ["y"], name="conv")],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 6, 6])],
        initializers=[w],
        opsets={"": 11},
    )
    calib = [{"x": rng.standard_normal((1, 2, 8, 8)).astype(np.float32)} for _ in range(8)]
    (art,) = edge_sdk.convert(path, ["onnx:int8"], calibration=calib, out=tmp_path)
    assert art.recipe["opset_upgraded"] == "11 → 13"
    assert art.recipe["onnx_checker"] == "passed"
    assert art.parity["cosine_similarity"] > 0.999


def test_out_must_be_a_folder(tiny_onnx: Path, tmp_path: Path) -> None:
    """A file where the artifacts' folder should be (or above it), or a NUL in the path, is refused before
    any work, and the file is left as it was."""
    (tmp_path / "afile").write_text("keep me")
    for out in (tmp_path / "afile", tmp_path / "afile" / "sub"):
        with pytest.raises(edge_sdk.BadInputError, match="afile is a file"):
            edge_sdk.convert(tiny_onnx, "onnx:fp32", out=out)
    assert (tmp_path / "afile").read_text() == "keep me"
    with pytest.raises(edge_sdk.BadInputError, match="NUL"):
        edge_sdk.convert(tiny_onnx, "onnx:fp32", out=str(tmp_path / "a\0b"))


def test_random_parity_inputs_grow_until_the_model_runs(tmp_path: Path) -> None:
    """The bundled video denoiser takes any H x W, but not 1 x 1: with no data given, parity runs on random
    inputs whose free dims were grown until the source ran, and says so."""
    model = Path(edge_sdk.__file__).parent / "zoo" / "video" / "model.onnx"
    (art,) = edge_sdk.convert(model, "onnx:fp32", out=tmp_path)
    assert art.parity["inputs"] == "random normal, free dims 16"
    assert art.parity["cosine_similarity"] > 0.9999
