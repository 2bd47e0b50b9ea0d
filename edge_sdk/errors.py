"""The one error hierarchy of edge-sdk; the CLI maps each class to an exit code in one place."""

from __future__ import annotations


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


class DeviceError(EdgeSDKError):
    """A microphone, camera or accelerator asked for is not usable here."""


class DownloadError(EdgeSDKError):
    """A model could not be fetched, or what arrived does not match its pinned sha256."""
