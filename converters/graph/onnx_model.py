"""Reading ONNX files with clear errors, and what the rest of the converters need to know about a graph."""

from __future__ import annotations

import collections
import heapq
import os
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from edge_sdk.errors import BadInputError
from edge_sdk.manifest import TensorSpec


def load_onnx(path: str | os.PathLike[str], *, check: bool = True) -> onnx.ModelProto:
    """Load (and with ``check``, run the ONNX checker on) an ONNX file; a missing, truncated or invalid
    file is a BadInputError saying which."""
    p = Path(path)
    if not p.is_file():
        raise BadInputError(f"{p}: no such file")
    try:
        model = onnx.load(str(p))
    except Exception as e:  # protobuf's DecodeError, or OSError on missing external data
        raise BadInputError(f"{p}: not a valid ONNX file (truncated or corrupt?): {e}") from None
    if not model.graph.node and not model.graph.output:
        raise BadInputError(f"{p}: not a valid ONNX file (no graph; truncated or not ONNX?)")
    if not check:
        return model
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as e:
        first = str(e).strip().splitlines()[0]
        raise BadInputError(f"{p}: the ONNX checker rejects this model: {first}") from None
    return model


def _used_names(node: onnx.NodeProto) -> set[str]:
    """Every name a node reads: its inputs and, for If/Loop/Scan, what its subgraphs take from outside."""
    used = {i for i in node.input if i}
    for a in node.attribute:
        for g in [a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs):
            local = {i.name for i in g.input} | {i.name for i in g.initializer}
            local |= {o for n in g.node for o in n.output}
            used |= {name for n in g.node for name in _used_names(n)} - local
    return used


def toposort(model: onnx.ModelProto) -> bool:
    """Put the top-level nodes in an order where every value is made before it is read, counting the
    outer values that subgraphs read (onnxruntime's quantiser can leave an ``If`` ahead of a value its
    branch reads, which onnxruntime runs but the ONNX checker and other tools refuse). Keeps the
    original order where it is already right; returns whether anything moved."""
    nodes = list(model.graph.node)
    producer = {o: i for i, n in enumerate(nodes) for o in n.output if o}
    waiting = [len({producer[u] for u in _used_names(n) if u in producer} - {i}) for i, n in enumerate(nodes)]
    readers: dict[int, list[int]] = collections.defaultdict(list)
    for i, n in enumerate(nodes):
        for p in {producer[u] for u in _used_names(n) if u in producer} - {i}:
            readers[p].append(i)
    ready = [i for i, w in enumerate(waiting) if w == 0]
    heapq.heapify(ready)  # lowest index first: the original order wherever it is valid
    order: list[int] = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for r in readers[i]:
            waiting[r] -= 1
            if waiting[r] == 0:
                heapq.heappush(ready, r)
    if len(order) < len(nodes):  # a cycle: leave the graph as it is for the checker to report
        return False
    if order == list(range(len(nodes))):
        return False
    del model.graph.node[:]
    model.graph.node.extend(nodes[i] for i in order)
    return True


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
