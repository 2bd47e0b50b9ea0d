"""``load()``: from artifacts (or a model file) to a running ``Session`` on the best backend × accelerator
the device offers, with every choice recorded.

Selection walks the device profile's accelerators in preference order. For each it asks: is the
backend installed, is the accelerator there, is there an artifact in a format that backend runs (the
profile's preferred precision first), and does the backend open it there. The first that does is
taken. Anything passed over that the board has is a fall-back: it is logged as a warning, recorded in
``session.selection``, and refused with ``strict=True``.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

from edge_sdk.devices.detect import Detection, detect
from edge_sdk.devices.profile import Profile, profile_named
from edge_sdk.errors import BadInputError, DeviceError
from edge_sdk.manifest import Artifact, inside, is_artifact, load_artifact
from edge_sdk.runtimes.numerics import warn_if_measured_elsewhere
from edge_sdk.runtimes.session import BACKENDS, Candidate, Selection, Session

log = logging.getLogger("edge_sdk.runtimes")

# Plain model files are accepted too; their format follows from the suffix.
_SUFFIX_FORMATS = {".onnx": "onnx", ".xml": "openvino", ".tflite": "tflite"}

ModelRef = str | os.PathLike[str] | Artifact
# "auto" (or None): detect this board; else a profile name, a Profile, or a detection made earlier.
Device: TypeAlias = str | Profile | Detection | None


@dataclass
class _Model:
    """One runnable thing: an artifact, or a plain model file (no manifest)."""

    path: Path
    format: str
    artifact: Artifact | None

    @property
    def label(self) -> str:
        return self.artifact.name if self.artifact else self.path.name

    @property
    def precision(self) -> str | None:
        return self.artifact.precision if self.artifact else None


@dataclass
class _Option:
    """A (backend, accelerator) to try, with the formats and precisions it prefers there."""

    backend: str
    accelerator: str
    usable: bool
    reason: str
    formats: tuple[str, ...]
    precisions: tuple[str, ...]
    explicit: bool = False
    present: bool = True  # the device has the hardware; passing it over is a fall-back


def _artifact_model(art: Artifact) -> _Model:
    """The artifact's model, with the files its backend reads beside it checked to be inside its folder
    too: OpenVINO opens the ``.bin`` next to the ``.xml`` whether the manifest lists it or not."""
    model = art.model_file
    if art.format == "openvino" and art.path is not None:
        inside(art.path, Path(art.files[0].path).with_suffix(".bin").as_posix())
    return _Model(model, art.format, art)


def _collect(ref: ModelRef | Sequence[ModelRef]) -> list[_Model]:
    """Every model ``ref`` names: an artifact, a model file, a folder of artifacts, or a list of those."""
    if isinstance(ref, (list, tuple)):
        return [m for r in ref for m in _collect(r)]
    if isinstance(ref, Artifact):
        return [_artifact_model(ref)]
    p = Path(ref)  # type: ignore[arg-type]
    if not p.exists():
        raise BadInputError(f"{p}: no such file or directory")
    if is_artifact(p):
        return [_artifact_model(load_artifact(p))]
    if p.is_file() and p.suffix in _SUFFIX_FORMATS:
        return [_Model(p, _SUFFIX_FORMATS[p.suffix], None)]
    if p.is_dir():
        found = [_collect(c)[0] for c in sorted(p.iterdir()) if c.is_dir() and is_artifact(c)]
        if found:
            return found
    raise BadInputError(
        f"{p}: not an artifact directory (no artifact.json), a folder of artifacts, nor a model file "
        f"({', '.join(_SUFFIX_FORMATS)})"
    )


@functools.lru_cache(maxsize=1)
def _this_device() -> Detection | None:
    """This machine's detection, once per process; None when no profile fits it. Backends are not probed
    here: selection tries to open each candidate, which is the real test, and probing would import every
    backend up front."""
    try:
        return detect(probe_backends=False)
    except DeviceError as e:
        log.warning("%s; each backend's own accelerator order applies", e)
        return None


def _any_backend() -> list[_Option]:
    """With no profile: every installed backend, each with its own accelerator order."""
    return [
        _Option(n, "auto", True, "no device profile: the backend's own order", (), ()) for n, _ in BACKENDS
    ]


def _options_for(device: Device) -> tuple[str, list[_Option], int | None]:
    """The device's name, its accelerators in preference order, and its thread count."""
    if device is None or device == "auto":
        device = _this_device()
        if device is None:
            return "unknown", _any_backend(), None
    if isinstance(device, str):
        device = profile_named(device)
    if isinstance(device, Profile):
        # A profile named by the user: its preference order, judged on this machine's evidence (what
        # hardware is here, what is installed), as if this machine had matched it.
        forced = dataclasses.replace(device, match=(), arch=(), addon=False)
        device = detect(profiles={forced.name: forced}, probe_backends=False)
    if isinstance(device, Detection):
        names = " + ".join([device.profile.name] + [a.name for a in device.addons])
        opts = [
            _Option(
                a.backend,
                a.accelerator,
                a.usable,
                a.reason + (f"; {a.enable}" if a.enable and not a.usable else ""),
                a.formats or device.profile.formats,
                a.precisions or device.profile.precisions,
                present=a.hardware_present,
            )
            for a in device.accelerators
        ]
        return names, opts, device.threads
    raise BadInputError(f"device must be 'auto', a profile name, a Profile or a Detection, not {device!r}")


