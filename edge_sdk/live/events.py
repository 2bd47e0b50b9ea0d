"""The JSONL event log: one stage event per line, flushed as it is written, so a crash loses nothing."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from edge_sdk.errors import BadInputError
from edge_sdk.stages.base import Event


def event_record(event: Event, wall: float | None = None) -> dict[str, Any]:
    """The JSON object of one event: its kind (``event``), stage, stream ``time`` and fields, plus the
    wall-clock moment it was delivered (``wall``, ISO 8601 UTC, and ``wall_time``, Unix seconds)."""
    wall = time.time() if wall is None else wall
    return {
        **event.to_dict(),
        "wall": datetime.fromtimestamp(wall, timezone.utc).isoformat(timespec="milliseconds"),
        "wall_time": round(wall, 6),
    }


class EventLog:
    """Appends events to a JSONL file; a callable, so it is just another ``on_event`` of a loop.

    The file is created (or truncated) on construction; each line is flushed to the OS at once, so
    a killed process leaves every event it had delivered, each on a whole line.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.count = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file: IO[str] | None = self.path.open("w", encoding="utf-8")
        except OSError as e:
            raise BadInputError(f"cannot write the event log {self.path}: {e.strerror or e}") from e

    def __call__(self, event: Event) -> None:
        """Write one event as one line and flush it."""
        if self._file is None:
            raise ValueError(f"event log {self.path} is closed")
        self._file.write(json.dumps(event_record(event), default=str) + "\n")
        self._file.flush()
        self.count += 1

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_events(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The events of a JSONL log, in order (a torn last line, from a crash mid-write, is skipped)."""
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out
