"""int4 weight-only (``int4-weights``) on a small transformer encoder exported by the torch source: onnx
(MatMulNBits) and openvino (NNCF), symmetric and asymmetric, with parity against fp32 and the size ratio
printed and recorded; tflite says it cannot and names the formats that can."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import edge_sdk
from edge_sdk.errors import BadInputError

torch = pytest.importorskip("torch", reason="needs the torch extra")
pytestmark = pytest.mark.torch

MIN_COSINE = 0.99  # int4 weights of a random-init encoder: ~0.995 measured on this CPU
MAX_SIZE_RATIO = 0.25  # 4-bit weights plus a scale per 32 (and a zero point, asym) vs 32-bit floats


class Encoder(torch.nn.Module):
    """Two pre-built encoder layers (d_model 128, 4 heads, feed-forward 512) and a linear head."""

    def __init__(self) -> None:
        super().__init__()
        layer = torch.nn.TransformerEncoderLayer(128, 4, 512, dropout=0.0, batch_first=True)
        self.encoder = torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = torch.nn.Linear(128, 16)

    def forward(self, x: Any) -> Any:
        return self.head(self.encoder(x))


def _targets() -> list[str]:
    targets = ["onnx:int4-weights"]
    ok, _ = edge_sdk.converters.targets.TARGETS.get("openvino").available()
    return targets + (["openvino:int4-weights"] if ok else [])


@pytest.mark.parametrize("mode", ["sym", "asym"])
def test_int4_weights_transformer(mode: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    parity = [{"x": rng.standard_normal((1, 16, 128)).astype(np.float32)} for _ in range(4)]
    arts = edge_sdk.convert(
        Encoder().eval(),
        _targets(),
        example_inputs=(torch.from_numpy(parity[0]["x"]),),
        input_names=["x"],
        parity_data=parity,
        options={"int4_mode": mode, "group_size": 32},
        out=tmp_path,
    )
    for art in arts:
        recipe = art.recipe
        print(
            f"{art.name}: size {art.size} bytes, {recipe['size_ratio_vs_fp32']:.3f} of fp32, "
            f"cosine {art.parity['cosine_similarity']:.5f}, max abs error {art.parity['max_abs_error']:.4f}"
        )
        assert art.precision == "int4-weights"
        assert recipe["int4_mode"] == mode and recipe["group_size"] == 32
        assert recipe["size_ratio_vs_fp32"] < MAX_SIZE_RATIO
        assert art.parity["cosine_similarity"] >= MIN_COSINE
        session = edge_sdk.load(art.path)
        assert session.run(parity[1])[session.output_names[0]].shape == (1, 16, 16)


def test_tflite_cannot_do_int4() -> None:
    with pytest.raises(
        BadInputError, match="tflite cannot make int4-weights; formats that can: onnx, openvino"
    ):
        edge_sdk.converters.targets.parse_target("tflite:int4-weights")


def test_bad_int4_options() -> None:
    from edge_sdk.converters.options import resolve

    onnx_target = edge_sdk.converters.targets.TARGETS.get("onnx")
    assert resolve([onnx_target], {"group_size": "64"})["onnx"]["group_size"] == 64
    with pytest.raises(BadInputError, match="int4_mode"):
        resolve([onnx_target], {"int4_mode": "nf4"})
    with pytest.raises(BadInputError, match="power of two"):
        resolve([onnx_target], {"group_size": 48})


def test_openvino_group_size_too_wide_for_a_layer_adjusts_or_errors(tmp_path: Path) -> None:
    """Layers 64 wide against the default group size 128: NNCF's adjust mode compresses them in groups
    of 64 (both layers 4-bit), error mode refuses with the step named."""
    pytest.importorskip("nncf", reason="needs the openvino extra")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 8)).eval()
    x = torch.randn(1, 64)
    (art,) = edge_sdk.convert(model, "openvino:int4-weights", example_inputs=(x,), out=tmp_path / "a")
    assert art.recipe["group_fallback"] == "adjust" and art.recipe["compressed_constants"].get("i4") == 2
    with pytest.raises(edge_sdk.ConversionError, match="int4 weight compression failed"):
        edge_sdk.convert(
            model, "openvino:int4-weights", example_inputs=(x,), out=tmp_path / "b",
            options={"group_fallback": "error"},
        )  # fmt: skip
