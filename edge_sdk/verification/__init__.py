"""Numbers that travel: the small reference set an artifact carries, and ``verify()``, which re-measures
it on this CPU or on an emulated board's CPU."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edge_sdk.verification.report import VerifyReport, verify

__all__ = ["VerifyReport", "verify"]


def __getattr__(name: str) -> Any:
    # Imported on first use: an emulated board runs ``python -m edge_sdk.verification.reference_set`` with
    # only the runtime installed, and the report side needs the converters' parity code (and onnx).
    if name in __all__:
        from edge_sdk.verification import report

        return getattr(report, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
