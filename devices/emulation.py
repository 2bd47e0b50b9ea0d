"""Run edge-sdk's runtime on another board's CPU, emulated by QEMU in user mode: for numerics, never for
speed (emulated code runs 100–500× slower, and its timings mean nothing).

A device profile's ``[cpu] emulate`` names the QEMU CPU model whose int8 kernels match the board's
(``cortex-a72`` for a Raspberry Pi 4). For an Arm board, ``qemu-aarch64`` runs Debian's arm64
python3.11 from a sysroot, with aarch64 wheels of the runtime packages at the host's versions and
edge-sdk's own (pure Python) code; for an x86-64 profile, ``qemu-x86_64`` runs this very interpreter
with the CPU model named (``Haswell``: AVX2 without VNNI), whose instructions the backends then see.

QEMU 10 or later is needed: 7.2 (Debian 12's own) passes the host's ``/proc/cpuinfo`` through to an
Arm guest, and onnxruntime crashes reading it. QEMU's TCG emulates neither AVX-512 nor VNNI, so no
emulated x86 CPU has them. ``prepare()`` fetches what is missing into the emulation root
(``$EDGE_SDK_EMULATION_ROOT``, default ``<edge-sdk cache>/emulation``): QEMU 10 from Debian's
bookworm-backports, the arm64 packages of Python 3.11 from Debian, and the wheels from PyPI, with a
private apt configuration, so nothing is installed on the system.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_sdk.devices.cpu import ENV_EMULATED, Cpu
from edge_sdk.errors import BadInputError, DeviceError

log = logging.getLogger("edge_sdk.devices.emulation")

ENV_ROOT = "EDGE_SDK_EMULATION_ROOT"
MIN_QEMU = (10, 0)
# x86 models QEMU's TCG runs faithfully, with the int8-relevant features they have.
X86_MODELS = {"Haswell": ("avx2",), "Broadwell": ("avx2",), "Skylake-Client": ("avx2",), "Nehalem": ()}
# What the Arm guest imports: numpy and the two runtimes that have aarch64 wheels on PyPI.
ARM_PACKAGES = ("numpy", "onnxruntime", "ai-edge-litert")
ARM_FORMATS = ("onnx", "tflite")
# Debian bookworm arm64 packages for python3.11 and the shared libraries the wheels load (libstdc++
# for onnxruntime and LiteRT, libffi for ctypes, which LiteRT imports).
ARM_DEBS = (
    "libc6", "libgcc-s1", "libstdc++6", "zlib1g", "libexpat1", "libffi8", "libssl3", "liblzma5",
    "libbz2-1.0", "python3.11-minimal", "libpython3.11-minimal", "libpython3.11-stdlib",
)  # fmt: skip
_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
_SOURCES = (
    "deb [arch=arm64 signed-by={k}] http://deb.debian.org/debian bookworm main\n"
    "deb [arch=arm64 signed-by={k}] http://deb.debian.org/debian bookworm-updates main\n"
    "deb [arch=arm64 signed-by={k}] http://deb.debian.org/debian-security bookworm-security main\n"
    "deb [arch=amd64 signed-by={k}] http://deb.debian.org/debian bookworm-backports main\n"
)
# pip picks wheels for the newest tag given only; the aarch64 wheels carry tags from 2014 to 2_36.
_PLATFORMS = ["manylinux2014_aarch64"] + [f"manylinux_2_{v}_aarch64" for v in range(17, 37)]
RUN_TIMEOUT_S = 900

Report = Callable[[str], None]


def emulation_root() -> Path:
    """Where the emulators, the arm64 sysroot and the wheels live."""
    if os.environ.get(ENV_ROOT):
        return Path(os.environ[ENV_ROOT]).expanduser()
    from edge_sdk.zoo import cache_root

    return cache_root() / "emulation"


def _qemu_version(binary: Path) -> tuple[int, ...] | None:
    try:
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"version (\d+)\.(\d+)", out)
    return (int(m.group(1)), int(m.group(2))) if m else None


def find_qemu(arch: str, root: Path | None = None) -> Path | None:
    """``qemu-ARCH`` of version 10 or later: the emulation root's, else one on PATH."""
    name = f"qemu-{arch}"
    for candidate in (
        (root or emulation_root()) / "bin" / name,
        shutil.which(name),
        shutil.which(f"{name}-static"),
    ):
        if candidate and Path(candidate).is_file():
            version = _qemu_version(Path(candidate))
            if version and version >= MIN_QEMU:
                return Path(candidate)
            log.debug("%s: version %s is older than %s", candidate, version, MIN_QEMU)
    return None


