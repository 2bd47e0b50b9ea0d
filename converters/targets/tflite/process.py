"""The ``tflite`` target's side of its worker process (``edge_sdk.converters.targets.tflite.worker``).

One worker is started on first use and reused for the conversions that follow, so TensorFlow is imported
once per series of conversions rather than once per precision. It ends itself after a minute without a
job; a crash ends only the job it was on, and the next job starts a fresh worker.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from edge_sdk.converters.targets.tflite.worker import IDLE_EXIT_S, STAGE_MARK

WORKER = "edge_sdk.converters.targets.tflite.worker"

_STAGES = {
    "onnx2tf": "onnx2tf's conversion to TensorFlow",
    "layout": "the layout check",
    "tflite": "TensorFlow's TFLite conversion",
    "describe": "reading the converted model",
    "litert-torch": "litert-torch's conversion",
    "quantize": "ai-edge-quantizer's quantisation",
}
_LOG_NOISE = re.compile(r"^(?:[IW]\d{4} |WARNING: All log messages|INFO: )")


class Worker:
    """The worker process, started on demand; jobs go one at a time (a lock), answers come in order."""

    def __init__(self, idle_s: float = IDLE_EXIT_S) -> None:
        self.idle_s = idle_s
        self._proc: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()

    def _started(self) -> subprocess.Popen[str]:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        env = {
            **os.environ,
            "TF_CPP_MIN_LOG_LEVEL": "2",
            # Converting needs no GPU; TensorFlow would otherwise reserve all of its memory.
            "CUDA_VISIBLE_DEVICES": "",
        }
        self._proc = subprocess.Popen(
            [sys.executable, "-m", WORKER, "--serve", str(self.idle_s)],
            cwd=tempfile.gettempdir(),
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # each job's output goes to its own log file
            text=True,
        )
        return self._proc

    @property
    def pid(self) -> int | None:
        """The worker's process id while one is running."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def run(self, job: dict[str, Any]) -> tuple[dict[str, Any], str]:
        """Run ``job`` and return its report and log; a crash gives an error report saying where."""
        with self._lock:
            for attempt in (1, 2):
                proc = self._started()
                assert proc.stdin is not None and proc.stdout is not None
                try:
                    proc.stdin.write(json.dumps(job) + "\n")
                    proc.stdin.flush()
                    answered = bool(proc.stdout.readline())
                except (BrokenPipeError, OSError):
                    answered = False
                log_file = Path(job["log"])
                log = log_file.read_text(errors="replace") if log_file.is_file() else ""
                if answered:
                    return json.loads(Path(job["report"]).read_text()), log
                code = proc.wait()
                self._proc = None
                if code == 0 and not log_file.exists() and attempt == 1:
                    continue  # it had just ended for being idle; the job never started
                return {"error": crash(code, log)}, log
        raise AssertionError("unreachable")

    def stop(self) -> None:
        """End the worker: closing its stdin makes it exit."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            assert proc.stdin is not None
            proc.stdin.close()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


WORKER_PROCESS = Worker()
atexit.register(WORKER_PROCESS.stop)


def run_job(
    job: dict[str, Any], workdir: Path, worker: Worker = WORKER_PROCESS
) -> tuple[dict[str, Any], str]:
    """Run one conversion job in ``workdir`` (its report and log are written there)."""
    job = {
        **job,
        "workdir": str(workdir),
        "report": str(workdir / "report.json"),
        "log": str(workdir / "log.txt"),
    }
    return worker.run(job)


def crash(returncode: int, log: str) -> dict[str, Any]:
    """The error record for a worker that died without a report (a crash inside TensorFlow)."""
    stages = [ln.split(STAGE_MARK, 1)[1].strip() for ln in log.splitlines() if STAGE_MARK in ln]
    last = stages[-1] if stages else "worker"
    try:
        how = f"signal {signal.Signals(-returncode).name}" if returncode < 0 else f"exit status {returncode}"
    except ValueError:
        how = f"signal {-returncode}"
    return {
        "stage": last,
        "message": f"the converter process crashed ({how}) in {_STAGES.get(last, 'start-up')}",
    }


def tail(log: str, lines: int = 12) -> str:
    """The end of a job's log without colour codes, stage markers and TensorFlow's info chatter."""
    clean = [re.sub(r"\x1b\[[0-9;]*m", "", ln).rstrip() for ln in log.splitlines()]
    kept = [ln[:300] for ln in clean if ln.strip() and not _LOG_NOISE.match(ln) and STAGE_MARK not in ln]
    return "\n".join(f"    {ln}" for ln in kept[-lines:])
