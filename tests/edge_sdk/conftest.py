from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from edge_sdk import zoo
from edge_sdk.demo.formats import read_wav


@pytest.fixture(scope="session")
def silero_cache() -> Path:
    """A model cache kept between test runs (under the repo's ignored .cache/), holding Silero VAD pulled
    from its PyPI wheel, so the suite downloads it once per checkout."""
    cache = Path(__file__).resolve().parents[2] / ".cache" / "test-models"
    zoo.pull("silero-vad", cache_dir=cache)
    return cache


@pytest.fixture(scope="session")
def embedding_cache(silero_cache: Path) -> Path:
    """The same kept cache, also holding the speech-embedding front end's two models (openWakeWord's,
    from its PyPI wheel), which ``zoo:commands`` hears through. Point EDGE_SDK_CACHE or ``cache_dir``
    at it."""
    for name in ("oww-melspectrogram", "oww-speech-embedding"):
        zoo.pull(name, cache_dir=silero_cache)
    return silero_cache


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    """The bundled LibriVox clip (two sentences between silences) as float32 at 16 kHz."""
    with resources.as_file(
        resources.files("edge_sdk") / "samples" / "librivox-sense-and-sensibility.wav"
    ) as p:
        return read_wav(p)
