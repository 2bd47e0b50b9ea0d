"""The CPU as int8 arithmetic sees it: which class of int8 kernels the backends will run on it.

Backends choose their int8 kernels by the instructions a CPU offers, and on x86 the choice changes the
answers, not only the speed: without VNNI, onnxruntime's and OpenVINO's fast unsigned × signed kernels
add each pair of 8-bit products in a 16-bit register (``VPMADDUBSW``), which saturates when the weights
use the whole 8-bit range. AVX-512 VNNI, AVX-VNNI and AMX accumulate in 32 bits, as every Arm core does
(with or without the dot-product instructions). So the *class* of a CPU (``Cpu.int8_class``) is what an
int8 artifact's parity depends on, and what its manifest records.

``this_cpu()`` reads this machine (or a recorded ``/proc`` tree); ``profile_cpu()`` says what a device
profile knows of its board's CPU. Under ``edge-sdk verify --emulate`` the emulator sets
``$EDGE_SDK_EMULATED_CPU`` (the emulated CPU as JSON), because an x86 guest under QEMU reads the host's
``/proc/cpuinfo`` while its programs see the emulated CPU's instructions.
"""

from __future__ import annotations

import functools
import json
import os
import platform
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_sdk.devices.detect import CpuInfo
from edge_sdk.devices.profile import normalise_arch

if TYPE_CHECKING:
    from edge_sdk.devices.profile import Profile

ENV_EMULATED = "EDGE_SDK_EMULATED_CPU"
# The instruction-set features that decide which int8 kernels run: x86 flags and Arm Features names.
INT8_FEATURES = (
    "avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "asimd", "asimddp", "i8mm", "sve",
)  # fmt: skip
# Any one of these and x86 accumulates int8 products in 32 bits.
_WIDE_X86 = ("amx_int8", "avx512_vnni", "avx_vnni")
_ARM = ("aarch64", "armv7l")
_X86_CLASSES = (("amx_int8", "AMX"), ("avx512_vnni", "AVX-512 VNNI"), ("avx_vnni", "AVX-VNNI"))


@dataclass(frozen=True)
class Cpu:
    """A CPU: architecture, model and vendor names, and its int8-relevant features (``INT8_FEATURES``).

    ``known`` is False for a profile that covers many CPUs (any x86-64): then nothing is promised about
    its int8 kernels beyond what the architecture alone implies.
    """

    arch: str
    model: str = ""
    vendor: str = ""
    features: tuple[str, ...] = ()
    known: bool = True

    @property
    def int8_class(self) -> str:
        """The kernel class, e.g. ``x86-64 AVX2, no VNNI`` or ``Arm64 dot-product``."""
        have = set(self.features)
        if self.arch == "x86_64":
            if not self.known:
                return "x86-64 (any)"
            for flag, name in _X86_CLASSES:
                if flag in have:
                    return f"x86-64 {name}"
            return "x86-64 AVX2, no VNNI" if "avx2" in have else "x86-64 SSE, no AVX2"
        if self.arch == "aarch64":
            if not self.known:
                return "Arm64 (any)"
            if "i8mm" in have:
                return "Arm64 i8mm"
            return "Arm64 dot-product" if "asimddp" in have else "Arm64 NEON, no dot-product"
        if self.arch == "armv7l":
            return "Armv7 NEON"
        return self.arch or "unknown"

    @property
    def saturates_8bit_weights(self) -> bool | None:
        """Whether the fast u8×s8 kernels of onnxruntime and OpenVINO saturate on this CPU when the
        weights use all 8 bits: True for x86 without VNNI/AMX, False for Arm and VNNI, None when the
        CPU is not known well enough to say."""
        if self.arch in _ARM:
            return False
        if self.arch == "x86_64":
            if any(f in self.features for f in _WIDE_X86):
                return False
            return True if self.known else None
        return None

    def describe(self) -> str:
        """The model and the class, e.g. ``AMD EPYC (x86-64 AVX2, no VNNI)``."""
        name = self.model or self.vendor
        return f"{name} ({self.int8_class})" if name else self.int8_class

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["features"] = list(self.features)
        d["int8_class"] = self.int8_class
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Cpu:
        return cls(
            arch=str(data.get("arch", "")),
            model=str(data.get("model", "")),
            vendor=str(data.get("vendor", "")),
            features=tuple(data.get("features", ())),
            known=bool(data.get("known", True)),
        )


def read_cpu(root: Path) -> Cpu:
    """The CPU described by ``root/proc/cpuinfo`` (a recorded tree, or ``/``)."""
    try:
        text = (root / "proc/cpuinfo").read_text(errors="replace")
    except OSError:
        text = ""
    info = CpuInfo.parse(text)
    host = root.resolve() == Path("/").resolve()
    arch = normalise_arch(platform.machine()) if host else (info.arch or "")
    # ARM names its core in "CPU part" (mapped to e.g. Cortex-A72), x86 in "model name"; a board's
    # "Model" line (Raspberry Pi 4 Model B) is not the CPU, so core names come first.
    cores = [n for n in info.names if n.startswith(("Cortex", "Neoverse", "NVIDIA"))]
    model = (cores or info.names or [""])[0]
    return Cpu(
        arch=arch,
        model=model,
        vendor=info.vendor,
        features=tuple(f for f in INT8_FEATURES if f in info.flags),
    )


@functools.lru_cache(maxsize=1)
def _host_cpu() -> Cpu:
    return read_cpu(Path("/"))


def this_cpu() -> Cpu:
    """This machine's CPU (the emulated one under ``edge-sdk verify --emulate``); read once."""
    emulated = os.environ.get(ENV_EMULATED)
    if emulated:
        return Cpu.from_dict(json.loads(emulated))
    return _host_cpu()


def profile_cpu(profile: Profile) -> Cpu:
    """What ``profile`` knows of its board's CPU: its ``[cpu]`` table, else only the architecture.

    A profile whose architectures are all Arm is known to accumulate int8 in 32 bits even when it names
    no core; a generic x86-64 profile is not known (it covers CPUs with and without VNNI).
    """
    spec = profile.cpu
    arches = profile.arch or ()
    arch = arches[0] if arches else ""
    if spec is not None and spec.features is not None:
        return Cpu(arch=arch, model=spec.core, vendor=spec.vendor, features=spec.features)
    return Cpu(arch=arch, model=spec.core if spec else "", known=False)