def _arm_pins() -> list[str]:
    """The aarch64 packages at this machine's versions (the same runtime, another CPU)."""
    pins = []
    for pkg in ARM_PACKAGES:
        try:
            pins.append(f"{pkg}=={importlib.metadata.version(pkg)}")
        except importlib.metadata.PackageNotFoundError:
            if pkg != "ai-edge-litert":
                raise BadInputError(f"emulation needs {pkg} installed here, to match its version") from None
    return pins


@dataclass
class Emulator:
    """One emulated CPU: the QEMU binary and model, and for an Arm guest its sysroot and packages."""

    arch: str
    model: str
    qemu: Path
    sysroot: Path | None = None
    site: Path | None = None

    @functools.cached_property
    def label(self) -> str:
        """E.g. ``qemu-aarch64 10.0 -cpu cortex-a72`` (asks the binary its version once)."""
        version = ".".join(map(str, _qemu_version(self.qemu) or ()))
        return f"{self.qemu.name} {version} -cpu {self.model}"

    def formats(self) -> tuple[str, ...]:
        return ARM_FORMATS if self.arch == "aarch64" else ("onnx", "tflite", "openvino")

    def run_module(self, module: str, args: list[str], timeout: float = RUN_TIMEOUT_S) -> None:
        """Run ``python -m module args`` on the emulated CPU; a DeviceError with its output if it fails."""
        with tempfile.TemporaryDirectory(prefix="edge-sdk-emulated-") as tmp:
            command, env = self._command(module, args, Path(tmp))
            log.info("running %s on %s", module, self.label)
            try:
                # run from the temporary folder: `python -m` puts the working directory first on the path
                done = subprocess.run(
                    command, env=env, capture_output=True, text=True, timeout=timeout, cwd=tmp
                )
            except subprocess.TimeoutExpired:
                raise DeviceError(f"{self.label}: {module} did not finish in {timeout:.0f} s") from None
        if done.returncode != 0:
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
            raise DeviceError(f"{self.label}: {module} failed (exit {done.returncode}):\n{tail}")
        log.debug("%s output:\n%s", self.label, done.stderr)

    def _command(self, module: str, args: list[str], tmp: Path) -> tuple[list[str], dict[str, str]]:
        env = {"EDGE_SDK_EMULATOR": self.label, "LANG": "C.UTF-8", "HOME": os.environ.get("HOME", "/")}
        if self.arch == "x86_64":
            # The guest reads the host's /proc/cpuinfo; the emulated CPU is told to it instead.
            cpu = Cpu("x86_64", f"QEMU {self.model}", "", X86_MODELS[self.model])
            env = {**os.environ, **env, ENV_EMULATED: json.dumps(cpu.to_dict())}
            return [str(self.qemu), "-cpu", self.model, sys.executable, "-m", module, *args], env
        assert self.sysroot is not None and self.site is not None
        overlay = tmp / "overlay"
        _package_overlay(overlay)
        env.update(
            PATH="/usr/bin:/bin",
            PYTHONPATH=f"{overlay}{os.pathsep}{self.site}",
            # bytecode compiled under emulation is slow to make: keep it, outside the source tree
            PYTHONPYCACHEPREFIX=str(self.site.parent / "pycache"),
        )
        python = self.sysroot / "usr/bin/python3.11"
        command = [
            str(self.qemu),
            "-cpu",
            self.model,
            "-L",
            str(self.sysroot),
            str(python),
            "-m",
            module,
            *args,
        ]
        return command, env


