"""edge-sdk: make trained models small and fast for edge devices, prove them, and run them live.

import numpy as np
import edge_sdk
from edge_sdk.devices import open_audio_source, open_video_source

arts = edge_sdk.convert("model.onnx", ["onnx:fp32", "onnx:int8"], calibration="calib/", out="out")
session = edge_sdk.load(arts[1].path)
outputs = session.run({"input": np.load("input.npy")})

loop = edge_sdk.AudioLoop(open_audio_source("mic"), [edge_sdk.stages.make("vad", "silero")], on_event=print)
summary = loop.run()

denoiser = edge_sdk.stages.make("video", "denoise", model="zoo:video")
video = edge_sdk.VideoLoop(open_video_source("camera"), [denoiser])
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from edge_sdk import moved
from edge_sdk.errors import (
    BadInputError,
    ConversionError,
    DeviceError,
    DownloadError,
    EdgeSDKError,
    MissingExtraError,
    RunFailed,
    StageFailed,
)
from edge_sdk.version import __version__

moved.install()

# Public names → the module that defines them, imported on first use: a board that only runs artifacts
# (or an emulated CPU that re-measures one) imports the runtime without the converters and onnx.
_LAZY = {
    "AudioLoop": "edge_sdk.live.audio",
    "LatencyHistogram": "edge_sdk.live.audio",
    "LoopSummary": "edge_sdk.live.audio",
    "StageStats": "edge_sdk.live.audio",
    "ConversionFailed": "edge_sdk.converters",
    "convert": "edge_sdk.converters",
    "EventLog": "edge_sdk.live.events",
    "Artifact": "edge_sdk.manifest",
    "TensorSpec": "edge_sdk.manifest",
    "load_artifact": "edge_sdk.manifest",
    "Selection": "edge_sdk.runtimes",
    "Session": "edge_sdk.runtimes",
    "load": "edge_sdk.runtimes",
    "Block": "edge_sdk.stages",
    "Event": "edge_sdk.stages",
    "Frame": "edge_sdk.stages",
    "KeywordDetected": "edge_sdk.stages",
    "SpeechSegment": "edge_sdk.stages",
    "SpeechStart": "edge_sdk.stages",
    "Stage": "edge_sdk.stages",
    "VerifyReport": "edge_sdk.verification",
    "verify": "edge_sdk.verification",
    "VideoLoop": "edge_sdk.live.video",
    "VideoSummary": "edge_sdk.live.video",
}

if TYPE_CHECKING:
    from edge_sdk.converters import ConversionFailed, convert
    from edge_sdk.live.audio import AudioLoop, LatencyHistogram, LoopSummary, StageStats
    from edge_sdk.live.events import EventLog
    from edge_sdk.live.video import VideoLoop, VideoSummary
    from edge_sdk.manifest import Artifact, TensorSpec, load_artifact
    from edge_sdk.runtimes import Selection, Session, load
    from edge_sdk.stages import Block, Event, Frame, KeywordDetected, SpeechSegment, SpeechStart, Stage
    from edge_sdk.verification.report import VerifyReport, verify


def __getattr__(name: str) -> Any:
    """Import a public name's module (or a subpackage such as ``edge_sdk.stages``) when first used."""
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
    elif not name.startswith("__"):
        try:
            value = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module 'edge_sdk' has no attribute '{name}'") from None
    else:
        raise AttributeError(f"module 'edge_sdk' has no attribute '{name}'")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = [
    "Artifact",
    "AudioLoop",
    "Block",
    "Event",
    "EventLog",
    "Frame",
    "KeywordDetected",
    "LatencyHistogram",
    "LoopSummary",
    "SpeechSegment",
    "SpeechStart",
    "Stage",
    "StageFailed",
    "StageStats",
    "VideoLoop",
    "VideoSummary",
    "BadInputError",
    "ConversionError",
    "ConversionFailed",
    "DeviceError",
    "DownloadError",
    "EdgeSDKError",
    "MissingExtraError",
    "RunFailed",
    "Selection",
    "Session",
    "TensorSpec",
    "VerifyReport",
    "__version__",
    "convert",
    "load",
    "load_artifact",
    "verify",
]
