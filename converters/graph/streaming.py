"""Make a recurrent ONNX model streamable: its GRU/LSTM/RNN state becomes graph inputs and outputs.

An exported recurrent model runs over a whole utterance and starts every run from a fixed state (often
zeros built inside the graph from the input's shape). To run it block by block on a live stream, each
recurrent node's initial state must come from outside and its final state must go out, so the caller
can carry it from one block to the next. ``make_streaming`` rewires every GRU, LSTM and RNN node of the
main graph that way: ``initial_h`` becomes the graph input ``state_in_{i}`` and ``Y_h`` the graph output
``state_out_{i}`` (for an LSTM also ``cell_in_{i}`` / ``cell_out_{i}``), ``i`` counting the recurrent
nodes in topological order. Feeding zeros to the first block reproduces a model that started from zeros.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from edge_sdk.converters.graph.onnx_model import _used_names, load_onnx, numpy_dtype, toposort
from edge_sdk.errors import BadInputError, ConversionError

__all__ = ["RECURRENT_OPS", "StreamState", "make_streaming", "make_streaming_with_states"]

log = logging.getLogger("edge_sdk.converters.graph.streaming")

RECURRENT_OPS = ("GRU", "LSTM", "RNN")
_INITIAL_H, _INITIAL_C = 5, 6  # input positions of initial_h and initial_c (LSTM) on every recurrent op
_Y_H, _Y_C = 1, 2  # output positions of Y_h and Y_c (LSTM)


@dataclass(frozen=True)
class StreamState:
    """One carried state: feed ``input`` with what the previous block returned in ``output``.

    ``shape`` is ``[num_directions, batch, hidden]`` (``[batch, num_directions, hidden]`` for a node with
    ``layout=1``), the batch a dim name or a fixed size. ``initial`` is the constant the original model
    started from, or None when it started from a computed state or none (zeros).
    """

    input: str
    output: str
    node: str
    op: str
    shape: tuple[int | str, ...]
    dtype: str
    initial: np.ndarray | None = None

    def start(self, batch: int = 1) -> np.ndarray:
        """The state to feed the first block: the original constant (broadcast to ``batch``) or zeros."""
        shape = tuple(batch if isinstance(d, str) else d for d in self.shape)
        if self.initial is None:
            return np.zeros(shape, self.dtype)
        return np.broadcast_to(self.initial, shape).astype(self.dtype)


def make_streaming(
    source: onnx.ModelProto | str | os.PathLike[str], *, check: bool = True
) -> onnx.ModelProto:
    """A copy of ``source`` (a model or an ONNX file) whose recurrent nodes take their state from graph
    inputs ``state_in_{i}`` (``cell_in_{i}``) and give it back as graph outputs ``state_out_{i}``
    (``cell_out_{i}``); see :func:`make_streaming_with_states` for which were made and the rules."""
    return make_streaming_with_states(source, check=check)[0]


def make_streaming_with_states(
    source: onnx.ModelProto | str | os.PathLike[str], *, check: bool = True
) -> tuple[onnx.ModelProto, list[StreamState]]:
    """Rewire every GRU/LSTM/RNN node of the main graph to carry its state through the graph's I/O.

    Returns the new model (same opset, other inputs and outputs unchanged, the checker run when
    ``check``) and one :class:`StreamState` per carried state, in topological order. A computed initial
    state (zeros made from the input's shape) is replaced and the nodes that made it are dropped.
    Raises BadInputError for a model without recurrent nodes, for a recurrent node inside a subgraph
    (If/Loop/Scan), and for a bidirectional or reverse node, which looks at the future.
    """
    if isinstance(source, onnx.ModelProto):
        model = onnx.ModelProto.FromString(source.SerializeToString())
    else:
        model = load_onnx(source, check=False)
    graph = model.graph
    _refuse_nested(graph)
    toposort(model)
    rnns = [n for n in graph.node if n.op_type in RECURRENT_OPS and n.domain in ("", "ai.onnx")]
    if not rnns:
        raise BadInputError(
            "make_streaming: the model has no GRU, LSTM or RNN node, so it has no recurrent state to "
            "carry between blocks (a stateless model streams as it is)"
        )
    for n in rnns:
        direction = _attr(n, "direction", b"forward")
        if direction != b"forward":
            raise BadInputError(
                f"make_streaming: node {_who(n)} is {direction.decode()}: a "
                f"{direction.decode()} recurrent layer looks at the future, so it can't stream; "
                "export the model with forward-only (unidirectional) recurrent layers"
            )
    shapes = _shape_info(model)
    live_before = _live_nodes(graph)
    used_before = {u for i in live_before for u in _used_names(graph.node[i])}
    taken = _all_names(graph)
    outputs_named = {o.name for o in graph.output}
    read = {u for n in graph.node for u in _used_names(n)} | outputs_named
    states: list[StreamState] = []
    for i, node in enumerate(rnns):
        dtype = _elem_type(node.input[1], graph, shapes)
        shape = _state_shape(node, graph, shapes)
        pairs = [(_INITIAL_H, _Y_H, f"state_in_{i}", f"state_out_{i}")]
        if node.op_type == "LSTM":
            pairs.append((_INITIAL_C, _Y_C, f"cell_in_{i}", f"cell_out_{i}"))
        for in_pos, out_pos, in_name, out_name in pairs:
            while len(node.input) <= in_pos:
                node.input.append("")
            while len(node.output) <= out_pos:
                node.output.append("")
            old_in, old_out = node.input[in_pos], node.output[out_pos]
            if old_in != in_name:
                _claim(in_name, taken, node)
                node.input[in_pos] = in_name
                graph.input.append(onnx.helper.make_tensor_value_info(in_name, dtype, list(shape)))
            if old_out != out_name:
                _claim(out_name, taken, node)
                if old_out in read:  # keep the name its readers know; the state leaves through an Identity
                    graph.node.append(
                        onnx.helper.make_node("Identity", [old_out], [out_name], name=f"{out_name}_identity")
                    )
                else:
                    node.output[out_pos] = out_name
            if out_name not in outputs_named:
                graph.output.append(onnx.helper.make_tensor_value_info(out_name, dtype, list(shape)))
            states.append(
                StreamState(
                    in_name,
                    out_name,
                    node.name,
                    node.op_type,
                    tuple(shape),
                    numpy_dtype(dtype),
                    _constant(old_in, graph) if old_in != in_name else None,
                )
            )
            if old_in and old_in != in_name and old_in not in _constant_names(graph):
                log.info("%s: initial state '%s' replaced by graph input '%s'", node.name, old_in, in_name)
    _drop_dead(model, live_before, used_before)
    toposort(model)  # the Identity nodes were appended at the end; put them after their producers
    if check:
        try:
            onnx.checker.check_model(model)
        except onnx.checker.ValidationError as e:
            first = str(e).strip().splitlines()[0]
            raise ConversionError(f"make_streaming made a model the ONNX checker rejects: {first}") from None
    return model, states


def _who(node: onnx.NodeProto) -> str:
    """How an error names a node: its name and op, or the value it makes when it has no name."""
    name = f"'{node.name}'" if node.name else f"(unnamed, making '{next(iter(node.output), '')}')"
    return f"{name} ({node.op_type})"


def _attr(node: onnx.NodeProto, name: str, default: Any) -> Any:
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _refuse_nested(graph: onnx.GraphProto) -> None:
    """A recurrent node inside an If/Loop/Scan body can't get graph I/O of its own: say which one."""

    def walk(g: onnx.GraphProto, owner: onnx.NodeProto) -> None:
        for n in g.node:
            if n.op_type in RECURRENT_OPS:
                raise BadInputError(
                    f"make_streaming: node {_who(n)} sits inside a subgraph of node "
                    f"'{owner.name}' ({owner.op_type}); only recurrent nodes of the main graph can carry "
                    "their state out. Fix the inputs that choose the branch (converters.specialize."
                    "freeze_inputs) and simplify the model so the branch is inlined, then try again"
                )
            _subgraphs_of(n, walk)

    for n in graph.node:
        _subgraphs_of(n, walk)


def _subgraphs_of(node: onnx.NodeProto, visit: Callable[[onnx.GraphProto, onnx.NodeProto], None]) -> None:
    for a in node.attribute:
        for g in [a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs):
            visit(g, node)


def _shape_info(model: onnx.ModelProto) -> dict[str, onnx.TypeProto]:
    """Inferred types of every value (best effort: a model shape inference can't follow still works,
    with a symbolic batch)."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception as e:  # noqa: BLE001 (inference is a hint here; any failure just loses the hint)
        log.debug("shape inference failed (%s); state batch dims stay symbolic", e)
        inferred = model
    g = inferred.graph
    return {v.name: v.type for v in [*g.input, *g.value_info, *g.output]}


def _elem_type(name: str, graph: onnx.GraphProto, shapes: dict[str, onnx.TypeProto]) -> int:
    """Element type of the node's weights W: the state has the dtype the node computes in."""
    for init in graph.initializer:
        if init.name == name:
            return int(init.data_type)
    t = shapes.get(name)
    if t is not None and t.tensor_type.elem_type:
        return int(t.tensor_type.elem_type)
    return onnx.TensorProto.FLOAT


def _state_shape(
    node: onnx.NodeProto, graph: onnx.GraphProto, shapes: dict[str, onnx.TypeProto]
) -> list[int | str]:
    hidden = int(_attr(node, "hidden_size", 0))
    if hidden <= 0:
        raise BadInputError(
            f"make_streaming: node {_who(node)} has no hidden_size attribute; "
            "re-export the model with a current exporter"
        )
    layout = int(_attr(node, "layout", 0))
    batch = _batch_dim(node, layout, graph, shapes)
    return [batch, 1, hidden] if layout else [1, batch, hidden]


def _batch_dim(
    node: onnx.NodeProto, layout: int, graph: onnx.GraphProto, shapes: dict[str, onnx.TypeProto]
) -> int | str:
    """The batch dim as shape inference sees it on the old initial state or on X: a dim name if either
    has one (a constant initial state can be batch 1 in a batch-dynamic graph), else a fixed size;
    failing both, the first graph input's leading dim name, else a fresh name ``batch``. The names
    inference invents (``unk__3``) say nothing, so they count as unknown."""
    initial = node.input[_INITIAL_H] if len(node.input) > _INITIAL_H else ""
    axis = 0 if layout else 1
    found: list[int | str] = []
    for name in (initial, node.input[0]):
        t = shapes.get(name) if name else None
        dims = list(t.tensor_type.shape.dim) if t is not None and t.HasField("tensor_type") else []
        if len(dims) != 3:
            continue
        d = dims[axis]
        if d.HasField("dim_param") and d.dim_param and not d.dim_param.startswith("unk__"):
            return str(d.dim_param)
        if d.HasField("dim_value") and d.dim_value > 0:
            found.append(int(d.dim_value))
    if found:
        return found[0]
    inits = {i.name for i in graph.initializer}
    for v in graph.input:
        vdims = v.type.tensor_type.shape.dim
        if v.name not in inits and vdims and vdims[0].HasField("dim_param") and vdims[0].dim_param:
            return str(vdims[0].dim_param)
    return "batch"


def _all_names(graph: onnx.GraphProto) -> set[str]:
    names = {v.name for v in [*graph.input, *graph.output]} | {i.name for i in graph.initializer}
    return names | {o for n in graph.node for o in n.output} | {i for n in graph.node for i in n.input}


def _claim(name: str, taken: set[str], node: onnx.NodeProto) -> None:
    if name in taken:
        raise BadInputError(
            f"make_streaming: the model already has a value named '{name}', the name the state of node "
            f"{_who(node)} would get; rename that value first"
        )
    taken.add(name)


def _constant(name: str, graph: onnx.GraphProto) -> np.ndarray | None:
    """The value of an initializer or Constant node called ``name`` (None if it is computed)."""
    if not name:
        return None
    for init in graph.initializer:
        if init.name == name:
            return numpy_helper.to_array(init)
    for n in graph.node:
        if n.op_type == "Constant" and list(n.output) == [name]:
            for a in n.attribute:
                if a.name == "value":
                    return numpy_helper.to_array(a.t)
    return None


def _constant_names(graph: onnx.GraphProto) -> set[str]:
    return {i.name for i in graph.initializer} | {
        n.output[0] for n in graph.node if n.op_type == "Constant" and n.output
    }


def _live_nodes(graph: onnx.GraphProto) -> set[int]:
    """Indices (into ``graph.node``) of the nodes some graph output depends on."""
    producer = {o: i for i, n in enumerate(graph.node) for o in n.output if o}
    live: set[int] = set()
    todo = [producer[o.name] for o in graph.output if o.name in producer]
    while todo:
        i = todo.pop()
        if i in live:
            continue
        live.add(i)
        todo.extend(producer[u] for u in _used_names(graph.node[i]) if u in producer)
    return live


def _drop_dead(model: onnx.ModelProto, live_before: set[int], used_before: set[str]) -> None:
    """Remove what only fed the replaced initial states: nodes that were live and no longer are, then
    the initializers and graph inputs that were read and no longer are (the original state inputs).
    What was unused to begin with is left as it was."""
    graph = model.graph
    live_after = _live_nodes(graph)
    dead = live_before - live_after
    keep = [n for i, n in enumerate(graph.node) if i not in dead]
    del graph.node[:]
    graph.node.extend(keep)
    used = {u for n in graph.node for u in _used_names(n)} | {o.name for o in graph.output}
    gone = used_before - used
    for init in [i for i in graph.initializer if i.name in gone]:
        graph.initializer.remove(init)
    inits = {i.name for i in graph.initializer}
    for vi in [v for v in graph.input if v.name in gone]:
        if vi.name not in inits:
            log.info(
                "graph input '%s' fed only a recurrent initial state; a state input replaces it", vi.name
            )
        graph.input.remove(vi)
    produced = {o for n in graph.node for o in n.output} | inits | {v.name for v in graph.input}
    for vi in [v for v in graph.value_info if v.name not in produced]:
        graph.value_info.remove(vi)
