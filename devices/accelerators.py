"""The verdict on each (backend, accelerator) a device profile lists, on a detected machine.

An accelerator is usable when its hardware is there with its driver (``/dev`` nodes, PCI or USB ids),
the Python package that drives it is installed, the native library it loads is there, and, when the
backends are probed, the backend itself lists it. The verdict names what was found and what is missing,
and says how to enable what is missing. The backends say what their accelerators need and what they see
through the ``BackendProbe`` protocol (``backends.py``); accelerators of a backend edge-sdk lacks are
judged from the board alone, with what ``NEEDS`` says of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edge_sdk.devices.backends import BACKENDS, Answer, BackendProbe, Need, Probe
from edge_sdk.devices.hardware import HAILO

if TYPE_CHECKING:
    from edge_sdk.devices.detect import Evidence
    from edge_sdk.devices.profile import AcceleratorSpec, Profile

# Accelerators device profiles list for a backend edge-sdk has no module for: the board can still show
# the hardware and the package, and the verdict says what is there and what is missing.
NEEDS: dict[tuple[str, str], Need] = {
    ("hailort", "hailo"): Need(
        "Hailo, HailoRT", HAILO, packages=("hailort",), pip="sudo apt install hailo-all (Raspberry Pi OS)"
    ),
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
    """Asks the backends what they see, each once; what each said is kept for the evidence (``record``)."""

    def __init__(self) -> None:
        self._probes: dict[str, Probe] = {}

    @property
    def record(self) -> dict[str, Any]:
        """Every probe's record, in the order the backends were asked."""
        return {k: v for probe in self._probes.values() for k, v in probe.record.items()}

    def probe(self, backend: BackendProbe) -> Probe:
        """What ``backend`` sees here, asked the first time only."""
        probe = self._probes.get(backend.name)
        if probe is None:
            probe = self._probes[backend.name] = backend.probe()
        return probe

    def answer(self, backend: BackendProbe, accelerator: str, installed: Mapping[str, str | None]) -> Answer:
        """(listed, what the backend said, how to enable it) for one accelerator."""
        probe = self.probe(backend)
        if probe.error:
            return Answer(False, probe.error, f"reinstall it ({backend.packages.install})")
        return backend.answer(accelerator, probe, installed)


def _installed(names: tuple[str, ...], packages: Mapping[str, str | None]) -> str | None:
    found = [f"{n} {packages[n]}" for n in names if packages.get(n)]
    return found[0] if found else None


def judge(profile: Profile, spec: AcceleratorSpec, ev: Evidence, probe: Prober | None) -> AcceleratorStatus:
    """The status of ``spec`` (listed by ``profile``) on the machine ``ev`` describes; ``probe`` asks the
    backends (None: judged from the tree and the installed packages only)."""
    name = spec.backend
    backend = BACKENDS.get(name) if name in BACKENDS.names() else None
    need = (backend.need(spec.accelerator) if backend else NEEDS.get((name, spec.accelerator))) or Need(
        f"{name} {spec.accelerator}"
    )
    own = backend.packages.names if backend else ()
    have: list[str] = []
    missing: list[str] = []
    hints: list[str] = []
    hw_ok, hw_seen, hw_hint = need.hardware.seen(ev) if need.hardware else (True, "", "")
    answer = None
    if (
        probe is not None
        and backend is not None
        and _installed(own, ev.packages)
        and (hw_ok or need.probe_proves_hardware)
    ):
        answer = probe.answer(backend, spec.accelerator, ev.packages)
    if need.hardware:
        if hw_ok:
            have.append(hw_seen)
        elif answer and answer.listed and need.probe_proves_hardware:
            hw_ok = True  # the backend found the device where the tree showed none (e.g. in a container)
        else:
            missing.append(hw_seen)
            hints.append(hw_hint)
            answer = None  # no device explains why the backend does not list it
    if backend is None:
        missing.append(f"edge-sdk has no '{name}' backend yet")
    packages = need.packages or own
    found = _installed(packages, ev.packages)
    if packages and not found and not (answer and answer.listed):
        missing.append(f"{' or '.join(packages)} not installed")
        hints.append(need.pip or (backend.packages.install if backend else ""))
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
        (have if answer.listed else missing).append(answer.said)
        hints.append(answer.enable)
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
        backend=name,
        accelerator=spec.accelerator,
        label=need.label,
        usable=not missing,
        reason=reason,
        enable="; ".join(enable),
        formats=spec.formats or (backend.formats if backend else ()),
        precisions=spec.precisions or profile.precisions,
        profile=profile.name,
        hardware_present=hw_ok,
    )
