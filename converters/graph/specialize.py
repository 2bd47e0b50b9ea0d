"""Specialising a graph to fixed input values (the input becomes a constant) or fixed input shapes.

Models such as Silero VAD keep all their compute inside ``If`` branches selected by an input (the
sample rate). Quantisers and float16 converters do not enter subgraphs; once the input is a constant,
the simplifier folds the condition and inlines the branch taken, so they see the real compute.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from edge_sdk.errors import BadInputError


def freeze_inputs(
    model: onnx.ModelProto, values: dict[str, Any]
) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """Replace graph inputs by constants of the given values (dtype and rank from the input); returns the
    new model and the arrays used, so the source can be fed the same values."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    by_name = {i.name: i for i in model.graph.input}
    arrays: dict[str, np.ndarray] = {}
    for name, value in values.items():
        if name not in by_name:
            raise BadInputError(f"cannot fix input '{name}': the model's inputs are {list(by_name)}")
        vi = by_name[name]
        dtype = onnx.helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type)
        rank = len(vi.type.tensor_type.shape.dim)
        arr = np.asarray(value, dtype=dtype)
        if arr.ndim < rank:
            arr = arr.reshape([1] * (rank - arr.ndim) + list(arr.shape))
        if arr.ndim != rank:
            raise BadInputError(
                f"cannot fix input '{name}' of rank {rank} to a value of shape {list(arr.shape)}"
            )
        model.graph.input.remove(vi)
        model.graph.initializer.append(numpy_helper.from_array(arr, name))
        arrays[name] = arr
    return model, arrays


def fix_shapes(model: onnx.ModelProto, shapes: dict[str, list[int]]) -> onnx.ModelProto:
    """Give inputs fixed shapes. The simplifier can then fold what depended on the dynamic sizes (Shape
    ops, the If nodes they feed), which converters such as OpenVINO's and onnx2tf need."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    by_name = {i.name: i for i in model.graph.input}
    for name, shape in shapes.items():
        if name not in by_name:
            raise BadInputError(f"cannot fix the shape of '{name}': the model's inputs are {list(by_name)}")
        if not all(isinstance(size, int) and not isinstance(size, bool) and size > 0 for size in shape):
            raise BadInputError(f"the shape given for '{name}', {list(shape)}, must be positive whole sizes")
        dims = by_name[name].type.tensor_type.shape.dim
        if len(dims) != len(shape):
            raise BadInputError(
                f"input '{name}' has rank {len(dims)}; the shape given, {list(shape)}, has {len(shape)}"
            )
        for d, size in zip(dims, shape, strict=True):
            if d.HasField("dim_value") and d.dim_value > 0 and d.dim_value != size:
                raise BadInputError(
                    f"input '{name}' has size {d.dim_value} where the shape given says {size}"
                )
            d.Clear()
            d.dim_value = int(size)
    return model
