"""The last few seconds of a stream's audio, addressed by stream time: what a stage that acts on whole
speech segments (a recogniser, a VAD asked to hand segments their audio) cuts its segments from."""

from __future__ import annotations

import numpy as np

from edge_sdk.errors import BadInputError


class AudioHistory:
    """Keeps the most recent ``seconds`` of samples and the stream time of the oldest one kept."""

    def __init__(self, seconds: float, sample_rate: int) -> None:
        if seconds <= 0:
            raise BadInputError(f"an audio history must hold some seconds, not {seconds!r}")
        self.capacity = int(round(seconds * sample_rate))
        self.sample_rate = sample_rate
        self.reset()

    def reset(self) -> None:
        self._samples = np.zeros(0, np.float32)
        self._start = 0.0  # stream time of self._samples[0]

    @property
    def end(self) -> float:
        """Stream time just after the newest sample."""
        return self._start + len(self._samples) / self.sample_rate

    def append(self, samples: np.ndarray, start: float) -> None:
        """Add a block whose first sample is at stream time ``start`` (a gap or overlap resets the time
        base to the block's own)."""
        samples = np.asarray(samples, np.float32).reshape(-1)
        if not len(self._samples):
            self._start = start
        joined = np.concatenate([self._samples, samples])
        drop = max(0, len(joined) - self.capacity)
        self._samples = joined[drop:]
        self._start += drop / self.sample_rate

    def between(self, t0: float, t1: float) -> np.ndarray:
        """The samples from stream time ``t0`` to ``t1``, clipped to what is still kept."""
        i0 = max(0, int(round((t0 - self._start) * self.sample_rate)))
        i1 = max(i0, int(round((t1 - self._start) * self.sample_rate)))
        return self._samples[i0:i1].copy()
