"""int4 weight-only compression (precision ``int4-weights``) for MatMul/Gemm-heavy models: ONNX
``MatMulNBits`` with onnxruntime's quantiser, OpenVINO with ``nncf.compress_weights``. Activations stay
float, so no calibration. Weights are quantised in groups of ``group_size`` input channels, each with
its own scale (and zero point when ``int4_mode=asym``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from edge_sdk.converters.options import Option
from edge_sdk.errors import ConversionError


def _power_of_two(size: int) -> int:
    if size < 16 or size & (size - 1):
        raise ValueError("must be a power of two, at least 16 (e.g. 32, 64, 128)")
    return size


# The options both targets read for int4-weights.
INT4_MODE = Option(
    "int4_mode",
    str,
    "sym",
    "int4-weights: sym (default; scale only) or asym (scale and zero point per group)",
    choices=("sym", "asym"),
)
GROUP_SIZE = Option(
    "group_size",
    int,
    128,
    "int4-weights: input channels per scale (default 128; 32 or 64 for small layers)",
    check=_power_of_two,
)
# NNCF, for a layer whose input size the group size does not divide: "adjust" takes the largest power of
# two (at least 32) that does, else leaves it int8; "error" refuses. Small conv models have no layer as
# wide as the default 128, and with "error" could not be compressed at all.
GROUP_FALLBACK = Option(
    "group_fallback",
    str,
    "adjust",
    "int4-weights: adjust (default: a layer the group size does not divide gets the largest power of two "
    ">= 32 that does, else int8) or error",
    choices=("adjust", "error"),
)


def _gemm_to_matmul(model: Any) -> int:
    """Rewrite ``Gemm`` nodes with a constant weight (torch's 2-D ``Linear``) as ``MatMul`` + ``Add``: the
    4-bit kernel (MatMulNBits) replaces MatMul only. Returns how many were rewritten."""
    import numpy as np
    from onnx import helper, numpy_helper

    inits = {t.name: t for t in model.graph.initializer}
    nodes, count = [], 0
    for node in model.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        plain = (
            attrs.get("alpha", 1.0) == 1.0 and attrs.get("beta", 1.0) == 1.0 and not attrs.get("transA", 0)
        )
        if node.op_type != "Gemm" or node.input[1] not in inits or not plain:
            nodes.append(node)
            continue
        w = numpy_helper.to_array(inits[node.input[1]])
        if attrs.get("transB", 0):
            w = np.ascontiguousarray(w.T)
        name = f"{node.name or node.output[0]}_weight_kn"
        model.graph.initializer.append(numpy_helper.from_array(w, name))
        if len(node.input) > 2 and node.input[2]:
            mid = f"{node.output[0]}_matmul"
            nodes.append(helper.make_node("MatMul", [node.input[0], name], [mid], name=f"{node.name}_MatMul"))
            nodes.append(
                helper.make_node("Add", [mid, node.input[2]], list(node.output), name=f"{node.name}_Add")
            )
        else:
            nodes.append(helper.make_node("MatMul", [node.input[0], name], list(node.output), name=node.name))
        count += 1
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return count


def onnx_int4(hub: Path, out: Path, opts: dict[str, Any]) -> dict[str, Any]:
    """``MatMulNBits`` (4-bit blocks along the input channels) for every MatMul with a constant weight whose
    input size the block fits, as the target's options ``int4_mode`` and ``group_size`` say; returns the
    recipe."""
    import onnx
    from onnx import shape_inference
    from onnxruntime.quantization import matmul_nbits_quantizer as mnb

    model = onnx.load(str(hub))
    rewritten = _gemm_to_matmul(model)
    model = shape_inference.infer_shapes(model)
    config = mnb.DefaultWeightOnlyQuantConfig(
        block_size=opts["group_size"], is_symmetric=opts["int4_mode"] == "sym", bits=4
    )
    quant = mnb.MatMulNBitsQuantizer(model, algo_config=config)
    # The quantiser logs every node at INFO through a handler of its own, onto the user's terminal.
    noisy = logging.getLogger(mnb.__name__)
    level = noisy.level
    noisy.setLevel(logging.WARNING)
    try:
        quant.process()
    finally:
        noisy.setLevel(level)
    result = quant.model.model
    count = sum(1 for n in result.graph.node if n.op_type == "MatMulNBits")
    if count == 0:
        raise ConversionError(
            "onnx:int4-weights: no MatMul with a constant weight was quantised (MatMulNBits replaces MatMul "
            "and 2-D Gemm only); use int8 or fp16 for this model"
        )
    onnx.save(result, str(out))
    left = sum(1 for n in result.graph.node if n.op_type in ("MatMul", "Gemm"))
    return {
        "weight_compression": "onnxruntime MatMulNBitsQuantizer (MatMulNBits, 4 bits)",
        "int4_mode": opts["int4_mode"],
        "group_size": opts["group_size"],
        "gemm_rewritten_as_matmul": rewritten,
        "int4_matmuls": count,
        "float_matmuls": left,
    }


def openvino_int4(nncf: Any, model: Any, opts: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """``nncf.compress_weights`` in INT4_SYM/INT4_ASYM with ``group_size``, every layer in int4 (NNCF's
    default keeps the first and last in int8; ``all_layers`` asks for all, so sizes compare with onnx's)."""
    mode = (
        nncf.CompressWeightsMode.INT4_SYM
        if opts["int4_mode"] == "sym"
        else nncf.CompressWeightsMode.INT4_ASYM
    )
    fallback = opts["group_fallback"]
    compressed = nncf.compress_weights(
        model,
        mode=mode,
        group_size=opts["group_size"],
        ratio=1.0,
        all_layers=True,
        advanced_parameters=nncf.AdvancedCompressionParameters(
            group_size_fallback_mode=getattr(nncf.GroupSizeFallbackMode, fallback.upper())
        ),
    )
    types: dict[str, int] = {}
    for op in compressed.get_ops():
        if op.get_type_name() == "Constant":
            t = op.get_element_type().get_type_name()
            if t in ("i4", "u4", "i8", "u8"):
                types[t] = types.get(t, 0) + 1
    if not (types.get("i4") or types.get("u4")):
        raise ConversionError(
            "openvino:int4-weights: NNCF compressed no weights to 4 bits (it handles MatMul, Conv and "
            "embedding weights whose input size the group size divides); try a smaller group_size or int8"
        )
    return compressed, {
        "weight_compression": "nncf.compress_weights",
        "mode": f"int4_{opts['int4_mode']}",
        "int4_mode": opts["int4_mode"],
        "group_size": opts["group_size"],
        "group_fallback": fallback,
        "ratio": 1.0,
        "all_layers": True,
        "compressed_constants": types,
    }


def size_ratio(files: list[Path], hub: Path) -> float:
    """Bytes of the written model files over the fp32 ONNX hub model's."""
    return sum(f.stat().st_size for f in files) / max(hub.stat().st_size, 1)
