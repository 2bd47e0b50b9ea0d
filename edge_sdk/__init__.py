"""edge-sdk: make trained models small and fast for edge devices, prove them, and run them live.

import edge_sdk
arts = edge_sdk.convert("model.onnx", ["onnx:fp32", "onnx:int8"], calibration="calib/", out="out")
session = edge_sdk.load(arts[1].path)
outputs = session.run({"input": x})
"""

from edge_sdk._version import __version__
from edge_sdk.converters import ConversionFailed, convert
from edge_sdk.errors import (
    BadInputError,
    ConversionError,
    DeviceError,
    DownloadError,
    EdgeSDKError,
    MissingExtraError,
)
from edge_sdk.manifest import Artifact, TensorSpec, load_artifact
from edge_sdk.runtimes import Selection, Session, load

__all__ = [
    "Artifact",
    "BadInputError",
    "ConversionError",
    "ConversionFailed",
    "DeviceError",
    "DownloadError",
    "EdgeSDKError",
    "MissingExtraError",
    "Selection",
    "Session",
    "TensorSpec",
    "__version__",
    "convert",
    "load",
    "load_artifact",
]
