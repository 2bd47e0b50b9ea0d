"""Which board is this, and which of its accelerators can edge-sdk use: decided from evidence.

``detect()`` reads a file-system tree (``/`` by default; tests give a recorded fingerprint tree): the
device-tree model, ``/etc/nv_tegra_release``, ``/proc/cpuinfo``, ``/dev`` nodes, PCI and USB ids and
shared libraries. It picks the most specific matching profile (``profile.py``), adds the add-ons that
match, and judges each accelerator listed: is the hardware there, is the package installed, is the
library there, and, on this machine with ``probe_backends``, does the backend itself list it. Every
verdict has its reason and, when something is missing, how to enable it.
"""

from __future__ import annotations

import ctypes.util
import importlib.metadata
import importlib.util
import logging
import os
import platform
import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from edge_sdk.devices.accelerators import AcceleratorStatus, Prober, judge
from edge_sdk.devices.profile import AcceleratorSpec, Profile, load_profiles, normalise_arch, rules_hold
from edge_sdk.errors import DeviceError

log = logging.getLogger("edge_sdk.devices")

# Python distributions that matter to detection → the module each provides. The onnxruntime builds
# share one module, so for them only the distribution's metadata tells which build is installed.
PACKAGES = {
    "onnxruntime": "onnxruntime",
    "onnxruntime-gpu": "onnxruntime",
    "onnxruntime-openvino": "onnxruntime",
    "openvino": "openvino",
    "ai-edge-litert": "ai_edge_litert",
    "tflite-runtime": "tflite_runtime",
    "tensorflow": "tensorflow",
    "tensorrt": "tensorrt",
    "hailort": "hailo_platform",
}
# Shown in the evidence when present, besides the flags the rules ask about.
INTERESTING_FLAGS = (
    "avx2", "fma", "f16c", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8",
    "asimd", "asimdhp", "asimddp", "fphp", "i8mm", "bf16", "sve", "sve2",
)  # fmt: skip
# Where shared libraries live on Debian-family boards (JetPack keeps some under tegra/).
LIB_DIRS = (
    "usr/lib/x86_64-linux-gnu", "usr/lib/aarch64-linux-gnu", "usr/lib/aarch64-linux-gnu/tegra",
    "usr/lib/arm-linux-gnueabihf", "usr/lib", "usr/lib64", "lib", "lib64", "usr/local/lib",
    "usr/local/cuda/lib64",
)  # fmt: skip
# (implementer, part) from /proc/cpuinfo → the ARM core's name, so rules can say "Cortex-A78AE".
ARM_CORES = {
    ("0x41", "0xd03"): "Cortex-A53", ("0x41", "0xd05"): "Cortex-A55", ("0x41", "0xd07"): "Cortex-A57",
    ("0x41", "0xd08"): "Cortex-A72", ("0x41", "0xd09"): "Cortex-A73", ("0x41", "0xd0b"): "Cortex-A76",
    ("0x41", "0xd0c"): "Neoverse-N1", ("0x41", "0xd0d"): "Cortex-A77", ("0x41", "0xd40"): "Neoverse-V1",
    ("0x41", "0xd41"): "Cortex-A78", ("0x41", "0xd42"): "Cortex-A78AE", ("0x41", "0xd4f"): "Neoverse-V2",
    ("0x4e", "0x004"): "NVIDIA Carmel",
}  # fmt: skip
# /proc/cpuinfo's "CPU implementer" → who designed the core.
ARM_IMPLEMENTERS = {"0x41": "Arm", "0x4e": "NVIDIA", "0x51": "Qualcomm", "0x61": "Apple", "0xc0": "Ampere"}
_L4T = re.compile(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)")


