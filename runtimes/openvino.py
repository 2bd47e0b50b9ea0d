"""The OpenVINO backend: runs ``openvino`` artifacts (IR ``model.xml`` + ``model.bin``) and plain ``.xml``
files on the device selection picks (NPU, GPU, CPU), with the inference precision set on purpose.

OpenVINO's CPU plugin runs float models in bfloat16 by default where the CPU has AMX or AVX512-BF16,
which costs accuracy the artifact's parity report never saw. So the precision is always set
explicitly: what the artifact's recipe recorded at conversion (``f32`` unless asked otherwise), or
what the caller asks for, and the value the compiled model reports back is kept on the session and
in its selection record.

The package is imported inside functions only, so ``import edge_sdk`` and backend registration work
without it.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_sdk.devices.backends import Answer, Need, Packages, Probe
from edge_sdk.devices.hardware import INTEL_GPU, INTEL_NPU
from edge_sdk.errors import BadInputError, DeviceError, MissingExtraError
from edge_sdk.manifest import Artifact, TensorSpec
from edge_sdk.runtimes.numerics import KERNELS_HELP, OV_EXACT, Weights, exact_kernels
from edge_sdk.runtimes.session import BACKENDS, Selection, Session

if TYPE_CHECKING:
    import openvino as ov

log = logging.getLogger("edge_sdk.runtimes.openvino")

# Device families in the order "auto" prefers them; OpenVINO names a second GPU "GPU.1", so a family
# matches its numbered devices too. A device profile gives its own order.
AUTO_ORDER = ("NPU", "GPU", "CPU")

_GPU_RUNTIME = "install the Intel GPU compute runtime (apt install intel-opencl-icd)"
_NPU_DRIVER = "install the Intel NPU driver (intel-level-zero-npu, github.com/intel/linux-npu-driver)"
# What each device family needs on the board besides OpenVINO itself. OpenVINO lists a GPU or an NPU
# only when its plugin finds the device through its user-space driver.
NEEDS = {
    "CPU": Need("OpenVINO CPU"),
    "GPU": Need(
        "OpenVINO GPU",
        INTEL_GPU,
        libraries=("libigdrcl.so*", "intel-opencl/libigdrcl.so"),  # Ubuntu's intel-opencl-icd: the latter
        library_hint=_GPU_RUNTIME,
        probe_hint=_GPU_RUNTIME,
        probe_proves_hardware=True,
    ),
    "NPU": Need(
        "OpenVINO NPU",
        INTEL_NPU,
        libraries=("libze_intel_vpu.so*", "libze_intel_npu.so*"),
        library_hint=_NPU_DRIVER,
        probe_hint=_NPU_DRIVER,
        probe_proves_hardware=True,
    ),
}

# What a caller may ask for → OpenVINO's element type name. "device" leaves the device's own default.
INFERENCE_PRECISIONS = {
    "f32": "f32",
    "fp32": "f32",
    "float32": "f32",
    "bf16": "bf16",
    "bfloat16": "bf16",
    "f16": "f16",
    "fp16": "f16",
    "float16": "f16",
    "device": "device",
}
DEFAULT_INFERENCE_PRECISION = "f32"  # accuracy as converted
PERFORMANCE_HINTS = ("latency", "throughput")
DEFAULT_PERFORMANCE_HINT = "latency"  # one stream, one request at a time: the edge case

# These set the options for every load() that does not pass them (what a recipe recorded comes after).
ENV_INFERENCE_PRECISION = "EDGE_SDK_OPENVINO_INFERENCE_PRECISION"
ENV_PERFORMANCE_HINT = "EDGE_SDK_OPENVINO_PERFORMANCE_HINT"

_LOCATION = re.compile(r"^(Exception from \S+:\d+:|Check '.*' failed at \S+:\d+:)\s*")


def ov_message(exc: BaseException) -> str:
    """OpenVINO's error text without its C++ source locations, which say nothing to a user: the lines
    that remain, joined into one."""
    lines = [_LOCATION.sub("", line).strip() for line in str(exc).splitlines()]
    text = " ".join(line for line in lines if line)
    return (text or f"{type(exc).__name__}")[:500]


def import_openvino(purpose: str) -> ModuleType:
    """The ``openvino`` module, or MissingExtraError naming the extra that brings it."""
    try:
        import openvino
    except ImportError:
        raise MissingExtraError("openvino", "openvino", purpose) from None
    return openvino


@functools.lru_cache(maxsize=1)
def core() -> ov.Core:
    """One ``ov.Core`` per process: creating one enumerates the devices and loads plugins each time."""
    return import_openvino("the OpenVINO runtime").Core()


def normalise_precision(value: str) -> str:
    """A user's inference precision (``fp32``, ``bf16``, ``device``, ...) as OpenVINO's name
    (``f32``, ``bf16``, ``f16``) or ``device``; an unknown one is a BadInputError listing the choices."""
    try:
        return INFERENCE_PRECISIONS[str(value).lower()]
    except KeyError:
        raise BadInputError(
            f"unknown OpenVINO inference precision '{value}'; choose from: f32, bf16, f16, device"
        ) from None


def _normalise_hint(value: str) -> str:
    hint = str(value).lower()
    if hint not in PERFORMANCE_HINTS:
        raise BadInputError(
            f"unknown OpenVINO performance hint '{value}'; choose from: {', '.join(PERFORMANCE_HINTS)}"
        )
    return hint


@dataclass
class Compiled:
    """A model compiled for one device, and the settings the device reports it actually uses."""

    model: ov.CompiledModel
    device: str
    inference_precision: str  # as read back, e.g. "f32"
    performance_hint: str
    threads: int
    exact_int8: bool = False  # quantised layers run in f32 (no int8 kernel that could saturate)

    def describe(self, asked: str) -> str:
        """One line for the selection record: precision (and what was asked, if it differs), hint, threads."""
        asked_note = "" if asked in ("device", self.inference_precision) else f" (asked {asked})"
        return (
            f"inference precision {self.inference_precision}{asked_note}, "
            f"performance hint {self.performance_hint.lower()}, "
            f"{self.threads} thread{'' if self.threads == 1 else 's'}"
        )


def compile_model(
    model: ov.Model,
    device: str,
    *,
    inference_precision: str,
    performance_hint: str,
    threads: int | None,
    exact_int8: bool = False,
) -> Compiled:
    """Compile ``model`` for ``device`` with the precision, hint and thread count set explicitly, and read
    back what the device settled on; ``exact_int8`` runs a CPU's quantised layers in f32 (no int8
    kernel to saturate). Raises OpenVINO's own exception when the device refuses."""
    ov_core = core()
    config: dict[str, Any] = {"PERFORMANCE_HINT": performance_hint.upper()}
    if exact_int8 and device.upper().startswith("CPU"):
        config[OV_EXACT[0]] = OV_EXACT[1]
    capabilities = set(ov_core.get_property(device, "OPTIMIZATION_CAPABILITIES"))
    # An NPU computes in f16 only and rejects an f32 hint; there the device's own precision is the only one.
    if inference_precision != "device" and (inference_precision != "f32" or "FP32" in capabilities):
        config["INFERENCE_PRECISION_HINT"] = inference_precision
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    compiled = ov_core.compile_model(model, device, config)

    def read_back(key: str, default: Any) -> Any:
        try:
            return compiled.get_property(key)
        except RuntimeError:  # not every plugin reports every property
            return default

    precision = read_back("INFERENCE_PRECISION_HINT", None)
    return Compiled(
        compiled,
        device,
        precision.get_type_name() if precision is not None else "unknown",
        str(read_back("PERFORMANCE_HINT", performance_hint.upper())),
        int(read_back("INFERENCE_NUM_THREADS", threads or 0)),
    )


