"""Calibration data: every accepted form, what a mismatch says, int8 without data, and progress reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

import edge_sdk
from edge_sdk.converters.calibration import load_samples, random_samples
from edge_sdk.manifest import TensorSpec

FIXED = [TensorSpec("x", [1, 3, 8, 8], "float32")]
DYNAMIC = [TensorSpec("x", ["N", 3, 8, 8], "float32")]
TWO_INPUTS = [TensorSpec("a", [1, 4], "float32"), TensorSpec("b", [1, 4], "float32")]


def _stack(samples: list[dict[str, np.ndarray]]) -> np.ndarray:
    return np.stack([s["x"] for s in samples])  # [S, 1, 3, 8, 8]


def _same(got: list[dict[str, np.ndarray]], want: list[dict[str, np.ndarray]]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert list(g) == list(w)
        for k in w:
            assert g[k].dtype == w[k].dtype
            np.testing.assert_array_equal(g[k], w[k])


# -- load_samples: each form ------------------------------------------------------------------------


def test_list_of_dicts(tiny_calibration: list) -> None:
    _same(load_samples(tiny_calibration, FIXED), tiny_calibration)


def test_list_of_arrays_for_a_single_input_model(tiny_calibration: list) -> None:
    _same(load_samples([s["x"] for s in tiny_calibration], FIXED), tiny_calibration)


def test_list_of_arrays_for_a_multi_input_model_is_refused() -> None:
    with pytest.raises(edge_sdk.BadInputError) as e:
        load_samples([np.zeros((1, 4), np.float32)], TWO_INPUTS)
    assert "'a'" in str(e.value) and "'b'" in str(e.value) and "dict" in str(e.value)


def test_folder_of_npy_files(tiny_calibration: list, tmp_path: Path) -> None:
    for i, s in enumerate(tiny_calibration):
        np.save(tmp_path / f"{i:03d}.npy", s["x"])
    _same(load_samples(tmp_path, FIXED), tiny_calibration)
    _same(load_samples(str(tmp_path), FIXED), tiny_calibration)


def test_folder_of_npy_files_holding_stacks(tiny_calibration: list, tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", _stack(tiny_calibration[:3]))
    np.save(tmp_path / "b.npy", _stack(tiny_calibration[3:]))
    _same(load_samples(tmp_path, FIXED), tiny_calibration)


def test_folder_of_npy_files_for_a_multi_input_model_is_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "0.npy", np.zeros((1, 4), np.float32))
    with pytest.raises(edge_sdk.BadInputError, match=".npz"):
        load_samples(tmp_path, TWO_INPUTS)


def test_dict_of_stacked_arrays(tiny_calibration: list) -> None:
    _same(load_samples({"x": _stack(tiny_calibration)}, FIXED), tiny_calibration)


def test_npz_with_samples_along_the_first_axis(tiny_calibration: list, tmp_path: Path) -> None:
    path = tmp_path / "calib.npz"
    np.savez(path, x=_stack(tiny_calibration))
    _same(load_samples(path, FIXED), tiny_calibration)


def test_npz_for_a_dynamic_batch_is_split_along_the_batch(tiny_calibration: list, tmp_path: Path) -> None:
    path = tmp_path / "calib.npz"
    np.savez(path, x=np.concatenate([s["x"] for s in tiny_calibration]))  # [8, 3, 8, 8]
    _same(load_samples(path, DYNAMIC), tiny_calibration)


def test_npz_with_several_inputs(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    a, b = (
        rng.standard_normal((5, 1, 4)).astype(np.float32),
        rng.standard_normal((5, 1, 4)).astype(np.float32),
    )
    path = tmp_path / "calib.npz"
    np.savez(path, b=b, a=a)
    got = load_samples(path, TWO_INPUTS)
    _same(got, [{"a": a[i], "b": b[i]} for i in range(5)])


def test_npz_with_different_sample_counts_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "calib.npz"
    np.savez(path, a=np.zeros((5, 1, 4), np.float32), b=np.zeros((4, 1, 4), np.float32))
    with pytest.raises(edge_sdk.BadInputError, match="different sample counts"):
        load_samples(path, TWO_INPUTS)


def test_folder_of_npz_files(tiny_calibration: list, tmp_path: Path) -> None:
    for i, s in enumerate(tiny_calibration):
        np.savez(tmp_path / f"{i:03d}.npz", **s)
    _same(load_samples(tmp_path, FIXED), tiny_calibration)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ([], "empty"),
        ("missing-dir", "no such file"),
        ("empty-dir", "no .npy or .npz"),
        ("calib.txt", "not a folder, .npz or .npy"),
    ],
)
def test_unusable_data_says_how_to_give_it(data: Any, match: str, tmp_path: Path) -> None:
    if data == "empty-dir":
        data = tmp_path / "empty"
        data.mkdir()
    elif data == "calib.txt":
        data = tmp_path / "calib.txt"
        data.write_text("1 2 3")
    elif data == "missing-dir":
        data = tmp_path / "missing"
    with pytest.raises(edge_sdk.BadInputError, match=match) as e:
        load_samples(data, FIXED)
    if match != "no such file":
        assert "--calib" in str(e.value)


def test_none_means_no_data() -> None:
    assert load_samples(None, FIXED) is None


# -- mismatches name the input -----------------------------------------------------------------------


def _mismatches(good: np.ndarray) -> dict[str, tuple[Any, list[str]]]:
    """case → (calibration data, words the message must hold)"""
    return {
        "wrong name": ([{"y": good}], ["'x'", "'y'"]),
        "wrong rank": ([{"x": good[0]}], ["'x'", "float32[1, 3, 8, 8]"]),
        "wrong size": ([{"x": good[..., :7]}], ["'x'", "axis 3", "expected 8"]),
        "wrong dtype": ([{"x": good.astype(np.float64)}], ["'x'", "float64", "float32"]),
        "second sample": ([{"x": good}, {"x": good.astype(np.int64)}], ["sample 1", "'x'", "int64"]),
    }


@pytest.mark.parametrize("case", ["wrong name", "wrong rank", "wrong size", "wrong dtype", "second sample"])
def test_calibration_that_does_not_match_the_model(
    case: str, tiny_onnx: Path, tiny_calibration: list, tmp_path: Path
) -> None:
    data, words = _mismatches(tiny_calibration[0]["x"])[case]
    with pytest.raises(edge_sdk.BadInputError) as e:
        edge_sdk.convert(tiny_onnx, "onnx:int8", calibration=data, out=tmp_path / "out")
    msg = str(e.value)
    assert "calibration" in msg
    for word in words:
        assert word in msg, msg
    assert not (tmp_path / "out").exists()


def test_npz_with_the_wrong_input_name(tiny_onnx: Path, tiny_calibration: list, tmp_path: Path) -> None:
    path = tmp_path / "calib.npz"
    np.savez(path, image=_stack(tiny_calibration))
    with pytest.raises(edge_sdk.BadInputError) as e:
        edge_sdk.convert(tiny_onnx, "onnx:int8", calibration=path, out=tmp_path / "out")
    assert "'image'" in str(e.value) and "'x'" in str(e.value)


# -- through convert() --------------------------------------------------------------------------------


def _input_scale(artifact: edge_sdk.Artifact) -> float:
    """The scale of the QuantizeLinear that quantises the model input ``x``."""
    model = onnx.load(str(artifact.model_file))
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    (node,) = [n for n in model.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == "x"]
    return float(inits[node.input[1]])


@pytest.mark.parametrize("form", ["list of dicts", "list of arrays", "folder of npy", "npz file"])
def test_every_form_calibrates_int8_the_same(
    form: str, tiny_onnx: Path, tiny_calibration: list, tmp_path: Path
) -> None:
    if form == "list of dicts":
        data: Any = tiny_calibration
    elif form == "list of arrays":
        data = [s["x"] for s in tiny_calibration]
    elif form == "folder of npy":
        data = tmp_path / "calib"
        data.mkdir()
        for i, s in enumerate(tiny_calibration):
            np.save(data / f"{i}.npy", s["x"])
    else:
        data = tmp_path / "calib.npz"
        np.savez(data, x=_stack(tiny_calibration))
    (art,) = edge_sdk.convert(tiny_onnx, "onnx:int8", calibration=data, out=tmp_path / "out")
    n = len(tiny_calibration)
    assert art.recipe["calibration"]["samples"] == n
    assert art.recipe["calibration"]["from"] == ("iterable" if isinstance(data, list) else str(data))
    assert art.parity["inputs"] == "calibration" and art.parity["samples"] == n
    # The calibrated range of the input is the data's (minmax, uint8 activations): the data was used.
    xs = _stack(tiny_calibration)
    lo, hi = min(float(xs.min()), 0.0), max(float(xs.max()), 0.0)
    assert _input_scale(art) == pytest.approx((hi - lo) / 255, rel=1e-5)


def test_calibration_range_follows_the_data(tiny_onnx: Path, tiny_calibration: list, tmp_path: Path) -> None:
    narrow = [{"x": 0.25 * s["x"]} for s in tiny_calibration]
    (wide_art,) = edge_sdk.convert(tiny_onnx, "onnx:int8", calibration=tiny_calibration, out=tmp_path / "a")
    (narrow_art,) = edge_sdk.convert(tiny_onnx, "onnx:int8", calibration=narrow, out=tmp_path / "b")
    assert _input_scale(narrow_art) == pytest.approx(0.25 * _input_scale(wide_art), rel=1e-4)


@pytest.mark.parametrize("targets", [["onnx:int8"], ["onnx:fp32", "onnx:int8"]])
def test_int8_without_calibration_is_refused(targets: list[str], tiny_onnx: Path, tmp_path: Path) -> None:
    with pytest.raises(edge_sdk.BadInputError) as e:
        edge_sdk.convert(tiny_onnx, targets, out=tmp_path / "out")
    msg = str(e.value)
    assert "onnx:int8" in msg
    assert "calibration" in msg and "--calib" in msg
    assert "int8-dynamic" in msg  # the way out that needs no data
    assert not (tmp_path / "out").exists()


def test_int8_dynamic_needs_no_calibration(tiny_onnx: Path, tmp_path: Path) -> None:
    (art,) = edge_sdk.convert(tiny_onnx, "onnx:int8-dynamic", out=tmp_path / "out")
    assert art.precision == "int8-dynamic" and "calibration" not in art.recipe


def test_calibration_progress_is_reported(tiny_onnx: Path, tiny_calibration: list, tmp_path: Path) -> None:
    calls: list[tuple[Any, ...]] = []
    edge_sdk.convert(
        tiny_onnx,
        "onnx:int8",
        calibration=tiny_calibration,
        out=tmp_path / "out",
        progress=lambda *args: calls.append(args),
    )
    n = len(tiny_calibration)
    assert [c for c in calls if c[0] == "calibrate"] == [("calibrate", i, n) for i in range(1, n + 1)]
    assert all(len(c) == 3 and isinstance(c[0], str) for c in calls)
    # Parity runs after calibration and is reported too.
    parity = [c for c in calls if c[0] == "parity"]
    assert parity[-1] == ("parity", n, n)
    assert calls.index(parity[0]) > calls.index(("calibrate", n, n))


def test_parity_inputs_are_not_made_up_for_a_shape_of_terabytes() -> None:
    huge = [TensorSpec("x", [1 << 20, 1 << 20], "float32")]
    with pytest.raises(edge_sdk.BadInputError, match=r"'x' declares shape \[1048576, 1048576\]"):
        random_samples(huge, 1)
    (sample,) = random_samples([TensorSpec("x", ["batch", 3], "float32")], 1)
    assert sample["x"].shape == (1, 3)