@dataclass
class CpuInfo:
    """What /proc/cpuinfo says: names (model name, Hardware, Model lines and ARM core names), flags (x86
    ``flags`` or ARM ``Features``), logical and physical core counts, and the architecture it implies."""

    names: list[str] = field(default_factory=list)
    vendor: str = ""
    flags: frozenset[str] = frozenset()
    processors: int = 0
    physical: int | None = None
    arch: str | None = None

    @classmethod
    def parse(cls, text: str) -> CpuInfo:
        info, flags, cores, part = cls(), set(), set(), {}
        physical_id, x86, arm_version = "0", False, None
        for line in text.splitlines():
            key, _, value = (s.strip() for s in line.partition(":"))
            key = key.lower()
            if key == "processor":
                info.processors += 1
            elif key in ("model name", "hardware", "model", "cpu model") and not value.isdigit():
                # x86's "model : 170" is a number, not a name
                if value and value not in info.names:
                    info.names.append(value)
            elif key in ("flags", "features"):
                flags.update(value.split())
                x86 = x86 or key == "flags"
            elif key == "vendor_id":
                info.vendor = value
            elif key == "physical id":
                physical_id = value
            elif key == "core id":
                cores.add((physical_id, value))
            elif key == "cpu architecture":
                arm_version = value
            elif key in ("cpu implementer", "cpu part"):
                part[key] = value
                if key == "cpu implementer" and not info.vendor:
                    info.vendor = ARM_IMPLEMENTERS.get(value, f"implementer {value}")
                name = ARM_CORES.get((part.get("cpu implementer", ""), part.get("cpu part", "")))
                if key == "cpu part" and name and name not in info.names:
                    info.names.append(name)
        info.flags = frozenset(flags)
        info.physical = len(cores) or None
        if x86:
            info.arch = "x86_64" if "lm" in flags else "i686"
        elif arm_version:
            info.arch = "aarch64" if arm_version.startswith("8") and "asimd" in flags else "armv7l"
        return info


