"""Whisper's audio encoder as an ONNX graph built from numpy weights (CTranslate2's names), for a fixed
number of mel frames: no torch at run time, only onnx to write the graph and onnxruntime to run it.

The graph is Whisper's: conv1 (80→d, kernel 3, pad 1) + GELU, conv2 (d→d, kernel 3, stride 2, pad 1) +
GELU, plus the first N/2 positional embeddings, pre-LN transformer blocks (self-attention with q/k/v fused
in one matrix, as CTranslate2 stores them; a GELU MLP), and a final LayerNorm. Input ``mel``
``[batch, 80, N]`` (Whisper's layout), output ``hidden`` ``[batch, N/2, d]``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edge_sdk.errors import BadInputError

OPSET = 17  # LayerNormalization; GELU is spelled with Erf (the Gelu op is opset 20)
LN_EPS = 1e-5
INPUT, OUTPUT = "mel", "hidden"
POSITION_IDS = "position_ids"
"""The speech-recognition encoder's input naming the positional-table row of each encoder position."""
EMBEDDING = "token_embedding"
"""Name of the decoder's token-embedding lookup node (and its output)."""

Weight = Callable[[str], np.ndarray]


class _Graph:
    """Nodes and initializers of the graph being built, with unique names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._n = 0
        self.const("gelu_c", np.array(1.0 / math.sqrt(2.0), np.float32))
        self.const("gelu_half", np.array(0.5, np.float32))
        self.const("gelu_one", np.array(1.0, np.float32))

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(value, order="C"), name))
        return name

    def op(self, op_type: str, *inputs: str, **attrs: Any) -> str:
        self._n += 1
        out = f"{op_type.lower()}_{self._n}"
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=out, **attrs))
        return out

    def gelu(self, x: str) -> str:
        """Exact (erf) GELU, as Whisper uses: x * 0.5 * (1 + erf(x / sqrt 2))."""
        erf = self.op("Erf", self.op("Mul", x, "gelu_c"))
        return self.op("Mul", self.op("Mul", x, "gelu_half"), self.op("Add", erf, "gelu_one"))

    def linear(self, x: str, weight: Weight, prefix: str) -> str:
        w = self.const(f"{prefix}/weight", weight(f"{prefix}/weight").T)
        b = self.const(f"{prefix}/bias", weight(f"{prefix}/bias"))
        return self.op("Add", self.op("MatMul", x, w), b)

    def layer_norm(self, x: str, weight: Weight, prefix: str) -> str:
        g = self.const(f"{prefix}/gamma", weight(f"{prefix}/gamma"))
        b = self.const(f"{prefix}/beta", weight(f"{prefix}/beta"))
        return self.op("LayerNormalization", x, g, b, axis=-1, epsilon=LN_EPS)


def _heads(g: _Graph, t: str, perm: list[int]) -> str:
    """[b, T, d] → per-head [b, h, T, dh] (perm [0, 2, 1, 3]) or [b, h, dh, T] (perm [0, 2, 3, 1])."""
    return g.op("Transpose", g.op("Reshape", t, "heads_shape"), perm=perm)


def _attend(g: _Graph, q: str, k_t: str, v: str, mask: str | None = None) -> str:
    """softmax(q k^T / sqrt(dh) [+ mask]) v with heads merged back: q, v [b, h, T, dh]; k_t [b, h, dh, S]."""
    scores = g.op("Mul", g.op("MatMul", q, k_t), "attn_scale")
    if mask is not None:
        scores = g.op("Add", scores, mask)
    ctx = g.op("MatMul", g.op("Softmax", scores, axis=-1), v)
    return g.op("Reshape", g.op("Transpose", ctx, perm=[0, 2, 1, 3]), "model_shape")


def _split3(g: _Graph, t: str) -> tuple[str, str, str]:
    out = f"split_{len(g.nodes) + 1}"
    names = [f"{out}_q", f"{out}_k", f"{out}_v"]
    g.nodes.append(helper.make_node("Split", [t, "qkv_split"], names, axis=-1, name=out))
    return names[0], names[1], names[2]


def _attention(g: _Graph, x: str, weight: Weight, prefix: str) -> str:
    """Pre-LN multi-head self-attention; the head split and scale are the graph's constants."""
    qkv = g.linear(g.layer_norm(x, weight, f"{prefix}/layer_norm"), weight, f"{prefix}/linear_0")
    q, k, v = _split3(g, qkv)
    ctx = _attend(g, _heads(g, q, [0, 2, 1, 3]), _heads(g, k, [0, 2, 3, 1]), _heads(g, v, [0, 2, 1, 3]))
    return g.linear(ctx, weight, f"{prefix}/linear_1")


