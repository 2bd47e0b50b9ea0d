"""Smoke test of bench/video_quality.py: a quick run on a few small frames through the bundled model,
NLM and the bilateral filter writes a report with every table and the targets. The benchmark itself is a
script, not a test."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest


@pytest.fixture(scope="module")
def vq(bench_module: Callable[..., ModuleType]) -> ModuleType:
    """bench/video_quality.py imported as a module."""
    return bench_module("video_quality", "cv2", "skimage")


def test_quick_bench_writes_a_report(vq: ModuleType, tmp_path: Path) -> None:
    report = tmp_path / "video-quality.md"
    args = ["--quick", "--sigmas", "25", "--frames", "2", "--images", "2", "--bm3d-frames", "0"]
    args += ["--seconds", "0.1", "--variants", "onnx-fp32", "--report", str(report)]
    results = vq.main(args)
    q = results["quality"]
    assert set(q) == {"held-out images", "vtest.avi"} and results["sets"]["vtest.avi"] == 2
    assert set(q["vtest.avi"]) == {"noisy", "ours onnx-fp32", "OpenCV NLM", "bilateral", vq.LUMA_BOUND}
    for rows in q.values():
        assert rows["noisy"]["25"]["psnr"] < rows["ours onnx-fp32"]["25"]["psnr"]
    assert results["fps"]["ours onnx-fp32"] > 0 and results["params"]["25"]["nlm_h"] > 0
    assert set(results["params"]["25"]) == {
        "nlm_h",
        "nlm_h_color",
        "bilateral_sigma_color",
        "bilateral_sigma_space",
    }
    text = report.read_text()
    assert text.startswith("# Video denoiser") and "python bench/video_quality.py --quick" in text
    assert "## vtest.avi (2 frames)" in text and "## Targets" in text


def test_noise_is_seeded(vq: ModuleType) -> None:
    clean = np.full((16, 16, 3), 128, np.uint8)
    assert np.array_equal(vq.noisy_of(clean, 25, 3), vq.noisy_of(clean, 25, 3))
    assert not np.array_equal(vq.noisy_of(clean, 25, 3), vq.noisy_of(clean, 25, 4))


def test_tune_searches_each_parameter_in_turn(vq: ModuleType) -> None:
    """A toy method that outputs the constant a + b: from (50, 0) the search moves a to 100, then b to 10
    (110 is nearest the clean 108), and the second round keeps them; it never needs the whole grid."""
    calls: list[tuple[float, float]] = []

    def make(a: float, b: float):  # noqa: ANN202
        calls.append((a, b))
        return lambda x, s: np.full_like(x, int(a + b))

    clean = np.full((8, 8, 3), 108, np.uint8)
    assert vq.tune(make, [(50, 90, 100), (0, 10, 30)], 25, [clean]) == (100, 10)
    assert len(set(calls)) == len(calls) < 9  # each pair scored once, not all nine