def _package_overlay(dest: Path) -> None:
    """``dest/edge_sdk``: the installed package as a tree of links, with its subpackages in place (an
    editable install maps them from elsewhere), for an interpreter that has not installed it."""
    import edge_sdk

    pkg = dest / "edge_sdk"
    pkg.mkdir(parents=True)
    for entry in Path(edge_sdk.__file__).parent.iterdir():
        if entry.name != "__pycache__":
            (pkg / entry.name).symlink_to(entry.resolve())
    for sub in ("converters", "devices", "runtimes"):
        spec = importlib.util.find_spec(f"edge_sdk.{sub}")
        if spec and spec.submodule_search_locations and not (pkg / sub).exists():
            (pkg / sub).symlink_to(Path(list(spec.submodule_search_locations)[0]).resolve())


def emulator_for(device: Any, root: Path | None = None) -> Emulator:
    """The emulator for ``device`` (a profile name or ``Profile``): its ``[cpu] emulate`` model, with
    what that needs found in the emulation root. What is missing is a BadInputError saying how to get it."""
    from edge_sdk.devices.profile import profile_named

    profile = profile_named(device)
    model = profile.cpu.emulate if profile.cpu else ""
    arch = "aarch64" if "aarch64" in profile.arch else "x86_64" if "x86_64" in profile.arch else ""
    if not model or not arch:
        raise BadInputError(
            f"device '{profile.name}' names no CPU QEMU can emulate ([cpu] emulate in its profile)"
            + (": QEMU emulates neither AVX-VNNI nor AVX-512" if "x86_64" in profile.arch else "")
        )
    if arch == "x86_64" and model not in X86_MODELS:
        raise BadInputError(
            f"device '{profile.name}': x86 model '{model}'; emulated: {', '.join(X86_MODELS)}"
        )
    if arch == "x86_64" and os.uname().machine != "x86_64":
        raise BadInputError(
            "emulating an x86-64 CPU runs this interpreter under qemu-x86_64: it needs an x86-64 host"
        )
    root = root or emulation_root()
    qemu = find_qemu(arch, root)
    how = f"run `edge-sdk verify ARTIFACT --emulate {profile.name} --prepare` (fetches them into {root})"
    if qemu is None:
        raise BadInputError(f"emulating {profile.name} needs qemu-{arch} 10 or later; {how}")
    if arch == "x86_64":
        return Emulator(arch, model, qemu)
    sysroot, site = root / "aarch64" / "sysroot", root / "aarch64" / "site"
    if not (sysroot / "usr/bin/python3.11").is_file() or _stamp(site) != _arm_pins():
        raise BadInputError(
            f"emulating {profile.name} needs an arm64 Python 3.11 with {', '.join(_arm_pins())}; {how}"
        )
    return Emulator(arch, model, qemu, sysroot, site)


def _stamp(site: Path) -> list[str] | None:
    try:
        return json.loads((site / ".pins.json").read_text())
    except (OSError, ValueError):
        return None


# -- preparing the emulation root ---------------------------------------------------------------------------


def prepare(device: Any, root: Path | None = None, report: Report = log.info) -> Emulator:
    """Fetch what emulating ``device``'s CPU needs and is missing from the emulation root, then return
    its emulator. Needs apt-get and Debian's archive keyring (a Debian or Ubuntu host) and the network to
    deb.debian.org and PyPI."""
    from edge_sdk.devices.profile import profile_named

    arch = "aarch64" if "aarch64" in profile_named(device).arch else "x86_64"
    root = root or emulation_root()
    if find_qemu(arch, root) is None or (
        arch == "aarch64" and not (root / "aarch64/sysroot/usr/bin/python3.11").is_file()
    ):
        _apt_ready(root, report)
    if find_qemu(arch, root) is None:
        _fetch_qemu(root, report)
    if arch == "aarch64":
        sysroot = root / "aarch64" / "sysroot"
        if not (sysroot / "usr/bin/python3.11").is_file():
            _fetch_sysroot(root, sysroot, report)
        site = root / "aarch64" / "site"
        if _stamp(site) != _arm_pins():
            _fetch_wheels(site, report)
    return emulator_for(device, root)


def _run(command: list[str], what: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=1800)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise DeviceError(f"preparing emulation: {what} failed: {e}") from None
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-10:])
        raise DeviceError(f"preparing emulation: {what} failed (exit {done.returncode}):\n{tail}")


def _apt_env(root: Path) -> dict[str, str]:
    return {**os.environ, "APT_CONFIG": str(root / "apt" / "apt.conf")}


