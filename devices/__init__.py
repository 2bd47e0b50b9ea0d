"""Device profiles, board detection, telemetry and sensors.

``detect()`` tells which board this is (a profile from ``profiles/*.toml``) and which of its
accelerators are usable, with the evidence; ``load_profiles()`` reads the profiles.
``open_telemetry(profile.telemetry)`` reads power, temperatures and clocks from the sources a profile
names. Audio sources: ``open_audio_source("mic" | "mic:NAME" | "x.wav")`` gives a ``Microphone`` or a
``WavFile``, both ``AudioSource``s; ``list_input_devices()`` lists the microphones. Video sources:
``open_video_source("camera" | "camera:N" | "/dev/videoN" | "gst:PIPELINE" | "picamera2" | "x.mp4")`` gives
a ``Camera`` (OpenCV/V4L2, GStreamer or picamera2; reconnects with back-off, drops the oldest frame when
the loop falls behind) or a ``VideoFile``; ``list_cameras()`` lists the cameras. OpenCV and picamera2 are
imported only when a video source is opened.
"""

from edge_sdk.devices.accelerators import AcceleratorStatus
from edge_sdk.devices.detect import Detection, detect
from edge_sdk.devices.profile import AcceleratorSpec, Profile, load_profiles
from edge_sdk.devices.sources.audio import AudioSource, open_audio_source
from edge_sdk.devices.sources.camera import Camera
from edge_sdk.devices.sources.microphone import InputDevice, Microphone, list_input_devices
from edge_sdk.devices.sources.video import CameraInfo, list_cameras, open_video_source
from edge_sdk.devices.sources.video_file import VideoFile
from edge_sdk.devices.sources.wav_file import WavFile
from edge_sdk.devices.telemetry import (
    Telemetry,
    TelemetryReader,
    TelemetrySample,
    energy_over,
    open_telemetry,
    telemetry_sources,
)

__all__ = [
    "AcceleratorSpec",
    "AcceleratorStatus",
    "AudioSource",
    "Camera",
    "CameraInfo",
    "Detection",
    "InputDevice",
    "Microphone",
    "Profile",
    "Telemetry",
    "TelemetryReader",
    "TelemetrySample",
    "VideoFile",
    "WavFile",
    "detect",
    "energy_over",
    "list_cameras",
    "list_input_devices",
    "load_profiles",
    "open_audio_source",
    "open_telemetry",
    "open_video_source",
    "telemetry_sources",
]
