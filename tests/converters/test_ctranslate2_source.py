"""The CTranslate2 model.bin reader: files written here in the published layout (binary versions 1-6)
read back exactly; damaged, foreign and too-new files are refused with a message naming what was found."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from edge_sdk import zoo
from edge_sdk.converters.sources.ctranslate2 import Ct2FormatError, read_ct2
from edge_sdk.errors import BadInputError

# CTranslate2's dtype ids (include/ctranslate2/types.h); bfloat16 is written as raw uint16 here.
TYPE_IDS = {"float32": 0, "int8": 1, "int16": 2, "int32": 3, "float16": 4, "bfloat16": 5}


def _string(s: str) -> bytes:
    raw = s.encode() + b"\0"
    return struct.pack("<H", len(raw)) + raw


def write_ct2(
    path: Path,
    variables: dict[str, np.ndarray],
    *,
    version: int = 6,
    spec: str = "TestSpec",
    revision: int = 2,
    aliases: dict[str, str] | None = None,
    dtype_names: dict[str, str] | None = None,
) -> Path:
    """A model.bin as CTranslate2's ModelSpec._serialize writes it (and its version 1-3 ancestors)."""
    out = [struct.pack("<I", version)]
    if version >= 2:
        out += [_string(spec), struct.pack("<I", revision)]
    out.append(struct.pack("<I", len(variables)))
    for name, value in variables.items():
        value = np.array(value, order="C")  # ascontiguousarray would make a scalar rank 1
        out += [_string(name), struct.pack("<B", value.ndim), *(struct.pack("<I", d) for d in value.shape)]
        if version >= 4:
            dtype = (dtype_names or {}).get(name, value.dtype.name)
            out += [struct.pack("<B", TYPE_IDS[dtype]), struct.pack("<I", value.nbytes)]
        else:
            out += [struct.pack("<B", value.itemsize), struct.pack("<I", value.size)]
        out.append(value.tobytes())
    if version >= 3:
        out.append(struct.pack("<I", len(aliases or {})))
        for alias, target in (aliases or {}).items():
            out += [_string(alias), _string(target)]
    path.write_bytes(b"".join(out))
    return path


def _variables() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "encoder/num_heads": np.array(6, np.int16),
        "encoder/pre_norm": np.array(1, np.int8),
        "encoder/conv1/weight": rng.standard_normal((4, 3, 3)).astype(np.float16),
        "encoder/conv1/bias": rng.standard_normal(4).astype(np.float32),
        "decoder/ids": np.arange(5, dtype=np.int32),
    }


def test_a_version_6_file_reads_back_every_variable_alias_and_the_config(tmp_path: Path) -> None:
    variables = _variables()
    write_ct2(tmp_path / "model.bin", variables, aliases={"decoder/proj/weight": "encoder/conv1/weight"})
    (tmp_path / "config.json").write_text(json.dumps({"lang_ids": [1, 2]}))
    m = read_ct2(tmp_path)  # the folder, as CTranslate2 takes it
    assert (m.binary_version, m.spec, m.spec_revision) == (6, "TestSpec", 2)
    assert m.config == {"lang_ids": [1, 2]}
    assert m.aliases == {"decoder/proj/weight": "encoder/conv1/weight"}
    for name, value in variables.items():
        assert m.variables[name].dtype == value.dtype and np.array_equal(m.variables[name], value)
    assert m.variables["decoder/proj/weight"] is m.variables["encoder/conv1/weight"]
    assert m.scalar("encoder/num_heads") == 6
    assert m.float32("encoder/conv1/weight").dtype == np.float32
    np.testing.assert_array_equal(m.float32("encoder/conv1/weight"), variables["encoder/conv1/weight"])
    assert len(m.sha256) == 64


@pytest.mark.parametrize("version", [1, 2, 3, 4, 5])
def test_older_binary_versions_read_too(tmp_path: Path, version: int) -> None:
    # Versions 1-3 know only float32, int16 and int8 (by item size); 1 has no spec name, 1-2 no aliases.
    variables = {
        "w": np.ones((2, 3), np.float32),
        "q": np.array([1, -2], np.int8),
        "s": np.array(3, np.int16),
    }
    m = read_ct2(write_ct2(tmp_path / "model.bin", variables, version=version))
    assert m.binary_version == version and m.spec == ("" if version == 1 else "TestSpec")
    for name, value in variables.items():
        assert m.variables[name].dtype == value.dtype and np.array_equal(m.variables[name], value)


