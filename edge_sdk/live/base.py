"""What the audio and the video loop do alike: the summary's ending and text, and the loop's skeleton
(callbacks and the JSONL event log, stop, the run with Ctrl-C and flush, the stage guard that turns an
error into :class:`StageFailed`, event delivery and closing everything).

SIGTERM (systemd, ``docker stop``) and SIGHUP end a loop exactly as Ctrl-C does: while a loop runs on the
main thread they raise the same ``KeyboardInterrupt``, so the stages are flushed, files are finalised
under their names and the summary says ``interrupted``; ``edge-sdk`` then exits 0, as after Ctrl-C."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

from edge_sdk.errors import StageFailed
from edge_sdk.live.events import EventLog
from edge_sdk.live.stats import format_table, unique_names
from edge_sdk.stages.base import Event

EventCallback = Callable[[Event], Any]

# Signals a service manager or a closing terminal sends to end a process; SIGHUP does not exist on Windows.
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


def _interrupt(signum: int, frame: Any) -> None:
    """Raise what Ctrl-C raises, so a stop signal takes the loop's one clean-stop path."""
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextmanager
def stop_signals_as_ctrl_c() -> Iterator[None]:
    """While inside, SIGTERM and SIGHUP raise ``KeyboardInterrupt``; the previous handlers are put back
    after. Only on the main thread (``signal.signal`` works nowhere else): elsewhere nothing changes. A
    signal that is ignored (SIGHUP under ``nohup``) stays ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {}
    try:
        for signum in STOP_SIGNALS:
            if signal.getsignal(signum) is not signal.SIG_IGN:
                previous[signum] = signal.signal(signum, _interrupt)
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class SummaryText:
    """Mixin for a loop's summary dataclass, which has the fields ``interrupted``, ``stopped``,
    ``running`` and ``notes``, a ``COLUMNS`` list and ``rows()`` and ``headline()``."""

    COLUMNS: list[str]
    interrupted: bool
    stopped: bool
    running: bool
    notes: list[str]

    @property
    def ending(self) -> str:
        """How the loop ended: interrupted (Ctrl-C), stopped (``stop()``), done (also at a limit), or
        still running."""
        for word, on in (
            ("interrupted", self.interrupted),
            ("stopped", self.stopped),
            ("running", self.running),
        ):
            if on:
                return word
        return "done"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)  # type: ignore[call-overload]

    def rows(self) -> list[list[str]]:
        raise NotImplementedError

    def headline(self) -> str:
        raise NotImplementedError

    def text(self) -> str:
        """The summary as plain text: the headline, the table, the notes."""
        lines = [self.headline(), *format_table(self.COLUMNS, self.rows())]
        return "\n".join(lines + [f"note: {n}" for n in self.notes])


def close_all(
    closers: list[tuple[str, Callable[[], Any]]], failure: BaseException | None, log: logging.Logger
) -> None:
    """Call every closer even if one fails; the first such error is raised unless the loop is already
    failing for another reason (which must not be masked)."""
    first: BaseException | None = None
    for what, close in closers:
        try:
            close()
        except Exception as e:
            log.error("closing %s failed: %s", what, e)
            first = first or e
    if first is not None and failure is None:
        raise first


class LoopBase:
    """The loop skeleton both loops share; a loop sets ``_log``, calls :meth:`_setup` and
    :meth:`_reset_common`, and gives :meth:`_run` its feeding and flushing, and :meth:`_closers`."""

    _log: logging.Logger

    def _setup(
        self,
        source: Any,
        stages: Sequence[Any],
        on_event: EventCallback | Sequence[EventCallback] | None,
        events_path: str | os.PathLike[str] | None,
        notes: Sequence[str],
        close_source: bool,
    ) -> None:
        self.source = source
        self.stages = list(stages)
        self._callbacks: list[EventCallback] = (
            [] if on_event is None else [on_event] if callable(on_event) else list(on_event)
        )
        self._events_path = events_path
        self.notes = list(notes)
        self.close_source = close_source
        self._names = unique_names([getattr(s, "name", type(s).__name__) for s in self.stages])
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def _reset_common(self) -> None:
        self._events: dict[str, int] = {}
        self._t0: float | None = None
        self._wall = 0.0
        self._interrupted = False
        self._running = False

    def _wall_so_far(self) -> float:
        return time.perf_counter() - self._t0 if self._running and self._t0 else self._wall

    def stop(self) -> None:
        """End the loop after the current block or frame (safe from another thread or from a callback)."""
        self._stop.set()

    def summary(self) -> Any:
        raise NotImplementedError

    def _run(self, feed: Callable[[list[EventCallback]], None], flush: Callable[[], Any]) -> None:
        """Feed the source (``feed`` gets the callbacks, the event log among them), on Ctrl-C (or SIGTERM or
        SIGHUP, see :func:`stop_signals_as_ctrl_c`) note the interruption; then ``flush`` the stages (it
        returns the end block or frame, whose events are delivered) and close everything whatever
        happens."""
        self._stop.clear()
        callbacks = list(self._callbacks)
        event_log = EventLog(self._events_path) if self._events_path is not None else None
        if event_log is not None:
            callbacks.append(event_log)
        failure: BaseException | None = None
        self._t0, self._running = time.perf_counter(), True
        # The handlers stay until everything is closed: a stop signal while finishing ends it as a second
        # Ctrl-C would, never by the default action that leaves no trace of the run.
        with stop_signals_as_ctrl_c():
            try:
                try:
                    feed(callbacks)
                except KeyboardInterrupt as e:
                    self._log.info("interrupted%s: flushing the stages", f" ({e.args[0]})" if e.args else "")
                    self._interrupted = True
                end = flush()
                self._deliver(end.events, callbacks)
            except BaseException as e:
                failure = e
                raise
            finally:
                with self._lock:
                    self._wall = time.perf_counter() - self._t0
                    self._running = False
                close_all(self._closers(event_log), failure, self._log)

    def _closers(self, event_log: EventLog | None) -> list[tuple[str, Callable[[], Any]]]:
        raise NotImplementedError

    def _source_closer(self) -> list[tuple[str, Callable[[], Any]]]:
        if self.close_source and hasattr(self.source, "close"):
            return [("source", self.source.close)]
        return []

    def _guard(self, name: str, unit: Any, call: Callable[[Any], Any]) -> Any:
        try:
            return call(unit)
        except (KeyboardInterrupt, StageFailed):
            raise
        except Exception as e:
            raise StageFailed(name, unit, e, self.summary()) from e

    def _deliver(self, events: list[Event], callbacks: list[EventCallback]) -> None:
        for event in events:
            with self._lock:
                self._events[event.kind] = self._events.get(event.kind, 0) + 1
            for callback in callbacks:
                callback(event)
