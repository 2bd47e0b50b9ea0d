"""bench/soak.py: the fit and the verdict on synthetic series, and a few seconds of stream through each
loop writing the three reports. The soak runs themselves are a script, not a test."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

SAMPLES_DIR = Path(__file__).resolve().parents[2] / "edge_sdk" / "samples"


@pytest.fixture(scope="module")
def soak(bench_module: Callable[..., ModuleType]) -> ModuleType:
    """bench/soak.py imported as a module."""
    return bench_module("soak")


def series(soak: ModuleType, rss: Callable[[float], float], threads: Callable[[int], int]) -> list:
    """101 samples, one per 36 s of stream (an hour in all) at 4× real time, fds constant."""
    return [soak.Sample(36.0 * i, 9.0 * i, rss(36.0 * i), threads(i), 12) for i in range(101)]


def test_the_slope_is_the_least_squares_line_per_hour_after_the_warm_up(soak: ModuleType) -> None:
    assert soak.slope([0, 1, 2, 3], [3, 5, 7, 9]) == pytest.approx(2.0)
    assert soak.slope([0, 1, 2, 3], [1, 0, 1, 0]) == pytest.approx(-0.2)
    assert soak.slope([5], [1]) is None and soak.slope([2, 2], [1, 3]) is None
    # 100 MiB during the first 10 % (left out by a 20 % warm-up), then 200 MiB + 6 MiB per stream hour.
    samples = series(soak, lambda t: 100.0 if t < 360 else 200.0 + 6.0 * t / 3600, lambda i: 4)
    figs = soak.figures(samples, warmup_s=720.0)
    rss = figs["rss_mib"]
    assert rss["slope_per_stream_hour"] == pytest.approx(6.0)
    assert rss["slope_per_wall_hour"] == pytest.approx(24.0)  # the wall clock ran 4× faster
    assert (rss["start"], rss["min"], rss["fitted_samples"]) == (100.0, 100.0, 81)
    assert rss["end"] == rss["max"] == pytest.approx(206.0)
    assert figs["threads"]["slope_per_stream_hour"] == 0 and figs["fds"]["growth"] == 0
    assert soak.verdict(figs, max_rss_slope=10.0, ending="done") == []
    assert "RSS grows 6.00 MiB" in soak.verdict(figs, max_rss_slope=5.0, ending="done")[0]
    assert "interrupted" in soak.verdict(figs, max_rss_slope=10.0, ending="interrupted")[0]


def test_a_lasting_rise_in_threads_fails_and_a_passing_peak_does_not(soak: ModuleType) -> None:
    assert soak.growth([5, 5, 9, 5, 5, 5]) == 0 and soak.growth([5, 5, 5, 6, 6, 6]) == 1
    peak = series(soak, lambda t: 200.0, lambda i: 9 if i == 50 else 4)
    assert soak.verdict(soak.figures(peak, 720.0), 10.0, "done") == []
    step = series(soak, lambda t: 200.0, lambda i: 4 if i < 60 else 5)
    assert soak.verdict(soak.figures(step, 720.0), 10.0, "done") == ["threads grew by 1 after the warm-up"]


@pytest.mark.parametrize(
    "argv",
    [
        ["audio", "--duration", "3", "--every", "0.5"],
        # 4 s of a 3 s clip: the file is reopened once on the way
        ["video", "--duration", "4", "--every", "0.5", "--scale", "0.5"]
        + ["--video", str(SAMPLES_DIR / "chelsea-pan-3s.avi")],
    ],
    ids=["audio", "video"],
)
def test_a_short_soak_writes_the_series_and_the_summary(
    soak: ModuleType, tmp_path: Path, argv: list[str]
) -> None:
    if argv[0] == "video":
        pytest.importorskip("cv2")
    rc = soak.main([*argv, "--out", str(tmp_path), "--json"])
    report = json.loads((tmp_path / "summary.json").read_text())
    assert rc == (0 if report["ok"] else 1)  # a few seconds cannot tell a leak from warm-up; both are fine
    with (tmp_path / "samples.csv").open() as f:
        rows = list(csv.DictReader(f))
    every, duration = float(argv[4]), float(argv[2])
    assert len(rows) == report["samples"] == round(duration / every) + 1
    stream = [float(r["stream_s"]) for r in rows]
    assert stream == pytest.approx([every * i for i in range(len(rows))])
    assert report["stream_s"] == duration and report["ending"] == "done"
    assert all(float(r["rss_mib"]) > 10 and int(r["threads"]) >= 1 and int(r["fds"]) >= 3 for r in rows)
    assert set(report["figures"]) == {"rss_mib", "threads", "fds"}
    for f in report["figures"].values():
        assert f["min"] <= f["start"] <= f["max"] and f["slope_per_stream_hour"] is not None
    assert report["command"].startswith(f"python bench/soak.py {argv[0]} --duration")
    assert (
        (tmp_path / "summary.md").read_text().startswith(f"# Soak: {argv[0]} loop, {duration:g} s of stream")
    )


def test_bad_settings_exit_2_before_anything_runs(soak: ModuleType, tmp_path: Path) -> None:
    assert soak.main(["audio", "--duration", "0", "--out", str(tmp_path)]) == 2
    assert soak.main(["video", "--duration", "5", "--scale", "2", "--out", str(tmp_path)]) == 2
    assert not any(tmp_path.iterdir())
