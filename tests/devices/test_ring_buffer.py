"""RingBuffer on real speech bytes: FIFO order across the wrap, both drop policies, a real producer
thread racing a consumer, and the waits (timeout, close) a capture loop relies on."""

from __future__ import annotations

import threading
import time
import wave
from functools import cache
from importlib.resources import files

import numpy as np
import pytest

from edge_sdk.devices.sources.ring_buffer import RingBuffer
from edge_sdk.errors import BadInputError

CHUNK = 640  # 320 int16 samples: one 20 ms block at 16 kHz, what a microphone callback hands over


@cache
def speech_bytes() -> bytes:
    """The bundled 16 kHz speech sample's raw int16 bytes."""
    with wave.open(str(files("edge_sdk") / "samples" / "librivox-sense-and-sensibility.wav")) as w:
        return w.readframes(w.getnframes())


def chunks(n: int | None = None) -> list[bytes]:
    """The speech in callback-sized pieces (the first ``n``)."""
    data = speech_bytes()
    out = [data[i : i + CHUNK] for i in range(0, len(data) - CHUNK + 1, CHUNK)]
    return out[:n] if n else out


def test_fifo_order_survives_the_wrap_with_odd_read_sizes() -> None:
    ring = RingBuffer(CHUNK * 7)
    got = bytearray()
    sizes = iter(np.random.default_rng(1).integers(1, 3 * CHUNK, size=100_000))
    for c in chunks():
        assert ring.write(c)
        while len(ring) > 4 * CHUNK:  # keep it from filling, reading awkward amounts
            got += ring.read(int(next(sizes)), timeout=0)
    got += ring.read(timeout=0)
    assert bytes(got) == b"".join(chunks())
    assert ring.overruns == 0 and ring.dropped_bytes == 0 and ring.written_bytes == len(got)


@pytest.mark.parametrize("drop", ["oldest", "newest"])
def test_a_full_ring_drops_whole_chunks_by_policy(drop: str) -> None:
    ring = RingBuffer(CHUNK * 10, drop=drop)  # type: ignore[arg-type]
    written = chunks(25)
    results = [ring.write(c) for c in written]
    assert results == [True] * 10 + [False] * 15
    assert ring.overruns == 15 and ring.dropped_bytes == 15 * CHUNK and len(ring) == 10 * CHUNK
    kept = written[-10:] if drop == "oldest" else written[:10]
    assert ring.read(timeout=0) == b"".join(kept)
    assert ring.read(timeout=0) == b""


def test_a_write_longer_than_the_ring_keeps_its_tail() -> None:
    data = b"".join(chunks(5))
    ring = RingBuffer(CHUNK * 2)
    assert not ring.write(data)
    assert ring.read() == data[-2 * CHUNK :] and ring.dropped_bytes == 3 * CHUNK
    newest = RingBuffer(CHUNK * 2, drop="newest")
    assert not newest.write(data) and len(newest) == 0


def test_a_producer_thread_racing_the_consumer_loses_nothing_but_what_it_counts() -> None:
    ring = RingBuffer(CHUNK * 8)
    source = chunks()
    done = threading.Event()

    def produce() -> None:
        for c in source:
            ring.write(c)
            if len(ring) > 6 * CHUNK:
                time.sleep(0)  # let the consumer in now and then, like a real callback cadence
        done.set()

    producer = threading.Thread(target=produce)
    producer.start()
    got = bytearray()
    while not (done.is_set() and len(ring) == 0):
        got += ring.read(timeout=0.05)
    producer.join()
    # whatever was dropped, it was whole chunks, the rest arrived in order and intact
    assert len(got) + ring.dropped_bytes == ring.written_bytes == CHUNK * len(source)
    assert len(got) % CHUNK == 0 and ring.dropped_bytes == ring.overruns * CHUNK
    # the chunks received are a subsequence of the chunks sent (greedy match: silence repeats)
    remaining = iter(source)
    for i in range(0, len(got), CHUNK):
        assert any(c == got[i : i + CHUNK] for c in remaining), f"chunk at byte {i} is out of order or torn"


def test_read_waits_for_data_and_times_out() -> None:
    ring = RingBuffer(CHUNK * 4)
    t0 = time.monotonic()
    assert ring.read(timeout=0.1) == b""
    assert time.monotonic() - t0 >= 0.09
    threading.Timer(0.05, ring.write, args=(chunks(1)[0],)).start()
    assert ring.read(timeout=2) == chunks(1)[0]


def test_close_wakes_a_waiting_reader_and_refuses_writes() -> None:
    ring = RingBuffer(CHUNK * 4)
    ring.write(chunks(1)[0])
    ring.clear()
    assert len(ring) == 0 and ring.written_bytes == CHUNK
    threading.Timer(0.05, ring.close).start()
    t0 = time.monotonic()
    assert ring.read(timeout=5) == b""
    assert time.monotonic() - t0 < 2 and ring.closed
    ring.write(chunks(1)[0])
    assert len(ring) == 0


def test_bad_arguments() -> None:
    with pytest.raises(BadInputError, match="positive"):
        RingBuffer(0)
    with pytest.raises(BadInputError, match="'oldest' or 'newest'"):
        RingBuffer(10, drop="middle")  # type: ignore[arg-type]
