"""Fixing input values and shapes before simplification."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import edge_sdk
from edge_sdk.converters.graph.specialize import fix_shapes, freeze_inputs


def _shape_driven_if() -> onnx.ModelProto:
    """y = x * 2 when x has 4 columns, else x: the branch depends on a dynamic dim, as in Silero VAD."""
    two = helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])
    four = helper.make_tensor("four", TensorProto.INT64, [1], [4])
    then_g = helper.make_graph(
        [helper.make_node("Mul", ["x", "two_c"], ["t"])],
        "then",
        [],
        [helper.make_tensor_value_info("t", TensorProto.FLOAT, ["n", "c"])],
    )
    else_g = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["e"])],
        "else",
        [],
        [helper.make_tensor_value_info("e", TensorProto.FLOAT, ["n", "c"])],
    )
    nodes = [
        helper.make_node("Constant", [], ["two_c"], value=two),
        helper.make_node("Constant", [], ["four_c"], value=four),
        helper.make_node("Shape", ["x"], ["s"], start=1, end=2),
        helper.make_node("Equal", ["s", "four_c"], ["eq"]),
        helper.make_node("Squeeze", ["eq"], ["cond"]),
        helper.make_node("If", ["cond"], ["y"], then_branch=then_g, else_branch=else_g),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", "c"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", "c"])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)


def test_fixed_shapes_let_the_simplifier_fold_shape_driven_ifs(tmp_path: Path) -> None:
    path = tmp_path / "if.onnx"
    onnx.save(_shape_driven_if(), path)
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    (art,) = edge_sdk.convert(
        path, ["onnx:fp32"], parity_data=[{"x": x}], input_shapes={"x": [2, 4]}, out=tmp_path
    )
    ops = {n.op_type for n in onnx.load(art.model_file).graph.node}
    assert "If" not in ops and "Shape" not in ops
    assert art.recipe["simplify"]["input_shapes"] == {"x": [2, 4]}
    assert art.inputs[0].shape == [2, 4]
    np.testing.assert_array_equal(edge_sdk.load(art.path).run({"x": x})["y"], 2 * x)


@pytest.mark.parametrize(
    ("shapes", "match"),
    [
        ({"z": [1, 4]}, "inputs are"),
        ({"x": [1, 4, 1]}, "rank 2"),
        ({"x": [1]}, "rank 2"),
        ({"x": [-5, 4]}, "positive whole sizes"),
        ({"x": [0, 4]}, "positive whole sizes"),
        ({"x": [1.5, 4]}, "positive whole sizes"),
    ],
)
def test_fix_shapes_refuses_what_does_not_fit(shapes: dict[str, Any], match: str) -> None:
    with pytest.raises(edge_sdk.BadInputError, match=match):
        fix_shapes(_shape_driven_if(), shapes)


def test_fix_shapes_refuses_to_change_a_fixed_dim() -> None:
    model = fix_shapes(_shape_driven_if(), {"x": [2, 4]})
    with pytest.raises(edge_sdk.BadInputError, match="size 4"):
        fix_shapes(model, {"x": [2, 5]})


def test_freeze_inputs_refuses_an_unknown_input_or_a_wrong_rank() -> None:
    with pytest.raises(edge_sdk.BadInputError, match="inputs are"):
        freeze_inputs(_shape_driven_if(), {"sr": 16000})
    with pytest.raises(edge_sdk.BadInputError, match="rank 2"):
        freeze_inputs(_shape_driven_if(), {"x": np.zeros((1, 2, 3))})
