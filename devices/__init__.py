"""Device profiles, board detection, telemetry and sensors.

``detect()`` tells which board this is (a profile from ``profiles/*.toml``) and which of its
accelerators are usable, with the evidence; ``load_profiles()`` reads the profiles.
``open_telemetry(profile.telemetry)`` reads power, temperatures and clocks from the sources a profile
names. Audio sources: ``open_audio_source("mic" | "mic:NAME" | "x.wav")`` gives a ``Microphone`` or a
``WavFile``, both ``AudioSource``s; ``list_input_devices()`` lists the microphones. The camera arrives
with issue 7.
"""

from edge_sdk.devices.accelerators import AcceleratorStatus
from edge_sdk.devices.audio_source import AudioSource, open_audio_source
from edge_sdk.devices.detect import Detection, detect
from edge_sdk.devices.microphone import InputDevice, Microphone, list_input_devices
from edge_sdk.devices.profile import AcceleratorSpec, Profile, load_profiles
from edge_sdk.devices.telemetry import (
    Telemetry,
    TelemetryReader,
    TelemetrySample,
    energy_over,
    open_telemetry,
    telemetry_sources,
)
from edge_sdk.devices.wav_file import WavFile

__all__ = [
    "AcceleratorSpec",
    "AcceleratorStatus",
    "AudioSource",
    "Detection",
    "InputDevice",
    "Microphone",
    "Profile",
    "Telemetry",
    "TelemetryReader",
    "TelemetrySample",
    "WavFile",
    "detect",
    "energy_over",
    "list_input_devices",
    "load_profiles",
    "open_audio_source",
    "open_telemetry",
    "telemetry_sources",
]