def read_model(path: Path) -> ov.Model:
    """Read an IR ``.xml`` (and the ``.bin`` beside it); a file that is not IR, or a missing or damaged
    ``.bin``, is a BadInputError that says which."""
    try:
        head = path.read_bytes()[:4096]
    except OSError as e:
        raise BadInputError(f"{path}: cannot read: {e.strerror}") from None
    # OpenVINO hands a file its IR reader rejects to every other front end in turn (TensorFlow's prints
    # parse errors straight to stderr); an IR file has a <net> root, so look before handing it over.
    if b"<net" not in head:
        raise BadInputError(f"{path}: not an OpenVINO IR file (no <net> element); convert the model first")
    try:
        return core().read_model(str(path))
    except RuntimeError as e:
        msg = ov_message(e)
        if "bin file" in msg:
            msg = f"its weights file {path.with_suffix('.bin').name} is missing, truncated or corrupt ({msg})"
        raise BadInputError(f"{path}: OpenVINO cannot read this model: {msg}") from None


def _dtype(port: ov.Output, where: Path) -> str:
    try:
        return np.dtype(port.get_element_type().to_dtype()).name
    except (RuntimeError, TypeError):
        raise BadInputError(
            f"{where}: tensor '{port.get_any_name()}' has element type {port.get_element_type()}, "
            f"which edge-sdk does not handle"
        ) from None


