"""``verify()``: measure an artifact's parity again, here or on an emulated board's CPU, from the
reference set it carries, and hold it to the limits recorded where it was converted.

An int8 artifact's answers depend on the CPU's int8 kernels (``devices/cpu.py``); the parity in its
manifest was measured on the converting machine. ``verify`` runs the reference inputs through the
backend this machine picks (``edge-sdk verify ARTIFACT``), or through the board's CPU emulated by QEMU
(``--emulate raspberry-pi-4``: ``devices/emulation.py``), compares the outputs with the fp32 source's,
and fails when an output misses its limits. It also says how far the outputs are from those of the
converting machine. Emulated runs are for numerics only: no timing is taken from them.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.converters.parity import compare, outside
from edge_sdk.errors import BadInputError
from edge_sdk.manifest import Artifact, load_artifact
from edge_sdk.verification import reference_set


@dataclass
class VerifyReport:
    """The outcome of ``verify``: the figures measured here against the limits, where each side was
    measured, and how far this machine's outputs are from the converting machine's."""

    artifact: str
    passed: bool
    measured_on: dict[str, Any]
    figures: dict[str, Any]
    limits: dict[str, dict[str, float]]
    converted_on: dict[str, Any]
    converted_figures: dict[str, Any]
    difference_from_converted: dict[str, float]
    failures: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def text(self) -> str:
        """A few lines for people: verdict, both machines, and each output's figures against its limits."""
        from edge_sdk.devices.cpu import Cpu

        here = Cpu.from_dict(self.measured_on["cpu"]).describe()
        if self.measured_on.get("emulator"):
            here += f", emulated by {self.measured_on['emulator']}"
        there = Cpu.from_dict(self.converted_on.get("cpu") or {}).describe() if self.converted_on else "?"
        lines = [
            f"{self.artifact}: {'PASSED' if self.passed else 'FAILED'} on {here}",
            f"  here:      {self.measured_on.get('backend')} / {self.measured_on.get('accelerator')}",
            f"  converted: {there}, {self.converted_on.get('backend', '?')}",
        ]
        for name, e in self.figures["outputs"].items():
            limit = self.limits.get(name, {})
            built = self.converted_figures.get(name, {})
            nan = float("nan")
            apart = self.difference_from_converted.get(name, nan)
            lines.append(
                f"  {name}: max abs error {e['max_abs_error']:.4g} (limit {limit['max_abs_error']:.4g}, "
                f"converted {built.get('max_abs_error', nan):.4g}); cosine {e['cosine_similarity']:.6f} "
                f"(limit {limit['cosine_similarity']:.6f}, converted "
                f"{built.get('cosine_similarity', nan):.6f}); {apart:.4g} at most from the converter's"
            )
        lines += [f"  missed: {f}" for f in self.failures]
        return "\n".join(lines)


def verify(
    artifact: str | os.PathLike[str] | Artifact,
    *,
    emulate: Any = None,
    backend: str = "auto",
    accelerator: str = "auto",
    threads: int | None = None,
) -> VerifyReport:
    """Re-measure ``artifact``'s parity on this machine, or with ``emulate`` (a device profile name or
    ``Profile``) on that board's CPU under QEMU, from the reference set the artifact carries.

    ``report.passed`` is False when an output misses the limits recorded at conversion (the user's
    ``max_error``, else a margin over the converting machine's own figures; ``converters/parity.py``).
    """
    art = artifact if isinstance(artifact, Artifact) else load_artifact(artifact)
    record = reference_set.record_of(art)
    inputs, fp32, built = reference_set.read(art)
    if emulate is not None:
        outputs, where = _emulated(art, emulate, backend, accelerator, threads, record)
    else:
        outputs, where = reference_set.run(
            art, inputs, backend=backend, accelerator=accelerator, threads=threads
        )
    random_inputs = str((art.parity or {}).get("inputs", "")).startswith("random")
    figures = compare(fp32, outputs, "reference set", random_inputs)
    limits = record["limits"]
    difference = {name: _max_difference(built, outputs, name) for name in record["outputs"]}
    failures = outside(figures, limits)
    return VerifyReport(
        artifact=art.name,
        passed=not failures,
        measured_on=where,
        figures=figures,
        limits=limits,
        converted_on=(art.parity or {}).get("measured_on") or {},
        converted_figures=record.get("figures", {}),
        difference_from_converted=difference,
        failures=failures,
    )


def _max_difference(a: list[dict[str, Any]], b: list[dict[str, Any]], name: str) -> float:
    return max(
        float(np.abs(x[name].astype(np.float64) - y[name].astype(np.float64)).max(initial=0.0))
        for x, y in zip(a, b, strict=True)
    )


def _emulated(
    art: Artifact, device: Any, backend: str, accelerator: str, threads: int | None, record: dict[str, Any]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run the reference set in an interpreter on the emulated CPU of ``device``'s board."""
    from edge_sdk.devices.emulation import emulator_for

    if art.path is None:
        raise BadInputError(f"{art.name}: verify --emulate needs the artifact on disk")
    emulator = emulator_for(device)
    if art.format not in emulator.formats():
        raise BadInputError(
            f"{art.name}: an emulated {emulator.arch} CPU runs {', '.join(emulator.formats())} artifacts "
            f"(the runtimes with {emulator.arch} wheels set up for it); verify {art.format} on the board"
        )
    with tempfile.TemporaryDirectory(prefix="edge-sdk-verify-") as tmp:
        out = Path(tmp) / "outputs.npz"
        args = [str(art.path.resolve()), str(out), backend, accelerator, str(threads or 0)]
        emulator.run_module("edge_sdk.verification.reference_set", args)
        return reference_set.load_outputs(out, record["outputs"], record["samples"])
