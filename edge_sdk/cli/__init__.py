"""The ``edge-sdk`` command: ``main`` builds the parser; one module per command group (``audio``, ``video``,
``demo``, ``train``, ``verify``); ``console`` and ``progress`` render results and progress."""

from edge_sdk import moved
from edge_sdk.cli.main import main

__all__ = ["main"]
__getattr__ = moved.forward(__name__, f"{__name__}.main")
