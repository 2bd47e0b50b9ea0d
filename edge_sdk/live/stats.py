"""What both capture loops (audio and video) report: latency histograms of constant memory, one stage's
figures and the plain-text summary table. ``StageFailed``, which carries the figures up to a failure, is
one of the errors in :mod:`edge_sdk.errors` and is importable from here as well."""

from __future__ import annotations

import math
from dataclasses import dataclass

from edge_sdk.errors import StageFailed

__all__ = ["LatencyHistogram", "StageFailed", "StageStats", "format_table", "unique_names"]


class LatencyHistogram:
    """Latencies in log-spaced bins (``per_decade`` per factor of ten, from ``low`` to ``high`` seconds):
    constant memory however long the loop runs, quantiles within half a bin (about 3 % at 40 per
    decade). Exact count, total, min and max are kept beside the bins."""

    def __init__(self, low: float = 1e-6, high: float = 100.0, per_decade: int = 40) -> None:
        self.low, self.per_decade = low, per_decade
        self._log_low = math.log10(low)
        self.bins = [0] * (int(round((math.log10(high) - self._log_low) * per_decade)) + 1)
        self.count = 0
        self.total = 0.0
        self.min = math.inf
        self.max = 0.0

    def add(self, seconds: float) -> None:
        """Count one latency."""
        i = int((math.log10(max(seconds, self.low)) - self._log_low) * self.per_decade)
        self.bins[min(i, len(self.bins) - 1)] += 1
        self.count += 1
        self.total += seconds
        self.min = min(self.min, seconds)
        self.max = max(self.max, seconds)

    def quantile(self, q: float) -> float:
        """The ``q``-quantile in seconds (0 when empty): the geometric middle of its bin, kept within
        the exact min and max."""
        if self.count == 0:
            return 0.0
        rank = q * (self.count - 1)
        seen = 0
        for i, n in enumerate(self.bins):
            seen += n
            if seen > rank:
                middle = 10 ** (self._log_low + (i + 0.5) / self.per_decade)
                return min(max(middle, self.min), self.max)
        return self.max

    @property
    def mean(self) -> float:
        """Mean latency in seconds (0 when empty)."""
        return self.total / self.count if self.count else 0.0


@dataclass(frozen=True)
class StageStats:
    """One stage's figures: blocks (or frames) processed, latency per block (ms), total seconds spent,
    and its real-time factor (seconds spent / seconds of stream; below 1 keeps up, 0.05 leaves 95 %
    idle)."""

    name: str
    blocks: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    total_s: float
    rtf: float

    @classmethod
    def of(cls, name: str, h: LatencyHistogram, stream_seconds: float) -> StageStats:
        return cls(
            name,
            h.count,
            h.quantile(0.5) * 1e3,
            h.quantile(0.99) * 1e3,
            h.max * 1e3,
            h.mean * 1e3,
            h.total,
            h.total / stream_seconds if stream_seconds > 0 else 0.0,
        )

    def cells(self) -> list[str]:
        """The row of the summary table."""
        return [
            self.name,
            str(self.blocks),
            f"{self.p50_ms:.3f}",
            f"{self.p99_ms:.3f}",
            f"{self.max_ms:.3f}",
            f"{self.total_s:.2f}",
            f"{self.rtf:.4f}",
        ]


def format_table(columns: list[str], rows: list[list[str]]) -> list[str]:
    """Plain-text table lines: the first column left-aligned, the others right-aligned."""
    widths = [max(len(r[i]) for r in [columns, *rows]) for i in range(len(columns))]
    return [
        "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        for r in [columns, *rows]
    ]


def unique_names(names: list[str]) -> list[str]:
    """Stage names for the table, numbered when the same stage appears twice."""
    return [f"{n}#{names[:i].count(n) + 1}" if names.count(n) > 1 else n for i, n in enumerate(names)]
