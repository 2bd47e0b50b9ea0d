"""Reading ONNX files with clear errors, and what the rest of the converters need to know about a graph."""

from __future__ import annotations

import collections
import os
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from edge_sdk.errors import BadInputError
from edge_sdk.manifest import TensorSpec


def load_onnx(path: str | os.PathLike[str]) -> onnx.ModelProto:
    """Load and check an ONNX file; a missing, truncated or invalid file is a BadInputError saying which."""
    p = Path(path)
    if not p.is_file():
        raise BadInputError(f"{p}: no such file")
    try:
        model = onnx.load(str(p))
    except Exception as e:  # protobuf's DecodeError, or OSError on missing external data
        raise BadInputError(f"{p}: not a valid ONNX file (truncated or corrupt?): {e}") from None
    if not model.graph.node and not model.graph.output:
        raise BadInputError(f"{p}: not a valid ONNX file (no graph; truncated or not ONNX?)")
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as e:
        first = str(e).strip().splitlines()[0]
        raise BadInputError(f"{p}: the ONNX checker rejects this model: {first}") from None
    return model


def _dims(t: onnx.TypeProto) -> list[int | str | None]:
    out: list[int | str | None] = []
    for d in t.tensor_type.shape.dim:
        if d.HasField("dim_value") and d.dim_value > 0:
            out.append(int(d.dim_value))
        elif d.HasField("dim_param") and d.dim_param:
            out.append(d.dim_param)
        else:
            out.append(None)
    return out


def onnx_opset(model: onnx.ModelProto) -> int:
    """The model's opset of the default (ai.onnx) domain."""
    return max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)


def numpy_dtype(elem_type: int) -> str:
    """numpy dtype name of an ONNX element type."""
    return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type)).name


def tensor_specs(model: onnx.ModelProto) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """The graph's real inputs (initializers excluded) and outputs as TensorSpecs."""
    inits = {i.name for i in model.graph.initializer}

    def spec(v: onnx.ValueInfoProto) -> TensorSpec:
        if not v.type.HasField("tensor_type"):
            raise BadInputError(
                f"graph I/O '{v.name}' is not a tensor (sequences and maps are not supported)"
            )
        return TensorSpec(name=v.name, shape=_dims(v.type), dtype=numpy_dtype(v.type.tensor_type.elem_type))

    inputs = [spec(v) for v in model.graph.input if v.name not in inits]
    outputs = [spec(v) for v in model.graph.output]
    return inputs, outputs


def describe(model: onnx.ModelProto) -> dict[str, Any]:
    """Opsets, op histogram (subgraphs included) and parameter count of a model, for ``inspect``."""
    hist: collections.Counter[str] = collections.Counter()

    def walk(graph: onnx.GraphProto) -> None:
        for n in graph.node:
            hist[f"{n.domain}:{n.op_type}" if n.domain else n.op_type] += 1
            for a in n.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    walk(a.g)
                for g in a.graphs:
                    walk(g)

    walk(model.graph)
    params = sum(int(np.prod(i.dims)) for i in model.graph.initializer)
    inputs, outputs = tensor_specs(model)
    return {
        "opsets": {o.domain or "ai.onnx": o.version for o in model.opset_import},
        "producer": f"{model.producer_name} {model.producer_version}".strip(),
        "inputs": [s.__dict__ for s in inputs],
        "outputs": [s.__dict__ for s in outputs],
        "parameters": params,
        "nodes": sum(hist.values()),
        "ops": dict(hist.most_common()),
    }
