"""The ``openvino`` target: OpenVINO IR, NNCF int8 and its accuracy control, weight compression."""

from edge_sdk import moved
from edge_sdk.converters.targets.openvino import target as target  # registers the format

__getattr__ = moved.forward(__name__, f"{__name__}.target")
