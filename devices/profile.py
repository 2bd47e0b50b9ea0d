"""Device profiles as data: what a board is, how to recognise it, and what it should run on.

Each ``devices/profiles/NAME.toml`` is one profile, so a new board is a new file and no code. Directories
named in ``$EDGE_SDK_DEVICE_PROFILES`` (separated like ``PATH``) are read after the shipped ones; a
profile there replaces a shipped one of the same name. The keys:

- ``name`` (the file's stem) and ``description``;
- ``priority``: the highest-priority matching profile wins (boards 50–100, generic ones ≤ 0);
- ``addon``: an accessory (a Coral Edge TPU) that matches on top of a board and adds its accelerators;
- ``arch``: the ``uname -m`` names it applies to (empty: any);
- ``[[match]]``: rule sets; the profile matches when any one holds, and a set holds when every key in
  it holds (see ``RULES``). A profile without rule sets matches on ``arch`` alone;
- ``[[accelerators]]``: ``backend`` and ``accelerator`` as the backends name them, in preference order,
  with optional ``formats``, ``precisions``, ``enable`` (a hint for this board, shown when it is not
  usable) and ``when`` (rule sets: listed only when one holds);
- ``[cpu]``: what is known of the board's CPU: ``core`` (e.g. ``Cortex-A72``), ``vendor``, ``features``
  (its int8-relevant instruction-set features, as /proc/cpuinfo names them: ``asimddp``, ``avx_vnni``;
  leave it out when the profile covers CPUs that differ) and ``emulate`` (the QEMU ``-cpu`` model that
  runs the same int8 kernels, for ``edge-sdk verify --emulate``);
- ``formats``, ``precisions``: preference order for the profile; ``threads``: a count, ``"all"`` or
  ``"physical"``; ``telemetry``: the sources to read (``TELEMETRY_SOURCES``).
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_sdk.devices.backends import BACKENDS
from edge_sdk.errors import BadInputError
from edge_sdk.manifest import read_toml

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

    from edge_sdk.devices.detect import Evidence

ENV_PROFILES = "EDGE_SDK_DEVICE_PROFILES"
TELEMETRY_SOURCES = ("tegrastats", "ina3221", "vcgencmd", "thermal_zone", "rapl", "hwmon")
THREAD_WORDS = ("all", "physical")

# `uname -m` spellings of the same architecture on other systems (macOS says arm64, Windows AMD64).
ARCH_ALIASES = {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64", "armv8l": "armv7l"}

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_WORD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_BUS_ID = re.compile(r"^[0-9a-f*?]{1,4}:[0-9a-f*?]{1,4}(/[0-9a-f]{2,6})?$")

# A rule set as (key, values) pairs: a tuple, so a Profile stays hashable.
RuleSet = tuple[tuple[str, tuple[str, ...]], ...]


def normalise_arch(arch: str) -> str:
    """``arch`` in the Linux ``uname -m`` spelling (``arm64`` → ``aarch64``, ``AMD64`` → ``x86_64``)."""
    lowered = arch.strip().lower()
    return ARCH_ALIASES.get(lowered, lowered)


# -- rules: key → (what it means, check). A check returns what it saw when the rule holds, else None. ----


def _any_substring(haystacks: Iterable[str], values: tuple[str, ...], what: str) -> str | None:
    for text in haystacks:
        for v in values:
            if v.lower() in text.lower():
                return f"{what} {text!r} contains {v!r}"
    return None


def _check_model(ev: Evidence, values: tuple[str, ...]) -> str | None:
    return _any_substring([ev.model] if ev.model else [], values, "device-tree model")


def _check_compatible(ev: Evidence, values: tuple[str, ...]) -> str | None:
    hit = next((c for c in ev.compatible if c in values), None)
    return f"device-tree compatible {hit!r}" if hit else None


def _check_tegra(ev: Evidence, values: tuple[str, ...]) -> str | None:
    return _any_substring([ev.tegra_release] if ev.tegra_release else [], values, "/etc/nv_tegra_release")


def _check_files(ev: Evidence, values: tuple[str, ...]) -> str | None:
    hit = next((p for p in values if ev.exists(p)), None)
    return f"{hit} exists" if hit else None


def _check_cpu_model(ev: Evidence, values: tuple[str, ...]) -> str | None:
    return _any_substring(ev.cpu.names, values, "CPU")


def _check_cpu_flags(ev: Evidence, values: tuple[str, ...]) -> str | None:
    ev.note_flags(values)
    return f"CPU flags {' '.join(values)}" if all(f in ev.cpu.flags for f in values) else None


def _check_dev(ev: Evidence, values: tuple[str, ...]) -> str | None:
    found = [node for pattern in values for node in ev.dev(pattern)]
    return f"{', '.join(found)} present" if found else None


def _check_pci(ev: Evidence, values: tuple[str, ...]) -> str | None:
    found = ev.pci_match(values)
    return f"PCI {', '.join(found)} present" if found else None


def _check_usb(ev: Evidence, values: tuple[str, ...]) -> str | None:
    found = ev.usb_match(values)
    return f"USB {', '.join(found)} present" if found else None


RULES: dict[str, tuple[str, Callable[[Evidence, tuple[str, ...]], str | None]]] = {
    "device_tree_model": ("/proc/device-tree/model contains any of these (case-insensitive)", _check_model),
    "device_tree_compatible": ("/proc/device-tree/compatible lists any of these", _check_compatible),
    "tegra_release": ("the first line of /etc/nv_tegra_release contains any of these", _check_tegra),
    "files": ("any of these paths exists", _check_files),
    "cpu_model": ("/proc/cpuinfo model name, Hardware, Model or core name contains any", _check_cpu_model),
    "cpu_flags": ("/proc/cpuinfo flags (x86) or Features (ARM) hold every one of these", _check_cpu_flags),
    "dev": ("a node under /dev matches any of these globs", _check_dev),
    "pci": ("a PCI vendor:device matches any of these globs (lowercase hex; '/CLASS' prefix)", _check_pci),
    "usb": ("a USB idVendor:idProduct matches any of these globs (lowercase hex)", _check_usb),
}


def rules_hold(rule_sets: tuple[RuleSet, ...], ev: Evidence) -> list[str] | None:
    """What the holding rule sets saw (every holding set, so the record is complete), or None when no set
    holds. An empty tuple of sets holds trivially."""
    if not rule_sets:
        return []
    seen: list[str] = []
    held = False
    for rule_set in rule_sets:
        results = [RULES[key][1](ev, values) for key, values in rule_set]
        if all(r is not None for r in results):
            held = True
            seen += [r for r in results if r is not None and r not in seen]
    return seen if held else None


# -- the profile --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AcceleratorSpec:
    """One (backend, accelerator) a profile prefers, with the formats and precisions that suit it there."""

    backend: str
    accelerator: str
    formats: tuple[str, ...] = ()
    precisions: tuple[str, ...] = ()
    enable: str = ""
    when: tuple[RuleSet, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"backend": self.backend, "accelerator": self.accelerator}
        d.update(formats=list(self.formats), precisions=list(self.precisions))
        if self.enable:
            d["enable"] = self.enable
        if self.when:
            d["when"] = [_rule_set_dict(rs) for rs in self.when]
        return d


@dataclass(frozen=True)
class CpuSpec:
    """A profile's ``[cpu]`` table. ``features`` None means the CPU varies (nothing promised)."""

    core: str = ""
    vendor: str = ""
    features: tuple[str, ...] | None = None
    emulate: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "core": self.core,
            "vendor": self.vendor,
            "features": None if self.features is None else list(self.features),
            "emulate": self.emulate,
        }


