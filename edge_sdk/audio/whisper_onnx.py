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
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
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


def _attention(g: _Graph, x: str, weight: Weight, prefix: str) -> str:
    """Pre-LN multi-head self-attention; the head split and scale are the graph's constants."""
    qkv = g.linear(g.layer_norm(x, weight, f"{prefix}/layer_norm"), weight, f"{prefix}/linear_0")
    split = f"split_{len(g.nodes) + 1}"
    g.nodes.append(
        helper.make_node("Split", [qkv, "qkv_split"], [f"{split}_q", f"{split}_k", f"{split}_v"], axis=-1)
    )

    def per_head(t: str, perm: list[int]) -> str:
        return g.op("Transpose", g.op("Reshape", t, "heads_shape"), perm=perm)

    q = per_head(f"{split}_q", [0, 2, 1, 3])  # [b, h, T, dh]
    k = per_head(f"{split}_k", [0, 2, 3, 1])  # [b, h, dh, T]
    v = per_head(f"{split}_v", [0, 2, 1, 3])
    scores = g.op("Mul", g.op("MatMul", q, k), "attn_scale")
    ctx = g.op("MatMul", g.op("Softmax", scores, axis=-1), v)
    ctx = g.op("Reshape", g.op("Transpose", ctx, perm=[0, 2, 1, 3]), "model_shape")
    return g.linear(ctx, weight, f"{prefix}/linear_1")


def encoder_model(
    weights: Mapping[str, np.ndarray], n_frames: int, *, num_heads: int, prefix: str = "encoder"
) -> onnx.ModelProto:
    """Whisper's encoder for exactly ``n_frames`` mel frames (even, at most twice the positional table).

    ``weights`` are CTranslate2's variables as float32: ``{prefix}/conv1/weight`` ...,
    ``{prefix}/layer_{i}/self_attention/linear_0/weight`` (q, k, v stacked), ``{prefix}/layer_norm/gamma``.
    """
    weight = _lookup(weights)
    layer_re = re.compile(re.escape(prefix) + r"/layer_(\d+)/")
    n_layers = len({m.group(1) for name in weights if (m := layer_re.match(name))})
    if n_layers == 0:
        raise BadInputError(f"no encoder layers under {prefix}/layer_0/ in these weights")
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
    if d % num_heads:
        raise BadInputError(f"model width {d} does not split into {num_heads} heads")
    g = _Graph()
    g.const("qkv_split", np.array([d, d, d], np.int64))
    g.const("heads_shape", np.array([0, 0, num_heads, d // num_heads], np.int64))
    g.const("model_shape", np.array([0, 0, d], np.int64))
    g.const("attn_scale", np.array(1.0 / math.sqrt(d // num_heads), np.float32))
    x = INPUT
    for conv, stride in (("conv1", 1), ("conv2", 2)):
        w = g.const(f"{prefix}/{conv}/weight", weight(f"{prefix}/{conv}/weight"))
        b = g.const(f"{prefix}/{conv}/bias", weight(f"{prefix}/{conv}/bias"))
        x = g.gelu(g.op("Conv", x, w, b, kernel_shape=[3], pads=[1, 1], strides=[stride]))
    x = g.op("Transpose", x, perm=[0, 2, 1])  # [b, T, d]
    x = g.op("Add", x, g.const("positions", positions[: n_frames // 2]))
    for layer in range(n_layers):
        name = f"{prefix}/layer_{layer}"
        x = g.op("Add", x, _attention(g, x, weight, f"{name}/self_attention"))
        h = g.layer_norm(x, weight, f"{name}/ffn/layer_norm")
        h = g.linear(g.gelu(g.linear(h, weight, f"{name}/ffn/linear_0")), weight, f"{name}/ffn/linear_1")
        x = g.op("Add", x, h)
    x = g.layer_norm(x, weight, f"{prefix}/layer_norm")
    g.nodes.append(helper.make_node("Identity", [x], [OUTPUT], name="output"))
    graph = helper.make_graph(
        g.nodes,
        "whisper_encoder",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["batch", n_mels, n_frames])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["batch", n_frames // 2, d])],
        g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="edge-sdk")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


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
