"""What this machine does to a model's answers, for every backend: where a measurement was made
(``measured_on``), whether this CPU's fast int8 kernels would saturate a model's 8-bit weights (x86
without VNNI: ``devices/cpu.py``) so that the backend must compute exactly (``exact_kernels``), and
whether an int8 artifact's parity was measured on another class of CPU than this one.

Both CPU backends can compute int8 exactly where their fast kernels saturate, more slowly: onnxruntime
with its u8×u8 kernels (``ORT_EXACT``), OpenVINO by running the quantised layers in f32 (``OV_EXACT``).
``load()`` warns once per artifact when its int8 parity was measured on another CPU class, and points at
``edge-sdk verify``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from edge_sdk.devices.cpu import Cpu, this_cpu
from edge_sdk.errors import BadInputError
from edge_sdk.manifest import Artifact
from edge_sdk.runtimes.session import BACKENDS, Session

log = logging.getLogger("edge_sdk.runtimes")

# onnxruntime's session option that replaces the saturating u8×s8 kernels of x86 without VNNI by exact
# u8×u8 ones (onnxruntime_session_options_config_keys.h: kOrtSessionOptionsAvx2PrecisionMode).
ORT_EXACT = ("session.x64quantprecision", "1")
# OpenVINO's CPU property that turns its low-precision transformations off: FakeQuantize layers then run
# in f32 on the quantised values, with no int8 kernel in between.
OV_EXACT = ("LP_TRANSFORMS_MODE", "NO")
KERNEL_CHOICES = ("auto", "exact", "fast")
KERNELS_HELP = (
    "CPU int8: auto (default: exact kernels where this CPU's fast ones would saturate the model's 8-bit "
    "weights), exact, or fast"
)
# Set by ``edge-sdk verify --emulate`` in the emulated interpreter: the emulator and CPU model it runs.
ENV_EMULATOR = "EDGE_SDK_EMULATOR"

Weights = Callable[[], Iterable[np.ndarray]]
_warned: set[tuple[str, str]] = set()


def is_int8(artifact: Artifact | None) -> bool:
    return artifact is not None and artifact.precision.startswith("int8")


def eight_bit_weights(artifact: Artifact | None, weights: Weights | None = None) -> bool | None:
    """Whether the int8 weights use the full signed 8-bit range: from the manifest's ``int8_weights``
    record, else (a plain model file, or an artifact made before it was recorded) from ``weights``, the
    backend's reader of the model's signed 8-bit weight tensors. None when there is nothing to tell."""
    if artifact is not None:
        record = artifact.recipe.get("int8_weights")
        if isinstance(record, dict) and "bits" in record:
            return bool(record["bits"] > 7)
        if not is_int8(artifact):
            return False
    if weights is None:
        return None
    # a value beyond ±64 is an 8-bit weight; zero points (scalars) do not count
    return any(w.size > 1 and (int(w.min()) < -64 or int(w.max()) > 64) for w in weights())


def saturation_risk(artifact: Artifact | None, weights: Weights | None = None) -> str | None:
    """Why this CPU's fast int8 kernels would saturate this model, or None when they would not."""
    cpu = this_cpu()
    if not cpu.saturates_8bit_weights or not eight_bit_weights(artifact, weights):
        return None
    return (
        f"this CPU, {cpu.describe()}, adds pairs of int8 products in 16 bits, which saturates the "
        f"model's 8-bit weights"
    )


def exact_kernels(asked: object, artifact: Artifact | None, weights: Weights | None = None) -> str:
    """Why a backend should compute int8 exactly here (its slower kernels), or "" for its default ones.
    ``asked`` is the backend option ``int8_kernels``: ``auto`` takes exact kernels only where this CPU's
    fast ones would saturate the model's 8-bit weights."""
    if asked not in KERNEL_CHOICES:
        raise BadInputError(f"int8_kernels='{asked}' is not one of: {', '.join(KERNEL_CHOICES)}")
    if asked == "fast":
        return ""
    if asked == "exact":
        return "int8: exact kernels, as asked"
    risk = saturation_risk(artifact, weights)
    return f"int8: exact kernels, since {risk}" if risk else ""


def warn_if_measured_elsewhere(artifact: Artifact | None) -> None:
    """Log once per artifact and CPU class when an int8 artifact runs on a class of CPU other than the
    one its parity was measured on."""
    if not is_int8(artifact) or not artifact or not artifact.parity:
        return
    measured = (artifact.parity.get("measured_on") or {}).get("cpu")
    if not isinstance(measured, dict):
        return
    there, here = Cpu.from_dict(measured), this_cpu()
    key = (f"{artifact.path}:{artifact.name}", here.int8_class)
    if there.int8_class == here.int8_class or key in _warned:
        return
    _warned.add(key)
    log.warning(
        "%s: its int8 parity was measured on %s; this CPU is %s, whose int8 kernels can give other "
        "answers: check it here with `edge-sdk verify %s`",
        artifact.name,
        there.describe(),
        here.describe(),
        artifact.path or artifact.name,
    )


def measured_on(session: Session) -> dict[str, Any]:
    """Where and how ``session`` computes, as parity records it: the CPU (the emulated one under
    ``edge-sdk verify --emulate``, with the emulator named), the backend and its version, the
    accelerator, and the settings that change answers (int8 kernels, inference precision)."""
    record: dict[str, Any] = {
        "cpu": this_cpu().to_dict(),
        "backend": BACKENDS.get(session.selection.backend).version(),
        "accelerator": session.selection.accelerator,
        **session.numerics,
    }
    emulator = os.environ.get(ENV_EMULATOR)
    if emulator:
        record["emulator"] = emulator
    return record
