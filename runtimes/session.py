"""The backend-neutral ``Session``: input checking, the selection record, and the backend registry."""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np

from edge_sdk.devices.backends import BACKENDS as REGISTERED
from edge_sdk.devices.backends import BackendProbe
from edge_sdk.errors import BadInputError, EdgeSDKError, RunFailed
from edge_sdk.manifest import Artifact, TensorSpec
from edge_sdk.registry import Registry
from edge_sdk.runtimes.layout import from_stored, to_stored

log = logging.getLogger("edge_sdk.runtimes")


@dataclass
class Candidate:
    """One backend × accelerator that selection looked at, and what became of it."""

    backend: str
    accelerator: str
    status: str  # "taken" | "skipped" | "fallback"
    reason: str


@dataclass
class Selection:
    """Why this session runs where it runs: every candidate considered, in preference order."""

    backend: str
    accelerator: str
    candidates: list[Candidate] = field(default_factory=list)
    device: str | None = None  # the device profile selection walked
    artifact: str | None = None  # which of the artifacts given was chosen
    fallback: bool = False  # something the device has was passed over

    def add(self, backend: str, accelerator: str, status: str, reason: str) -> None:
        self.candidates.append(Candidate(backend, accelerator, status, reason))

    def to_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "accelerator": self.accelerator,
            "device": self.device,
            "artifact": self.artifact,
            "fallback": self.fallback,
            "candidates": [c.__dict__ for c in self.candidates],
        }

    def __str__(self) -> str:
        lines = [
            f"running {self.artifact or 'the model'} on {self.backend}/{self.accelerator}"
            + (f" (device {self.device})" if self.device else "")
            + (", a fall-back" if self.fallback else "")
        ]
        for c in self.candidates:
            lines.append(f"  {c.status:8} {c.backend}/{c.accelerator}: {c.reason}")
        return "\n".join(lines)


# How runtimes name the failing node: onnxruntime "Name:'conv1'", OpenVINO "node 'conv1'".
_NODE = re.compile(r"(?:Name:\s*|node )'([^']+)'")


