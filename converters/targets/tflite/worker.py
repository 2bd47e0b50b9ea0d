"""The child process that runs the ``tflite`` target's conversions, so TensorFlow never enters the user's
process and its log output never reaches the user's terminal.

``python -m edge_sdk.converters.targets.tflite.worker --serve`` reads jobs, one JSON object a line,
from stdin:
the ONNX model (fixed shapes, safe I/O names), precision, I/O type, calibration file, and where to put
the ``.tflite`` file, the JSON report and the log; or, with ``"converter": "litert-torch"``, a saved
``torch.export`` program and its example inputs (``litert_torch.py``). It answers each with a line
on stdout once the report is written, and stays up for the next job, so TensorFlow is imported once per
series of conversions; after ``IDLE_EXIT_S`` without a job, or when stdin closes, it exits. During a
job, everything written to fd 1 and 2 (onnx2tf's prints, TensorFlow's C++ logging) goes to the job's
log file.
``python -m edge_sdk.converters.targets.tflite.worker JOB.json`` runs a single job (for debugging).

A failure is written to the report as ``{"error": {"stage", "message", "op", "node"}}``; a crash
leaves no report, and the stage markers in the log say where it happened.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import select
import signal
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.converters.fd_redirect import fds_to
from edge_sdk.converters.targets.tflite import onnx2tflite as steps

STAGE_MARK = "[edge-sdk tflite worker] stage: "
IDLE_EXIT_S = 60.0
PARENT_ENV = "EDGE_SDK_TFLITE_WORKER_PARENT"  # the pid of the process that started the worker
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def stage(name: str) -> None:
    """Mark the start of a stage in the log, so that the parent can say where a crash happened."""
    print(f"{STAGE_MARK}{name}", flush=True)


def _samples(path: str | None, names: list[str]) -> list[dict[str, np.ndarray]]:
    """Calibration samples from the job's .npz: array ``s{i}_{j}`` is sample i's input j."""
    if not path:
        return []
    with np.load(path) as data:
        count = len(data.files) // max(len(names), 1)
        return [{n: data[f"s{i}_{j}"] for j, n in enumerate(names)} for i in range(count)]


def _probe(model_path: Path, calibration: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The input for the layout check: the first calibration sample, or seeded normal floats (zeros for
    integer inputs, which cannot be guessed and only need to be valid)."""
    if calibration:
        return calibration[0]
    import onnx
    from onnx.helper import tensor_dtype_to_np_dtype

    rng = np.random.default_rng(0)
    model = onnx.load(str(model_path), load_external_data=False)
    inits = {i.name for i in model.graph.initializer}
    probe = {}
    for v in model.graph.input:
        if v.name in inits:
            continue
        dtype = np.dtype(tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type))
        shape = [d.dim_value for d in v.type.tensor_type.shape.dim]
        probe[v.name] = (
            rng.standard_normal(shape).astype(dtype) if dtype.kind == "f" else np.zeros(shape, dtype)
        )
    return probe


def run(job: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """Do the conversion ``job`` describes and return the report (see the module docstring)."""
    if job.get("converter") == "litert-torch":
        from edge_sdk.converters.targets.tflite import litert_torch

        return litert_torch.run(job, stage)
    import onnx

    model_path = Path(job["model"])
    calibration = _samples(job.get("calibration"), job["inputs"])
    stage("onnx2tf")
    keras_model, kept = steps.to_keras(model_path, workdir, bool(job.get("rnn_unroll")))
    stage("layout")
    in_perms, out_perms, worst = steps.find_layouts(
        keras_model, model_path, _probe(model_path, calibration), kept
    )
    stage("tflite")
    content, used = steps.to_tflite(
        keras_model,
        job["precision"],
        job.get("io", "float"),
        calibration,
        in_perms,
        onnx.load(str(model_path)),
        workdir,
    )
    Path(job["output"]).write_bytes(content)
    stage("describe")
    described = steps.describe(content, job["inputs"], job["outputs"])
    for spec in described["inputs"]:
        spec["perm"] = in_perms[spec["name"]]
    for spec in described["outputs"]:
        spec["perm"] = out_perms[spec["name"]]
    import onnx2tf
    import tensorflow as tf

    return {
        **described,
        "converter": used,
        "kept_input_shapes": kept,
        "layout_check_max_abs_error": worst,
        "versions": {"onnx2tf": onnx2tf.__version__, "tensorflow": tf.__version__},
    }


def run_job(job: dict[str, Any]) -> int:
    """Run one job in its work directory and write its report; 0 on success, 1 on failure."""
    workdir = Path(job["workdir"])
    os.chdir(workdir)  # onnx2tf writes scratch files into the working directory
    try:
        report, status = run(job, workdir), 0
    except steps.StepError as e:
        report, status = {"error": e.info}, 1
    except BaseException as e:  # noqa: B036 - anything at all must reach the parent as a report
        traceback.print_exc()
        report, status = {"error": {"stage": "worker", "message": f"{type(e).__name__}: {e}"}}, 1
    Path(job["report"]).write_text(json.dumps(report, indent=1))
    return status


@contextlib.contextmanager
def _fds_to(path: Path) -> Iterator[None]:
    """Point fd 1 and 2 at ``path`` for the block (C++ logging included), then back."""
    with open(path, "ab") as f, fds_to(f):
        yield


def serve(idle_s: float = IDLE_EXIT_S) -> int:
    """Answer jobs from stdin until it closes or stays quiet for ``idle_s`` seconds (see the module
    doc)."""
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    # Between jobs fd 1 and 2 go nowhere: a stray print must not corrupt the answers.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    home = os.getcwd()
    while True:
        if os.name == "posix":  # select() on a pipe is POSIX only; elsewhere the worker waits for EOF
            ready, _, _ = select.select([sys.stdin], [], [], idle_s)
            if not ready:
                return 0
        line = sys.stdin.readline()
        if not line:
            return 0
        job = json.loads(line)
        with _fds_to(Path(job["log"])):
            status = run_job(job)
        os.chdir(home)  # the job's directory is about to be deleted
        answers.write(f"{status}\n")


def die_with_parent(expected: int | None) -> None:
    """On Linux, have the kernel SIGKILL this process when its parent dies; exit now if it already has.

    A parent killed mid-job closes our stdin, but nothing reads it until the job ends. The signal
    follows the parent *thread* that forked us, which is why the parent forks from a thread that lives
    as long as it does. Elsewhere the worker ends when its stdin reaches EOF.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    # The parent may have died before the signal was armed; then we are already someone else's child.
    if expected is not None and os.getppid() != expected:
        os._exit(1)


def main(argv: list[str]) -> int:
    """Entry point: ``--serve [IDLE_SECONDS]``, or the path of one job file."""
    if argv[:1] == ["--serve"]:
        parent = os.environ.get(PARENT_ENV)
        die_with_parent(int(parent) if parent else None)
        return serve(float(argv[1]) if len(argv) > 1 else IDLE_EXIT_S)
    return run_job(json.loads(Path(argv[0]).read_text()))


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main(sys.argv[1:]))
