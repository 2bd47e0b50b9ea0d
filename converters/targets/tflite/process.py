"""The ``tflite`` target's side of its worker process (``edge_sdk.converters.targets.tflite.worker``).

One worker is started on first use and reused for the conversions that follow, so TensorFlow is imported
once per series of conversions rather than once per precision. It ends itself after a minute without a
job; a crash ends only the job it was on, and the next job starts a fresh worker.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from edge_sdk.converters.targets.tflite.worker import IDLE_EXIT_S, PARENT_ENV, STAGE_MARK

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


class _Spawner:
    """Starts processes from one daemon thread that lives as long as this process.

    The worker's parent-death signal fires when the *thread* that forked it ends, and the thread that
    first asks for a worker (a pool thread, say) may end long before this process does.
    """

    def __init__(self) -> None:
        self._calls: queue.Queue[tuple[Callable[[], Any], Future[Any]]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the spawning thread and return its result (or raise its exception)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name="edge-sdk-spawner", daemon=True)
                self._thread.start()
        done: Future[Any] = Future()
        self._calls.put((fn, done))
        return done.result()

    def _serve(self) -> None:
        while True:
            fn, done = self._calls.get()
            try:
                done.set_result(fn())
            except BaseException as e:  # noqa: B036 - the caller's thread re-raises it
                done.set_exception(e)


_SPAWNER = _Spawner()


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
            PARENT_ENV: str(os.getpid()),  # the worker dies with this process (see worker.die_with_parent)
        }
        self._proc = _SPAWNER.call(
            lambda: subprocess.Popen(
                [sys.executable, "-m", WORKER, "--serve", str(self.idle_s)],
                cwd=tempfile.gettempdir(),
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,  # each job's output goes to its own log file
                text=True,
            )
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
                except BaseException:
                    # Interrupted (Ctrl-C) mid-job: the worker must stop writing into the job's
                    # folder before the caller removes it.
                    self._kill()
                    raise
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

    def _kill(self) -> None:
        """End the worker at once and wait for it, so nothing of it runs on."""
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()
            proc.wait()
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    with contextlib.suppress(OSError):
                        pipe.close()

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
