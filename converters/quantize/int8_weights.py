"""How many bits int8 weights use: 8 by default, which every CPU computes exactly through edge-sdk's
Session, or 7, which no CPU's fast int8 kernels saturate in any runtime.

On x86 CPUs without VNNI, the fast int8 kernels of onnxruntime and OpenVINO add pairs of u8×s8 products
in 16 bits and saturate when weights use the whole signed 8-bit range; Arm cores and x86 with VNNI or
AMX accumulate in 32 bits (``devices/cpu.py``). Both backends can compute exactly there too, slower:
onnxruntime with its u8×u8 kernels, OpenVINO by running the quantised layers in f32, and the Session
picks that by itself on such a CPU (``runtimes/numerics.py``). So an artifact with 8-bit weights gives
the same answers on every CPU it is loaded on with edge-sdk; what changes between CPUs is only speed.
Weights held to 7 bits (onnxruntime's ``reduce_range``, NNCF's ``overflow_fix``) keep the fast kernels
correct everywhere, in any runtime, at a measured cost in accuracy (docs/compression.md). The
``int8_weights`` option chooses:

- ``auto`` (default): 8 bits; the manifest says whether the target device (``convert(device=...)``)
  will need the exact kernels;
- ``8bit`` / ``7bit``: as asked.

TFLite's int8 kernels (XNNPACK, ruy) widen to 16 bits before multiplying on every CPU, so the tflite
target keeps 8-bit weights whatever is asked, and says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edge_sdk.converters.options import Option

if TYPE_CHECKING:
    from edge_sdk.devices.profile import Profile

SETTINGS = ("auto", "8bit", "7bit")
INT8_WEIGHTS = Option(
    "int8_weights",
    str,
    "auto",
    "int8: auto (default: 8-bit weights, computed exactly on every CPU by edge-sdk's Session), 8bit, or "
    "7bit (weights no CPU's fast int8 kernels saturate, in any runtime; less accurate)",
    choices=SETTINGS,
)
# Where 8-bit weights need exact kernels, and how a runtime other than edge-sdk's Session gets them.
EXACT_KERNELS = (
    "x86 without VNNI/AMX: onnxruntime session option session.x64quantprecision=1; OpenVINO CPU property "
    "LP_TRANSFORMS_MODE=NO (edge-sdk's Session sets them itself)"
)


@dataclass(frozen=True)
class Int8Weights:
    """The int8 weight width chosen for a build, what was asked, for which device, and why."""

    bits: int  # 8 or 7
    asked: str = "auto"
    device: str | None = None
    why: str = ""

    @property
    def reduce_range(self) -> bool:
        """Whether weights are held to 7 bits (onnxruntime's ``reduce_range``)."""
        return self.bits == 7

    def record(self) -> dict[str, Any]:
        """The manifest's ``recipe.int8_weights``."""
        return {
            "bits": self.bits,
            "asked": self.asked,
            "device": self.device,
            "why": self.why,
            "exact_kernels": EXACT_KERNELS if self.bits == 8 else None,
        }


def choose(asked: str, device: Profile | None) -> Int8Weights:
    """The weight width for ``asked`` (one of ``SETTINGS``, as the option ``INT8_WEIGHTS`` checked it)
    for ``device`` (a profile, or None)."""
    from edge_sdk.devices.cpu import profile_cpu

    name = device.name if device is not None else None
    if asked == "7bit":
        return Int8Weights(7, asked, name, "asked for: no CPU's fast int8 kernels saturate 7-bit weights")
    exact = "edge-sdk's Session computes 8-bit weights exactly on every CPU"
    if asked == "8bit" or device is None:
        return Int8Weights(8, asked, name, f"{'asked for' if asked == '8bit' else 'the default'}: {exact}")
    cpu = profile_cpu(device)
    if cpu.saturates_8bit_weights is False:
        return Int8Weights(8, asked, name, f"{name} runs {cpu.int8_class}: its fast int8 kernels are exact")
    needs = "may need" if cpu.saturates_8bit_weights is None else "needs"
    return Int8Weights(
        8,
        asked,
        name,
        f"{exact}; {name}'s CPU ({cpu.int8_class}) {needs} the exact kernels, which are slower "
        "(int8_weights=7bit keeps the fast ones, less accurately)",
    )


# What the tflite target records: it has one setting, and it is exact on every CPU.
TFLITE = {
    "bits": 8,
    "why": "TFLite's int8 kernels (XNNPACK, ruy) widen to 16 bits before they multiply on every CPU, so "
    "8-bit weights cannot saturate",
    "exact_kernels": None,
}
