"""Whisper's speech-recognition graphs (an encoder of any length with cross keys/values, a decoder with a
KV cache) built from numpy weights, against an independent torch implementation in float64."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from edge_sdk.audio.whisper_onnx import asr_encoder_model, decoder_model, encoder_model
from tests.edge_sdk.test_whisper_onnx import small_whisper

torch = pytest.importorskip("torch")
F = torch.nn.functional

D, HEADS, VOCAB, TEXT_POSITIONS = 64, 4, 50, 24


def small_asr_whisper(layers: int = 2) -> dict[str, np.ndarray]:
    """``small_whisper``'s encoder plus a random decoder in CTranslate2's layout (fused self q/k/v, fused
    cross k/v, the output projection tied to the embedding)."""
    rng = np.random.default_rng(1)
    w = small_whisper(d=D, layers=layers)

    def lin(n_out: int, n_in: int) -> np.ndarray:
        return (rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)).astype(np.float32)

    def vec(n: int, around: float = 0.0) -> np.ndarray:
        return (around + 0.1 * rng.standard_normal(n)).astype(np.float32)

    w |= {
        "decoder/embeddings/weight": rng.standard_normal((VOCAB, D)).astype(np.float32),
        "decoder/position_encodings/encodings": (0.1 * rng.standard_normal((TEXT_POSITIONS, D))).astype(
            np.float32
        ),
        "decoder/layer_norm/gamma": vec(D, 1.0),
        "decoder/layer_norm/beta": vec(D),
    }
    for i in range(layers):
        p = f"decoder/layer_{i}"
        for ln in ("self_attention", "attention", "ffn"):
            w |= {f"{p}/{ln}/layer_norm/gamma": vec(D, 1.0), f"{p}/{ln}/layer_norm/beta": vec(D)}
        w |= {
            f"{p}/self_attention/linear_0/weight": lin(3 * D, D),
            f"{p}/self_attention/linear_0/bias": vec(3 * D),
            f"{p}/self_attention/linear_1/weight": lin(D, D),
            f"{p}/self_attention/linear_1/bias": vec(D),
            f"{p}/attention/linear_0/weight": lin(D, D),
            f"{p}/attention/linear_0/bias": vec(D),
            f"{p}/attention/linear_1/weight": lin(2 * D, D),
            f"{p}/attention/linear_1/bias": vec(2 * D),
            f"{p}/attention/linear_2/weight": lin(D, D),
            f"{p}/attention/linear_2/bias": vec(D),
            f"{p}/ffn/linear_0/weight": lin(4 * D, D),
            f"{p}/ffn/linear_0/bias": vec(4 * D),
            f"{p}/ffn/linear_1/weight": lin(D, 4 * D),
            f"{p}/ffn/linear_1/bias": vec(D),
        }
    return w


def torch_decoder(w: dict[str, np.ndarray], tokens: np.ndarray, audio: np.ndarray) -> np.ndarray:
    """Logits ``[b, n, vocab]`` of Whisper's decoder over the whole token sequence at once (no cache), with
    torch's MultiheadAttention and a causal mask, in float64; ``audio`` is the encoder output."""
    t = {k: torch.from_numpy(np.asarray(v, np.float64)) for k, v in w.items()}
    n = tokens.shape[1]
    x = (
        t["decoder/embeddings/weight"][torch.from_numpy(tokens)]
        + t["decoder/position_encodings/encodings"][:n]
    )
    enc = torch.from_numpy(audio.astype(np.float64))
    causal = torch.triu(torch.full((n, n), float("-inf"), dtype=torch.float64), diagonal=1)

    def ln(h: torch.Tensor, name: str) -> torch.Tensor:
        return F.layer_norm(h, (D,), t[f"{name}/gamma"], t[f"{name}/beta"], 1e-5)

    i = 0
    while f"decoder/layer_{i}/ffn/linear_0/weight" in t:
        p = f"decoder/layer_{i}"
        self_attn = torch.nn.MultiheadAttention(D, HEADS, batch_first=True, dtype=torch.float64)
        cross = torch.nn.MultiheadAttention(D, HEADS, batch_first=True, dtype=torch.float64)
        with torch.no_grad():
            self_attn.in_proj_weight.copy_(t[f"{p}/self_attention/linear_0/weight"])
            self_attn.in_proj_bias.copy_(t[f"{p}/self_attention/linear_0/bias"])
            self_attn.out_proj.weight.copy_(t[f"{p}/self_attention/linear_1/weight"])
            self_attn.out_proj.bias.copy_(t[f"{p}/self_attention/linear_1/bias"])
            cross.in_proj_weight.copy_(
                torch.cat([t[f"{p}/attention/linear_0/weight"], t[f"{p}/attention/linear_1/weight"]])
            )
            cross.in_proj_bias.copy_(
                torch.cat([t[f"{p}/attention/linear_0/bias"], t[f"{p}/attention/linear_1/bias"]])
            )
            cross.out_proj.weight.copy_(t[f"{p}/attention/linear_2/weight"])
            cross.out_proj.bias.copy_(t[f"{p}/attention/linear_2/bias"])
            h = ln(x, f"{p}/self_attention/layer_norm")
            x = x + self_attn(h, h, h, attn_mask=causal, need_weights=False)[0]
            h = ln(x, f"{p}/attention/layer_norm")
            x = x + cross(h, enc, enc, need_weights=False)[0]
            h = ln(x, f"{p}/ffn/layer_norm")
            x = x + F.linear(
                F.gelu(F.linear(h, t[f"{p}/ffn/linear_0/weight"], t[f"{p}/ffn/linear_0/bias"])),
                t[f"{p}/ffn/linear_1/weight"],
                t[f"{p}/ffn/linear_1/bias"],
            )
        i += 1
    x = ln(x, "decoder/layer_norm")
    return (x @ t["decoder/embeddings/weight"].T).detach().numpy()


