"""edge-sdk: make trained models small and fast for edge devices, prove them, and run them live.

import edge_sdk
arts = edge_sdk.convert("model.onnx", ["onnx:fp32", "onnx:int8"], calibration="calib/", out="out")
session = edge_sdk.load(arts[1].path)
outputs = session.run({"input": x})

loop = edge_sdk.AudioLoop(source, [edge_sdk.stages.make("vad", "silero")], on_event=print)
summary = loop.run()

from edge_sdk.devices import open_video_source
denoiser = edge_sdk.stages.make("video", "denoise", model="zoo:video")
video = edge_sdk.VideoLoop(open_video_source("camera"), [denoiser])
"""

from edge_sdk._version import __version__
from edge_sdk.audio_loop import AudioLoop, LatencyHistogram, LoopSummary, StageFailed, StageStats
from edge_sdk.converters import ConversionFailed, convert
from edge_sdk.errors import (
    BadInputError,
    ConversionError,
    DeviceError,
    DownloadError,
    EdgeSDKError,
    MissingExtraError,
)
from edge_sdk.events import EventLog
from edge_sdk.manifest import Artifact, TensorSpec, load_artifact
from edge_sdk.runtimes import Selection, Session, load
from edge_sdk.stages import Block, Event, Frame, KeywordDetected, SpeechSegment, SpeechStart, Stage
from edge_sdk.video_loop import VideoLoop, VideoSummary

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
    "Selection",
    "Session",
    "TensorSpec",
    "__version__",
    "convert",
    "load",
    "load_artifact",
]
