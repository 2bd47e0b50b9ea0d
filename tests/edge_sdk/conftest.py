from __future__ import annotations

from pathlib import Path

import pytest

from edge_sdk import zoo


@pytest.fixture(scope="session")
def silero_cache() -> Path:
    """A model cache kept between test runs (under the repo's ignored .cache/), holding Silero VAD pulled
    from its PyPI wheel, so the suite downloads it once per checkout."""
    cache = Path(__file__).resolve().parents[2] / ".cache" / "test-models"
    zoo.pull("silero-vad", cache_dir=cache)
    return cache