def test_bfloat16_and_int8_weights_widen_to_float32(tmp_path: Path) -> None:
    w = np.array([[1.5, -2.25], [0.125, 3.0]], np.float32)
    bf16 = (w.view(np.uint32) >> 16).astype(np.uint16)  # these values are exact in bfloat16
    scale = np.array([127 / 2.25, 127 / 3.0], np.float32)  # CTranslate2's per-row int8 scale
    q = np.rint(w * scale[:, None]).astype(np.int8)
    m = read_ct2(
        write_ct2(
            tmp_path / "model.bin",
            {"a/weight": bf16, "b/weight": q, "b/weight_scale": scale},
            dtype_names={"a/weight": "bfloat16"},
        )
    )
    np.testing.assert_array_equal(m.float32("a/weight"), w)
    np.testing.assert_allclose(m.float32("b/weight"), w, atol=3.0 / 127)


def test_int8_without_its_scale_is_refused_by_name(tmp_path: Path) -> None:
    m = read_ct2(write_ct2(tmp_path / "model.bin", {"b/weight": np.ones((2, 2), np.int8)}))
    with pytest.raises(Ct2FormatError, match="b/weight_scale"):
        m.float32("b/weight")
    with pytest.raises(BadInputError, match="no variable 'c'"):
        m.float32("c")


def _valid(tmp_path: Path) -> bytes:
    return write_ct2(tmp_path / "model.bin", _variables(), aliases={"x": "decoder/ids"}).read_bytes()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda b: struct.pack("<I", 7) + b[4:], "binary version 7 .*supported 1-6"),
        (lambda b: b"\x08\x01\x12\x0bonnx-export" + b[12:], r"binary version \d+ \(the first 4 bytes\)"),
        (lambda b: b[:-20], "truncated or damaged"),
        (lambda b: b[:3], "binary version needs 4 bytes"),
        (lambda b: b + b"\0\0", "2 bytes after the last field"),
        (lambda b: b"", "binary version needs 4 bytes at offset 0"),
    ],
    ids=["too-new", "not-ct2", "truncated", "short-header", "trailing", "empty"],
)
def test_a_damaged_or_foreign_file_is_refused_saying_what_was_found(
    tmp_path: Path, damage: Callable[[bytes], bytes], message: str
) -> None:
    path = tmp_path / "bad" / "model.bin"
    path.parent.mkdir()
    path.write_bytes(damage(_valid(tmp_path)))
    with pytest.raises(Ct2FormatError, match=message) as caught:
        read_ct2(path)
    assert isinstance(caught.value, BadInputError) and str(path) in str(caught.value)


def test_a_byte_count_that_disagrees_with_the_shape_is_refused(tmp_path: Path) -> None:
    data = bytearray(write_ct2(tmp_path / "model.bin", {"w": np.ones(4, np.float32)}).read_bytes())
    header = 4 + len(_string("TestSpec")) + 4 + 4 + len(_string("w")) + 1 + 4 + 1
    data[header : header + 4] = struct.pack("<I", 12)
    (tmp_path / "model.bin").write_bytes(bytes(data))
    with pytest.raises(Ct2FormatError, match=r"w \[4\] float32 should hold 16 bytes, the file says 12"):
        read_ct2(tmp_path / "model.bin")


def test_an_unknown_dtype_id_and_a_missing_file_are_refused(tmp_path: Path) -> None:
    data = bytearray(write_ct2(tmp_path / "model.bin", {"w": np.ones(4, np.float32)}).read_bytes())
    dtype_at = 4 + len(_string("TestSpec")) + 4 + 4 + len(_string("w")) + 1 + 4
    data[dtype_at] = 9
    (tmp_path / "model.bin").write_bytes(bytes(data))
    with pytest.raises(Ct2FormatError, match="dtype id 9"):
        read_ct2(tmp_path / "model.bin")
    with pytest.raises(Ct2FormatError, match="no such file"):
        read_ct2(tmp_path / "elsewhere")


@pytest.mark.network
def test_the_zoo_whisper_tiny_en_is_a_version_6_fp16_whisper_model(whisper_cache: Path) -> None:
    m = read_ct2(zoo.pull("whisper-tiny.en", cache_dir=whisper_cache))
    assert (m.binary_version, m.spec, m.spec_revision) == (6, "WhisperSpec", 3)
    assert len(m.variables) - len(m.aliases) == 148
    assert m.scalar("encoder/num_heads") == 6
    assert m.variables["encoder/conv1/weight"].shape == (384, 80, 3)
    assert m.variables["encoder/conv1/weight"].dtype == np.float16
    assert m.variables["encoder/position_encodings/encodings"].shape == (1500, 384)
    # q, k and v fused in one matrix; Whisper's key projection has no bias, so its third is zero
    assert m.variables["encoder/layer_0/self_attention/linear_0/weight"].shape == (1152, 384)
    assert not m.float32("encoder/layer_0/self_attention/linear_0/bias")[384:768].any()
