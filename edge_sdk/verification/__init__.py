"""Numbers that travel: the small reference set an artifact carries, and ``verify()``, which re-measures
it on this CPU or on an emulated board's CPU."""

from edge_sdk.verification.report import VerifyReport, verify

__all__ = ["VerifyReport", "verify"]
