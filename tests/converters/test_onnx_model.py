"""Graph helpers: node ordering that counts what subgraphs read from outside."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

from edge_sdk.converters.graph.onnx_model import describe, toposort


def _if_ahead_of_its_outer_value() -> onnx.ModelProto:
    """``If`` whose then-branch reads ``doubled``, which the outer graph computes after the If."""
    then_g = helper.make_graph(
        [helper.make_node("Identity", ["doubled"], ["t_out"])],
        "then",
        [],
        [helper.make_tensor_value_info("t_out", TensorProto.FLOAT, [2])],
    )
    else_g = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["e_out"])],
        "else",
        [],
        [helper.make_tensor_value_info("e_out", TensorProto.FLOAT, [2])],
    )
    nodes = [
        helper.make_node("If", ["cond"], ["y"], then_branch=then_g, else_branch=else_g, name="branch"),
        helper.make_node("Add", ["x", "x"], ["doubled"], name="double"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [2]),
            helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)


def test_toposort_counts_outer_values_read_by_subgraphs() -> None:
    model = _if_ahead_of_its_outer_value()
    assert [n.name for n in model.graph.node] == ["branch", "double"]
    assert toposort(model) is True
    assert [n.name for n in model.graph.node] == ["double", "branch"]
    onnx.checker.check_model(model)  # valid now
    sess = ort.InferenceSession(model.SerializeToString())
    x = np.array([1.0, 2.0], np.float32)
    np.testing.assert_array_equal(sess.run(None, {"x": x, "cond": np.array(True)})[0], 2 * x)


def test_toposort_leaves_a_sorted_graph_alone() -> None:
    model = _if_ahead_of_its_outer_value()
    toposort(model)
    before = model.SerializeToString()
    assert toposort(model) is False
    assert model.SerializeToString() == before


def test_describe_counts_ops_inside_subgraphs() -> None:
    info = describe(_if_ahead_of_its_outer_value())
    assert info["ops"] == {"If": 1, "Add": 1, "Identity": 2}
    assert info["opsets"] == {"ai.onnx": 17}