class Evidence:
    """What a file-system tree shows about the machine. Everything is read relative to ``root``; the
    ``/dev`` nodes, PCI and USB ids that checks find are remembered for the record (``to_dict``)."""

    def __init__(self, root: Path, host: bool) -> None:
        self.root, self.host = root, host
        self.model = self._text("proc/device-tree/model", "sys/firmware/devicetree/base/model")
        compatible = self._text("proc/device-tree/compatible", "sys/firmware/devicetree/base/compatible")
        self.compatible = [c for c in (compatible or "").split("\0") if c]
        release = self._text("etc/nv_tegra_release")
        self.tegra_release = release.splitlines()[0].strip() if release else None
        self.cpu = CpuInfo.parse(self._text("proc/cpuinfo") or "")
        self.arch, self.arch_from = self._arch()
        self.pci = self._bus("sys/bus/pci/devices", "vendor", "device", "class")
        self.usb = self._bus("sys/bus/usb/devices", "idVendor", "idProduct", None)
        self.packages = _packages()
        self.found: dict[str, dict[str, None]] = {"dev": {}, "pci": {}, "usb": {}, "libraries": {}}
        self._flags = set(INTERESTING_FLAGS)

    def _text(self, *relative: str) -> str | None:
        for rel in relative:
            try:
                # device-tree strings end with a NUL byte; compatible holds several, NUL-separated
                return (self.root / rel).read_bytes().decode(errors="replace").rstrip("\0").strip()
            except OSError:
                continue
        return None

    def _arch(self) -> tuple[str | None, str]:
        if self.host:
            return normalise_arch(platform.machine()), "uname"
        kernel = self._text("proc/sys/kernel/arch")
        if kernel:
            return normalise_arch(kernel), "/proc/sys/kernel/arch"
        return self.cpu.arch, "/proc/cpuinfo" if self.cpu.arch else "unknown"

    def _bus(self, rel: str, vendor: str, device: str, klass: str | None) -> dict[str, str]:
        """``vvvv:dddd`` → class (``120000``; empty when not read) for every device on the bus."""
        out: dict[str, str] = {}
        try:
            entries = sorted((self.root / rel).iterdir())
        except OSError:
            return out
        for d in entries:
            try:
                ident = ":".join(
                    (d / n).read_text().strip().lower().removeprefix("0x") for n in (vendor, device)
                )
            except OSError:  # USB interfaces ("1-1:1.0") and root entries have no ids
                continue
            try:
                cls = (d / klass).read_text().strip().lower().removeprefix("0x") if klass else ""
            except OSError:
                cls = ""
            out.setdefault(ident, cls)
        return out

    def exists(self, path: str) -> bool:
        """Whether ``path`` (absolute, as on the device) exists in the tree."""
        return (self.root / path.lstrip("/")).exists()

    def dev(self, pattern: str) -> list[str]:
        """The nodes matching ``pattern`` (a glob such as ``/dev/accel/accel*``), as paths on the device."""
        nodes = [
            "/" + p.relative_to(self.root).as_posix() for p in sorted(self.root.glob(pattern.lstrip("/")))
        ]
        self.found["dev"].update(dict.fromkeys(nodes))
        return nodes

    def pci_match(self, patterns: tuple[str, ...]) -> list[str]:
        """PCI ids matching any of ``patterns`` (``8086:7d1d``, ``10de:*/03`` for a class prefix)."""
        return self._match("pci", self.pci, patterns)

    def usb_match(self, patterns: tuple[str, ...]) -> list[str]:
        """USB ids matching any of ``patterns`` (``1a6e:089a``)."""
        return self._match("usb", self.usb, patterns)

    def _match(self, bus: str, ids: dict[str, str], patterns: tuple[str, ...]) -> list[str]:
        hits = []
        for ident, cls in ids.items():
            for pattern in patterns:
                glob, _, prefix = pattern.partition("/")
                if fnmatchcase(ident, glob) and cls.startswith(prefix):
                    hits.append(ident)
                    break
        self.found[bus].update(dict.fromkeys(hits))
        return hits

    def note_flags(self, flags: tuple[str, ...]) -> None:
        """Remember flags a rule asked about, so the record shows them present or absent."""
        self._flags.update(flags)

    def library(self, patterns: tuple[str, ...]) -> str | None:
        """The first shared library matching one of ``patterns`` (globs) in the tree's library directories;
        on this machine also on LD_LIBRARY_PATH and wherever the dynamic loader finds it."""
        dirs = list(LIB_DIRS)
        if self.host:
            dirs += [d.lstrip("/") for d in os.environ.get("LD_LIBRARY_PATH", "").split(":") if d]
        for pattern in patterns:
            for d in dirs:
                hit = next(iter(sorted((self.root / d).glob(pattern))), None)
                if hit is not None:
                    path = "/" + hit.relative_to(self.root).as_posix()
                    self.found["libraries"][path] = None
                    return path
            stem = Path(pattern).name.removeprefix("lib").split(".so")[0]  # find_library wants "edgetpu"
            if self.host and (name := ctypes.util.find_library(stem)):
                self.found["libraries"][name] = None
                return name
        return None

    def to_dict(self) -> dict[str, Any]:
        """What was read, as plain data: the record ``Detection.evidence`` holds."""
        l4t = _L4T.search(self.tegra_release or "")
        return {
            "root": str(self.root),
            "arch": self.arch,
            "arch_from": self.arch_from,
            "device_tree_model": self.model,
            "device_tree_compatible": self.compatible,
            "tegra_release": self.tegra_release,
            "l4t": f"{l4t.group(1)}.{l4t.group(2)}" if l4t else None,
            "cpu_model": self.cpu.names,
            "cpu_flags": sorted(self._flags & self.cpu.flags),
            "cpu_count": self.cpu.processors or None,
            "physical_cores": self.cpu.physical,
            "dev": list(self.found["dev"]),
            "pci": list(self.found["pci"]),
            "usb": list(self.found["usb"]),
            "pci_devices": len(self.pci),
            "usb_devices": len(self.usb),
            "libraries": list(self.found["libraries"]),
            "packages": {k: v for k, v in self.packages.items() if v},
        }


def _packages() -> dict[str, str | None]:
    """Each of ``PACKAGES`` → its version when installed (``"installed"`` when it imports but has no
    metadata), else None. find_spec only looks: nothing is imported."""
    shared = {m for m in PACKAGES.values() if list(PACKAGES.values()).count(m) > 1}
    out: dict[str, str | None] = {}
    for dist, module in PACKAGES.items():
        if importlib.util.find_spec(module) is None:
            out[dist] = None
            continue
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None if module in shared else "installed"
    return out


# -- the result ------------------------------------------------------------------------------------------


