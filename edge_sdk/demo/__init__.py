"""``edge-sdk demo``: the main job on bundled models and sample media. ``formats`` converts Silero VAD to
every installed format and compares them; ``audio``, ``kws`` and ``video`` run the live loops on the zoo."""

from edge_sdk import moved

__getattr__ = moved.forward(__name__, f"{__name__}.formats")
