"""The TFLite backend: runs ``tflite`` artifacts and plain ``.tflite`` files with the LiteRT interpreter.

The interpreter comes from the first runtime package that works here: ``ai-edge-litert`` (LiteRT),
then ``tflite-runtime`` (built against numpy 1.x, so skipped with the reason under numpy 2), then
``tensorflow.lite``. Accelerators are delegates: the Edge TPU (``libedgetpu.so.1``) and GPU
(``libtensorflowlite_gpu_delegate.so``) delegates are loaded by library name when present, and
``cpu`` runs the builtin kernels with XNNPACK (``cpu-builtin`` without it). ``auto`` walks edgetpu, gpu,
cpu; every runtime package and accelerator looked at is in ``session.selection`` with its reason.
A delegate library path can be given with ``EDGE_SDK_TFLITE_EDGETPU_DELEGATE`` /
``EDGE_SDK_TFLITE_GPU_DELEGATE`` when it is not on the loader's search path.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.metadata
import importlib.util
import logging
import mmap
import os
import platform
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.devices.backends import Answer, Need, Packages, Probe
from edge_sdk.devices.hardware import ANY_GPU, EDGE_TPU
from edge_sdk.errors import BadInputError, DeviceError
from edge_sdk.manifest import Artifact, Dim, TensorSpec
from edge_sdk.runtimes.session import BACKENDS, Selection, Session

log = logging.getLogger("edge_sdk.runtimes.tflite")

AUTO_ORDER = ("edgetpu", "gpu", "cpu")
ACCELERATORS = {
    "edgetpu": "Edge TPU delegate",
    "gpu": "GPU delegate",
    "cpu": "builtin kernels with the XNNPACK delegate",
    "cpu-builtin": "builtin kernels without XNNPACK",
}
_DELEGATE_LIBS = {
    "edgetpu": {"Linux": "libedgetpu.so.1", "Darwin": "libedgetpu.1.dylib", "Windows": "edgetpu.dll"},
    "gpu": {"Linux": "libtensorflowlite_gpu_delegate.so"},
}
_HOW_TO_ENABLE = {
    "edgetpu": "install libedgetpu1-std and plug in a Coral Edge TPU",
    "gpu": "build or install the TFLite GPU delegate library for this board",
}
_EDGETPU_OP = b"edgetpu-custom-op"  # the custom op edgetpu_compiler puts into compiled models

# What each accelerator needs on the board besides an interpreter package: a delegate needs its device
# and its library.
NEEDS = {
    "cpu": Need("LiteRT CPU, XNNPACK"),
    "cpu-builtin": Need("LiteRT CPU, builtin kernels"),
    "edgetpu": Need(
        "Edge TPU",
        EDGE_TPU,
        libraries=(_DELEGATE_LIBS["edgetpu"]["Linux"],),
        library_hint="apt install libedgetpu1-std (from Coral's apt repository)",
        probe_proves_hardware=True,  # the delegate does not load without a device
    ),
    "gpu": Need(
        "LiteRT GPU delegate",
        ANY_GPU,
        libraries=(_DELEGATE_LIBS["gpu"]["Linux"],),
        library_hint="build the TFLite GPU delegate for this board and put it on the library path "
        "(or point EDGE_SDK_TFLITE_GPU_DELEGATE at it)",
    ),
}


@dataclass
class Runtime:
    """The interpreter package in use: its pip name and version, and what it provides."""

    package: str
    version: str
    interpreter: Any
    load_delegate: Any
    resolver: Any  # the OpResolverType enum


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def _litert() -> Runtime:
    from ai_edge_litert import interpreter as m

    return Runtime(
        "ai-edge-litert", _version("ai-edge-litert"), m.Interpreter, m.load_delegate, m.OpResolverType
    )


def _tflite_runtime() -> Runtime:
    # Its wheels are built against numpy 1.x; importing one under numpy 2 prints a screenful to stderr
    # before it fails, so the versions are compared first.
    if importlib.util.find_spec("tflite_runtime") is None:
        raise ModuleNotFoundError("no tflite_runtime", name="tflite_runtime")
    if int(np.__version__.split(".")[0]) >= 2:
        raise _Unusable(
            f"tflite-runtime {_version('tflite-runtime')} is built against numpy 1.x and this environment "
            f"has numpy {np.__version__}; install ai-edge-litert instead (or numpy<2)"
        )
    from tflite_runtime import interpreter as m

    return Runtime(
        "tflite-runtime", _version("tflite-runtime"), m.Interpreter, m.load_delegate, m.OpResolverType
    )


def _tensorflow() -> Runtime:
    import tensorflow as tf

    lite = tf.lite
    return Runtime(
        "tensorflow",
        tf.__version__,
        lite.Interpreter,
        lite.experimental.load_delegate,
        lite.experimental.OpResolverType,
    )


class _Unusable(Exception):
    pass


# Interpreter packages in preference order: (pip name, module to look for, loader).
_RUNTIMES = (
    ("ai-edge-litert", "ai_edge_litert", _litert),
    ("tflite-runtime", "tflite_runtime", _tflite_runtime),
    ("tensorflow", "tensorflow", _tensorflow),
)


def find_runtime() -> tuple[Runtime | None, list[tuple[str, str]]]:
    """The first interpreter package that works here, and (package, reason) for each one skipped."""
    skipped: list[tuple[str, str]] = []
    for package, module, load in _RUNTIMES:
        try:
            return load(), skipped
        except _Unusable as e:
            skipped.append((package, str(e)))
        except ModuleNotFoundError as e:
            if (e.name or "").split(".")[0] != module:
                skipped.append((package, f"installed but does not import: {e}"))
            else:
                hint = " (pip install 'edge-sdk[tflite]')" if package == "ai-edge-litert" else ""
                skipped.append((package, f"not installed{hint}"))
        except (ImportError, AttributeError, ValueError) as e:
            skipped.append((package, f"installed but does not import: {e}"))
    return None, skipped


def load_delegate(runtime: Runtime, acc: str) -> tuple[Any, str]:
    """Load accelerator ``acc``'s delegate library with ``runtime``; (None, reason) when it cannot be
    loaded, the reason ending with how to enable it after "; "."""
    lib = os.environ.get(f"EDGE_SDK_TFLITE_{acc.upper()}_DELEGATE") or _DELEGATE_LIBS[acc].get(
        platform.system()
    )
    if lib is None:
        return None, f"no {ACCELERATORS[acc]} for {platform.system()}"
    try:
        # dlopen first: a load_delegate() that fails this way also spits an AttributeError from
        # its Delegate.__del__ onto stderr.
        ctypes.CDLL(lib)
        return runtime.load_delegate(lib), f"{lib} loaded"
    except (ValueError, OSError, RuntimeError) as e:
        return None, f"{lib} not loadable ({str(e).strip().splitlines()[0][:160]}); {_HOW_TO_ENABLE[acc]}"


@contextlib.contextmanager
def _captured_stderr() -> Iterator[list[str]]:
    """Route the C++ runtime's stderr (e.g. 'INFO: Created TensorFlow Lite XNNPACK delegate') into a
    list instead of the user's terminal; the text is logged at debug level and added to errors."""
    text: list[str] = []
    try:
        saved = os.dup(2)
    except OSError:  # no usable fd 2 (some embedded interpreters): leave it alone
        yield text
        return
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield text
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            text.append(tmp.read().decode(errors="replace").strip())
            if text[-1]:
                log.debug("tflite runtime: %s", text[-1])


