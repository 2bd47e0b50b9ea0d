"""``make_streaming``: a recurrent model run block by block, carrying its state, gives exactly what it gives
run over the whole sequence at once (torch-exported GRU, LSTM and 2-layer GRU, and NSNet2), and refuses
the models that can't stream with a message that says why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from edge_sdk import zoo
from edge_sdk.converters import make_streaming
from edge_sdk.converters.graph.streaming import StreamState, make_streaming_with_states
from edge_sdk.errors import BadInputError

CACHE = Path(__file__).resolve().parents[2] / ".cache" / "test-models"
FRAMES = 23  # not a multiple of any block size, so the last block is short
BLOCKS = (1, 2, 7)


def _session(model: onnx.ModelProto | str) -> ort.InferenceSession:
    # One thread, so how onnxruntime splits work between threads (which may depend on the number of
    # frames per run and on the machine's cores) can't enter an exact comparison.
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    src = model.SerializeToString() if isinstance(model, onnx.ModelProto) else model
    return ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])


def _in_blocks(
    sess: ort.InferenceSession, states: list[StreamState], name: str, x: np.ndarray, block: int, axis: int
) -> np.ndarray:
    """Run ``x`` through the streaming model ``block`` steps at a time along ``axis``, feeding each
    block the state the previous one returned."""
    carried = {s.input: s.start(x.shape[0] if axis == 1 else x.shape[1]) for s in states}
    outs = []
    for k in range(0, x.shape[axis], block):
        chunk = np.take(x, np.arange(k, min(k + block, x.shape[axis])), axis=axis)
        names = [o.name for o in sess.get_outputs()]
        res = dict(zip(names, sess.run(None, {name: chunk, **carried}), strict=True))
        outs.append(res[names[0]])
        carried = {s.input: res[s.output] for s in states}
    return np.concatenate(outs, axis=axis)


# -- torch-exported models ---------------------------------------------------------------------------


def _export(kind: str, layers: int, path: Path) -> Path:
    torch = pytest.importorskip("torch", reason="needs the torch extra (pip install 'edge-sdk[torch]')")
    pytest.importorskip("onnxscript", reason="the torch ONNX exporter needs onnxscript (edge-sdk[torch])")

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = getattr(torch.nn, kind)(8, 16, num_layers=layers, batch_first=True)
            self.head = torch.nn.Linear(16, 4)

        def forward(self, x: Any) -> Any:
            y, _ = self.rnn(x)
            return self.head(y)

    torch.manual_seed(layers)
    x = torch.randn(2, FRAMES, 8)  # batch 2, so the exporter keeps the batch dim symbolic
    dims = ({0: torch.export.Dim("batch"), 1: torch.export.Dim("time")},)
    torch.onnx.export(Net().eval(), (x,), str(path), dynamo=True, dynamic_shapes=dims, verbose=False)
    return path


@pytest.fixture(scope="module", params=[("GRU", 1), ("LSTM", 1), ("GRU", 2)], ids=["gru", "lstm", "gru2"])
def torch_rnn(request: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, int, Path]:
    kind, layers = request.param
    return kind, layers, _export(kind, layers, tmp_path_factory.mktemp(f"{kind}{layers}") / "m.onnx")


@pytest.mark.torch
def test_torch_models_give_the_same_output_block_by_block(torch_rnn: tuple[str, int, Path]) -> None:
    kind, layers, path = torch_rnn
    model, states = make_streaming_with_states(path)
    per_node = 2 if kind == "LSTM" else 1
    assert len(states) == layers * per_node
    expected_in = [f"state_in_{i}" for i in range(layers)] + (["cell_in_0"] if kind == "LSTM" else [])
    assert sorted(s.input for s in states) == sorted(expected_in)
    assert all(s.shape == (1, "batch", 16) and s.dtype == "float32" for s in states)
    names = [i.name for i in model.graph.input]
    assert names[0] == "x" and sorted(names[1:]) == sorted(expected_in)

    x = np.random.default_rng(3).standard_normal((2, FRAMES, 8)).astype(np.float32)
    whole = _session(str(path)).run(None, {"x": x})[0]
    sess = _session(model)
    for block in (FRAMES, *BLOCKS):
        got = _in_blocks(sess, states, "x", x, block, axis=1)
        assert np.array_equal(got, whole), f"{kind}x{layers}, blocks of {block}: {np.abs(got - whole).max()}"


@pytest.mark.torch
def test_streaming_is_reachable_from_the_public_api_and_takes_a_model_proto(
    torch_rnn: tuple[str, int, Path],
) -> None:
    _, _, path = torch_rnn
    a = make_streaming(onnx.load(str(path)))
    b = make_streaming(path)
    assert a.SerializeToString() == b.SerializeToString()
    assert a.opset_import == onnx.load(str(path)).opset_import


# -- NSNet2 ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nsnet2() -> Path:
    return zoo.pull("nsnet2-16k", cache_dir=CACHE)


@pytest.mark.network
def test_nsnet2_streams_exactly(nsnet2: Path) -> None:
    model, states = make_streaming_with_states(nsnet2)
    assert [(s.input, s.output, s.shape) for s in states] == [
        ("state_in_0", "state_out_0", (1, "batch_size", 400)),
        ("state_in_1", "state_out_1", (1, "batch_size", 400)),
    ]
    ops = [n.op_type for n in model.graph.node]
    # the zeros NSNet2 built from its input's shape are gone with what made them
    assert "ConstantOfShape" not in ops and "Shape" not in ops and ops.count("GRU") == 2
    assert [o.name for o in model.graph.output] == ["output", "state_out_0", "state_out_1"]

    rng = np.random.default_rng(5)
    x = (rng.standard_normal((1, 50, 161)) * 2 - 4).astype(np.float32)  # log10 power-like values
    whole = _session(str(nsnet2)).run(None, {"input": x})[0]
    sess = _session(model)
    for block in (50, *BLOCKS):
        got = _in_blocks(sess, states, "input", x, block, axis=1)
        assert np.array_equal(got, whole), f"blocks of {block}: {np.abs(got - whole).max()}"


# -- graphs built by hand: the cases exporters don't make, and the refusals --------------------------

H, F, T = 6, 3, 5


def _rnn_model(
    op: str = "GRU",
    *,
    direction: str = "forward",
    layout: int = 0,
    initial: bool = False,
    y_h: str = "",
    extra_outputs: tuple[str, ...] = (),
    opset: int = 14,
) -> onnx.ModelProto:
    """One recurrent node over ``x`` [T, batch, F] (or [batch, T, F] with layout 1) → ``y``."""
    gates = {"GRU": 3, "LSTM": 4, "RNN": 1}[op]
    dirs = 2 if direction == "bidirectional" else 1
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((dirs, gates * H, F)).astype(np.float32), "W"),
        numpy_helper.from_array(rng.standard_normal((dirs, gates * H, H)).astype(np.float32), "R"),
    ]
    inputs = ["x", "W", "R"]
    if initial:
        inits.append(numpy_helper.from_array(np.full((dirs, 1, H), 0.5, np.float32), "h0"))
        inputs += ["", "", "h0"]
    outputs = ["y", y_h, *extra_outputs]
    node = helper.make_node(op, inputs, outputs, name="rnn", hidden_size=H, direction=direction)
    if layout:
        node.attribute.append(helper.make_attribute("layout", layout))
    nodes = [node]
    y_shape = ["N", "T", dirs, H] if layout else ["T", dirs, "N", H]
    graph_out = [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)]
    if y_h:
        nodes.append(helper.make_node("Relu", [y_h], ["h_relu"], name="reads_y_h"))
        graph_out.append(helper.make_tensor_value_info("h_relu", TensorProto.FLOAT, [dirs, "N", H]))
    x_shape = ["N", "T", F] if layout else ["T", "N", F]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)], graph_out, inits
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def test_a_used_y_h_keeps_its_readers_and_leaves_through_its_own_output() -> None:
    model, states = make_streaming_with_states(_rnn_model("GRU", y_h="hn"))
    assert [o.name for o in model.graph.output] == ["y", "h_relu", "state_out_0"]
    assert any(n.op_type == "Identity" and list(n.output) == ["state_out_0"] for n in model.graph.node)
    x = np.random.default_rng(1).standard_normal((T, 2, F)).astype(np.float32)
    sess = _session(model)
    res = sess.run(None, {"x": x, "state_in_0": states[0].start(2)})
    np.testing.assert_array_equal(res[2][0], res[0][-1, 0])  # the state is the last step's output
    np.testing.assert_array_equal(res[1], np.maximum(res[2], 0))  # Relu still reads Y_h


def test_a_constant_initial_state_is_reported_and_dropped_and_starting_from_it_gives_the_original() -> None:
    model, states = make_streaming_with_states(_rnn_model("LSTM", initial=True))
    h, c = states
    assert (h.input, h.output, c.input, c.output) == ("state_in_0", "state_out_0", "cell_in_0", "cell_out_0")
    assert h.shape == c.shape == (1, "N", H) and h.initial is not None and c.initial is None
    assert not any(i.name == "h0" for i in model.graph.initializer)  # replaced, so dropped
    x = np.random.default_rng(2).standard_normal((T, 1, F)).astype(np.float32)
    whole = _session(_rnn_model("LSTM", initial=True)).run(None, {"x": x})[0]
    got = _in_blocks(_session(model), states, "x", x, 2, axis=0)
    np.testing.assert_array_equal(got, whole)


def test_a_layout_1_node_gets_a_batch_first_state() -> None:
    # onnxruntime's CPU kernels refuse layout=1, so this checks the graph only
    model, states = make_streaming_with_states(_rnn_model("GRU", layout=1))
    assert states[0].shape == ("N", 1, H)
    state_in = next(i for i in model.graph.input if i.name == "state_in_0")
    assert [d.dim_param or d.dim_value for d in state_in.type.tensor_type.shape.dim] == ["N", 1, H]


def test_plain_rnn_streams() -> None:
    model, states = make_streaming_with_states(_rnn_model("RNN"))
    x = np.random.default_rng(4).standard_normal((T, 1, F)).astype(np.float32)
    whole = _session(_rnn_model("RNN")).run(None, {"x": x})[0]
    got = _in_blocks(_session(model), states, "x", x, 2, axis=0)
    np.testing.assert_array_equal(got, whole)


@pytest.mark.parametrize("direction", ["bidirectional", "reverse"])
def test_a_layer_that_reads_the_future_is_refused(direction: str) -> None:
    with pytest.raises(BadInputError, match=rf"node 'rnn' \(GRU\) is {direction}.*future"):
        make_streaming(_rnn_model("GRU", direction=direction))


def test_a_model_without_recurrent_nodes_is_refused() -> None:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"], name="relu")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    with pytest.raises(BadInputError, match="no GRU, LSTM or RNN node"):
        make_streaming(model)


def test_a_recurrent_node_inside_an_if_branch_is_refused_by_name() -> None:
    inner = _rnn_model("GRU").graph
    branch = helper.make_graph(list(inner.node), "then", [], list(inner.output), list(inner.initializer))
    other = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y2"], name="id")],
        "else",
        [],
        [helper.make_tensor_value_info("y2", TensorProto.FLOAT, [T, 1, F])],
    )
    graph = helper.make_graph(
        [helper.make_node("If", ["cond"], ["out"], name="choose", then_branch=branch, else_branch=other)],
        "g",
        [
            helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [T, 1, F]),
        ],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [T, 1, F])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    with pytest.raises(BadInputError, match=r"node 'rnn' \(GRU\) sits inside a subgraph of node 'choose'"):
        make_streaming(model)


def test_a_name_already_taken_is_refused() -> None:
    model = _rnn_model("GRU")
    model.graph.node.append(helper.make_node("Identity", ["y"], ["state_out_0"], name="clash"))
    with pytest.raises(BadInputError, match="already has a value named 'state_out_0'"):
        make_streaming(model)


def test_a_streaming_model_streams_again_unchanged() -> None:
    once = make_streaming(_rnn_model("GRU"))
    twice, states = make_streaming_with_states(once)
    assert [s.input for s in states] == ["state_in_0"]
    assert [i.name for i in twice.graph.input] == [i.name for i in once.graph.input]
    assert [o.name for o in twice.graph.output] == [o.name for o in once.graph.output]
