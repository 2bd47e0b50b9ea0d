"""The ``tflite`` worker process never outlives the process that started it: a killed parent takes it
along, whichever thread started it, and an interrupted job ends it before its folder is removed.

Real processes throughout; a job whose model is missing fails fast, before TensorFlow is imported.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from edge_sdk.converters.targets.tflite.process import Worker, run_job

GONE_WITHIN_S = 60.0
linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's"
)


def _gone(pid: int) -> bool:
    """Whether ``pid`` has ended (a zombie no one has reaped yet counts as ended)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return not sys.platform.startswith("linux")  # elsewhere os.kill is all there is to go on


def _wait_gone(pid: int, timeout: float = GONE_WITHIN_S) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _gone(pid):
            return True
        time.sleep(0.05)
    return _gone(pid)


def _wait_gone_path(path: Path, timeout: float = GONE_WITHIN_S) -> bool:
    deadline = time.monotonic() + timeout
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return not path.exists()


def _missing_job(tmp_path: Path) -> dict:
    return {"model": str(tmp_path / "missing.onnx"), "inputs": ["x"], "outputs": ["y"], "precision": "fp32"}


@linux_only
def test_the_worker_dies_when_its_parent_is_killed(tmp_path: Path) -> None:
    """The parent starts a worker through the real code path, and a holder process keeps the worker's
    stdin open, so no EOF can end it: only the parent-death signal can."""
    helper = textwrap.dedent(
        f"""
        import subprocess, sys
        from pathlib import Path
        from edge_sdk.converters.targets.tflite.process import Worker, run_job
        worker = Worker(idle_s=600)
        workdir = Path({str(tmp_path)!r}) / "job"
        workdir.mkdir()
        run_job({_missing_job(tmp_path)!r}, workdir, worker)
        fd = worker._proc.stdin.fileno()
        holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], pass_fds=[fd])
        print(worker.pid, holder.pid, flush=True)
        sys.stdin.read()
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", helper], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    worker_pid, holder_pid = (int(x) for x in parent.stdout.readline().split())
    try:
        assert not _gone(worker_pid)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        assert _wait_gone(worker_pid), "the worker outlived its killed parent"
    finally:
        for pid in (worker_pid, holder_pid):
            if not _gone(pid):
                os.kill(pid, signal.SIGKILL)
        assert parent.stdin is not None
        parent.stdin.close()
        parent.stdout.close()


def test_the_worker_ends_when_its_stdin_closes(tmp_path: Path) -> None:
    """Where there is no parent-death signal, EOF on stdin is what ends an idle worker."""
    worker = Worker(idle_s=600)
    workdir = tmp_path / "job"
    workdir.mkdir()
    run_job(_missing_job(tmp_path), workdir, worker)
    proc = worker._proc
    assert proc is not None and proc.stdin is not None
    proc.stdin.close()
    try:
        assert proc.wait(timeout=GONE_WITHIN_S) == 0
    finally:
        worker._kill()


@linux_only
def test_a_worker_started_from_a_thread_outlives_the_thread(tmp_path: Path) -> None:
    """The parent-death signal follows the forking thread; the worker must not die when a pool thread
    that happened to start it ends."""
    worker = Worker(idle_s=600)
    pids: list[int | None] = []
    threads: list[int] = []

    def one_job(name: str) -> None:
        threads.append(threading.get_native_id())
        workdir = tmp_path / name
        workdir.mkdir()
        run_job(_missing_job(tmp_path), workdir, worker)
        pids.append(worker.pid)

    try:
        thread = threading.Thread(target=one_job, args=("first",))
        thread.start()
        thread.join()
        # join() returns a little before the OS thread is gone; its end is what would send the signal,
        # and a pending SIGKILL is acted on before the worker could answer another job.
        assert _wait_gone_path(Path(f"/proc/self/task/{threads[0]}")), "the thread did not end"
        one_job("second")  # a dead worker would be replaced, with a new pid
        assert pids[0] is not None and pids[0] == pids[1]
    finally:
        worker.stop()


_INTERRUPTED_RUN = """
import sys, tempfile
from pathlib import Path
from edge_sdk.converters.targets.tflite.process import Worker, run_job

fifo, scratch = sys.argv[1], Path(sys.argv[2])
job = {"model": str(scratch / "missing.onnx"), "inputs": ["x"], "outputs": ["y"], "precision": "fp32"}
worker = Worker(idle_s=600)
run_job(job, scratch, worker)  # starts the worker
print(worker.pid, flush=True)
try:
    with tempfile.TemporaryDirectory(prefix="edge-sdk-tflite-") as tmp:
        print(tmp, flush=True)
        run_job({**job, "calibration": fifo}, Path(tmp), worker)  # blocks reading the FIFO
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""


@linux_only
def test_ctrl_c_mid_job_ends_the_worker_and_removes_the_job_folder(tmp_path: Path) -> None:
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) while the worker is inside a
    job: by the time the caller sees the KeyboardInterrupt the worker is gone, the job's temp folder is
    removed, and nothing is printed to stderr."""
    fifo = tmp_path / "calibration.npz"
    os.mkfifo(fifo)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    run = subprocess.Popen(
        [sys.executable, "-c", _INTERRUPTED_RUN, str(fifo), str(scratch)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, like a terminal's foreground job
    )
    assert run.stdout is not None
    worker_pid = int(run.stdout.readline())
    job_dir = Path(run.stdout.readline().strip())
    try:
        # Opening the FIFO for writing returns once the worker has opened it: it is inside the job.
        with open(fifo, "wb") as writer:
            os.killpg(run.pid, signal.SIGINT)
            assert run.stdout.readline().strip() == "interrupted"
            assert _gone(worker_pid), "the worker still ran when the interrupt reached the caller"
            assert not job_dir.exists()
            writer.close()
        _, err = run.communicate(timeout=GONE_WITHIN_S)
        assert run.returncode == 0 and err == ""
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        if not _gone(worker_pid):
            os.kill(worker_pid, signal.SIGKILL)
