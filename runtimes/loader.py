"""``load()``: from an artifact directory or a model file to a running ``Session``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from edge_sdk.errors import BadInputError
from edge_sdk.manifest import Artifact, is_artifact, load_artifact
from edge_sdk.runtimes.session import BACKENDS, Session

# Plain model files are accepted too; their format follows from the suffix.
_SUFFIX_FORMATS = {".onnx": "onnx", ".xml": "openvino", ".tflite": "tflite"}


def load(
    path: str | os.PathLike[str] | Artifact,
    *,
    backend: str = "auto",
    accelerator: str = "auto",
    threads: int | None = None,
    options: dict[str, Any] | None = None,
) -> Session:
    """Open an artifact (directory or ``artifact.json``) or a plain model file and return a ``Session``.

    ``backend`` and ``accelerator`` default to the first installed backend for the format and its
    preferred accelerator; ``session.selection`` records what was taken or skipped and why.
    ``options`` go to the backend (e.g. OpenVINO's ``inference_precision``, ``performance_hint``).
    """
    if isinstance(path, Artifact):
        artifact: Artifact | None = path
        model = path.model_file
        fmt = path.format
    else:
        p = Path(path)
        if not p.exists():
            raise BadInputError(f"{p}: no such file or directory")
        if is_artifact(p):
            artifact = load_artifact(p)
            model, fmt = artifact.model_file, artifact.format
        elif p.is_file() and p.suffix in _SUFFIX_FORMATS:
            artifact, model, fmt = None, p, _SUFFIX_FORMATS[p.suffix]
        else:
            raise BadInputError(
                f"{p}: not an artifact directory (no artifact.json) nor a model file "
                f"({', '.join(_SUFFIX_FORMATS)})"
            )
    candidates = [(n, b) for n, b in BACKENDS if fmt in b.formats and backend in ("auto", n)]
    if not candidates:
        raise BadInputError(
            f"no backend runs format '{fmt}'" + (f" as '{backend}'" if backend != "auto" else "")
        )
    reasons = []
    for name, b in candidates:
        ok, why = b.available()
        if ok:
            return b.open(model, artifact, accelerator, threads, **(options or {}))
        reasons.append(f"{name}: {why}")
    raise BadInputError(f"no installed backend runs format '{fmt}': {'; '.join(reasons)}")