class Session:
    """A loaded model, ready to run. ``run({"name": array})`` takes the same arrays on every backend.

    Backends subclass this and implement ``_run``; checking of names, dtypes and shapes lives here
    once, so every backend gives the same clear message for the same mistake.
    """

    def __init__(
        self,
        inputs: list[TensorSpec],
        outputs: list[TensorSpec],
        selection: Selection,
        artifact: Artifact | None = None,
        *,
        file_tensors: tuple[Sequence[Collection[str]], Sequence[Collection[str]]] | None = None,
    ) -> None:
        """``file_tensors`` is what the model file itself has, (inputs, outputs), each tensor as the names
        it answers to; a backend gives it so that a manifest which does not match its model file is
        refused here, once for every backend, instead of failing inside the runtime on every run."""
        self.inputs = inputs
        self.outputs = outputs
        self.selection = selection
        self.artifact = artifact
        if artifact is not None and file_tensors is not None:
            where = artifact.model_file
            check_file_tensors(where, "input", inputs, file_tensors[0], all_required=True)
            check_file_tensors(where, "output", outputs, file_tensors[1], all_required=False)
        # How the backend computes where that changes the answers (int8 kernels, inference precision),
        # recorded with parity so a later check knows what was measured.
        self.numerics: dict[str, str] = {}

    @property
    def inference_precision(self) -> str | None:
        """The precision float layers run in where the backend sets one (OpenVINO: ``f32``, ``bf16`` or
        ``f16``, as the device reports it); None where the model file's own types decide."""
        return None

    @property
    def input_names(self) -> list[str]:
        return [s.name for s in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [s.name for s in self.outputs]

    def run(self, feeds: Mapping[str, Any], outputs: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Run the model on ``feeds`` (input name → array) and return output name → array."""
        arrays = check_feeds(self.inputs, feeds)
        if outputs is not None and (isinstance(outputs, str) or not isinstance(outputs, Sequence)):
            raise BadInputError(
                f"outputs= takes a list of output names, got {type(outputs).__name__} {outputs!r:.40}; "
                f"the model has {self.output_names}"
            )
        wanted = list(outputs) if outputs is not None else self.output_names
        unknown = [n for n in wanted if n not in self.output_names]
        if unknown:
            raise BadInputError(f"unknown output(s) {unknown}; the model has {self.output_names}")
        q = self.artifact.quantization if self.artifact else {}
        stored = {_stored(s): to_stored(s, arrays[s.name], q.get(s.name)) for s in self.inputs}
        specs = {s.name: s for s in self.outputs}
        try:
            results = self._run(stored, [_stored(specs[n]) for n in wanted])
        except EdgeSDKError:
            raise
        except Exception as e:  # each runtime raises its own types (pybind errors, RuntimeError, ...)
            raise self._failed(e, arrays) from None
        return {n: from_stored(specs[n], results[_stored(specs[n])], q.get(n)) for n in wanted}

    def _failed(self, error: Exception, feeds: Mapping[str, np.ndarray]) -> RunFailed:
        """The runtime's own error as one that names the model, the backend, the node and the inputs."""
        model = self.artifact.name if self.artifact else self.selection.artifact or "the model"
        text = " ".join(str(error).split())
        node = _NODE.search(text)
        shapes = ", ".join(f"{name} {list(a.shape)} {a.dtype}" for name, a in feeds.items())
        where = f" at node '{node.group(1)}'" if node else ""
        return RunFailed(
            f"{model} failed to run on {self.selection.backend}/{self.selection.accelerator}{where} with "
            f"inputs {shapes}: {text}"
        )

    def _run(self, feeds: dict[str, np.ndarray], outputs: list[str]) -> dict[str, np.ndarray]:
        """Run on ``feeds`` as the model file takes them (its tensor names, layout and dtype) and return
        the ``outputs`` named, as the file gives them. Backends implement this."""
        raise NotImplementedError

    def __repr__(self) -> str:
        ins = ", ".join(s.describe() for s in self.inputs)
        return f"<Session {self.selection.backend}/{self.selection.accelerator} ({ins})>"


def _stored(spec: TensorSpec) -> str:
    return spec.stored_name or spec.name


def check_file_tensors(
    where: Path, kind: str, specs: list[TensorSpec], tensors: Sequence[Collection[str]], *, all_required: bool
) -> None:
    """Every tensor the manifest declares is one the model file has, and (``all_required``) every one the
    file has is declared: a BadInputError names the odd one and lists the file's."""
    have = ", ".join(sorted(n for names in tensors for n in names)) or "none"
    declared = {_stored(s) for s in specs}
    for name in sorted(declared):
        if not any(name in names for names in tensors):
            raise BadInputError(
                f"{where}: the manifest names {kind} '{name}', which the model file does not have (its "
                f"{kind}s: {have}); the artifact does not match its model file"
            )
    if all_required:
        for names in tensors:
            if not declared & set(names):
                raise BadInputError(
                    f"{where}: the model file takes {kind} '{sorted(names)[0]}', which the manifest does not "
                    f"declare (its {kind}s: {', '.join(sorted(declared)) or 'none'}); the artifact does not "
                    f"match its model file"
                )


def check_feeds(specs: list[TensorSpec], feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Validate ``feeds`` against ``specs``: every name present and known, exact dtype, matching rank and
    fixed dims, and one size per symbolic dim across inputs. Returns contiguous numpy arrays."""
    if not isinstance(feeds, Mapping):
        raise BadInputError(
            f"run() takes a dict of input name → array, got {type(feeds).__name__}; "
            f"inputs: {', '.join(s.describe() for s in specs)}"
        )
    names = [s.name for s in specs]
    missing = [n for n in names if n not in feeds]
    extra = [n for n in feeds if n not in names]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing input(s) {missing}")
        if extra:
            parts.append(f"unknown input(s) {extra}")
        raise BadInputError(f"{'; '.join(parts)}; expected {', '.join(s.describe() for s in specs)}")
    bound: dict[str, tuple[int, str]] = {}
    out: dict[str, np.ndarray] = {}
    for spec in specs:
        try:
            a = np.asarray(feeds[spec.name])
        except (ValueError, TypeError) as e:  # ragged nested lists, objects numpy cannot take
            raise BadInputError(f"input '{spec.name}' is not an array: {e}") from None
        if a.dtype != np.dtype(spec.dtype):
            raise BadInputError(
                f"input '{spec.name}' has dtype {a.dtype}, expected {spec.dtype} "
                f"(convert with array.astype(numpy.{spec.dtype}))"
            )
        if a.ndim != len(spec.shape):
            raise BadInputError(
                f"input '{spec.name}' has shape {list(a.shape)} (rank {a.ndim}), expected "
                f"{spec.describe()} (rank {len(spec.shape)})"
            )
        for axis, (want, got) in enumerate(zip(spec.shape, a.shape, strict=True)):
            if isinstance(want, int) and want > 0 and want != got:
                raise BadInputError(
                    f"input '{spec.name}' has size {got} on axis {axis}, expected {want} "
                    f"(shape {list(a.shape)} vs {spec.describe()})"
                )
            if isinstance(want, str):
                prev = bound.setdefault(want, (got, spec.name))
                if prev[0] != got:
                    raise BadInputError(
                        f"dim '{want}' is {prev[0]} in input '{prev[1]}' but {got} in input '{spec.name}'"
                    )
        # np.ascontiguousarray would turn a 0-d array into 1-d; require() keeps the rank.
        out[spec.name] = np.require(a, requirements="C")
    return out


class Backend(BackendProbe, Protocol):
    """What a runtime backend module registers: what detection asks of it (``BackendProbe``: its
    packages, its accelerators and what each needs, what it sees here), and which formats it runs,
    whether it is installed, and how to open a model."""

    options: dict[str, str]  # option name → one-line description; load(options=) keys are checked against it

    def available(self) -> tuple[bool, str]: ...

    def version(self) -> str:
        """The package and version that computes, e.g. ``onnxruntime 1.32.0`` (it is installed)."""
        ...

    def open(
        self, model: Path, artifact: Artifact | None, accelerator: str, threads: int | None, **options: Any
    ) -> Session: ...


# The registry detection defines, seen here with the whole protocol: only this package's modules file
# backends in it, and each is a Backend.
BACKENDS = cast("Registry[Backend]", REGISTERED)
