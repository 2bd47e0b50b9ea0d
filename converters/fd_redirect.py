"""Point the process's fd 1 and 2 at a file for a block: TensorFlow's C++ logging (absl lines written
before its log settings apply, CUDA probing) bypasses Python's ``sys.stdout``/``sys.stderr`` and
TF_CPP_MIN_LOG_LEVEL. Used by the Keras source (output to the debug log) and the TFLite worker (output
to the job's log file)."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import IO, Any


@contextlib.contextmanager
def fds_to(f: IO[Any]) -> Iterator[None]:
    """Point fd 1 and 2 at the open file ``f`` for the block, then back (Python's buffers are flushed
    on both sides)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    os.dup2(f.fileno(), 1)
    os.dup2(f.fileno(), 2)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])
