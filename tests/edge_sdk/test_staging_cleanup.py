"""Staging directories left by killed runs are removed by the next staging into the same folder, and
only those: a live process's partial directory and anything not named like one stay."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from edge_sdk.manifest import owned_tempdir, staging_dir


def _dead_pid() -> int:
    """The pid of a process that has ended and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _partial(directory: Path, name: str) -> Path:
    path = directory / name
    path.mkdir()
    (path / "model.onnx").write_bytes(b"half written")
    return path


def test_a_staging_removes_dead_runs_partials_and_keeps_the_rest(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dead = _dead_pid()
    stale = _partial(tmp_path, f".kws-onnx-int8.{dead}.abc_1239.partial")
    stale_other = _partial(tmp_path, f".vad-onnx-fp32.{dead}.zz00yy11.partial")
    live = _partial(tmp_path, f".kws-onnx-int8.{os.getpid()}.q8w7e6r5.partial")
    unrelated = [
        _partial(tmp_path, f"kws.{dead}.abcdefgh.partial"),  # not hidden
        _partial(tmp_path, f".kws.{dead}.abcdefg.partial"),  # random part too short
        _partial(tmp_path, f".kws.{dead}.abcdefgh.partial.bak"),
        _partial(tmp_path, ".kws.abcdefgh.partial"),  # no pid: an older version's, owner unknown
        _partial(tmp_path, ".kws.0.abcdefgh.partial"),  # pid 0 is no process
        _partial(tmp_path, "model-output"),
    ]
    (tmp_path / f".notes.{dead}.abcdefgh.partial").write_text("a file, not a staging directory")
    with caplog.at_level(logging.INFO, logger="edge_sdk.manifest"):
        with staging_dir(tmp_path / "kws-onnx-int8") as stage:
            (stage / "model.onnx").write_bytes(b"model")
    assert not stale.exists() and not stale_other.exists()
    assert live.exists() and (live / "model.onnx").read_bytes() == b"half written"
    assert all(p.exists() for p in unrelated) and (tmp_path / f".notes.{dead}.abcdefgh.partial").is_file()
    assert (tmp_path / "kws-onnx-int8" / "model.onnx").read_bytes() == b"model"
    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert sorted(logged) == sorted(
        f"removed {p}, left by an interrupted run (process {dead} is gone)" for p in (stale, stale_other)
    )


def test_a_staging_directory_is_named_for_its_writer(tmp_path: Path) -> None:
    """The pid in the name is what lets a later run tell a dead run's leftovers from a live one's."""
    with staging_dir(tmp_path / "kws-onnx-int8") as stage:
        assert stage.name.startswith(f".kws-onnx-int8.{os.getpid()}.") and stage.name.endswith(".partial")
        # Another staging into the same folder while this one is open leaves it alone.
        with staging_dir(tmp_path / "vad-onnx-fp32") as other:
            (other / "model.onnx").write_bytes(b"model")
        assert stage.is_dir()


def test_a_working_directory_left_by_a_killed_run_is_removed_by_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SIGKILL runs no cleanup at all: the killed conversion's folder stays in the temp folder until the
    # next conversion, which removes it, and only it.
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys\nfrom edge_sdk.manifest import owned_tempdir\n"
            "with owned_tempdir('tflite') as d:\n    (d / 'model.onnx').write_bytes(b'x')\n"
            "    print(d, flush=True)\n    sys.stdin.read()",
        ],
        env=dict(os.environ, TMPDIR=str(tmp_path)),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    left = Path(holder.stdout.readline().strip())
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert left.parent == tmp_path and (left / "model.onnx").exists()
    live = _partial(tmp_path, f"edge-sdk-tflite-{os.getpid()}-abcd1234")
    others = [
        _partial(tmp_path, f"edge-sdk-tflite-q-{holder.pid}-abcd1234"),  # another kind's
        _partial(tmp_path, f"edge-sdk-tflite-{holder.pid}-abcd12345"),  # random part too long
        _partial(tmp_path, "edge-sdk-tflite-abcd1234"),  # no pid
    ]
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with owned_tempdir("tflite") as mine:
        assert mine.is_dir() and mine.name.startswith(f"edge-sdk-tflite-{os.getpid()}-")
    assert not left.exists() and not mine.exists()
    assert live.exists() and all(p.exists() for p in others)