def _specs(ports: list[ov.Output], where: Path) -> list[TensorSpec]:
    """Tensor specs of a plain IR file's inputs or outputs (an artifact brings its own)."""
    specs = []
    for port in ports:
        shape = port.get_partial_shape()
        if shape.rank.is_dynamic:
            raise BadInputError(
                f"{where}: tensor '{port.get_any_name()}' has no fixed rank; give the model input shapes "
                f"when converting it (ov.convert_model(..., input=...))"
            )
        dims = [d.get_length() if d.is_static else None for d in shape]
        specs.append(TensorSpec(name=port.get_any_name(), shape=dims, dtype=_dtype(port, where)))
    return specs


def _ports(compiled: ov.CompiledModel, specs: list[TensorSpec], kind: str) -> dict[str, ov.Output]:
    """The file's tensor name (``stored_name``, else the user-facing name) → the compiled model's port.
    IR from ``ov.convert_model`` keeps the ONNX names, which the manifest records."""
    get = compiled.input if kind == "input" else compiled.output
    # Session checked every name against the file's (check_file_tensors), so each one has its port.
    return {spec.stored_name or spec.name: get(spec.stored_name or spec.name) for spec in specs}


class OpenVinoSession(Session):
    """A Session over an ``ov.CompiledModel``; one infer request per calling thread, so threads may share
    a session."""

    def __init__(
        self,
        compiled: Compiled,
        inputs: list[TensorSpec],
        outputs: list[TensorSpec],
        selection: Selection,
        artifact: Artifact | None,
    ) -> None:
        model = compiled.model
        file_tensors = ([p.get_names() for p in model.inputs], [p.get_names() for p in model.outputs])
        super().__init__(inputs, outputs, selection, artifact, file_tensors=file_tensors)
        self.compiled = compiled
        self._in = _ports(compiled.model, inputs, "input")
        self._out = _ports(compiled.model, outputs, "output")
        self._local = threading.local()

    @property
    def inference_precision(self) -> str:
        """The precision float layers run in, as the device reports it: ``f32``, ``bf16``, ``f16``."""
        return self.compiled.inference_precision

    def _run(self, feeds: dict[str, np.ndarray], outputs: list[str]) -> dict[str, np.ndarray]:
        # Keys are the file's tensor names: Session.run has mapped names, layouts and dtypes already.
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self.compiled.model.create_infer_request()
        # Inputs are already contiguous arrays (check_feeds), so OpenVINO may read them in place; outputs
        # are copied, as the request's buffers are overwritten by its next run.
        results = request.infer(
            {self._in[name]: a for name, a in feeds.items()}, share_inputs=True, share_outputs=False
        )
        return {name: results[self._out[name]] for name in outputs}


