"""The one error hierarchy of edge-sdk; the CLI maps each class to an exit code in one place."""

from __future__ import annotations

from typing import Any


class EdgeSDKError(Exception):
    """Root of every error edge-sdk raises on purpose."""

    exit_code = 1


class BadInputError(EdgeSDKError):
    """The user's input is wrong: a path, a model file, a shape, a recipe key (CLI exit 2)."""

    exit_code = 2


class MissingExtraError(BadInputError):
    """An optional package is not installed; the message names the pip extra that brings it."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        self.package = package
        self.extra = extra
        super().__init__(
            f"{purpose} needs the Python package '{package}', which is not installed. "
            f"Install it with: pip install 'edge-sdk[{extra}]'"
        )


class ConversionError(EdgeSDKError):
    """A conversion or a parity gate failed (CLI exit 1); the message carries the op, node or figures."""


class RunFailed(EdgeSDKError):
    """A model failed inside its runtime on the inputs it was given; the message names the model, the
    backend, the node where the runtime says and the inputs' shapes."""


class DeviceError(EdgeSDKError):
    """A microphone, camera or accelerator asked for is not usable here."""


class DownloadError(EdgeSDKError):
    """A model could not be fetched, or what arrived does not match its pinned sha256."""


class InputLost(EdgeSDKError):
    """A live loop ran to its end but lost input on the way: frames of a video file that could not be
    decoded (a corrupt region, a truncated file). Raised by the CLI after the summary is printed, so that
    the exit status (1) says what the summary says."""


class StageFailed(EdgeSDKError):
    """A stage of a live loop raised: the loop stopped (stages closed, recordings finalised) and says which
    stage, on which block or frame, and why. ``summary`` holds the figures up to the failure; the exit code
    is the cause's when that was an edge-sdk error (bad input stays exit 2)."""

    def __init__(self, stage: str, unit: Any, cause: BaseException, summary: Any) -> None:
        self.stage, self.summary = stage, summary
        if isinstance(cause, EdgeSDKError):
            self.exit_code = cause.exit_code
        # An audio Block starts at ``start``; a video Frame was captured at ``time``.
        kind, when = ("block", unit.start) if hasattr(unit, "start") else ("frame", unit.time)
        super().__init__(
            f"stage {stage} failed on {kind} {unit.index} (stream time {when:.3f} s): "
            f"{type(cause).__name__}: {cause}"
        )