@dataclass(frozen=True)
class Profile:
    """A device profile, as read from ``profiles/NAME.toml`` (see the module docstring for the keys)."""

    name: str
    description: str
    priority: int = 0
    addon: bool = False
    arch: tuple[str, ...] = ()
    match: tuple[RuleSet, ...] = ()
    accelerators: tuple[AcceleratorSpec, ...] = ()
    formats: tuple[str, ...] = ()
    precisions: tuple[str, ...] = ()
    threads: int | str = "all"
    telemetry: tuple[str, ...] = ()
    cpu: CpuSpec | None = None
    source: str = field(default="", compare=False)  # the file it came from

    def matches(self, ev: Evidence) -> list[str] | None:
        """What matched this profile in ``ev`` (arch first), or None when it does not apply."""
        if self.arch and ev.arch not in self.arch:
            return None
        seen = rules_hold(self.match, ev)
        if seen is None:
            return None
        return ([f"arch {ev.arch}"] if self.arch else []) + seen

    def to_dict(self) -> dict[str, Any]:
        """The profile as plain JSON-able data."""
        return {
            "name": self.name,
            "description": self.description,
            "priority": self.priority,
            "addon": self.addon,
            "arch": list(self.arch),
            "match": [_rule_set_dict(rs) for rs in self.match],
            "accelerators": [a.to_dict() for a in self.accelerators],
            "formats": list(self.formats),
            "precisions": list(self.precisions),
            "threads": self.threads,
            "telemetry": list(self.telemetry),
            "cpu": self.cpu.to_dict() if self.cpu else None,
            "source": self.source,
        }


def _rule_set_dict(rule_set: RuleSet) -> dict[str, list[str]]:
    return {key: list(values) for key, values in rule_set}


