"""int4 weight-only compression (precision ``int4-weights``) for MatMul/Gemm-heavy models: ONNX
``MatMulNBits`` with onnxruntime's quantiser, OpenVINO with ``nncf.compress_weights``. Activations stay
float, so no calibration. Weights are quantised in groups of ``group_size`` input channels, each with
its own scale (and zero point when ``int4_mode=asym``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from edge_sdk.errors import BadInputError, ConversionError

# The options both targets read for int4-weights, with their defaults.
INT4_DEFAULTS: dict[str, Any] = {"int4_mode": "sym", "group_size": 128}
INT4_OPTIONS = {
    "int4_mode": "int4-weights: sym (default; scale only) or asym (scale and zero point per group)",
    "group_size": "int4-weights: input channels per scale (default 128; 32 or 64 for small layers)",
}
_MODES = ("sym", "asym")
# NNCF, for a layer whose input size the group size does not divide: "adjust" takes the largest power of
# two (at least 32) that does, else leaves it int8; "error" refuses. Small conv models have no layer as
# wide as the default 128, and with "error" could not be compressed at all.
GROUP_FALLBACKS = ("adjust", "error")


def int4_options(options: dict[str, Any]) -> dict[str, Any]:
    """The int4 options from a target's option dict, checked (a command line gives strings)."""
    opts = {**INT4_DEFAULTS, **{k: v for k, v in options.items() if k in INT4_DEFAULTS}}
    if opts["int4_mode"] not in _MODES:
        raise BadInputError(f"option int4_mode='{opts['int4_mode']}' is not one of: {', '.join(_MODES)}")
    try:
        opts["group_size"] = int(opts["group_size"])
    except (TypeError, ValueError):
        raise BadInputError(f"option group_size={opts['group_size']!r} is not an integer") from None
    gs = opts["group_size"]
    if gs < 16 or gs & (gs - 1):
        raise BadInputError(f"option group_size={gs} must be a power of two, at least 16 (e.g. 32, 64, 128)")
    return opts


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


def onnx_int4(hub: Path, out: Path, options: dict[str, Any]) -> dict[str, Any]:
    """``MatMulNBits`` (4-bit blocks along the input channels) for every MatMul with a constant weight whose
    input size the block fits; returns the recipe."""
    import onnx
    from onnx import shape_inference
    from onnxruntime.quantization import matmul_nbits_quantizer as mnb

    opts = int4_options(options)
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


def openvino_int4(nncf: Any, model: Any, options: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """``nncf.compress_weights`` in INT4_SYM/INT4_ASYM with ``group_size``, every layer in int4 (NNCF's
    default keeps the first and last in int8; ``all_layers`` asks for all, so sizes compare with onnx's)."""
    opts = int4_options(options)
    mode = (
        nncf.CompressWeightsMode.INT4_SYM
        if opts["int4_mode"] == "sym"
        else nncf.CompressWeightsMode.INT4_ASYM
    )
    fallback = str(options.get("group_fallback", "adjust"))
    if fallback not in GROUP_FALLBACKS:
        raise BadInputError(f"option group_fallback='{fallback}' is not one of: {', '.join(GROUP_FALLBACKS)}")
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
