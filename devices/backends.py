"""What detection asks of a runtime backend, and the registry the backends file themselves in.

A backend says which pip packages provide it, which accelerators it takes and what each needs on the
board (``Need``), and, asked on this machine, what it sees there (``probe``: onnxruntime's execution
providers, OpenVINO's devices, the LiteRT interpreter) and whether that includes one accelerator
(``answer``). Detection judges every accelerator with these answers alone, so it knows no backend by name
and imports none: the backend modules live in the package named below, which the registry imports when
it is first asked, and each registers itself there (the runtime's ``Backend`` is this protocol and more).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from edge_sdk.devices.hardware import Hardware
from edge_sdk.registry import Registry

# Named, not imported: the registry imports its modules on first use, as every registry finds its plug-ins.
BACKEND_PACKAGE = "edge_sdk.runtimes"


@dataclass(frozen=True)
class Packages:
    """The pip distributions any one of which provides a backend, and how to install one."""

    names: tuple[str, ...]
    install: str


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


@dataclass
class Probe:
    """What a backend sees on this machine, in its own names, or why it could not look (``error``, a
    sentence such as "onnxruntime does not load: ..."). ``record`` is what detection's evidence shows of
    it; answers may add to it (LiteRT notes each delegate it tried)."""

    seen: tuple[str, ...] = ()
    error: str = ""
    record: dict[str, Any] = field(default_factory=dict)


class Answer(NamedTuple):
    """Whether the backend lists an accelerator, what it said, and how to enable it when it does not."""

    listed: bool
    said: str
    enable: str = ""


class BackendProbe(Protocol):
    """What a backend tells detection about the hardware it runs on."""

    name: str
    formats: tuple[str, ...]
    packages: Packages
    accelerators: tuple[str, ...]  # the names it takes, as device profiles list them

    def need(self, accelerator: str) -> Need | None:
        """What ``accelerator`` needs on the board; None when this backend has no such accelerator."""
        ...

    def probe(self) -> Probe:
        """Ask the installed backend what it sees here. A broken install is an ``error``, never raised."""
        ...

    def answer(self, accelerator: str, probe: Probe, installed: Mapping[str, str | None]) -> Answer:
        """Whether ``probe`` (this backend's, without an error) lists ``accelerator``; ``installed`` maps
        pip distributions to their versions (None: not installed)."""
        ...


BACKENDS: Registry[BackendProbe] = Registry("backend", BACKEND_PACKAGE)