# -- reading and validating -----------------------------------------------------------------------------

_PROFILE_KEYS = {
    "name", "description", "priority", "addon", "arch", "match", "accelerators",
    "formats", "precisions", "threads", "telemetry", "cpu",
}  # fmt: skip
_ACCELERATOR_KEYS = {"backend", "accelerator", "formats", "precisions", "enable", "when"}
_CPU_KEYS = {"core", "vendor", "features", "emulate"}


class _Reader:
    """Typed access to one parsed TOML table; every error names the file and the key."""

    def __init__(self, where: str, data: dict[str, Any], prefix: str = "") -> None:
        self.where, self.data, self.prefix = where, data, prefix

    def fail(self, key: str, message: str) -> BadInputError:
        return BadInputError(f"{self.where}: key '{self.prefix}{key}': {message}")

    def check_keys(self, allowed: set[str]) -> None:
        for key in self.data:
            if key not in allowed:
                raise self.fail(key, f"unknown key; known: {', '.join(sorted(allowed))}")

    def get(self, key: str, kind: type, default: Any = None, required: bool = False) -> Any:
        if key not in self.data:
            if required:
                raise self.fail(key, "missing")
            return default
        value = self.data[key]
        # bool is an int in Python; a priority of `true` is a typo, not 1
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.fail(key, f"expected {kind.__name__}, got {type(value).__name__} {value!r}")
        return value

    def words(self, key: str, pattern: re.Pattern[str] = _WORD) -> tuple[str, ...]:
        values = self.get(key, list, [])
        for i, v in enumerate(values):
            if not isinstance(v, str) or not pattern.match(v):
                raise self.fail(f"{key}[{i}]", f"expected a name like 'onnx' or 'int8', got {v!r}")
        return tuple(values)

    def rule_sets(self, key: str) -> tuple[RuleSet, ...]:
        tables = self.get(key, list, [])
        out = []
        for i, table in enumerate(tables):
            here = f"{key}[{i}]"
            if not isinstance(table, dict) or not table:
                raise self.fail(here, "expected a non-empty table of rules")
            pairs = []
            for rule, values in table.items():
                if rule not in RULES:
                    raise self.fail(f"{here}.{rule}", f"unknown rule; known: {', '.join(RULES)}")
                if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
                    raise self.fail(f"{here}.{rule}", "expected a non-empty list of strings")
                if rule in ("pci", "usb"):
                    bad = [v for v in values if not _BUS_ID.match(v)]
                    if bad:
                        raise self.fail(
                            f"{here}.{rule}", f"expected lowercase hex 'vvvv:dddd' ids, got {bad}"
                        )
                if rule == "dev":
                    bad = [v for v in values if not _is_dev_glob(v)]
                    if bad:
                        raise self.fail(
                            f"{here}.{rule}", f"expected globs of nodes like '/dev/apex_*', got {bad}"
                        )
                pairs.append((rule, tuple(values)))
            out.append(tuple(pairs))
        return tuple(out)


def _is_dev_glob(pattern: str) -> bool:
    """A glob that names nodes under /dev and nothing above or beneath it: a recursive ``**`` would walk
    the whole tree, and pathlib refuses an empty pattern or ``**`` inside a name with errors of its own."""
    parts = pattern.split("/")
    return (
        pattern.startswith("/dev/")
        and "\0" not in pattern
        and all(p and p != ".." and "**" not in p for p in parts[2:])
    )


def _cpu_features(r: _Reader) -> tuple[str, ...]:
    from edge_sdk.devices.cpu import INT8_FEATURES  # here: cpu.py imports this module

    features = r.words("features")
    for i, f in enumerate(features):
        if f not in INT8_FEATURES:
            raise r.fail(f"features[{i}]", f"unknown int8 feature {f!r}; known: {', '.join(INT8_FEATURES)}")
    return features


