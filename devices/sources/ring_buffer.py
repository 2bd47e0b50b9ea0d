"""A byte ring buffer between an audio callback (the producer) and the capture loop (the consumer).

The producer side is written for PortAudio's callback thread: ``write`` copies into memory allocated
once, holds the lock only for that copy, never blocks waiting for room and never raises on a full
buffer. When the consumer has fallen behind, the write either replaces the oldest data
(``drop="oldest"``: the reader stays close to "now", which is what a live keyword spotter wants) or
is discarded (``drop="newest"``: what was buffered stays intact). Either way the loss is counted.
"""

from __future__ import annotations

import threading
from typing import Literal

from edge_sdk.errors import BadInputError

DropPolicy = Literal["oldest", "newest"]


class RingBuffer:
    """A fixed-capacity FIFO of bytes for one producer thread and one consumer thread.

    ``capacity`` is in bytes. If every write has the same length and ``capacity`` is a multiple of it,
    a drop always loses whole writes, so ``dropped_bytes // write_length`` is the number of lost
    chunks. ``overruns`` counts the writes that lost data (their own or older data).
    """

    def __init__(self, capacity: int, *, drop: DropPolicy = "oldest") -> None:
        if capacity <= 0:
            raise BadInputError(f"ring buffer capacity must be positive, got {capacity}")
        if drop not in ("oldest", "newest"):
            raise BadInputError(f"ring buffer drop policy must be 'oldest' or 'newest', got {drop!r}")
        self.capacity = capacity
        self.drop: DropPolicy = drop
        self.overruns = 0
        self.dropped_bytes = 0
        self.written_bytes = 0
        self._buf = bytearray(capacity)
        self._read = 0  # index of the oldest byte
        self._size = 0
        self._closed = False
        self._lock = threading.Lock()
        # Set exactly while there is data to read (or the buffer is closed); changed only under _lock.
        self._ready = threading.Event()

    def __len__(self) -> int:
        return self._size

    @property
    def closed(self) -> bool:
        """True once ``close`` was called; reads then return what is left, then nothing."""
        return self._closed

    def write(self, data: bytes | bytearray | memoryview) -> bool:
        """Copy ``data`` in; return False if any data (new or old) was dropped to make room.

        Safe to call from an audio callback: no allocation beyond the memoryview, one short lock.
        """
        view = memoryview(data).cast("B")
        n = len(view)
        if n == 0 or self._closed:
            return True
        with self._lock:
            self.written_bytes += n
            lost = 0
            if self.drop == "newest":
                if n > self.capacity - self._size:
                    self.overruns += 1
                    self.dropped_bytes += n
                    return False
            else:
                if n > self.capacity:  # longer than the whole buffer: only its tail can survive
                    lost += n - self.capacity
                    view = view[n - self.capacity :]
                    n = self.capacity
                excess = n - (self.capacity - self._size)
                if excess > 0:
                    self._read = (self._read + excess) % self.capacity
                    self._size -= excess
                    lost += excess
                if lost:
                    self.overruns += 1
                    self.dropped_bytes += lost
            start = (self._read + self._size) % self.capacity
            first = min(n, self.capacity - start)
            self._buf[start : start + first] = view[:first]
            if first < n:
                self._buf[: n - first] = view[first:]
            self._size += n
            self._ready.set()
            return lost == 0

    def read(self, max_bytes: int | None = None, *, timeout: float | None = None) -> bytes:
        """Take up to ``max_bytes`` (all there is by default), waiting up to ``timeout`` seconds for any.

        Returns ``b""`` when nothing arrived in time or the buffer is closed and empty. Callers wanting
        Ctrl-C to work should pass a short timeout and loop.
        """
        if not self._ready.wait(timeout):
            return b""
        with self._lock:
            n = self._size if max_bytes is None else min(self._size, max_bytes)
            end = self._read + n
            if end <= self.capacity:
                out = bytes(self._buf[self._read : end])
            else:
                out = bytes(self._buf[self._read :]) + bytes(self._buf[: end - self.capacity])
            self._read = end % self.capacity
            self._size -= n
            if self._size == 0 and not self._closed:
                self._ready.clear()
            return out

    def clear(self) -> None:
        """Forget everything buffered (the counters stay)."""
        with self._lock:
            self._read = 0
            self._size = 0
            if not self._closed:
                self._ready.clear()

    def close(self) -> None:
        """Stop accepting writes and wake a waiting reader."""
        with self._lock:
            self._closed = True
            self._ready.set()
