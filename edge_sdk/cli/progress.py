"""Progress for people when there is no terminal to draw bars on: one line per stage, at most every few
seconds, with counts and an estimate of the time left. Standard library only, so progress never fails
for want of a package; the CLI draws rich bars instead when stderr is a terminal (``console.py``).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import TextIO


def eta_text(seconds: float | None) -> str:
    """``75.2`` → ``'1:15'``; None → ``'?'``."""
    if seconds is None:
        return "?"
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


@dataclass
class _Stage:
    started: float
    printed: float = 0.0
    done: int = 0
    ended: bool = False


@dataclass
class LinePrinter:
    """A ``progress(stage, done, total)`` callback that writes ``stage  done/total  ETA m:ss`` lines.

    A stage prints when it starts, when it finishes, and in between at most every ``interval`` seconds,
    so a log stays short whatever the number of steps. A stage that starts over (done falls back) is
    timed afresh.
    """

    stream: TextIO = field(default_factory=lambda: sys.stderr)
    interval: float = 3.0
    clock: object = time.monotonic
    _stages: dict[str, _Stage] = field(default_factory=dict)

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        now = self.clock()  # type: ignore[operator]
        st = self._stages.get(stage)
        if st is None or done < st.done:
            st = self._stages[stage] = _Stage(started=now)
            first = True
        else:
            first = False
        st.done = done
        finished = total is not None and done >= total
        if st.ended or not (first or finished or now - st.printed >= self.interval):
            return
        st.ended = finished
        st.printed = now
        count = f"{done}/{total}" if total else f"{done}"
        if finished:
            tail = f"done in {eta_text(now - st.started)}"
        elif total and done:
            tail = f"ETA {eta_text((now - st.started) / done * (total - done))}"
        else:
            tail = "ETA ?"
        self.stream.write(f"{stage:>10}  {count:>9}  {tail}\n")
        self.stream.flush()
