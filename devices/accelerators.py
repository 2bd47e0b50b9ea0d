"""What each (backend, accelerator) needs to be usable, and the verdict for one on a detected machine.

An accelerator is usable when its hardware is there with its driver (``/dev`` nodes, PCI or USB ids),
the Python package that drives it is installed, the native library it loads is there, and, when the
backends are probed, the backend itself lists it. The verdict names what was found and what is missing,
and says how to enable what is missing. The backends are asked through their own functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edge_sdk.devices.detect import Evidence
    from edge_sdk.devices.profile import AcceleratorSpec, Profile


@dataclass(frozen=True)
class Hardware:
    """How a piece of hardware shows itself. A ``/dev`` node means it is there with its kernel driver; a
    PCI id without the node means the driver is missing; a USB id needs no kernel driver. Where a node
    alone is ambiguous (``/dev/dri`` serves any GPU), ``dev_needs_bus`` asks for the PCI id as well."""

    name: str
    dev: tuple[str, ...] = ()
    pci: tuple[str, ...] = ()  # vendor:device globs, "/CLASS" prefix optional
    usb: tuple[str, ...] = ()
    dev_needs_bus: bool = False
    hint: str = ""  # nothing found
    driver_hint: str = ""  # on the bus, but no /dev node


@dataclass(frozen=True)
class Need:
    """What one (backend, accelerator) needs beyond its backend's package: hardware, a package build
    (``packages``, any of), a native library (``libraries``, globs, any of), and how to get each."""

    label: str
    hardware: Hardware | None = None
    packages: tuple[str, ...] = ()  # default: the backend's own packages
    pip: str = ""
    libraries: tuple[str, ...] = ()
    library_hint: str = ""
    probe_hint: str = ""
    probe_checks_library: bool = True  # the backend's answer covers the library (not so for TensorRT)
    probe_proves_hardware: bool = False  # the backend lists it only when the device is there


# The packages that provide each backend, any one of which will do, and how to install the first.
BACKEND_PACKAGES = {
    "onnxruntime": ("onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino"),
    "openvino": ("openvino",),
    "tflite": ("ai-edge-litert", "tflite-runtime", "tensorflow"),
    "hailort": ("hailort",),
}
BACKEND_PIP = {
    "onnxruntime": "pip install onnxruntime",
    "openvino": "pip install 'edge-sdk[openvino]'",
    "tflite": "pip install 'edge-sdk[litert]'",
    "hailort": "sudo apt install hailo-all (Raspberry Pi OS)",
}

NVIDIA_GPU = Hardware(
    "NVIDIA GPU",
    dev=("/dev/nvidia0", "/dev/nvhost-ctrl-gpu", "/dev/nvgpu/igpu0/ctrl"),  # discrete; Jetson JP4/5; JP6
    pci=("10de:*/03",),
    hint="needs an NVIDIA GPU (a Jetson, or a CUDA-capable card)",
    driver_hint="install the NVIDIA driver (nvidia-smi should list the card)",
)
INTEL_GPU = Hardware(
    "Intel GPU",
    dev=("/dev/dri/renderD*",),
    pci=("8086:*/03",),
    dev_needs_bus=True,
    hint="needs an Intel integrated or Arc GPU",
    driver_hint="bind the i915 or xe kernel driver to it (see dmesg)",
)
INTEL_NPU = Hardware(
    "Intel NPU",
    dev=("/dev/accel/accel*",),
    # Meteor Lake, Lunar Lake, Arrow Lake, and any later Intel "processing accelerator" class device
    pci=("8086:7d1d", "8086:643e", "8086:ad1d", "8086:*/1200"),
    hint="needs an Intel Core Ultra NPU (Meteor Lake, Lunar Lake, Arrow Lake)",
    driver_hint="load the intel_vpu kernel driver (Linux 6.3 or later; sudo modprobe intel_vpu)",
)
EDGE_TPU = Hardware(
    "Edge TPU",
    dev=("/dev/apex_*",),
    pci=("1ac1:089a",),
    usb=("1a6e:089a", "18d1:9302"),  # before and after libedgetpu loads its firmware
    hint="needs a Coral USB Accelerator or a Coral PCIe/M.2 module",
    driver_hint="install the apex kernel driver (apt install gasket-dkms) and add your user to group apex",
)
ANY_GPU = Hardware(
    "GPU",
    dev=("/dev/dri/renderD*", "/dev/mali*", "/dev/kgsl-3d0", "/dev/nvhost-ctrl-gpu"),
    hint="needs a GPU with OpenCL or OpenGL ES",
)
HAILO = Hardware(
    "Hailo accelerator",
    dev=("/dev/hailo*",),
    pci=("1e60:*",),
    hint="needs a Raspberry Pi AI Kit or AI HAT+ (Hailo-8L / Hailo-8)",
    driver_hint="install the Hailo PCIe driver (sudo apt install hailo-all) and reboot",
)

_JETPACK_TRT = "install TensorRT (JetPack has it; elsewhere pip install tensorrt)"
_NPU_DRIVER = "install the Intel NPU driver (intel-level-zero-npu, github.com/intel/linux-npu-driver)"
_GPU_RUNTIME = "install the Intel GPU compute runtime (apt install intel-opencl-icd)"

# Keyed by (backend, accelerator family): OpenVINO's "GPU.1" is a GPU.
NEEDS: dict[tuple[str, str], Need] = {
    ("onnxruntime", "cpu"): Need("onnxruntime CPU"),
    ("onnxruntime", "cuda"): Need(
        "CUDA provider", NVIDIA_GPU, packages=("onnxruntime-gpu",), pip="pip install onnxruntime-gpu"
    ),
    ("onnxruntime", "tensorrt"): Need(
        "TensorRT provider",
        NVIDIA_GPU,
        packages=("onnxruntime-gpu",),
        pip="pip install onnxruntime-gpu",
        libraries=("libnvinfer.so*",),
        library_hint=_JETPACK_TRT,
        probe_checks_library=False,  # onnxruntime lists the provider whether or not TensorRT is there
    ),
    ("onnxruntime", "openvino"): Need(
        "OpenVINO provider", packages=("onnxruntime-openvino",), pip="pip install onnxruntime-openvino"
    ),
    ("openvino", "CPU"): Need("OpenVINO CPU"),
    ("openvino", "GPU"): Need(
        "OpenVINO GPU",
        INTEL_GPU,
        libraries=("libigdrcl.so*", "intel-opencl/libigdrcl.so"),  # Ubuntu's intel-opencl-icd: the latter
        library_hint=_GPU_RUNTIME,
        probe_hint=_GPU_RUNTIME,
        probe_proves_hardware=True,
    ),
    ("openvino", "NPU"): Need(
        "OpenVINO NPU",
        INTEL_NPU,
        libraries=("libze_intel_vpu.so*", "libze_intel_npu.so*"),
        library_hint=_NPU_DRIVER,
        probe_hint=_NPU_DRIVER,
        probe_proves_hardware=True,
    ),
    ("tflite", "cpu"): Need("LiteRT CPU, XNNPACK"),
    ("tflite", "cpu-builtin"): Need("LiteRT CPU, builtin kernels"),
    ("tflite", "edgetpu"): Need(
        "Edge TPU",
        EDGE_TPU,
        libraries=("libedgetpu.so.1",),
        library_hint="apt install libedgetpu1-std (from Coral's apt repository)",
        probe_proves_hardware=True,  # the delegate does not load without a device
    ),
    ("tflite", "gpu"): Need(
        "LiteRT GPU delegate",
        ANY_GPU,
        libraries=("libtensorflowlite_gpu_delegate.so",),
        library_hint="build the TFLite GPU delegate for this board and put it on the library path "
        "(or point EDGE_SDK_TFLITE_GPU_DELEGATE at it)",
    ),
    ("hailort", "hailo"): Need("Hailo, HailoRT", HAILO),
}


@dataclass
class AcceleratorStatus:
    """One (backend, accelerator) of the profile: usable here or not, why, and how to enable it."""

    backend: str
    accelerator: str
    label: str
    usable: bool
    reason: str
    enable: str = ""  # empty when usable
    formats: tuple[str, ...] = ()
    precisions: tuple[str, ...] = ()
    profile: str = ""  # the profile (board or add-on) that lists it
    # Whether the board shows the hardware (a /dev node, PCI or USB id); accelerators that need none, the
    # CPUs, count as present. Selection treats passing over a present accelerator as a fall-back.
    hardware_present: bool = True

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d.update(formats=list(self.formats), precisions=list(self.precisions))
        return d

    def __str__(self) -> str:
        tail = f" → {self.enable}" if self.enable else ""
        verdict = "usable" if self.usable else "not usable"
        return f"{self.backend}/{self.accelerator} ({self.label}) {verdict}: {self.reason}{tail}"


class Prober:
    """Asks the installed backends what they see, through their own functions; each question is asked
    once, and the answers are kept in ``record`` for the evidence."""

    def __init__(self) -> None:
        self.record: dict[str, Any] = {}

    @cached_property
    def providers(self) -> list[str]:
        try:
            import onnxruntime as ort

            value = list(ort.get_available_providers())
        except Exception as e:  # a broken install fails in many ways; it then lists nothing
            value, self.record["onnxruntime_error"] = [], str(e)
        self.record["onnxruntime"] = value
        return value

    @cached_property
    def openvino_devices(self) -> list[str]:
        from edge_sdk.runtimes.session import BACKENDS

        try:
            value = BACKENDS.get("openvino").devices()  # type: ignore[attr-defined]
        except Exception as e:  # as above
            value, self.record["openvino_error"] = [], str(e)
        self.record["openvino"] = value
        return value

    @cached_property
    def tflite_runtime(self) -> Any:
        from edge_sdk.runtimes.tflite import find_runtime

        runtime, skipped = find_runtime()
        self.record["tflite"] = {
            "runtime": f"{runtime.package} {runtime.version}" if runtime else None,
            "skipped": dict(skipped),
        }
        return runtime

    def check(
        self, spec: AcceleratorSpec, need: Need, packages: dict[str, str | None]
    ) -> tuple[bool, str, str]:
        """(listed, what the backend said, how to enable it) for one accelerator."""
        acc = spec.accelerator
        pip = BACKEND_PIP.get(spec.backend, "")
        if spec.backend == "onnxruntime" and not self.providers and "onnxruntime_error" in self.record:
            return (
                False,
                f"onnxruntime does not load: {self.record['onnxruntime_error']}",
                f"reinstall it ({pip})",
            )
        if spec.backend == "openvino" and not self.openvino_devices and "openvino_error" in self.record:
            return False, f"OpenVINO does not start: {self.record['openvino_error']}", f"reinstall it ({pip})"
        if spec.backend == "onnxruntime":
            from edge_sdk.runtimes.onnxruntime import PROVIDERS

            provider = PROVIDERS.get(acc, acc)
            if provider in self.providers:
                return True, f"onnxruntime lists {provider}", ""
            hint = need.pip
            if packages.get("onnxruntime") and any(packages.get(p) for p in need.packages):
                # Both builds install the module `onnxruntime`; whichever was installed last wins.
                other = need.packages[0]
                hint = (
                    f"onnxruntime and {other} are both installed and the CPU build shadows the other: "
                    f"pip uninstall -y onnxruntime {other} && {need.pip}"
                )
            return False, f"onnxruntime does not list {provider}", hint
        if spec.backend == "openvino":
            devices = [d for d in self.openvino_devices if d.split(".")[0] == acc.split(".")[0]]
            if devices:
                return True, f"OpenVINO lists {', '.join(devices)}", ""
            seen = ", ".join(self.openvino_devices) or "nothing"
            return False, f"OpenVINO does not list {acc} (it lists {seen})", need.probe_hint
        if spec.backend == "tflite":
            runtime = self.tflite_runtime
            if runtime is None:
                return False, "no TFLite interpreter package works here", pip
            if acc not in ("edgetpu", "gpu"):
                return True, f"the {runtime.package} interpreter imports", ""
            from edge_sdk.runtimes.session import BACKENDS

            # TODO(lead): TfliteBackend._delegate is private; expose it (e.g. tflite.load_delegate).
            delegate, why = BACKENDS.get("tflite")._delegate(runtime, acc)  # type: ignore[attr-defined]
            self.record.setdefault("tflite_delegates", {})[acc] = why
            # its reason ends with its own hint after "; ": ours goes into `enable` instead
            return delegate is not None, why.partition("; ")[0], need.library_hint
        return False, f"edge-sdk cannot probe backend '{spec.backend}'", ""


def _hardware(hw: Hardware, ev: Evidence) -> tuple[bool, str, str]:
    """(present, what was seen, how to enable it) for one piece of hardware in the tree."""
    nodes = [n for pattern in hw.dev for n in ev.dev(pattern)]
    pci, usb = ev.pci_match(hw.pci), ev.usb_match(hw.usb)
    if usb:
        return True, f"USB {', '.join(usb)} present", ""
    if nodes and (pci or not hw.dev_needs_bus):
        return True, f"{', '.join(nodes)} present", ""
    if pci and hw.dev:
        return False, f"{hw.name} on PCI ({', '.join(pci)}) but no {' or '.join(hw.dev)}", hw.driver_hint
    if pci:
        return True, f"PCI {', '.join(pci)} present", ""
    looked = [*hw.dev, *(f"PCI {p}" for p in hw.pci), *(f"USB {u}" for u in hw.usb)]
    return False, f"no {hw.name} (looked for {', '.join(looked)})", hw.hint


def _installed(names: tuple[str, ...], packages: dict[str, str | None]) -> str | None:
    found = [f"{n} {packages[n]}" for n in names if packages.get(n)]
    return found[0] if found else None


def judge(profile: Profile, spec: AcceleratorSpec, ev: Evidence, probe: Prober | None) -> AcceleratorStatus:
    """The status of ``spec`` (listed by ``profile``) on the machine ``ev`` describes; ``probe`` asks the
    backends (None: judged from the tree and the installed packages only)."""
    from edge_sdk.runtimes.session import BACKENDS

    backend, family = spec.backend, spec.accelerator.split(".")[0]
    need = NEEDS.get((backend, family)) or Need(f"{backend} {spec.accelerator}")
    have: list[str] = []
    missing: list[str] = []
    hints: list[str] = []
    hw_ok, hw_seen, hw_hint = _hardware(need.hardware, ev) if need.hardware else (True, "", "")
    registered = backend in BACKENDS.names()
    runtime = _installed(BACKEND_PACKAGES.get(backend, ()), ev.packages)
    answer = None
    if probe is not None and registered and runtime and (hw_ok or need.probe_proves_hardware):
        answer = probe.check(spec, need, ev.packages)
    if need.hardware:
        if hw_ok:
            have.append(hw_seen)
        elif answer and answer[0] and need.probe_proves_hardware:
            hw_ok = True  # the backend found the device where the tree showed none (e.g. in a container)
        else:
            missing.append(hw_seen)
            hints.append(hw_hint)
            answer = None  # no device explains why the backend does not list it
    if not registered:
        missing.append(f"edge-sdk has no '{backend}' backend yet")
    packages = need.packages or BACKEND_PACKAGES.get(backend, ())
    found = _installed(packages, ev.packages)
    if packages and not found and not (answer and answer[0]):
        missing.append(f"{' or '.join(packages)} not installed")
        hints.append(need.pip or BACKEND_PIP.get(backend, ""))
        answer = None  # a missing package explains whatever the backend did not list
    elif found:
        have.append(f"{found} installed")
    if need.libraries and hw_ok and (answer is None or not need.probe_checks_library):
        library = ev.library(need.libraries)
        if library:
            have.append(f"{library} found")
        else:
            missing.append(f"{need.libraries[0]} not found")
            hints.append(need.library_hint)
    if answer is not None:
        (have if answer[0] else missing).append(answer[1])
        hints.append(answer[2])
    if missing:
        reason = (", ".join(have) + " but " if have else "") + "; ".join(missing)
    else:
        reason = ", ".join(have) or "nothing needed"
    if probe is None:
        reason += " (backends not probed" + ("" if ev.host else f"; judged from the tree at {ev.root}") + ")"
    # the board's own hint (e.g. JetPack's wheels) goes last, after the generic ones
    enable = (
        [h for h in dict.fromkeys(hints) if h] + ([spec.enable] if spec.enable else []) if missing else []
    )
    return AcceleratorStatus(
        backend=backend,
        accelerator=spec.accelerator,
        label=need.label,
        usable=not missing,
        reason=reason,
        enable="; ".join(enable),
        formats=spec.formats or _formats(backend),
        precisions=spec.precisions or profile.precisions,
        profile=profile.name,
        hardware_present=hw_ok,
    )


def _formats(backend: str) -> tuple[str, ...]:
    """The formats ``backend`` runs (none when edge-sdk has no such backend)."""
    from edge_sdk.runtimes.session import BACKENDS

    return tuple(BACKENDS.get(backend).formats) if backend in BACKENDS.names() else ()
