"""How accelerator hardware shows itself on a board: ``/dev`` nodes, PCI and USB ids, and what to do when
it is missing or has no driver. The backends say which of these each of their accelerators needs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edge_sdk.devices.detect import Evidence


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

    def seen(self, ev: Evidence) -> tuple[bool, str, str]:
        """(present, what was seen, how to enable it) in the tree ``ev`` describes."""
        nodes = [n for pattern in self.dev for n in ev.dev(pattern)]
        pci, usb = ev.pci_match(self.pci), ev.usb_match(self.usb)
        if usb:
            return True, f"USB {', '.join(usb)} present", ""
        if nodes and (pci or not self.dev_needs_bus):
            return True, f"{', '.join(nodes)} present", ""
        if pci and self.dev:
            return (
                False,
                f"{self.name} on PCI ({', '.join(pci)}) but no {' or '.join(self.dev)}",
                self.driver_hint,
            )
        if pci:
            return True, f"PCI {', '.join(pci)} present", ""
        looked = [*self.dev, *(f"PCI {p}" for p in self.pci), *(f"USB {u}" for u in self.usb)]
        return False, f"no {self.name} (looked for {', '.join(looked)})", self.hint


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