def parse_profile(data: dict[str, Any], where: str, stem: str) -> Profile:
    """Validate one parsed profile file (``where`` names it in errors; ``stem`` is the file's name)."""
    r = _Reader(where, data)
    r.check_keys(_PROFILE_KEYS)
    name = r.get("name", str, required=True)
    if name != stem or not _NAME.match(name):
        raise r.fail("name", f"must be the file's name '{stem}' (lowercase letters, digits, '.', '_', '-')")
    threads = data.get("threads", "all")
    if isinstance(threads, bool) or not (
        (isinstance(threads, int) and threads > 0) or threads in THREAD_WORDS
    ):
        raise r.fail("threads", f"expected a positive count, 'all' or 'physical', got {threads!r}")
    telemetry = r.words("telemetry")
    for i, source in enumerate(telemetry):
        if source not in TELEMETRY_SOURCES:
            raise r.fail(
                f"telemetry[{i}]", f"unknown source {source!r}; known: {', '.join(TELEMETRY_SOURCES)}"
            )
    accelerators: list[AcceleratorSpec] = []
    for i, table in enumerate(r.get("accelerators", list, [])):
        here = f"accelerators[{i}]"
        if not isinstance(table, dict):
            raise r.fail(here, "expected a table")
        a = _Reader(where, table, prefix=f"{here}.")
        a.check_keys(_ACCELERATOR_KEYS)
        backend = a.get("backend", str, required=True)
        accelerator = a.get("accelerator", str, required=True)
        # A backend edge-sdk lacks (e.g. hailort) is allowed: detection reports it as not usable.
        if backend in BACKENDS.names() and BACKENDS.get(backend).need(accelerator) is None:
            known = ", ".join(sorted(BACKENDS.get(backend).accelerators))
            raise a.fail("accelerator", f"{backend} has no accelerator {accelerator!r}; known: {known}")
        if any((s.backend, s.accelerator) == (backend, accelerator) for s in accelerators):
            raise a.fail("accelerator", f"{backend}/{accelerator} is listed twice")
        accelerators.append(
            AcceleratorSpec(
                backend=backend,
                accelerator=accelerator,
                formats=a.words("formats"),
                precisions=a.words("precisions"),
                enable=a.get("enable", str, ""),
                when=a.rule_sets("when"),
            )
        )
    cpu = None
    if "cpu" in data:
        table = r.get("cpu", dict)
        c = _Reader(where, table, prefix="cpu.")
        c.check_keys(_CPU_KEYS)
        cpu = CpuSpec(
            core=c.get("core", str, ""),
            vendor=c.get("vendor", str, ""),
            features=_cpu_features(c) if "features" in table else None,
            emulate=c.get("emulate", str, ""),
        )
    profile = Profile(
        name=name,
        description=r.get("description", str, required=True),
        priority=r.get("priority", int, 0),
        addon=r.get("addon", bool, False),
        arch=tuple(normalise_arch(a) for a in r.words("arch")),
        match=r.rule_sets("match"),
        accelerators=tuple(accelerators),
        formats=r.words("formats"),
        precisions=r.words("precisions"),
        threads=threads,
        telemetry=telemetry,
        cpu=cpu,
        source=where,
    )
    if profile.addon and not profile.match:
        raise r.fail("match", "an add-on needs at least one [[match]] rule set, or it would match everywhere")
    return profile


def _profile_files(directory: Traversable) -> list[Traversable]:
    """The ``.toml`` files of a profile directory; a folder that happens to end in .toml is not one."""
    return sorted(
        (f for f in directory.iterdir() if f.name.endswith(".toml") and f.is_file()), key=lambda f: f.name
    )


def profile_named(device: str | Profile) -> Profile:
    """The profile ``device`` names (a Profile passes through); an unknown name is a BadInputError that
    lists the known ones and suggests the nearest."""
    if isinstance(device, Profile):
        return device
    if not isinstance(device, str):
        raise BadInputError(
            f"a device is a profile name or a Profile, not {type(device).__name__} {device!r:.60}"
        )
    profiles = load_profiles()
    if device not in profiles:
        near = difflib.get_close_matches(str(device), list(profiles), n=1)
        hint = f"; did you mean '{near[0]}'?" if near else ""
        raise BadInputError(f"unknown device profile '{device}'{hint}; known: {', '.join(profiles)}")
    return profiles[device]


def load_profiles(directory: Path | None = None) -> dict[str, Profile]:
    """Every profile by name: from ``directory`` when given, else the shipped ones followed by those in
    ``$EDGE_SDK_DEVICE_PROFILES``. A malformed file is a BadInputError naming the file and the key."""
    if directory is not None:
        if not directory.is_dir():
            raise BadInputError(f"{directory}: no such directory of device profiles")
        directories: list[Traversable] = [directory]
    else:
        directories = [resources.files("edge_sdk.devices").joinpath("profiles")]
        directories += [Path(d) for d in os.environ.get(ENV_PROFILES, "").split(os.pathsep) if d]
    profiles: dict[str, Profile] = {}
    for d in directories:
        if not d.is_dir():
            raise BadInputError(f"{d} (from ${ENV_PROFILES}): no such directory of device profiles")
        for f in _profile_files(d):
            where = str(f)
            data = read_toml(f, where, "device profile")
            profile = parse_profile(data, where, f.name.removesuffix(".toml"))
            # Later directories override earlier ones by name, so a user can replace a shipped profile.
            profiles[profile.name] = profile
    if not profiles:
        raise BadInputError(f"no device profiles found in {', '.join(map(str, directories))}")
    return profiles
