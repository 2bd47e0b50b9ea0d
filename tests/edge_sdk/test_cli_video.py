"""End to end through the installed ``edge-sdk``: ``run video`` on video files and ``devices --video`` on
recorded sysfs/dev trees."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2", reason="needs the camera extra")
pytestmark = pytest.mark.camera

EXE = shutil.which("edge-sdk", path=str(Path(sys.executable).parent)) or "edge-sdk"
VTEST = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"
TREES = Path(__file__).resolve().parents[1] / "devices" / "fixtures" / "video"
SAMPLE = Path(__file__).resolve().parents[2] / "edge_sdk" / "samples" / "chelsea-pan-3s.avi"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=120, env=dict(os.environ))


@pytest.fixture(scope="module")
def clip(
    tmp_path_factory: pytest.TempPathFactory, write_video: Callable[..., list[np.ndarray]]
) -> tuple[Path, list[np.ndarray]]:
    """Twelve frames of seeded noise at 25 fps, lossless."""
    path = tmp_path_factory.mktemp("video") / "clip.avi"
    return path, write_video(path, 12, seed=7)


def test_run_video_writes_a_lossless_copy_and_the_summary(
    clip, tmp_path: Path, read_video: Callable[[Path], list[np.ndarray]]
) -> None:
    path, frames = clip
    out, events = tmp_path / "out.avi", tmp_path / "ev.jsonl"
    r = cli("run", "video", "--source", str(path), "--denoise", "none", "--out", str(out), "--events",
            str(events), "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["frames"] == 12 and summary["drops"] == 0 and summary["source"] == "clip.avi"
    assert summary["decode_errors"] == summary["frames_skipped"] == 0
    assert [s["name"] for s in summary["sinks"]] == ["→ writer out.avi"] and summary["total"]["blocks"] == 12
    back = read_video(out)
    assert len(back) == 12 and all(np.array_equal(a, b) for a, b in zip(back, frames, strict=True))
    assert events.exists() and events.read_text() == ""


def test_run_video_table_and_frame_limit() -> None:
    r = cli("run", "video", "--source", VTEST, "--frames", "5")
    assert r.returncode == 0, r.stderr
    assert "vtest.avi: 5 frames 768x576" in r.stdout and "per stage (latency per frame)" in r.stdout
    r = cli("run", "video", "--source", VTEST, "--seconds", "0.3", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["frames"] == 4


def test_run_video_on_a_corrupt_file_runs_past_the_damage_and_exits_1(
    tmp_path: Path, mjpeg_clip: Any
) -> None:
    bad = mjpeg_clip.damaged(tmp_path / "bad.avi", zero=range(10, 13))
    r = cli("run", "video", "--source", str(bad))
    assert r.returncode == 1, r.stderr
    headline = r.stdout.splitlines()[0]
    assert headline.startswith("bad.avi: 21 frames 192x144") and ", done;" in headline
    assert "input lost: frames skipped 3, decode errors 3" in headline
    assert "per stage (latency per frame)" in r.stdout
    assert "error:" in r.stderr and "3 frames of the file could not be decoded and were skipped" in r.stderr
    r = cli("run", "video", "--source", str(bad), "--json")
    assert r.returncode == 1
    summary = json.loads(r.stdout)
    assert (summary["frames"], summary["decode_errors"], summary["frames_skipped"]) == (21, 3, 3)
    # Stopped before the damage: nothing was lost.
    r = cli("run", "video", "--source", str(bad), "--frames", "8")
    assert r.returncode == 0, r.stderr
    assert "input lost" not in r.stdout


def test_run_video_on_a_truncated_file_exits_1(tmp_path: Path, mjpeg_clip: Any) -> None:
    cut = mjpeg_clip.damaged(tmp_path / "cut.avi", cut_before=15)
    r = cli("run", "video", "--source", str(cut), "--json")
    assert r.returncode == 1, r.stderr
    summary = json.loads(r.stdout)
    assert (summary["frames"], summary["decode_errors"], summary["frames_skipped"]) == (15, 0, 9)
    assert "ended after 15 of the 24 frames it lists" in r.stderr


def test_run_video_with_an_image_model(
    clip, tmp_path: Path, read_video: Callable[[Path], list[np.ndarray]]
) -> None:
    from onnx import TensorProto, helper, numpy_helper, save

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, "h", "w"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, "h", "w"])
    one = numpy_helper.from_array(np.ones(1, np.float32), "one")
    graph = helper.make_graph([helper.make_node("Sub", ["one", "x"], ["y"])], "invert", [x], [y], [one])
    model = tmp_path / "invert.onnx"
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9), str(model))
    path, frames = clip
    out = tmp_path / "inverted.mkv"
    r = cli("run", "video", "--source", str(path), "--denoise", str(model), "--out", str(out), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["stages"][0]["blocks"] == 12
    back = read_video(out)
    assert len(back) == 12
    for a, b in zip(back, frames, strict=True):
        assert np.abs(a.astype(int) - (255 - b.astype(int))).max() <= 1


def test_a_failing_stage_prints_the_summary_so_far_then_the_error(clip, tmp_path: Path) -> None:
    from onnx import TensorProto, helper, numpy_helper, save

    # Declared for any image size, but its graph reshapes to 8x8: onnxruntime fails on the first frame.
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, "h", "w"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, "h", "w"])
    shape = numpy_helper.from_array(np.array([1, 3, 8, 8], np.int64), "shape")
    graph = helper.make_graph([helper.make_node("Reshape", ["x", "shape"], ["y"])], "8x8", [x], [y], [shape])
    model = tmp_path / "8x8.onnx"
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9), str(model))
    path, _ = clip
    for json_flag in ([], ["--json"]):
        r = cli("run", "video", "--source", str(path), "--denoise", str(model), *json_flag)
        assert r.returncode == 1 and r.stdout == "", r.stdout + r.stderr
        headline = r.stderr.index(f"{path.name}: 0 frames")
        row = r.stderr.index("video.denoise ", headline)
        error = r.stderr.index("error: stage video.denoise failed on frame 0", row)
        assert "Reshape" in r.stderr[error:]


def test_run_video_serves_a_preview(clip) -> None:
    path, _ = clip
    proc = subprocess.Popen(
        [EXE, "run", "video", "--source", str(path), "--preview", "127.0.0.1:0", "--realtime", "--loop",
         "--seconds", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line.startswith("preview: http://127.0.0.1:"), line + proc.stderr.read()  # type: ignore[union-attr]
        with urllib.request.urlopen(line.split()[1] + "stats.json", timeout=10) as resp:
            stats = json.loads(resp.read())
        # The loop's live_stats, as the preview's overlay shows them.
        assert {"fps", "p50_ms", "p99_ms", "drops", "frames", "reconnects"} <= set(stats)
        assert stats["source"] == "clip.avi" and stats["drops"] == 0
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "frames 64x48" in out


def test_sigterm_ends_the_run_as_ctrl_c_does(
    tmp_path: Path, read_video: Callable[[Path], list[np.ndarray]]
) -> None:
    # systemd and `docker stop` send SIGTERM: the file must be finished under its name, not left partial.
    out, events = tmp_path / "out.mkv", tmp_path / "ev.jsonl"
    with_default = (
        "import os, signal, sys; signal.signal(signal.SIGTERM, signal.SIG_DFL); "
        "os.execv(sys.argv[1], sys.argv[1:])"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", with_default, EXE, "run", "video", "--source", str(SAMPLE), "--realtime",
         "--loop", "--out", str(out), "--events", str(events), "--preview", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line.startswith("preview: http://127.0.0.1:"), line + proc.stderr.read()  # type: ignore[union-attr]
        deadline, frames = time.monotonic() + 60, 0
        while frames < 5 and time.monotonic() < deadline:  # the loop has written frames: it is running
            with urllib.request.urlopen(line.split()[1] + "stats.json", timeout=10) as resp:
                frames = json.loads(resp.read())["frames"]
        proc.send_signal(signal.SIGTERM)
        stdout, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err  # as after Ctrl-C
    headline = re.search(r"chelsea-pan-3s\.avi: (\d+) frames .*, interrupted;", stdout)
    assert headline and "per stage" in stdout, stdout
    back = read_video(out)
    # A signal between the writer's write and the count leaves the file one frame ahead of the summary.
    assert 5 <= int(headline[1]) <= len(back) <= int(headline[1]) + 1
    assert np.array_equal(back[0], read_video(SAMPLE)[0])  # lossless, from the first frame
    assert events.read_text() == ""  # no stages, no events; the log was closed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ev.jsonl", "out.mkv"]  # no partial file left


def _preview_url_on_stderr(proc: subprocess.Popen[str]) -> str:
    """The address from the ``preview:`` line on stderr (other lines, such as the warning, are skipped)."""
    while line := proc.stderr.readline():  # type: ignore[union-attr]
        if line.startswith("preview: "):
            return line.split()[1]
    pytest.fail(f"no preview line on stderr; stdout: {proc.stdout.read()}")  # type: ignore[union-attr]


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code


@pytest.mark.parametrize(
    ("bind", "token"), [("0.0.0.0:0", None), ("127.0.0.1:0", "given-token")], ids=["generated", "given"]
)
def test_run_video_preview_token(clip, bind: str, token: str | None) -> None:
    path, _ = clip
    extra = [] if token is None else ["--preview-token", token]
    proc = subprocess.Popen(
        [EXE, "run", "video", "--source", str(path), "--preview", bind, *extra, "--realtime", "--loop",
         "--seconds", "3", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        url = _preview_url_on_stderr(proc)  # printed with --json too: without it the preview is useless
        base, _, query = url.partition("?")
        if token is None:  # generated: long enough not to be guessed
            assert query.startswith("token=") and len(query) > len("token=") + 15, url
        else:
            assert query == f"token={token}", url
        local = "http://127.0.0.1:" + base.rsplit(":", 1)[1]
        assert _status(local + "stats.json") == 403
        assert _status(local + "stats.json?" + query) == 200
        proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--source", "/nonexistent/clip.mp4"], "does not exist"),
        (["--source", "camera:7"], "/dev/video7 does not exist"),
        (["--source", VTEST, "--out", "x.gif"], "must be one of .mp4, .avi, .mkv"),
        (["--source", VTEST, "--preview", "localhost:http"], "--preview takes [HOST]:PORT"),
        (["--source", VTEST, "--frames", "0"], "--frames must be at least 1"),
    ],
)
def test_run_video_bad_input_exits_2(args: list[str], message: str) -> None:
    r = cli("run", "video", *args)
    assert r.returncode == 2, r.stdout + r.stderr
    assert message in " ".join(r.stderr.split())


def test_devices_video_lists_cameras() -> None:
    r = cli("devices", "--video", "--root", str(TREES / "usb-webcam-laptop"), "--json")
    assert r.returncode == 0, r.stderr
    cams = json.loads(r.stdout)
    assert [c["path"] for c in cams if c["source"]] == ["/dev/video0", "/dev/video2"]
    r = cli("devices", "--video", "--root", str(TREES / "raspberry-pi-5-csi"))
    assert r.returncode == 0 and "imx708" in r.stdout and "picamera2" in r.stdout
    r = cli("devices", "--video", "--root", str(TREES / "no-camera"))
    assert r.returncode == 0 and "no cameras found" in r.stdout


def test_a_preview_token_without_a_preview_is_refused(clip) -> None:
    path, _ = clip
    r = cli("run", "video", "--source", str(path), "--preview-token", "secret", "--frames", "1")
    assert r.returncode == 2 and "--preview-token" in r.stderr and "--preview ADDRESS" in r.stderr
