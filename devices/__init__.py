"""Device profiles, board detection, telemetry and sensors.

Detection and profiles arrive with issue 4 and the sensors with issues 5 and 7; the package exists now
so that ``edge_sdk.devices`` is importable from both editable installs and wheels.
"""
