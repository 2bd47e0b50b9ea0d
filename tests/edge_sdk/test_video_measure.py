"""The measuring stages on real footage (OpenCV's vtest.avi): AddNoise is seeded and has the asked sigma,
PsnrMeter agrees with scikit-image's PSNR and scores against the clean capture, not the input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_sdk.errors import BadInputError
from edge_sdk.stages import make
from edge_sdk.stages.base import Frame
from edge_sdk.stages.video_measure import AddNoise, PsnrMeter, psnr

cv2 = pytest.importorskip("cv2", reason="needs the camera extra (OpenCV)")
VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


@pytest.fixture(scope="module")
def clean() -> list[np.ndarray]:
    if not VTEST.exists():
        pytest.fail(f"{VTEST} is missing: apt-get install opencv-doc")
    cap = cv2.VideoCapture(str(VTEST))
    frames = [cap.read()[1] for _ in range(3)]
    cap.release()
    return frames


def _frames(images: list[np.ndarray]) -> list[Frame]:
    return [Frame(img, i / 10, i, raw=img) for i, img in enumerate(images)]


def test_noise_has_its_sigma_and_replays_after_reset(clean: list[np.ndarray]) -> None:
    stage = make("video", "noise", sigma=15.0, seed=3)
    first = [stage.process(f).image for f in _frames(clean)]
    diff = first[0].astype(np.float64) - clean[0]
    unclipped = (clean[0] > 60) & (clean[0] < 195)  # far from 0 and 255, where clipping bends the noise
    assert np.std(diff[unclipped]) == pytest.approx(15.0, rel=0.05)
    assert not np.array_equal(first[0] - clean[0], first[1] - clean[1])  # fresh noise every frame
    stage.reset()
    again = [stage.process(f).image for f in _frames(clean)]
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    with pytest.raises(BadInputError, match="sigma"):
        AddNoise(-1)


def test_psnr_meter_scores_against_the_clean_capture(clean: list[np.ndarray]) -> None:
    from skimage.metrics import peak_signal_noise_ratio

    noise, meter = AddNoise(25.0), PsnrMeter("noisy")
    for f in _frames(clean):
        out = meter.process(noise.process(f))
        assert out.raw is f.raw
        assert meter.scores[-1] == pytest.approx(peak_signal_noise_ratio(f.raw, out.image, data_range=255))
    assert 19.0 < meter.mean_db < 22.0  # sigma 25 gives about 20.2 dB before clipping
    assert psnr(clean[0], clean[0]) == float("inf")
    with pytest.raises(BadInputError, match="clean capture"):
        PsnrMeter().process(Frame(clean[0], 0.0, 0))
