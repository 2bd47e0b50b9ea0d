"""The ``edge-sdk`` command: ``main`` builds the parser from one module per command (``convert``, ``inspect``,
``run``, ``models``, ``devices``, ``demo``, ``verify``, ``train``) and maps errors to exit codes; ``console``
and ``progress`` render results and progress, ``summary`` the end of a live loop."""

from edge_sdk import moved
from edge_sdk.cli.main import main

__all__ = ["main"]
# The names edge_sdk/cli.py defined before it became this package, and the modules that hold them now.
__getattr__ = moved.forward(
    __name__,
    {
        "build_parser": f"{__name__}.main",
        "_common_options": f"{__name__}.main",
        "cmd_convert": f"{__name__}.convert",
        "cmd_inspect": f"{__name__}.inspect",
        "cmd_run": f"{__name__}.run",
        "_read_inputs": f"{__name__}.run",
        "cmd_models": f"{__name__}.models",
        "cmd_devices": f"{__name__}.devices",
        "cmd_demo": f"{__name__}.demo",
    },
)