def _file_specs(details: dict[str, dict[str, Any]]) -> list[TensorSpec]:
    specs = []
    for name, d in details.items():
        shape: list[Dim] = [int(x) if x > 0 else None for x in d.get("shape_signature", d["shape"])]
        specs.append(TensorSpec(name=name, shape=shape, dtype=np.dtype(d["dtype"]).name))
    return specs


class TfliteSession(Session):
    """A Session over one LiteRT/TFLite interpreter. Runs are serialised: an interpreter is not
    re-entrant."""

    def __init__(
        self,
        interp: Any,  # the Interpreter of whichever package find_runtime took
        inputs: list[TensorSpec],
        outputs: list[TensorSpec],
        selection: Selection,
        artifact: Artifact | None,
    ) -> None:
        signatures = interp.get_signature_list()
        self._runner = interp.get_signature_runner() if len(signatures) == 1 else None
        self._in = {d["name"]: d["index"] for d in interp.get_input_details()}
        self._out = {d["name"]: d["index"] for d in interp.get_output_details()}
        # _run feeds a signature by its own names, else the tensors by theirs
        ins, outs = (
            (self._runner.get_input_details(), self._runner.get_output_details())
            if self._runner is not None
            else (self._in, self._out)
        )
        file_tensors = ([{n} for n in ins], [{n} for n in outs])
        super().__init__(inputs, outputs, selection, artifact, file_tensors=file_tensors)
        self._interp = interp
        self._lock = threading.Lock()

    def _run(self, feeds: dict[str, np.ndarray], outputs: list[str]) -> dict[str, np.ndarray]:
        with self._lock:
            try:
                if self._runner is not None:
                    results = self._runner(**feeds)
                    return {n: results[n] for n in outputs}
                return self._run_tensors(feeds, outputs)
            except (RuntimeError, ValueError) as e:
                raise BadInputError(f"TFLite could not run the model: {e}") from None

    def _run_tensors(self, feeds: dict[str, np.ndarray], outputs: list[str]) -> dict[str, np.ndarray]:
        """A model without a signature: inputs and outputs by tensor name, resized as the arrays are."""
        interp = self._interp
        details = {d["name"]: d for d in interp.get_input_details()}
        resized = False
        for name, a in feeds.items():
            if tuple(details[name]["shape"]) != a.shape:
                interp.resize_tensor_input(self._in[name], list(a.shape))
                resized = True
        if resized:
            interp.allocate_tensors()
        for name, a in feeds.items():
            interp.set_tensor(self._in[name], a)
        interp.invoke()
        return {n: interp.get_tensor(self._out[n]) for n in outputs}


