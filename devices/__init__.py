"""Device profiles, board detection, telemetry and sensors.

``detect()`` tells which board this is (a profile from ``profiles/*.toml``) and which of its
accelerators are usable, with the evidence; ``load_profiles()`` reads the profiles.
``open_telemetry(profile.telemetry)`` reads power, temperatures and clocks from the sources a profile
names. The sensors arrive with issues 5 and 7.
"""

from edge_sdk.devices.accelerators import AcceleratorStatus
from edge_sdk.devices.detect import Detection, detect
from edge_sdk.devices.profile import AcceleratorSpec, Profile, load_profiles
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
    "Detection",
    "Profile",
    "Telemetry",
    "TelemetryReader",
    "TelemetrySample",
    "detect",
    "energy_over",
    "load_profiles",
    "open_telemetry",
    "telemetry_sources",
]