def _apt_ready(root: Path, report: Report) -> None:
    """A private apt configuration (arm64 bookworm, amd64 bookworm-backports) with fresh package lists."""
    if shutil.which("apt-get") is None or not Path(_KEYRING).is_file():
        raise DeviceError(
            "preparing emulation needs apt-get and Debian's archive keyring (debian-archive-keyring); on "
            f"another system, put qemu-aarch64 10+ on PATH and an arm64 python3.11 sysroot in {root}/aarch64"
        )
    apt = root / "apt"
    for d in (
        "lists/partial",
        "cache/archives/partial",
        "etc/apt.conf.d",
        "etc/preferences.d",
        "etc/sources.list.d",
    ):
        (apt / d).mkdir(parents=True, exist_ok=True)
    (apt / "status").touch()
    (apt / "etc" / "sources.list").write_text(_SOURCES.format(k=_KEYRING))
    (apt / "apt.conf").write_text(
        "\n".join(
            [
                'APT::Architecture "arm64";',
                'APT::Architectures { "arm64"; "amd64"; };',
                'Acquire::Languages "none";',
                f'Dir::Etc "{apt}/etc";',
                f'Dir::State "{apt}";',
                f'Dir::State::status "{apt}/status";',
                f'Dir::Cache "{apt}/cache";',
                'Dir::Cache::pkgcache "";',
                'Dir::Cache::srcpkgcache "";',
                'APT::Sandbox::User "root";' if os.geteuid() == 0 else "",
            ]
        )
        + "\n"
    )
    report("emulation: reading Debian's package lists (arm64 bookworm, amd64 bookworm-backports)")
    _run(["apt-get", "-q", "update"], "apt-get update", _apt_env(root))


def _fetch_qemu(root: Path, report: Report) -> None:
    """qemu-aarch64 and qemu-x86_64 (static) out of bookworm-backports' qemu-user package."""
    report("emulation: fetching QEMU 10 (qemu-user from bookworm-backports)")
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        _run(
            ["apt-get", "-q", "download", "qemu-user:amd64/bookworm-backports"],
            "fetching qemu-user",
            _apt_env(root),
            Path(tmp),
        )
        deb = next(Path(tmp).glob("qemu-user_*.deb"))
        _run(["dpkg-deb", "-x", str(deb), str(Path(tmp) / "x")], "unpacking qemu-user")
        (root / "bin").mkdir(parents=True, exist_ok=True)
        for name in ("qemu-aarch64", "qemu-x86_64"):
            os.replace(Path(tmp) / "x/usr/bin" / name, root / "bin" / name)


def _fetch_sysroot(root: Path, sysroot: Path, report: Report) -> None:
    """Debian bookworm's arm64 python3.11 and the libraries it and the wheels load, unpacked (not
    installed) into ``sysroot``."""
    report(f"emulation: fetching an arm64 Python 3.11 ({len(ARM_DEBS)} Debian packages)")
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        _run(
            ["apt-get", "-q", "download", *(f"{p}:arm64" for p in ARM_DEBS)],
            "fetching arm64 packages",
            _apt_env(root),
            Path(tmp),
        )
        partial = sysroot.with_name("sysroot.partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        for deb in sorted(Path(tmp).glob("*.deb")):
            _run(["dpkg-deb", "-x", str(deb), str(partial)], f"unpacking {deb.name}")
        shutil.rmtree(sysroot, ignore_errors=True)
        os.replace(partial, sysroot)


def _fetch_wheels(site: Path, report: Report) -> None:
    """The aarch64 wheels of ``ARM_PACKAGES`` (and what they need) at this machine's versions."""
    pins = _arm_pins()
    report(f"emulation: fetching aarch64 wheels of {', '.join(pins)}")
    options = ["--python-version", "3.11", "--implementation", "cp", "--abi", "cp311", "--only-binary=:all:"]
    options += [a for p in _PLATFORMS for a in ("--platform", p)]
    partial = site.with_name("site.partial")
    shutil.rmtree(partial, ignore_errors=True)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    _run([*pip, "install", "--target", str(partial), *options, *pins], "pip install (aarch64 wheels)")
    (partial / ".pins.json").write_text(json.dumps(pins))
    shutil.rmtree(site, ignore_errors=True)
    os.replace(partial, site)