class TfliteBackend:
    """Registers as ``tflite``; runs ``tflite`` artifacts and plain ``.tflite`` files."""

    name = "tflite"
    formats = ("tflite",)
    options: dict[str, str] = {}  # delegates and threads come through accelerator= and threads=
    packages = Packages(("ai-edge-litert", "tflite-runtime", "tensorflow"), "pip install 'edge-sdk[litert]'")
    accelerators = tuple(ACCELERATORS)

    def available(self) -> tuple[bool, str]:
        runtime, skipped = find_runtime()
        if runtime is None:
            reasons = "; ".join(f"{p}: {why}" for p, why in skipped)
            return False, f"no TFLite interpreter package works here ({reasons})"
        return True, f"{runtime.package} {runtime.version}"

    def version(self) -> str:
        runtime, _ = find_runtime()
        return f"{runtime.package} {runtime.version}" if runtime else "none"

    def need(self, accelerator: str) -> Need | None:
        return NEEDS.get(accelerator)

    def probe(self) -> Probe:
        """The interpreter package that works here (none when none does), and why each other was skipped.
        Delegates are loaded only when an answer asks for one: loading one touches its device."""
        runtime, skipped = find_runtime()
        seen = f"{runtime.package} {runtime.version}" if runtime else None
        return Probe((seen,) if seen else (), record={"tflite": {"runtime": seen, "skipped": dict(skipped)}})

    def answer(self, accelerator: str, probe: Probe, installed: Mapping[str, str | None]) -> Answer:
        runtime, _ = find_runtime()
        if runtime is None:
            return Answer(False, "no TFLite interpreter package works here", self.packages.install)
        if accelerator not in _DELEGATE_LIBS:
            return Answer(True, f"the {runtime.package} interpreter imports")
        delegate, why = load_delegate(runtime, accelerator)
        probe.record.setdefault("tflite_delegates", {})[accelerator] = why
        need = self.need(accelerator)
        # the reason ends with its own hint after "; ": the need's goes into `enable` instead
        return Answer(delegate is not None, why.partition("; ")[0], need.library_hint if need else "")

    def _interpreter(
        self, runtime: Runtime, model: Path, acc: str, delegate: Any, threads: int | None
    ) -> Any:
        kwargs: dict[str, Any] = {"model_path": str(model), "num_threads": threads}
        if delegate is not None:
            kwargs["experimental_delegates"] = [delegate]
        if acc == "cpu-builtin":
            kwargs["experimental_op_resolver_type"] = runtime.resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        err: Exception | None = None
        with _captured_stderr() as said:
            try:
                interp = runtime.interpreter(**kwargs)
                interp.allocate_tensors()  # where delegates are applied, and fail
            except (RuntimeError, ValueError) as e:
                err = e
        if err is not None:
            raise _LoadFailed(f"{err}".strip() + (f" ({said[0]})" if said and said[0] else ""))
        return interp

    def open(
        self, model: Path, artifact: Artifact | None, accelerator: str, threads: int | None, **options: Any
    ) -> Session:
        """Open ``model`` on ``accelerator`` (or the first usable one for ``auto``)."""
        if options:
            raise BadInputError(f"unknown tflite option(s) {sorted(options)}; the tflite backend takes none")
        runtime, skipped = find_runtime()
        if runtime is None:
            raise BadInputError(f"no TFLite interpreter package works here: {skipped}")
        if accelerator != "auto" and accelerator not in ACCELERATORS:
            raise BadInputError(
                f"unknown tflite accelerator '{accelerator}'; known: {', '.join(ACCELERATORS)}"
            )
        sel = Selection(backend=self.name, accelerator="")
        for package, why in skipped:
            sel.add(self.name, f"runtime:{package}", "skipped", why)
        sel.add(self.name, f"runtime:{runtime.package}", "taken", f"{runtime.package} {runtime.version}")
        interp = self._walk(runtime, model, accelerator, threads, sel)
        if artifact is not None:
            inputs, outputs = artifact.inputs, artifact.outputs
        elif len(interp.get_signature_list()) == 1:
            runner = interp.get_signature_runner()
            inputs, outputs = (
                _file_specs(runner.get_input_details()),
                _file_specs(runner.get_output_details()),
            )
        else:
            inputs = _file_specs({d["name"]: d for d in interp.get_input_details()})
            outputs = _file_specs({d["name"]: d for d in interp.get_output_details()})
        return TfliteSession(interp, inputs, outputs, sel, artifact)

    def _walk(
        self, runtime: Runtime, model: Path, accelerator: str, threads: int | None, sel: Selection
    ) -> Any:
        """Try the accelerators in order and return the first interpreter that loads, recording each
        decision in ``sel``. An accelerator asked for by name that cannot be used is a DeviceError."""
        compiled = _compiled_for_edgetpu(model)
        interp = None
        for acc in AUTO_ORDER if accelerator == "auto" else (accelerator,):
            if interp is not None:
                sel.add(self.name, acc, "skipped", f"{sel.accelerator} preferred")
                continue
            delegate, why = None, ""
            if acc == "edgetpu" and not compiled:
                why = "the model is not compiled for the Edge TPU (edgetpu_compiler)"
            elif acc in _DELEGATE_LIBS:
                delegate, why = load_delegate(runtime, acc)
            if why and delegate is None:
                if accelerator != "auto":
                    raise DeviceError(f"accelerator '{acc}' is not usable: {why}")
                sel.add(self.name, acc, "skipped", why)
                continue
            try:
                interp = self._interpreter(runtime, model, acc, delegate, threads)
            except _LoadFailed as e:
                if delegate is None:
                    raise _explain(model, str(e), compiled) from None
                if accelerator != "auto":
                    raise DeviceError(f"accelerator '{acc}' failed on this model: {e}") from None
                sel.add(self.name, acc, "skipped", f"the delegate failed on this model: {e}")
                log.warning("tflite: %s delegate failed on %s; trying the next accelerator", acc, model.name)
                continue
            sel.accelerator = acc
            sel.add(self.name, acc, "taken", ACCELERATORS[acc] + (f", threads={threads}" if threads else ""))
        if interp is None:
            raise DeviceError(f"no tflite accelerator usable for {model.name}:\n{sel}")
        return interp


def _compiled_for_edgetpu(model: Path) -> bool:
    """Whether edgetpu_compiler made this file: it holds the Edge TPU custom op."""
    if model.stat().st_size == 0:
        return False
    with open(model, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        return m.find(_EDGETPU_OP) != -1


class _LoadFailed(Exception):
    pass


def _explain(model: Path, message: str, compiled: bool) -> BadInputError:
    """Why the interpreter could not open ``model``, in the user's terms."""
    if compiled and "edgetpu-custom-op" in message:
        return BadInputError(
            f"{model}: the model is compiled for the Edge TPU and cannot run without one "
            f"(install libedgetpu and plug in the device, or run the uncompiled model)"
        )
    if "Flex" in message or "Select TensorFlow op" in message:
        return BadInputError(
            f"{model}: the model uses TensorFlow (Flex) ops, which LiteRT runtimes do not include: {message}"
        )
    if "not a valid Flatbuffer" in message or "model identifier" in message or "Could not open" in message:
        return BadInputError(f"{model}: not a valid TFLite file (truncated or corrupt?): {message}")
    return BadInputError(f"{model}: the TFLite interpreter cannot load this model: {message}")


BACKENDS.register("tflite")(TfliteBackend())
