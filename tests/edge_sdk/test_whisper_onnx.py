"""The Whisper encoder built as ONNX from numpy weights, run by onnxruntime, against an independent torch
implementation (torch's conv1d, MultiheadAttention, layer_norm and GELU, in float64)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from edge_sdk import zoo
from edge_sdk.audio import whisper_mel
from edge_sdk.audio.whisper_onnx import INPUT, build_encoder, encoder_model
from edge_sdk.converters.sources.ctranslate2 import read_ct2
from edge_sdk.errors import BadInputError

torch = pytest.importorskip("torch")
F = torch.nn.functional


def torch_encoder(w: dict[str, np.ndarray], mel: np.ndarray, heads: int) -> np.ndarray:
    """Whisper's encoder (conv stem, sinusoid positions, pre-LN blocks, final LayerNorm) in torch float64."""
    t = {k: torch.from_numpy(np.asarray(v, np.float64)) for k, v in w.items()}
    x = F.gelu(
        F.conv1d(
            torch.from_numpy(mel.astype(np.float64)),
            t["encoder/conv1/weight"],
            t["encoder/conv1/bias"],
            padding=1,
        )
    )
    x = F.gelu(F.conv1d(x, t["encoder/conv2/weight"], t["encoder/conv2/bias"], stride=2, padding=1))
    x = x.permute(0, 2, 1)
    d = x.shape[-1]
    x = x + t["encoder/position_encodings/encodings"][: x.shape[1]]
    i = 0
    while f"encoder/layer_{i}/ffn/linear_0/weight" in t:
        p = f"encoder/layer_{i}"
        mha = torch.nn.MultiheadAttention(d, heads, batch_first=True, dtype=torch.float64)
        with torch.no_grad():
            mha.in_proj_weight.copy_(t[f"{p}/self_attention/linear_0/weight"])
            mha.in_proj_bias.copy_(t[f"{p}/self_attention/linear_0/bias"])
            mha.out_proj.weight.copy_(t[f"{p}/self_attention/linear_1/weight"])
            mha.out_proj.bias.copy_(t[f"{p}/self_attention/linear_1/bias"])
            ln = f"{p}/self_attention/layer_norm"
            h = F.layer_norm(x, (d,), t[f"{ln}/gamma"], t[f"{ln}/beta"], 1e-5)
            x = x + mha(h, h, h, need_weights=False)[0]
        ln = f"{p}/ffn/layer_norm"
        h = F.layer_norm(x, (d,), t[f"{ln}/gamma"], t[f"{ln}/beta"], 1e-5)
        h = F.linear(
            F.gelu(F.linear(h, t[f"{p}/ffn/linear_0/weight"], t[f"{p}/ffn/linear_0/bias"])),
            t[f"{p}/ffn/linear_1/weight"],
            t[f"{p}/ffn/linear_1/bias"],
        )
        x = x + h
        i += 1
    x = F.layer_norm(x, (d,), t["encoder/layer_norm/gamma"], t["encoder/layer_norm/beta"], 1e-5)
    return x.detach().numpy()


def small_whisper(d: int = 64, layers: int = 2, positions: int = 40, mels: int = 80) -> dict[str, np.ndarray]:
    """Random weights in CTranslate2's Whisper layout, scaled as trained layers roughly are."""
    rng = np.random.default_rng(0)

    def lin(n_out: int, n_in: int) -> np.ndarray:
        return (rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)).astype(np.float32)

    def vec(n: int, around: float = 0.0) -> np.ndarray:
        return (around + 0.1 * rng.standard_normal(n)).astype(np.float32)

    w = {
        "encoder/conv1/weight": (rng.standard_normal((d, mels, 3)) / np.sqrt(3 * mels)).astype(np.float32),
        "encoder/conv1/bias": vec(d),
        "encoder/conv2/weight": (rng.standard_normal((d, d, 3)) / np.sqrt(3 * d)).astype(np.float32),
        "encoder/conv2/bias": vec(d),
        "encoder/position_encodings/encodings": np.sin(
            np.arange(positions)[:, None] / (1 + np.arange(d))
        ).astype(np.float32),
        "encoder/layer_norm/gamma": vec(d, 1.0),
        "encoder/layer_norm/beta": vec(d),
    }
    for i in range(layers):
        p = f"encoder/layer_{i}"
        w |= {
            f"{p}/self_attention/layer_norm/gamma": vec(d, 1.0),
            f"{p}/self_attention/layer_norm/beta": vec(d),
            f"{p}/self_attention/linear_0/weight": lin(3 * d, d),
            f"{p}/self_attention/linear_0/bias": vec(3 * d),
            f"{p}/self_attention/linear_1/weight": lin(d, d),
            f"{p}/self_attention/linear_1/bias": vec(d),
            f"{p}/ffn/layer_norm/gamma": vec(d, 1.0),
            f"{p}/ffn/layer_norm/beta": vec(d),
            f"{p}/ffn/linear_0/weight": lin(4 * d, d),
            f"{p}/ffn/linear_0/bias": vec(4 * d),
            f"{p}/ffn/linear_1/weight": lin(d, 4 * d),
            f"{p}/ffn/linear_1/bias": vec(d),
        }
    return w


