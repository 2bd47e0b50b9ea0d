"""The ``tflite`` target: onnx2tf in a worker process, Keras and litert-torch straight to TFLite, int8
calibrated by TensorFlow or with onnxruntime's ranges carried over, and accuracy-aware int8."""

from edge_sdk import moved
from edge_sdk.converters.targets.tflite import target as target  # registers the format

__getattr__ = moved.forward(__name__, f"{__name__}.target")
