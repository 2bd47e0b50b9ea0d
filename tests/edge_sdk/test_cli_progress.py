"""Progress on the command line: bars on a terminal, none with --quiet, and a few plain lines (counts, ETA)
when stderr is a pipe or a file."""

from __future__ import annotations

import io
import os
import pty
import re
import select
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_sdk.cli.progress import LinePrinter

EXE = shutil.which("edge-sdk", path=str(Path(sys.executable).parent)) or "edge-sdk"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture
def job(tiny_onnx: Path, tiny_calibration: list, tmp_path: Path) -> list[str]:
    calib = tmp_path / "calib.npz"
    np.savez(calib, x=np.stack([s["x"] for s in tiny_calibration]))
    return [
        EXE,
        "convert",
        str(tiny_onnx),
        "--to",
        "onnx:int8",
        "--calib",
        str(calib),
        "--out",
        str(tmp_path),
    ]


def _on_a_terminal(args: list[str]) -> tuple[int, str]:
    """Run with stderr on a pseudo-terminal; what it drew there."""
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120"}
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=slave, env=env)
    os.close(slave)
    drawn = b""
    while True:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                chunk = b""
            if not chunk and proc.poll() is not None:
                break
            drawn += chunk
        elif proc.poll() is not None:
            break
    os.close(master)
    return proc.wait(timeout=300), drawn.decode(errors="replace")


def test_quiet_draws_no_bar_on_a_terminal(job: list[str]) -> None:
    rc, drawn = _on_a_terminal([*job, "--quiet", "--no-cache"])
    assert rc == 0
    assert "calibrate" not in drawn and "━" not in drawn and drawn.strip() == ""


def test_bars_on_a_terminal(job: list[str]) -> None:
    rc, drawn = _on_a_terminal([*job, "--no-cache"])
    assert rc == 0
    assert "calibrate" in drawn and ANSI.search(drawn)  # drawn as a live bar, with cursor control


def test_not_a_terminal_gives_lines(job: list[str]) -> None:
    env = dict(os.environ)
    r = subprocess.run([*job, "--no-cache"], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    assert not ANSI.search(r.stderr) and "\r" not in r.stderr
    stages = [line.split()[0] for line in lines]
    assert "calibrate" in stages and "parity" in stages
    # A line when a stage starts and when it ends, not one per sample (16 calibration samples here).
    assert stages.count("calibrate") <= 3
    assert re.search(r"calibrate\s+\d+/\d+\s+done in \d+:\d\d", r.stderr)
    r = subprocess.run([*job, "--quiet"], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0 and r.stderr == ""


def test_line_printer_prints_at_most_every_interval() -> None:
    now = [0.0]
    out = io.StringIO()
    printer = LinePrinter(out, interval=3.0, clock=lambda: now[0])
    for i in range(1, 101):
        now[0] = i * 0.1  # 10 s in all
        printer("search", i, 100)
    lines = out.getvalue().splitlines()
    assert 3 <= len(lines) <= 6, lines
    assert lines[0].split()[:2] == ["search", "1/100"] and "ETA" in lines[0]
    assert lines[-1].split()[:2] == ["search", "100/100"] and "done in 0:10" in lines[-1]
    assert "ETA 0:0" in lines[1]  # an estimate from the rate so far