def run(model: object, mel: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])  # type: ignore[attr-defined]
    return sess.run(None, {INPUT: mel.astype(np.float32)})[0]


@pytest.mark.parametrize("n_frames", [2, 20, 80])
def test_the_built_encoder_matches_torch(n_frames: int) -> None:
    w = small_whisper()
    mel = np.random.default_rng(n_frames).standard_normal((3, 80, n_frames)).astype(np.float32)
    ours = run(encoder_model(w, n_frames, num_heads=4), mel)
    assert ours.shape == (3, n_frames // 2, 64)
    np.testing.assert_allclose(ours, torch_encoder(w, mel, heads=4), atol=1e-4, rtol=0)


def test_the_positions_are_the_first_n_over_2() -> None:
    # Two encoders that differ only in positions beyond the first 10 give the same output for 20 frames.
    w = small_whisper()
    w2 = dict(w)
    w2["encoder/position_encodings/encodings"] = w["encoder/position_encodings/encodings"].copy()
    w2["encoder/position_encodings/encodings"][10:] += 5.0
    mel = np.random.default_rng(1).standard_normal((1, 80, 20)).astype(np.float32)
    np.testing.assert_array_equal(
        run(encoder_model(w, 20, num_heads=4), mel), run(encoder_model(w2, 20, num_heads=4), mel)
    )
    w2["encoder/position_encodings/encodings"][9] += 5.0
    assert not np.allclose(
        run(encoder_model(w, 20, num_heads=4), mel), run(encoder_model(w2, 20, num_heads=4), mel)
    )


@pytest.mark.parametrize(
    ("n_frames", "heads", "message"),
    [
        (21, 4, "even number of mel frames"),
        (0, 4, "even number of mel frames"),
        (82, 4, "82 mel frames need 41 positions; this encoder has 40"),
        (20, 5, "does not split into 5 heads"),
    ],
)
def test_impossible_encoders_are_refused(n_frames: int, heads: int, message: str) -> None:
    with pytest.raises(BadInputError, match=message):
        encoder_model(small_whisper(), n_frames, num_heads=heads)


def test_missing_weights_are_named() -> None:
    w = small_whisper()
    del w["encoder/layer_1/ffn/linear_1/bias"]
    with pytest.raises(BadInputError, match="encoder/layer_1/ffn/linear_1/bias"):
        encoder_model(w, 20, num_heads=4)
    with pytest.raises(BadInputError, match="no encoder layers"):
        encoder_model({k: v for k, v in w.items() if "layer_" not in k}, 20, num_heads=4)


@pytest.mark.network
def test_whisper_tiny_en_from_the_zoo_matches_torch(whisper_cache: Path) -> None:
    source = zoo.pull("whisper-tiny.en", cache_dir=whisper_cache)
    ct2 = read_ct2(source)
    weights = {n: ct2.float32(n) for n, v in ct2.variables.items() if n.startswith("encoder/") and v.ndim}
    t = np.arange(16000) / 16000
    audio = (0.3 * np.sin(2 * np.pi * 300 * t) * np.sin(2 * np.pi * 2 * t)).astype(np.float32)
    mel = whisper_mel.log_mel(audio)[:98].T[None]  # [1, 80, 98]
    ours = run(build_encoder(source, 98), mel)
    assert ours.shape == (1, 49, 384)
    np.testing.assert_allclose(ours, torch_encoder(weights, mel, heads=6), atol=1e-4, rtol=0)


def test_a_ct2_model_of_another_kind_is_refused(tmp_path: Path) -> None:
    import struct

    raw = b"TransformerSpec\0"
    (tmp_path / "model.bin").write_bytes(
        struct.pack("<I", 6) + struct.pack("<H", len(raw)) + raw + struct.pack("<III", 1, 0, 0)
    )
    with pytest.raises(BadInputError, match="TransformerSpec model, not a Whisper model"):
        build_encoder(tmp_path, 20)