def _rank(
    models: list[_Model],
    formats: Iterable[str],
    backend_formats: tuple[str, ...],
    precisions: tuple[str, ...],
) -> list[_Model]:
    """The models this backend runs, in the preferred format and precision order."""
    fmts = [f for f in formats if f in backend_formats] or list(backend_formats)
    runnable = [m for m in models if m.format in fmts]

    def key(m: _Model) -> tuple[int, int]:
        p = precisions.index(m.precision) if m.precision in precisions else len(precisions)
        return (fmts.index(m.format), p)

    return sorted(runnable, key=key)  # stable: ties keep the order the user gave


def load(
    model: ModelRef | Sequence[ModelRef],
    *,
    device: Device = "auto",
    backend: str = "auto",
    accelerator: str = "auto",
    threads: int | None = None,
    strict: bool = False,
    options: dict[str, Any] | None = None,
) -> Session:
    """Open the best of ``model`` (an artifact, a model file, a folder of artifacts, or a list) on the best
    backend × accelerator of ``device`` and return a ``Session``.

    ``device`` is ``"auto"`` (detect this board), a profile name (``"jetson-orin"``), a ``Profile`` or a
    ``Detection``. ``backend`` / ``accelerator`` narrow the choice; ``strict=True`` refuses to fall back
    past anything the device has; ``threads`` defaults to the profile's; ``options`` go to the backends
    that take them. ``session.selection`` lists every candidate, taken or skipped, with the reason.
    """
    models = _collect(model)
    options = dict(options or {})
    known = {k for _, b in BACKENDS for k in b.options}
    unknown = sorted(set(options) - known)
    if unknown:
        raise BadInputError(
            f"unknown load option(s) {unknown}; the backends take: {', '.join(sorted(known))}"
        )
    if backend != "auto" and backend not in BACKENDS.names():
        raise BadInputError(f"unknown backend '{backend}'; known: {', '.join(BACKENDS.names())}")
    _check_installed(models)
    device_name, walk, device_threads = _options_for(device)
    wanted = (backend, accelerator)
    if wanted != ("auto", "auto"):
        # Asked for by name: every backend with nothing that fits in the profile tries it anyway.
        names = [backend] if backend != "auto" else [n for n, _ in BACKENDS]
        walk += [
            _Option(n, accelerator, True, "asked for explicitly", (), (), explicit=True)
            for n in names
            if not any(o.backend == n and _fits(o, backend, accelerator) for o in walk)
        ]
    record: list[Candidate] = []
    passed_over: list[str] = []
    refused: list[bool] = []  # per attempt asked for by name: did the backend refuse the name itself
    for opt in walk:
        where = f"{opt.backend}/{opt.accelerator}"
        if not _fits(opt, backend, accelerator):
            record.append(
                Candidate(opt.backend, opt.accelerator, "skipped", f"not asked for ({_asked(wanted)})")
            )
            continue
        if not opt.usable and accelerator == "auto":  # asked for by name, the backend itself says why not
            record.append(Candidate(opt.backend, opt.accelerator, "skipped", opt.reason))
            if opt.present:  # the board has it and it cannot be used: that is the fall-back to report
                passed_over.append(f"{where} ({opt.reason})")
            continue
        if opt.backend not in BACKENDS.names():
            record.append(
                Candidate(opt.backend, opt.accelerator, "skipped", f"edge-sdk has no '{opt.backend}' backend")
            )
            continue
        b = BACKENDS.get(opt.backend)
        ok, why = b.available()
        if not ok:
            record.append(Candidate(opt.backend, opt.accelerator, "skipped", why))
            passed_over.append(f"{where} ({why})")
            continue
        ranked = _rank(models, opt.formats, b.formats, opt.precisions)
        if not ranked:
            have = sorted({m.format for m in models})
            why = f"no artifact in a format it runs ({', '.join(b.formats)}); given: {', '.join(have)}"
            record.append(Candidate(opt.backend, opt.accelerator, "skipped", why))
            continue
        chosen = ranked[0]
        if passed_over and strict:
            raise DeviceError(_refusal(device_name, passed_over))
        acc = accelerator if opt.accelerator == "auto" else opt.accelerator
        mine = {k: v for k, v in options.items() if k in b.options}
        try:
            session = b.open(chosen.path, chosen.artifact, acc, threads or device_threads, **mine)
        except (DeviceError, BadInputError) as e:
            named = accelerator != "auto"
            if isinstance(e, BadInputError) and not named:
                raise  # the model itself is bad, not the accelerator missing
            refused.append(isinstance(e, BadInputError))
            record.append(Candidate(opt.backend, acc, "skipped", str(e)))
            if not opt.explicit:
                passed_over.append(f"{where} ({e})")
            if strict and not opt.explicit:
                raise DeviceError(_refusal(device_name, passed_over)) from None
            continue
        return _finish(session, record, device_name, chosen, passed_over)
    asked = [c for c in record if not c.reason.startswith("not asked for")]
    lines = "\n".join(f"  {c.backend}/{c.accelerator}: {c.reason}" for c in asked)
    what = ", ".join(m.label for m in models)
    if refused and all(refused):  # every backend that could run it refused: the name, or the model itself
        raise BadInputError(f"no backend could open {what} on accelerator '{accelerator}':\n{lines}")
    raise DeviceError(
        f"nothing here can run {what} on device '{device_name}' ({_asked(wanted) or 'auto'}):\n{lines}"
    )