def session(model: object) -> ort.InferenceSession:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])  # type: ignore[attr-defined]


@pytest.mark.parametrize("n_frames", [2, 20, 80])
def test_the_asr_encoder_takes_any_length_and_gives_the_decoders_keys_and_values(n_frames: int) -> None:
    w = small_asr_whisper()
    mel = np.random.default_rng(n_frames).standard_normal((2, 80, n_frames)).astype(np.float32)
    hidden = session(encoder_model(w, n_frames, num_heads=HEADS)).run(None, {"mel": mel})[0]
    ids = np.arange(n_frames // 2, dtype=np.int64)
    cross_k, cross_v = session(asr_encoder_model(w, num_heads=HEADS)).run(
        None, {"mel": mel, "position_ids": ids}
    )
    assert cross_k.shape == cross_v.shape == (2, 2, HEADS, n_frames // 2, D // HEADS)
    for layer in range(2):
        kv = hidden @ w[f"decoder/layer_{layer}/attention/linear_1/weight"].T
        kv += w[f"decoder/layer_{layer}/attention/linear_1/bias"]
        k = kv[..., :D].reshape(2, n_frames // 2, HEADS, D // HEADS).transpose(0, 2, 1, 3)
        v = kv[..., D:].reshape(2, n_frames // 2, HEADS, D // HEADS).transpose(0, 2, 1, 3)
        np.testing.assert_allclose(cross_k[layer], k, atol=1e-4, rtol=0)
        np.testing.assert_allclose(cross_v[layer], v, atol=1e-4, rtol=0)


def test_decoding_with_the_kv_cache_matches_the_whole_sequence_in_torch() -> None:
    w = small_asr_whisper()
    mel = np.random.default_rng(3).standard_normal((2, 80, 30)).astype(np.float32)
    hidden = session(encoder_model(w, 30, num_heads=HEADS)).run(None, {"mel": mel})[0]
    ids = np.arange(15, dtype=np.int64)
    cross_k, cross_v = session(asr_encoder_model(w, num_heads=HEADS)).run(
        None, {"mel": mel, "position_ids": ids}
    )
    tokens = np.random.default_rng(4).integers(0, VOCAB, (2, 9))
    expected = torch_decoder(w, tokens, hidden)  # [2, 9, vocab]
    decoder = session(decoder_model(w, num_heads=HEADS))
    past = np.zeros((2, 2, HEADS, 0, D // HEADS), np.float32)
    past_k = past_v = past
    # A prompt of 3 tokens in one call, then one token per call, as decoding runs.
    for start, stop in [(0, 3), *((i, i + 1) for i in range(3, 9))]:
        logits, past_k, past_v = decoder.run(
            None,
            {
                "tokens": tokens[:, start:stop],
                "past_k": past_k,
                "past_v": past_v,
                "cross_k": cross_k,
                "cross_v": cross_v,
            },
        )
        assert past_k.shape[3] == stop
        np.testing.assert_allclose(logits, expected[:, stop - 1], atol=1e-3, rtol=0)


def test_position_ids_pick_the_rows_of_the_positional_table() -> None:
    # An encoder given rows 0-9 and 34-39 of the table equals one whose table starts with those rows.
    w = small_asr_whisper()
    ids = np.concatenate([np.arange(10), np.arange(34, 40)]).astype(np.int64)
    w2 = dict(w)
    w2["encoder/position_encodings/encodings"] = w["encoder/position_encodings/encodings"][ids]
    mel = np.random.default_rng(7).standard_normal((1, 80, 32)).astype(np.float32)
    expected = session(asr_encoder_model(w2, num_heads=HEADS)).run(
        None, {"mel": mel, "position_ids": np.arange(16, dtype=np.int64)}
    )
    got = session(asr_encoder_model(w, num_heads=HEADS)).run(None, {"mel": mel, "position_ids": ids})
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)
