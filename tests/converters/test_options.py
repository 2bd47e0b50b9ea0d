"""Target options: each format declares what it reads, and one routine checks a call's options against
every requested format before anything is opened or built. A bare NAME goes to the formats that allow its
value, FORMAT.NAME to one format; a value no format allows, a format not requested and an unknown name
are one clear BadInputError."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import edge_sdk
from edge_sdk.converters.cache import tool_versions
from edge_sdk.converters.options import Option, defaults, resolve
from edge_sdk.converters.targets import TARGETS, parse_target
from edge_sdk.errors import BadInputError


def _targets(*names: str) -> list:
    return [parse_target(n)[0] for n in names]


def test_a_value_only_some_targets_allow_goes_to_those(caplog: pytest.LogCaptureFixture) -> None:
    """calibrator=nncf with tflite:int8 and openvino:int8: openvino calibrates with NNCF, tflite keeps
    its own calibrator, and the log says that tflite left the value and why."""
    with caplog.at_level(logging.INFO, logger="edge_sdk.converters"):
        got = resolve(_targets("tflite:int8", "openvino:int8"), {"calibrator": "nncf"})
    assert got["openvino"]["calibrator"] == "nncf"
    assert got["tflite"]["calibrator"] == "tensorflow"
    (note,) = [r.getMessage() for r in caplog.records if "calibrator" in r.getMessage()]
    assert "tflite" in note and "'nncf'" in note and "tensorflow, onnxruntime" in note and "openvino" in note


def test_a_prefixed_value_is_for_its_format_only_and_wins() -> None:
    got = resolve(
        _targets("tflite:int8", "openvino:int8"),
        {"calibrator": "onnxruntime", "openvino.calibrator": "nncf", "tflite.io": "float"},
    )
    assert got["tflite"]["calibrator"] == "onnxruntime" and got["openvino"]["calibrator"] == "nncf"
    assert got["tflite"]["io"] == "float"


def test_each_target_gets_exactly_its_own_options_typed_with_defaults() -> None:
    got = resolve(
        _targets("onnx:int8", "openvino:fp32"),
        {"per_channel": "false", "group_size": "64", "exclude_nodes": "a;b", "onnx.weight_type": "uint8"},
    )
    for fmt in ("onnx", "openvino"):
        assert set(got[fmt]) == set(TARGETS.get(fmt).options)
        assert got[fmt]["per_channel"] is False and got[fmt]["group_size"] == 64
        assert got[fmt]["exclude_nodes"] == ["a", "b"]
    assert got["onnx"]["weight_type"] == "uint8" and got["openvino"]["weight_type"] == "int8"
    assert got["openvino"]["inference_precision"] == "f32" and got["openvino"]["calibrator"] is None
    assert defaults(TARGETS.get("tflite")) == resolve(_targets("tflite:fp32"), {})["tflite"]


@pytest.mark.parametrize(
    ("targets", "options", "needles"),
    [
        # a value that no requested target declaring the option allows: each target's reason
        (
            ("tflite:int8", "openvino:int8"),
            {"calibrator": "ort"},
            [
                "tflite: option calibrator='ort' is not one of: tensorflow, onnxruntime",
                "openvino: option calibrator='ort' is not one of: onnxruntime, nncf",
            ],
        ),
        # a prefixed value is for its format, which must allow it
        (
            ("tflite:int8", "openvino:int8"),
            {"tflite.calibrator": "nncf"},
            ["tflite: option calibrator='nncf' is not one of: tensorflow, onnxruntime"],
        ),
        (
            ("onnx:fp32",),
            {"openvino.calibrator": "nncf"},
            ["openvino.calibrator", "openvino is not among the requested formats (onnx)"],
        ),
        (
            ("onnx:fp32",),
            {"openvno.calibrator": "nncf"},
            ["unknown target format 'openvno'", "onnx, openvino, tflite"],
        ),
        (
            ("onnx:fp32", "tflite:fp32"),
            {"tflite.per_channel": False},
            ["unknown option 'per_channel' for tflite", "known: calibrate_method, calibrator, converter"],
        ),
        (
            ("onnx:fp32",),
            {"per_chanel": False},
            ["unknown option 'per_chanel'", "did you mean 'per_channel'"],
        ),
        (
            ("openvino:fp32",),
            {"quantize_recurrent": "yes"},
            ["quantize_recurrent='yes' must be true or false"],
        ),
        (("onnx:fp32",), {"group_size": "many"}, ["onnx: option group_size='many' must be an integer"]),
        (("onnx:fp32",), {"group_size": 48}, ["group_size=48 must be a power of two"]),
        (
            ("openvino:fp32",),
            {"converter": "torch", "calibrator": "onnxruntime"},
            ["openvino: options calibrator='onnxruntime' and converter='torch' do not go together"],
        ),
        # every problem of a call in one error
        (
            ("onnx:fp32", "tflite:fp32"),
            {"colour": "red", "io": "int4"},
            ["2 problems", "unknown option 'colour'", "tflite: option io='int4' is not one of: int8, uint8"],
        ),
    ],
)
def test_bad_options_are_one_clear_error(targets: tuple, options: dict, needles: list[str]) -> None:
    with pytest.raises(BadInputError) as e:
        resolve(_targets(*targets), options)
    for needle in needles:
        assert needle in str(e.value)


def test_options_are_checked_before_the_source_is_opened(tmp_path: Path) -> None:
    """A refused value fails the call before the source is read (this one does not exist) and before
    anything is written."""
    out = tmp_path / "out"
    with pytest.raises(BadInputError, match="tflite: option calibrator='nncf' is not one of") as e:
        edge_sdk.convert(
            tmp_path / "missing.onnx",
            ["onnx:fp32", "tflite:int8"],
            options={"tflite.calibrator": "nncf"},
            out=out,
        )
    assert "no such file" not in str(e.value)
    assert not out.exists()


def test_convert_gives_each_format_its_prefixed_value(tiny_onnx: Path, tmp_path: Path) -> None:
    pytest.importorskip("openvino", reason="needs the openvino extra")
    onnx_art, ov_art = edge_sdk.convert(
        tiny_onnx,
        ["onnx:int8-dynamic", "openvino:fp32"],
        options={"per_channel": True, "onnx.per_channel": False, "calibrator": "nncf"},
        out=tmp_path,
    )
    assert onnx_art.recipe["per_channel"] is False  # the prefixed value won
    assert ov_art.recipe["converter"] == "openvino.convert_model"
    assert set(onnx_art.recipe) >= {"per_channel", "weight_type", "exclude_nodes", "activations"}
    # the recipe records what it did before: no other option of the target's enters it
    assert "calibrator" not in onnx_art.recipe and "group_size" not in onnx_art.recipe


def test_the_cache_keys_each_target_by_its_own_resolved_options(tiny_onnx: Path, tmp_path: Path) -> None:
    """An option of another format leaves a target's artifact reused; a default given explicitly is the
    default, so it changes no key."""
    pytest.importorskip("openvino", reason="needs the openvino extra")
    targets = ["onnx:fp32", "openvino:fp32"]
    edge_sdk.convert(tiny_onnx, targets, out=tmp_path / "a")
    options = {"openvino.preset": "mixed"}
    onnx_art, ov_art = edge_sdk.convert(tiny_onnx, targets, options=options, out=tmp_path / "b")
    assert getattr(onnx_art, "reused_from", "") and not getattr(ov_art, "reused_from", "")
    again = edge_sdk.convert(
        tiny_onnx, targets, options={"preset": "performance", "per_channel": "true"}, out=tmp_path / "c"
    )
    assert all(getattr(a, "reused_from", "") for a in again)


def test_every_target_declares_its_tools_and_options() -> None:
    for name, target in TARGETS:
        assert target.tools and set(tool_versions(target.tools)) >= set(target.tools), name
        assert all(isinstance(o, Option) and o.help for o in target.options.values()), name
    assert "nncf" in TARGETS.get("openvino").tools and "onnx2tf" in TARGETS.get("tflite").tools
    # one declaration, shared by the targets that read it
    assert TARGETS.get("onnx").options["group_size"] is TARGETS.get("openvino").options["group_size"]
