"""What the CLI shows people: logging set-up, progress bars, and tables (rich), kept out of the library."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

# Piped output gets room for the wide tables instead of rich's 80-column default.
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)
# Messages are never hard-wrapped: a terminal wraps long lines itself, and a log file or a pipe must get
# each message whole (a path split across lines cannot be searched for).
err = Console(stderr=True, soft_wrap=True)


def setup_logging(verbose: bool, quiet: bool) -> None:
    """edge_sdk's loggers to stderr through rich; third-party noise only with ``--verbose``."""
    level = logging.DEBUG if verbose else logging.ERROR if quiet else logging.WARNING
    handler: logging.Handler
    if err.is_terminal:
        handler = RichHandler(console=err, show_time=False, show_path=False, markup=False)
    else:  # rich lays records out in columns of the terminal's width; a pipe gets one line per record
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # onnxruntime's quantiser logs its advice on the root logger; only edge_sdk speaks by default.
    root.setLevel(logging.DEBUG if verbose else logging.ERROR)
    logging.getLogger("edge_sdk").setLevel(level)
    if not verbose:
        try:
            import onnxruntime

            onnxruntime.set_default_logger_severity(3)
        except ImportError:
            pass


@contextlib.contextmanager
def progress_bars(enabled: bool) -> Iterator[Any]:
    """A ``progress(stage, done, total)`` callback: one rich bar per stage (counts, ETA) when stderr is a
    terminal, else a line per stage at most every few seconds; None when disabled (``--quiet``)."""
    if not enabled:
        yield None
        return
    if not err.is_terminal:
        from edge_sdk.cli.progress import LinePrinter

        yield LinePrinter(sys.stderr)
        return
    bars = Progress(
        TextColumn("{task.description:>10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )
    tasks: dict[str, Any] = {}

    def update(stage: str, done: int, total: int | None) -> None:
        if stage not in tasks or (done == 1 and bars.tasks[tasks[stage]].completed > 1):
            tasks[stage] = bars.add_task(stage, total=total)
        bars.update(tasks[stage], completed=done, total=total)

    with bars:
        yield update


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print a table for people."""
    t = Table(title=title, title_justify="left")
    for i, c in enumerate(columns):
        # The first column names the row; wrapping it makes tables unreadable in narrow terminals.
        t.add_column(c, overflow="fold", no_wrap=i == 0)
    for r in rows:
        t.add_row(*("" if v is None else str(v) for v in r))
    out.print(t)


def emit_json(data: Any) -> None:
    """Print JSON for machines (stdout, nothing else on it)."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def fmt_size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def fmt_err(x: float | None) -> str:
    return "" if x is None else f"{x:.2e}"