def _check_installed(models: list[_Model]) -> None:
    """Refuse up front, naming the pip extra, when no installed backend runs any of the formats given."""
    formats = sorted({m.format for m in models})
    runners = [(n, b) for n, b in BACKENDS if any(f in b.formats for f in formats)]
    if not runners:
        raise BadInputError(f"no backend runs format {', '.join(repr(f) for f in formats)}")
    reasons = []
    for name, b in runners:
        ok, why = b.available()
        if ok:
            return
        reasons.append(f"{name}: {why}")
    raise BadInputError(
        f"no installed backend runs format {', '.join(repr(f) for f in formats)}: {'; '.join(reasons)}"
    )


def _fits(opt: _Option, backend: str, accelerator: str) -> bool:
    acc_ok = accelerator.lower() in ("auto", opt.accelerator.lower()) or opt.accelerator == "auto"
    return backend in ("auto", opt.backend) and acc_ok


def _asked(wanted: tuple[str, str]) -> str:
    return ", ".join(
        f"{k}={v}" for k, v in zip(("backend", "accelerator"), wanted, strict=True) if v != "auto"
    )


def _refusal(device: str, passed_over: list[str]) -> str:
    return (
        f"strict: device '{device}' has accelerators that cannot be used, and falling back was refused: "
        + "; ".join(passed_over)
    )


def _finish(
    session: Session, record: list[Candidate], device: str, chosen: _Model, passed_over: list[str]
) -> Session:
    """Put the walk before the backend's own record, and say so loudly if anything was passed over."""
    sel = session.selection
    sel.device = device
    sel.artifact = chosen.label
    sel.candidates = record + sel.candidates
    warn_if_measured_elsewhere(chosen.artifact)
    if passed_over:
        log.warning("running on %s/%s: passed over %s", sel.backend, sel.accelerator, "; ".join(passed_over))
        sel.fallback = True
    return session


__all__ = ["Selection", "load"]