def _int8_weights(ov_model: ov.Model) -> Weights:
    """A reader of the model's signed 8-bit weight constants, for ``numerics.exact_kernels``."""

    def read() -> Iterator[np.ndarray]:
        for op in ov_model.get_ops():
            if op.get_type_name() == "Constant" and op.get_element_type().get_type_name() == "i8":
                yield op.get_data()

    return read


def _matches(device: str, wanted: str) -> bool:
    return device.upper() == wanted.upper() or device.upper().startswith(f"{wanted.upper()}.")


class OpenVinoBackend:
    """Registers as ``openvino``; runs ``openvino`` artifacts and plain IR ``.xml`` files."""

    name = "openvino"
    formats = ("openvino",)
    options = {
        "inference_precision": "f32 (default), bf16, f16, or device (the device's own default)",
        "performance_hint": "latency (default) or throughput",
        "int8_kernels": KERNELS_HELP,
    }

    packages = Packages(("openvino",), "pip install 'edge-sdk[openvino]'")
    accelerators = AUTO_ORDER

    def available(self) -> tuple[bool, str]:
        try:
            import openvino  # noqa: F401
        except ImportError:
            return False, "openvino is not installed (pip install 'edge-sdk[openvino]')"
        return True, "installed"

    def need(self, accelerator: str) -> Need | None:
        """What a device family needs; a numbered device (``GPU.1``) needs what its family does."""
        return NEEDS.get(accelerator.split(".")[0])

    def probe(self) -> Probe:
        """The devices OpenVINO finds here."""
        try:
            devices = self.devices()
        except Exception as e:  # a broken install fails in many ways; it then lists nothing
            return Probe(
                error=f"OpenVINO does not start: {e}", record={"openvino_error": str(e), "openvino": []}
            )
        return Probe(tuple(devices), record={"openvino": devices})

    def answer(self, accelerator: str, probe: Probe, installed: Mapping[str, str | None]) -> Answer:
        family = accelerator.split(".")[0]
        devices = [d for d in probe.seen if d.split(".")[0] == family]
        if devices:
            return Answer(True, f"OpenVINO lists {', '.join(devices)}")
        seen = ", ".join(probe.seen) or "nothing"
        need = self.need(accelerator)
        return Answer(
            False, f"OpenVINO does not list {accelerator} (it lists {seen})", need.probe_hint if need else ""
        )

    def version(self) -> str:
        import openvino

        return f"openvino {openvino.get_version()}"

    def devices(self) -> list[str]:
        """The devices OpenVINO sees here, e.g. ``['CPU', 'GPU.0', 'NPU']``."""
        return list(core().available_devices)

    def _order(self, accelerator: str, devices: list[str]) -> list[str]:
        """The device names to try, in order: for "auto" each family of ``AUTO_ORDER`` in turn, as its
        present devices or, when none is present, its bare name (recorded as skipped); else the one
        device asked for (an exact name first, else the first of that family)."""
        if accelerator.lower() == "auto":
            order: list[str] = []
            for kind in AUTO_ORDER:
                order += [d for d in devices if _matches(d, kind)] or [kind]
            return order
        exact = [d for d in devices if d.upper() == accelerator.upper()]
        family = [d for d in devices if _matches(d, accelerator)]
        if not (exact or family):
            version = import_openvino("the OpenVINO runtime").get_version().split("-")[0]
            raise DeviceError(
                f"accelerator '{accelerator}' is not available to OpenVINO {version}; "
                f"available devices: {', '.join(devices) or 'none'}"
            )
        return (exact or family)[:1]

    def open(
        self,
        model: Path,
        artifact: Artifact | None,
        accelerator: str,
        threads: int | None,
        *,
        inference_precision: str | None = None,
        performance_hint: str | None = None,
        int8_kernels: str = "auto",
    ) -> Session:
        """Read the model, walk the devices (see ``_order``), compile on the first that takes it, and
        record every decision. ``inference_precision`` defaults to the environment variable, else what
        the artifact's recipe recorded, else f32; ``performance_hint`` to the environment, else latency."""
        recorded = artifact.recipe.get("inference_precision") if artifact is not None else None
        precision = normalise_precision(
            inference_precision
            or os.environ.get(ENV_INFERENCE_PRECISION)
            or recorded
            or DEFAULT_INFERENCE_PRECISION
        )
        hint = _normalise_hint(
            performance_hint or os.environ.get(ENV_PERFORMANCE_HINT) or DEFAULT_PERFORMANCE_HINT
        )
        ov_model = read_model(model)
        kernels = exact_kernels(int8_kernels, artifact, _int8_weights(ov_model))
        devices = self.devices()
        sel = Selection(backend=self.name, accelerator="")
        compiled: Compiled | None = None
        failed: list[str] = []
        for device in self._order(accelerator, devices):
            if device not in devices:
                here = ", ".join(devices)
                sel.add(self.name, device, "skipped", f"not among OpenVINO's devices here ({here})")
            elif compiled is not None:
                sel.add(self.name, device, "skipped", f"{compiled.device} preferred")
            else:
                try:
                    compiled = self._compile(ov_model, device, precision, hint, threads, kernels)
                except RuntimeError as e:
                    failed.append(f"{device}: {ov_message(e)}")
                    sel.add(self.name, device, "skipped", f"compile failed: {ov_message(e)}")
                    continue
                name = core().get_property(device, "FULL_DEVICE_NAME")
                status = "fallback" if failed else "taken"
                sel.add(self.name, device, status, f"{name}; {compiled.describe(precision)}")
                sel.accelerator = device
        if compiled is None:
            raise (DeviceError if accelerator.upper() not in ("AUTO", "CPU") else BadInputError)(
                f"{model}: OpenVINO could not compile the model on any device: {'; '.join(failed)}"
            )
        if failed:
            log.warning("openvino: %s; running on %s", "; ".join(failed), compiled.device)
        if precision not in ("device", compiled.inference_precision):
            log.warning(
                "openvino: asked for inference precision %s, %s runs %s",
                precision,
                compiled.device,
                compiled.inference_precision,
            )
        if artifact is not None:
            # The manifest carries the user-facing names, layouts and symbolic dims; keep them.
            inputs, outputs = artifact.inputs, artifact.outputs
        else:
            inputs = _specs(list(ov_model.inputs), model)
            outputs = _specs(list(ov_model.outputs), model)
        session = OpenVinoSession(compiled, inputs, outputs, sel, artifact)
        session.numerics = {"inference_precision": compiled.inference_precision, "int8_kernels": "default"}
        if kernels and compiled.device.upper().startswith("CPU"):
            taken = next(
                c for c in sel.candidates if c.accelerator == compiled.device and c.status != "skipped"
            )
            if compiled.exact_int8:
                taken.reason += f"; {kernels} (quantised layers in f32, {'='.join(OV_EXACT)})"
                session.numerics["int8_kernels"] = "exact, f32"
            else:
                why = f"{kernels}, but this OpenVINO refuses {OV_EXACT[0]}: its int8 kernels may saturate"
                taken.reason += f"; {why}"
                log.warning("openvino: %s: %s", artifact.name if artifact else model.name, why)
                session.numerics["int8_kernels"] = "saturating u8×s8"
        return session

    @staticmethod
    def _compile(
        ov_model: ov.Model, device: str, precision: str, hint: str, threads: int | None, kernels: str
    ) -> Compiled:
        """``compile_model``, with exact int8 on the CPU when ``kernels`` says why; an OpenVINO that refuses
        the property compiles without it (``Compiled.exact_int8`` then False, and ``open`` says so)."""

        def compiled_with(exact_int8: bool) -> Compiled:
            return compile_model(
                ov_model,
                device,
                inference_precision=precision,
                performance_hint=hint,
                threads=threads,
                exact_int8=exact_int8,
            )

        if kernels and device.upper().startswith("CPU"):
            try:
                return replace(compiled_with(exact_int8=True), exact_int8=True)
            except RuntimeError as e:
                log.debug("openvino: %s refused: %s", OV_EXACT[0], ov_message(e))
        return compiled_with(exact_int8=False)


BACKENDS.register("openvino")(OpenVinoBackend())