def _ffn(g: _Graph, x: str, weight: Weight, prefix: str) -> str:
    h = g.layer_norm(x, weight, f"{prefix}/layer_norm")
    return g.linear(g.gelu(g.linear(h, weight, f"{prefix}/linear_0")), weight, f"{prefix}/linear_1")


def _n_layers(weights: Mapping[str, np.ndarray], prefix: str) -> int:
    layer_re = re.compile(re.escape(prefix) + r"/layer_(\d+)/")
    n = len({m.group(1) for name in weights if (m := layer_re.match(name))})
    if n == 0:
        raise BadInputError(f"no {prefix} layers (nothing under {prefix}/layer_0/) in these weights")
    return n


def _model_graph(g: _Graph, num_heads: int, d: int) -> None:
    if d % num_heads:
        raise BadInputError(f"model width {d} does not split into {num_heads} heads")
    g.const("qkv_split", np.array([d, d, d], np.int64))
    g.const("heads_shape", np.array([0, 0, num_heads, d // num_heads], np.int64))
    g.const("model_shape", np.array([0, 0, d], np.int64))
    g.const("attn_scale", np.array(1.0 / math.sqrt(d // num_heads), np.float32))


def _finish(g: _Graph, name: str, inputs: list[Any], outputs: list[Any]) -> onnx.ModelProto:
    graph = helper.make_graph(g.nodes, name, inputs, outputs, g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="edge-sdk")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _encoder_body(g: _Graph, weight: Weight, prefix: str, n_layers: int, dynamic: bool) -> str:
    """Conv stem, positions, blocks, final LayerNorm. ``dynamic``: the positions are the rows of the table
    the ``position_ids`` input names (one per encoder position), else the first N/2 rows."""
    x = INPUT
    for conv, stride in (("conv1", 1), ("conv2", 2)):
        w = g.const(f"{prefix}/{conv}/weight", weight(f"{prefix}/{conv}/weight"))
        b = g.const(f"{prefix}/{conv}/bias", weight(f"{prefix}/{conv}/bias"))
        x = g.gelu(g.op("Conv", x, w, b, kernel_shape=[3], pads=[1, 1], strides=[stride]))
    x = g.op("Transpose", x, perm=[0, 2, 1])  # [b, T, d]
    positions = g.op("Gather", "positions", POSITION_IDS, axis=0) if dynamic else "positions"
    x = g.op("Add", x, positions)
    for layer in range(n_layers):
        name = f"{prefix}/layer_{layer}"
        x = g.op("Add", x, _attention(g, x, weight, f"{name}/self_attention"))
        x = g.op("Add", x, _ffn(g, x, weight, f"{name}/ffn"))
    return g.layer_norm(x, weight, f"{prefix}/layer_norm")


def encoder_model(
    weights: Mapping[str, np.ndarray], n_frames: int, *, num_heads: int, prefix: str = "encoder"
) -> onnx.ModelProto:
    """Whisper's encoder for exactly ``n_frames`` mel frames (even, at most twice the positional table).

    ``weights`` are CTranslate2's variables as float32: ``{prefix}/conv1/weight`` ...,
    ``{prefix}/layer_{i}/self_attention/linear_0/weight`` (q, k, v stacked), ``{prefix}/layer_norm/gamma``.
    """
    weight = _lookup(weights)
    n_layers = _n_layers(weights, prefix)
    positions = weight(f"{prefix}/position_encodings/encodings")
    n_mels = weight(f"{prefix}/conv1/weight").shape[1]
    d = positions.shape[1]
    if isinstance(n_frames, bool) or not isinstance(n_frames, int) or n_frames < 2 or n_frames % 2:
        raise BadInputError(f"the Whisper encoder takes an even number of mel frames >= 2, not {n_frames!r}")
    if n_frames // 2 > positions.shape[0]:
        raise BadInputError(
            f"{n_frames} mel frames need {n_frames // 2} positions; this encoder has {positions.shape[0]} "
            f"(at most {2 * positions.shape[0]} frames)"
        )
    g = _Graph()
    _model_graph(g, num_heads, d)
    g.const("positions", positions[: n_frames // 2])
    x = _encoder_body(g, weight, prefix, n_layers, dynamic=False)
    g.nodes.append(helper.make_node("Identity", [x], [OUTPUT], name="output"))
    return _finish(
        g,
        "whisper_encoder",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["batch", n_mels, n_frames])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["batch", n_frames // 2, d])],
    )


def asr_encoder_model(weights: Mapping[str, np.ndarray], *, num_heads: int) -> onnx.ModelProto:
    """Whisper's encoder for speech recognition: any even number of mel frames up to 2 x the positional
    table (only the audio there is is encoded, not 30 s of padding), and for every decoder layer the
    cross-attention keys and values of the encoded audio, computed once per utterance.

    Inputs ``mel`` ``[batch, 80, frames]`` and ``position_ids`` int64 ``[frames/2]``, the row of the
    positional table each encoder position takes (``0 .. frames/2 - 1`` is Whisper's own layout; a short
    window may end with the table's last rows, where Whisper always saw the end of its 30 s). Outputs
    ``cross_k`` and ``cross_v`` ``[layers, batch, heads, frames/2, d/heads]`` (the decoder's inputs).
    """
    weight = _lookup(weights)
    enc_layers, dec_layers = _n_layers(weights, "encoder"), _n_layers(weights, "decoder")
    positions = weight("encoder/position_encodings/encodings")
    n_mels, d = weight("encoder/conv1/weight").shape[1], positions.shape[1]
    g = _Graph()
    _model_graph(g, num_heads, d)
    g.const("kv_split", np.array([d, d], np.int64))
    g.const("zero_1d", np.array([0], np.int64))
    g.const("positions", positions)
    x = _encoder_body(g, weight, "encoder", enc_layers, dynamic=True)
    ks, vs = [], []
    for layer in range(dec_layers):
        kv = g.linear(x, weight, f"decoder/layer_{layer}/attention/linear_1")
        k, v = f"kv_{layer}_k", f"kv_{layer}_v"
        g.nodes.append(helper.make_node("Split", [kv, "kv_split"], [k, v], axis=-1, name=f"kv_split_{layer}"))
        for t, out in ((k, ks), (v, vs)):
            out.append(g.op("Unsqueeze", _heads(g, t, [0, 2, 1, 3]), "zero_1d"))
    for name, parts in (("cross_k", ks), ("cross_v", vs)):
        g.nodes.append(helper.make_node("Concat", parts, [name], axis=0, name=f"{name}_concat"))
    kv_shape = [dec_layers, "batch", num_heads, "positions", d // num_heads]
    return _finish(
        g,
        "whisper_asr_encoder",
        [
            helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["batch", n_mels, "frames"]),
            helper.make_tensor_value_info(POSITION_IDS, TensorProto.INT64, ["positions"]),
        ],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, kv_shape) for n in ("cross_k", "cross_v")],
    )


def decoder_model(weights: Mapping[str, np.ndarray], *, num_heads: int) -> onnx.ModelProto:
    """Whisper's text decoder, one call per step, with its self-attention keys and values carried between
    calls (the KV cache) and the encoder's cross keys/values given once per utterance.

    Inputs: ``tokens`` int64 ``[batch, n]`` (the prompt on the first call, then one token), ``past_k`` /
    ``past_v`` ``[layers, batch, heads, past, dh]`` (``past`` 0 on the first call), ``cross_k`` / ``cross_v``
    from :func:`asr_encoder_model`. Outputs: ``logits`` ``[batch, vocab]`` for the last token, and
    ``present_k`` / ``present_v`` ``[layers, batch, heads, past + n, dh]`` for the next call. Token ``i``
    sits at position ``past + i`` and attends to every earlier position and itself.
    """
    weight = _lookup(weights)
    n_layers = _n_layers(weights, "decoder")
    embeddings = weight("decoder/embeddings/weight")
    positions = weight("decoder/position_encodings/encodings")
    vocab, d = embeddings.shape
    g = _Graph()
    _model_graph(g, num_heads, d)
    emb = g.const("embeddings", embeddings)
    g.const("positions", positions)
    one = g.const("one", np.array(1, np.int64))
    zero = g.const("zero", np.array(0, np.int64))
    g.const("zero_1d", np.array([0], np.int64))
    past = g.op("Gather", g.op("Shape", "past_k"), g.const("past_axis", np.array(3, np.int64)), axis=0)
    n_new = g.op("Gather", g.op("Shape", "tokens"), one, axis=0)
    total = g.op("Add", past, n_new)
    query_pos = g.op("Range", past, total, one)  # [n]
    # Named, so that quantisers can be told to keep the token embedding (a lookup table) in float.
    g.nodes.append(helper.make_node("Gather", [emb, "tokens"], [EMBEDDING], name=EMBEDDING, axis=0))
    x = g.op("Add", EMBEDDING, g.op("Gather", "positions", query_pos, axis=0))
    # Causal mask [n, past + n]: key position j is hidden from query position p when j > p.
    key_pos = g.op("Range", zero, total, one)
    later = g.op("Greater", g.op("Unsqueeze", key_pos, "zero_1d"), g.op("Unsqueeze", query_pos, "one_1d"))
    g.const("one_1d", np.array([1], np.int64))
    mask = g.op(
        "Where",
        later,
        g.const("hidden", np.array(-1e9, np.float32)),
        g.const("shown", np.array(0.0, np.float32)),
    )
    presents: dict[str, list[str]] = {"k": [], "v": []}
    for layer in range(n_layers):
        p = f"decoder/layer_{layer}"
        index = g.const(f"layer_{layer}", np.array(layer, np.int64))
        qkv = g.linear(
            g.layer_norm(x, weight, f"{p}/self_attention/layer_norm"), weight, f"{p}/self_attention/linear_0"
        )
        q, k, v = _split3(g, qkv)
        k_all = g.op("Concat", g.op("Gather", "past_k", index, axis=0), _heads(g, k, [0, 2, 1, 3]), axis=2)
        v_all = g.op("Concat", g.op("Gather", "past_v", index, axis=0), _heads(g, v, [0, 2, 1, 3]), axis=2)
        presents["k"].append(g.op("Unsqueeze", k_all, "zero_1d"))
        presents["v"].append(g.op("Unsqueeze", v_all, "zero_1d"))
        ctx = _attend(g, _heads(g, q, [0, 2, 1, 3]), g.op("Transpose", k_all, perm=[0, 1, 3, 2]), v_all, mask)
        x = g.op("Add", x, g.linear(ctx, weight, f"{p}/self_attention/linear_1"))
        h = g.layer_norm(x, weight, f"{p}/attention/layer_norm")
        q = _heads(g, g.linear(h, weight, f"{p}/attention/linear_0"), [0, 2, 1, 3])
        ck = g.op("Transpose", g.op("Gather", "cross_k", index, axis=0), perm=[0, 1, 3, 2])
        ctx = _attend(g, q, ck, g.op("Gather", "cross_v", index, axis=0))
        x = g.op("Add", x, g.linear(ctx, weight, f"{p}/attention/linear_2"))
        x = g.op("Add", x, _ffn(g, x, weight, f"{p}/ffn"))
    x = g.layer_norm(x, weight, "decoder/layer_norm")
    last = g.op("Gather", x, g.const("last", np.array(-1, np.int64)), axis=1)  # [b, d]
    # The output projection is the token embedding (tied weights): Gemm's transB reads it in place.
    g.nodes.append(helper.make_node("Gemm", [last, emb], ["logits"], transB=1, name="projection"))
    for kind, parts in presents.items():
        g.nodes.append(helper.make_node("Concat", parts, [f"present_{kind}"], axis=0, name=f"present_{kind}"))
    dh = d // num_heads
    kv = [n_layers, "batch", num_heads]
    return _finish(
        g,
        "whisper_decoder",
        [
            helper.make_tensor_value_info("tokens", TensorProto.INT64, ["batch", "tokens"]),
            helper.make_tensor_value_info("past_k", TensorProto.FLOAT, [*kv, "past", dh]),
            helper.make_tensor_value_info("past_v", TensorProto.FLOAT, [*kv, "past", dh]),
            helper.make_tensor_value_info("cross_k", TensorProto.FLOAT, [*kv, "positions", dh]),
            helper.make_tensor_value_info("cross_v", TensorProto.FLOAT, [*kv, "positions", dh]),
        ],
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", vocab]),
            helper.make_tensor_value_info("present_k", TensorProto.FLOAT, [*kv, "total", dh]),
            helper.make_tensor_value_info("present_v", TensorProto.FLOAT, [*kv, "total", dh]),
        ],
    )


def build_encoder(source: str | os.PathLike[str], n_frames: int) -> onnx.ModelProto:
    """The ONNX encoder (``onnx.ModelProto``) of the CTranslate2 Whisper model at ``source`` (its
    ``model.bin`` or folder) for ``n_frames`` mel frames."""
    from edge_sdk.converters.sources.ctranslate2 import read_ct2

    ct2 = read_ct2(source)
    if ct2.spec != "WhisperSpec":
        raise BadInputError(f"{ct2.path}: a CTranslate2 {ct2.spec or 'unnamed'} model, not a Whisper model")
    weights = {n: ct2.float32(n) for n, v in ct2.variables.items() if n.startswith("encoder/") and v.ndim}
    return encoder_model(weights, n_frames, num_heads=int(ct2.scalar("encoder/num_heads")))


def _lookup(variables: Mapping[str, np.ndarray]) -> Weight:
    def weight(name: str) -> np.ndarray:
        try:
            return np.asarray(variables[name], np.float32)
        except KeyError:
            raise BadInputError(f"the Whisper encoder needs weight {name!r}, which the model lacks") from None

    return weight


def build_asr(source: str | os.PathLike[str]) -> tuple[onnx.ModelProto, onnx.ModelProto]:
    """The speech-recognition encoder and decoder (:func:`asr_encoder_model`, :func:`decoder_model`) of the
    CTranslate2 Whisper model at ``source`` (its ``model.bin`` or folder)."""
    from edge_sdk.converters.sources.ctranslate2 import read_ct2

    ct2 = read_ct2(source)
    if ct2.spec != "WhisperSpec":
        raise BadInputError(f"{ct2.path}: a CTranslate2 {ct2.spec or 'unnamed'} model, not a Whisper model")
    weights = {n: ct2.float32(n) for n, v in ct2.variables.items() if v.ndim}
    encoder = asr_encoder_model(weights, num_heads=int(ct2.scalar("encoder/num_heads")))
    decoder = decoder_model(weights, num_heads=int(ct2.scalar("decoder/num_heads")))
    return encoder, decoder
