"""Converters: bring a source to ONNX, simplify it, make each target, and check parity."""

from edge_sdk.converters.convert import convert
from edge_sdk.converters.graph.streaming import make_streaming
from edge_sdk.converters.make import ConversionFailed
from edge_sdk.converters.targets import TARGETS, all_targets, unavailable_formats

__all__ = ["TARGETS", "ConversionFailed", "all_targets", "convert", "make_streaming", "unavailable_formats"]
