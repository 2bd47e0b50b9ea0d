"""The ``openvino`` target: OpenVINO IR, NNCF int8 and its accuracy control, weight compression."""

from edge_sdk import _moved
from edge_sdk.converters.targets.openvino import target as target  # registers the format

__getattr__ = _moved.forward(__name__, f"{__name__}.target")
