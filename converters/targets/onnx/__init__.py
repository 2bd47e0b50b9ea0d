"""The ``onnx`` target: fp32/fp16, static and dynamic int8 with onnxruntime's quantiser, int4 weights."""

from edge_sdk import moved
from edge_sdk.converters.targets.onnx import target as target  # registers the format

__getattr__ = moved.forward(__name__, f"{__name__}.target")