@dataclass
class Detection:
    """The profile picked for this machine, the add-ons found on it, the evidence read, the rules that
    matched, and each listed accelerator's status, in the profile's preference order."""

    profile: Profile
    evidence: dict[str, Any]
    matched: list[str]
    accelerators: list[AcceleratorStatus]
    addons: list[Profile] = field(default_factory=list)
    threads: int | None = None
    probed: bool = False

    def for_backend(self, backend: str) -> list[AcceleratorStatus]:
        """The accelerators of ``backend``, in preference order (the order selection walks)."""
        return [a for a in self.accelerators if a.backend == backend]

    @property
    def usable(self) -> list[AcceleratorStatus]:
        """The usable accelerators, in preference order."""
        return [a for a in self.accelerators if a.usable]

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain JSON-able data (for ``--json``)."""
        return {
            "profile": self.profile.to_dict(),
            "addons": [a.to_dict() for a in self.addons],
            "matched": self.matched,
            "threads": self.threads,
            "probed": self.probed,
            "accelerators": [a.to_dict() for a in self.accelerators],
            "evidence": self.evidence,
        }

    def __str__(self) -> str:
        names = " + ".join([self.profile.name] + [a.name for a in self.addons])
        lines = [f"device: {names} — {self.profile.description}"]
        lines.append(f"matched: {'; '.join(self.matched) or 'nothing specific (generic profile)'}")
        lines.append(f"threads: {self.threads or 'backend default'}")
        lines += [f"  {a}" for a in self.accelerators]
        return "\n".join(lines)


# -- detection -------------------------------------------------------------------------------------------


def detect(
    root: str | Path = "/", *, probe_backends: bool = True, profiles: dict[str, Profile] | None = None
) -> Detection:
    """Detect the board under ``root`` and judge its accelerators.

    ``root`` prefixes every path read, so a recorded fingerprint tree stands in for a real board.
    ``probe_backends`` asks the installed backends what they see (onnxruntime's providers, OpenVINO's
    devices, the LiteRT delegates that load); it applies only when ``root`` is this machine's ``/``, as
    the host's backends say nothing about a recorded tree. Without probing, usability is judged from the
    tree and the installed packages, and each reason says so. ``profiles`` defaults to
    ``load_profiles()``. Raises DeviceError when no profile matches (none for this architecture).
    """
    root_path = Path(root)
    host = root_path.resolve() == Path("/").resolve()
    ev = Evidence(root_path, host)
    boards: list[tuple[Profile, list[str]]] = []
    addons: list[tuple[Profile, list[str]]] = []
    for p in (profiles if profiles is not None else load_profiles()).values():
        seen = p.matches(ev)
        if seen is not None:
            (addons if p.addon else boards).append((p, seen))
    if not boards:
        raise DeviceError(
            f"no device profile matches {root_path} (arch {ev.arch or 'unknown'}); add one under "
            f"edge_sdk/devices/profiles/ or in a directory named by $EDGE_SDK_DEVICE_PROFILES"
        )
    # Highest priority wins; on a tie, the profile that matched more rules; then the name, for stability.
    board, matched = max(boards, key=lambda b: (b[0].priority, len(b[1]), b[0].name))
    probe = Prober() if probe_backends and host else None
    if probe_backends and not host:
        log.debug("detect: root %s is not this machine; backends not probed", root_path)
    specs: list[tuple[Profile, AcceleratorSpec]] = []
    # An add-on was attached on purpose: its accelerators come first.
    for p in [a for a, _ in addons] + [board]:
        for spec in p.accelerators:
            listed = any((s.backend, s.accelerator) == (spec.backend, spec.accelerator) for _, s in specs)
            if not listed and rules_hold(spec.when, ev) is not None:
                specs.append((p, spec))
    statuses = [judge(p, spec, ev, probe) for p, spec in specs]
    evidence = ev.to_dict()
    evidence["probe"] = probe.record if probe else None
    return Detection(
        profile=board,
        evidence=evidence,
        matched=matched + [f"{a.name}: {m}" for a, seen in addons for m in seen],
        accelerators=statuses,
        addons=[a for a, _ in addons],
        threads=_threads(board.threads, ev.cpu, host),
        probed=probe is not None,
    )


def _threads(setting: int | str, cpu: CpuInfo, host: bool) -> int | None:
    """The profile's thread setting as a count: ``physical`` cores, ``all`` logical ones, or a number."""
    if isinstance(setting, int):
        return setting
    count = (cpu.physical if setting == "physical" else None) or cpu.processors
    if not count and host:
        count = os.cpu_count() or 0
    return count or None
