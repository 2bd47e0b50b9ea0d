"""Staging directories left by killed runs are removed by the next staging into the same folder, and
only those: a live process's partial directory and anything not named like one stay."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edge_sdk.manifest import staging_dir


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
