"""What ``run audio`` and ``run video`` print when their loop ends: the loop's summary."""

from __future__ import annotations

from typing import TYPE_CHECKING

from edge_sdk.cli import console

if TYPE_CHECKING:
    from edge_sdk.live.base import SummaryText


def print_summary(summary: SummaryText, unit: str, as_json: bool) -> None:
    """The summary as JSON on stdout, or for people: its headline, the per-stage table of latency per
    ``unit`` (a block of audio, a frame of video), and its notes."""
    if as_json:
        console.emit_json(summary.to_dict())
        return
    console.out.print(summary.headline(), markup=False, highlight=False)
    console.table(f"per stage (latency per {unit})", summary.COLUMNS, summary.rows())
    for note in summary.notes:
        console.out.print(f"note: {note}", markup=False, highlight=False)
