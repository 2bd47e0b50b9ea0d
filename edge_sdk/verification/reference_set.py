"""An artifact's reference set: a few of its parity inputs, the fp32 source's outputs for them and the
artifact's own outputs where it was converted, in ``reference.npz`` beside the model. With it the parity
can be measured again on any machine, the board included, without the source model (``edge-sdk
verify``). The manifest's ``parity.reference_set`` describes the file (sha256, sample count, the I/O
names in the order the arrays use) and holds the figures and limits measured on it.

Arrays are named ``{part}.{sample}.{position}``: ``part`` is ``input``, ``fp32`` or ``built``, and
``position`` indexes the input or output names listed in the record, so tensor names need no escaping.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.errors import BadInputError
from edge_sdk.manifest import Artifact, inside, sha256_file

FILE = "reference.npz"
# A few samples are enough to see a kernel that computes differently; the set must stay small beside a
# small model. At least one sample is kept whatever its size.
BUDGET_BYTES = 1 << 20
MAX_SAMPLES = 8

Sample = dict[str, np.ndarray]


def _nbytes(sample: Sample) -> int:
    return sum(np.asarray(a).nbytes for a in sample.values())


def write(
    directory: Path,
    inputs: list[Sample],
    fp32: list[Sample],
    built: list[Sample],
    budget: int = BUDGET_BYTES,
) -> dict[str, Any]:
    """Write the first samples that fit in ``budget`` bytes (at least one, at most ``MAX_SAMPLES``) to
    ``directory/FILE`` and return the manifest record (without figures and limits)."""
    if not inputs:
        raise ValueError("a reference set needs at least one sample")
    per_sample = _nbytes(inputs[0]) + _nbytes(fp32[0]) + _nbytes(built[0])
    count = max(1, min(MAX_SAMPLES, len(inputs), budget // max(per_sample, 1)))
    in_names, out_names = list(inputs[0]), list(fp32[0])
    arrays: dict[str, np.ndarray] = {}
    for i in range(count):
        for j, name in enumerate(in_names):
            arrays[f"input.{i}.{j}"] = np.asarray(inputs[i][name])
        for j, name in enumerate(out_names):
            arrays[f"fp32.{i}.{j}"] = np.asarray(fp32[i][name])
            arrays[f"built.{i}.{j}"] = np.asarray(built[i][name])
    path = directory / FILE
    tmp = directory / f".{FILE}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)  # type: ignore[arg-type]
    os.replace(tmp, path)
    return {
        "path": FILE,
        "sha256": sha256_file(path),
        "size": path.stat().st_size,
        "samples": count,
        "inputs": in_names,
        "outputs": out_names,
    }


def record_of(artifact: Artifact) -> dict[str, Any]:
    """The artifact's reference-set record; a BadInputError when it has none."""
    record = (artifact.parity or {}).get("reference_set")
    if not isinstance(record, dict):
        raise BadInputError(
            f"{artifact.name}: has no reference set (artifacts made before edge-sdk recorded one, or "
            f"without a parity check); convert it again to re-measure it elsewhere"
        )
    return record


def read(artifact: Artifact) -> tuple[list[Sample], list[Sample], list[Sample]]:
    """(inputs, fp32 outputs, outputs where it was converted) of the artifact's reference set, after
    checking the file against its recorded sha256."""
    record = record_of(artifact)
    assert artifact.path is not None
    # Always this name inside the artifact, and a link to elsewhere is refused like any manifest entry.
    path = inside(artifact.path, FILE)
    if record.get("path") != FILE or not path.is_file() or sha256_file(path) != record["sha256"]:
        raise BadInputError(
            f"{artifact.name}: reference set {record['path']} is missing or does not match its recorded "
            f"sha256; convert again"
        )
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}

    def part(kind: str, names: list[str]) -> list[Sample]:
        return [
            {name: arrays[f"{kind}.{i}.{j}"] for j, name in enumerate(names)}
            for i in range(record["samples"])
        ]

    return part("input", record["inputs"]), part("fp32", record["outputs"]), part("built", record["outputs"])


def run(
    artifact: Artifact,
    inputs: list[Sample],
    *,
    backend: str = "auto",
    accelerator: str = "auto",
    threads: int | None = None,
) -> tuple[list[Sample], dict[str, Any]]:
    """Run the reference ``inputs`` (``read``'s first part) through the artifact on this machine: (its
    outputs, where they were measured)."""
    from edge_sdk.runtimes import load
    from edge_sdk.runtimes.numerics import measured_on

    session = load(artifact, backend=backend, accelerator=accelerator, threads=threads)
    outputs = [session.run(s) for s in inputs]
    return outputs, measured_on(session)


def save_outputs(path: Path, outputs: list[Sample], where: dict[str, Any]) -> None:
    """Write ``run``'s result to ``path`` (an .npz; ``where`` as JSON beside the arrays)."""
    import json

    arrays = {f"out.{i}.{name}": np.asarray(a) for i, o in enumerate(outputs) for name, a in o.items()}
    arrays["measured_on"] = np.frombuffer(json.dumps(where).encode(), dtype=np.uint8)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)  # type: ignore[arg-type]
    os.replace(tmp, path)


def load_outputs(path: Path, names: list[str], samples: int) -> tuple[list[Sample], dict[str, Any]]:
    """Read what ``save_outputs`` wrote."""
    import json

    with np.load(path) as z:
        where = json.loads(bytes(z["measured_on"]).decode())
        outputs = [{n: z[f"out.{i}.{n}"] for n in names} for i in range(samples)]
    return outputs, where


def main(argv: list[str] | None = None) -> int:
    """``python -m edge_sdk.verification.reference_set ARTIFACT OUT.npz [BACKEND ACCELERATOR THREADS]``:
    run the reference inputs here and save the outputs; what ``verify --emulate`` runs on the emulated CPU."""
    import sys

    from edge_sdk.manifest import load_artifact

    args = sys.argv[1:] if argv is None else argv
    artifact = load_artifact(args[0])
    backend, accelerator, threads = (args[2:] + ["auto", "auto", "0"][len(args[2:]) :])[:3]
    inputs, _, _ = read(artifact)
    outputs, where = run(
        artifact, inputs, backend=backend, accelerator=accelerator, threads=int(threads) or None
    )
    save_outputs(Path(args[1]), outputs, where)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
