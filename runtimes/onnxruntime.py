"""The onnxruntime backend: runs ``onnx`` artifacts on the execution provider selection picks."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_sdk.devices.backends import Answer, Need, Packages, Probe
from edge_sdk.devices.hardware import NVIDIA_GPU
from edge_sdk.errors import BadInputError, DeviceError
from edge_sdk.manifest import Artifact, TensorSpec
from edge_sdk.runtimes.numerics import KERNELS_HELP, ORT_EXACT, Weights, exact_kernels
from edge_sdk.runtimes.session import BACKENDS, Selection, Session

if TYPE_CHECKING:
    import onnxruntime as ort

log = logging.getLogger("edge_sdk.runtimes.onnxruntime")

# Accelerator name → execution provider. A device profile gives its own order; with none, "auto" walks
# AUTO_ORDER.
PROVIDERS = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "rocm": "ROCMExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "directml": "DmlExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
AUTO_ORDER = ("tensorrt", "cuda", "cpu")
_HOW_TO_ENABLE = {
    "tensorrt": "install onnxruntime-gpu with TensorRT on an NVIDIA device",
    "cuda": "install onnxruntime-gpu on an NVIDIA device",
    "rocm": "install onnxruntime-rocm on an AMD GPU",
    "openvino": "install onnxruntime-openvino",
    "coreml": "use the macOS onnxruntime wheel",
    "directml": "install onnxruntime-directml on Windows",
}

# What an accelerator needs on the board besides onnxruntime itself; the others need only a build that has
# their provider (_HOW_TO_ENABLE).
NEEDS = {
    "cpu": Need("onnxruntime CPU"),
    "cuda": Need(
        "CUDA provider", NVIDIA_GPU, packages=("onnxruntime-gpu",), pip="pip install onnxruntime-gpu"
    ),
    "tensorrt": Need(
        "TensorRT provider",
        NVIDIA_GPU,
        packages=("onnxruntime-gpu",),
        pip="pip install onnxruntime-gpu",
        libraries=("libnvinfer.so*",),
        library_hint="install TensorRT (JetPack has it; elsewhere pip install tensorrt)",
        probe_checks_library=False,  # onnxruntime lists the provider whether or not TensorRT is there
    ),
    "openvino": Need(
        "OpenVINO provider", packages=("onnxruntime-openvino",), pip="pip install onnxruntime-openvino"
    ),
}

_ORT_DTYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(int16)": "int16",
    "tensor(uint16)": "uint16",
    "tensor(int32)": "int32",
    "tensor(int64)": "int64",
    "tensor(bool)": "bool",
}


def _specs(args: list) -> list[TensorSpec]:
    specs = []
    for a in args:
        dtype = _ORT_DTYPES.get(a.type)
        if dtype is None:
            raise BadInputError(f"tensor '{a.name}' has type {a.type}, which edge-sdk does not handle")
        shape = [d or None for d in (a.shape or [])]  # 0 and "" mean unknown
        specs.append(TensorSpec(name=a.name, shape=shape, dtype=dtype))
    return specs


def _has_float16(model: Path) -> bool:
    import onnx

    try:
        proto = onnx.load(str(model), load_external_data=False)
    except Exception:  # unreadable: onnxruntime's own load will say so, with our explanation
        return False
    return any(t.data_type == onnx.TensorProto.FLOAT16 for t in proto.graph.initializer)


_NOT_IMPLEMENTED = re.compile(r"Could not find an implementation for (\w+)\((\d+)\) node with name '([^']*)'")
_NOT_REGISTERED = re.compile(r"([\w.]*):(\w+)\((-?\d+)\) is not a registered function/op")
_BAD_TYPE = re.compile(r"of operator \((\w+)\) in node \(([^)]*)\) is invalid")


def explain_load_error(model: Path, exc: Exception) -> BadInputError:
    """Turn onnxruntime's load failure into a message that names the op, its domain and the node."""
    msg = str(exc)
    hint = (
        "export the model with ops from the standard ONNX domain (a lower opset, or a different "
        "export path), or register the custom-op library that implements it"
    )
    m = _NOT_IMPLEMENTED.search(msg)
    if m:
        op, ver, node = m.groups()
        return BadInputError(
            f"{model}: onnxruntime has no kernel for op '{op}' (domain ai.onnx, opset {ver}) at node "
            f"'{node}' for the tensor types used there; {hint}"
        )
    m = _NOT_REGISTERED.search(msg)
    if m:
        domain, op, _ = m.groups()
        nodes = _nodes_of(model, op, domain)
        return BadInputError(
            f"{model}: op '{op}' of domain '{domain or 'ai.onnx'}' (node {nodes}) is unknown to "
            f"onnxruntime; {hint}"
        )
    m = _BAD_TYPE.search(msg)
    if m:
        op, node = m.groups()
        return BadInputError(
            f"{model}: op '{op}' at node '{node}' gets a tensor type it does not take: {msg}"
        )
    if "INVALID_PROTOBUF" in msg or "Protobuf parsing failed" in msg:
        return BadInputError(f"{model}: not a valid ONNX file (truncated or corrupt?)")
    return BadInputError(f"{model}: onnxruntime cannot load this model: {msg}")


def _nodes_of(model: Path, op: str, domain: str) -> str:
    import onnx

    try:
        proto = onnx.load(str(model), load_external_data=False)
    except Exception:
        return "?"
    names = [
        n.name or f"#{i}" for i, n in enumerate(proto.graph.node) if n.op_type == op and n.domain == domain
    ]
    return ", ".join(repr(n) for n in names[:5]) or "?"


class OnnxRuntimeSession(Session):
    """A Session over ``onnxruntime.InferenceSession``."""

    def __init__(
        self,
        ort_session: ort.InferenceSession,
        inputs: list[TensorSpec],
        outputs: list[TensorSpec],
        selection: Selection,
        artifact: Artifact | None,
    ) -> None:
        file_tensors = (
            [{a.name} for a in ort_session.get_inputs()],
            [{a.name} for a in ort_session.get_outputs()],
        )
        super().__init__(inputs, outputs, selection, artifact, file_tensors=file_tensors)
        self._ort = ort_session

    def _run(self, feeds: dict[str, np.ndarray], outputs: list[str]) -> dict[str, np.ndarray]:
        results = self._ort.run(outputs, feeds)
        return dict(zip(outputs, results, strict=True))


def _cache_root() -> Path:
    from edge_sdk.zoo import cache_root

    return cache_root()


def provider_options_for(
    accelerator: str, artifact: Artifact | None, options: dict[str, Any]
) -> dict[str, Any]:
    """Execution-provider options for the GPU providers: the device, and for TensorRT fp16 kernels when the
    artifact is fp16 and an engine cache, since building TensorRT engines takes minutes on a Jetson."""
    if accelerator == "cuda":
        return {"device_id": int(options.get("device_id", 0))}
    if accelerator == "tensorrt":
        fp16 = options.get("trt_fp16", artifact is not None and artifact.precision.startswith("fp16"))
        cache = Path(options.get("trt_engine_cache", _cache_root() / "tensorrt"))
        return {
            "device_id": int(options.get("device_id", 0)),
            "trt_fp16_enable": bool(fp16),
            "trt_engine_cache_enable": True,
            "trt_engine_cache_path": str(cache),
        }
    return {}


def _int8_weights(model: Path) -> Weights:
    """A reader of ``model``'s signed 8-bit initializers, for ``numerics.exact_kernels``."""

    def read() -> Iterator[np.ndarray]:
        import onnx
        from onnx import numpy_helper

        try:
            proto = onnx.load(str(model), load_external_data=False)
        except Exception:  # unreadable: onnxruntime's own load says why
            return
        for t in proto.graph.initializer:
            if t.data_type == onnx.TensorProto.INT8:
                yield numpy_helper.to_array(t)

    return read


class OnnxRuntimeBackend:
    """Registers as ``onnxruntime``; runs ``onnx`` artifacts and plain ``.onnx`` files."""

    name = "onnxruntime"
    formats = ("onnx",)
    options = {
        "device_id": "CUDA/TensorRT: the GPU to use (default 0)",
        "trt_fp16": "TensorRT: build fp16 engines (default: when the artifact is fp16)",
        "trt_engine_cache": "TensorRT: engine cache directory (default: <edge-sdk cache>/tensorrt)",
        "int8_kernels": KERNELS_HELP,
    }

    # Every build installs the module `onnxruntime`; only the distribution's metadata tells them apart.
    packages = Packages(("onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino"), "pip install onnxruntime")
    accelerators = tuple(PROVIDERS)

    def available(self) -> tuple[bool, str]:
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            return False, "onnxruntime is not installed (pip install onnxruntime)"
        return True, "installed"

    def need(self, accelerator: str) -> Need | None:
        if accelerator not in PROVIDERS:
            return None
        return NEEDS.get(accelerator) or Need(f"onnxruntime {accelerator}")

    def probe(self) -> Probe:
        """The execution providers this onnxruntime build has."""
        try:
            import onnxruntime as ort

            providers = list(ort.get_available_providers())
        except Exception as e:  # a broken install fails in many ways; it then lists nothing
            return Probe(
                error=f"onnxruntime does not load: {e}",
                record={"onnxruntime_error": str(e), "onnxruntime": []},
            )
        return Probe(tuple(providers), record={"onnxruntime": providers})

    def answer(self, accelerator: str, probe: Probe, installed: Mapping[str, str | None]) -> Answer:
        provider = PROVIDERS.get(accelerator, accelerator)
        if provider in probe.seen:
            return Answer(True, f"onnxruntime lists {provider}")
        need = self.need(accelerator) or Need(provider)
        hint = need.pip
        if installed.get("onnxruntime") and any(installed.get(p) for p in need.packages):
            # Both builds install the module `onnxruntime`; whichever was installed last wins.
            other = need.packages[0]
            hint = (
                f"onnxruntime and {other} are both installed and the CPU build shadows the other: "
                f"pip uninstall -y onnxruntime {other} && {need.pip}"
            )
        return Answer(False, f"onnxruntime does not list {provider}", hint)

    def version(self) -> str:
        import onnxruntime

        return f"onnxruntime {onnxruntime.__version__}"

    def select(self, accelerator: str) -> tuple[str, Selection]:
        """Walk the preference order (or the one accelerator asked for) and record each decision."""
        import onnxruntime as ort

        have = set(ort.get_available_providers())
        order = AUTO_ORDER if accelerator == "auto" else (accelerator,)
        if accelerator != "auto" and accelerator not in PROVIDERS:
            raise BadInputError(
                f"unknown onnxruntime accelerator '{accelerator}'; known: {', '.join(PROVIDERS)}"
            )
        sel = Selection(backend=self.name, accelerator="")
        for acc in order:
            provider = PROVIDERS[acc]
            if sel.accelerator:
                sel.add(self.name, acc, "skipped", f"{sel.accelerator} preferred")
            elif provider in have:
                sel.accelerator = acc
                sel.add(self.name, acc, "taken", f"{provider} is in this onnxruntime build")
            else:
                how = _HOW_TO_ENABLE.get(acc, "")
                sel.add(self.name, acc, "skipped", f"{provider} not in this onnxruntime build; {how}")
        if not sel.accelerator:
            raise DeviceError(
                f"accelerator '{accelerator}' is not available in onnxruntime "
                f"{ort.__version__}; available providers: {', '.join(sorted(have))}"
            )
        return PROVIDERS[sel.accelerator], sel

    def open(
        self, model: Path, artifact: Artifact | None, accelerator: str, threads: int | None, **options: Any
    ) -> Session:
        import onnxruntime as ort

        unknown = sorted(set(options) - set(self.options))
        if unknown:
            raise BadInputError(f"unknown onnxruntime option(s) {unknown}; known: {', '.join(self.options)}")
        provider, sel = self.select(accelerator)
        taken = next(c for c in sel.candidates if c.status == "taken")
        provider_options = provider_options_for(sel.accelerator, artifact, options)
        if provider_options:
            taken.reason += f"; options {provider_options}"
        so = ort.SessionOptions()
        so.log_severity_level = 3  # errors only: ORT's warnings are not the user's business by default
        if threads:
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
        disabled: list[str] = []
        fp16 = artifact.precision.startswith("fp16") if artifact else _has_float16(model)
        if fp16:
            # onnxruntime's NCHWc layout pass only speeds up float32 convolutions, and on some float16
            # graphs (a GRU behind a Transpose) it crashes the process with a segfault.
            disabled.append("NchwcTransformer")
        # onnxruntime applies the exact-kernel option on x86 CPUs without VNNI only (elsewhere its kernels
        # are exact already), and only to the CPU provider's int8 kernels
        kernels = exact_kernels(options.get("int8_kernels", "auto"), artifact, _int8_weights(model))
        if kernels:
            so.add_session_config_entry(*ORT_EXACT)
            taken.reason += f"; {kernels} (u8×u8, {'='.join(ORT_EXACT)})"
            log.info("onnxruntime: %s", kernels)
        providers: list[str | tuple[str, dict[str, Any]]] = (
            [provider]
            if provider == "CPUExecutionProvider"
            else [(provider, provider_options), "CPUExecutionProvider"]
        )
        try:
            sess = ort.InferenceSession(str(model), so, providers=providers, disabled_optimizers=disabled)
        except Exception as e:  # ORT raises its own pybind exception types
            raise explain_load_error(model, e) from None
        active = sess.get_providers()[0]
        if active != provider:
            fallback = next((k for k, v in PROVIDERS.items() if v == active), active)
            sel.add(
                self.name, sel.accelerator, "skipped", f"{provider} failed to initialise; see onnxruntime log"
            )
            sel.add(self.name, fallback, "fallback", f"onnxruntime fell back to {active}")
            log.warning("onnxruntime: %s did not initialise; running on %s", provider, active)
            sel.accelerator = fallback
        if artifact is not None:
            # The manifest carries the user-facing names, layouts and symbolic dims; keep them.
            inputs, outputs = artifact.inputs, artifact.outputs
        else:
            inputs, outputs = _specs(sess.get_inputs()), _specs(sess.get_outputs())
        session = OnnxRuntimeSession(sess, inputs, outputs, sel, artifact)
        session.numerics = {"int8_kernels": "exact u8×u8" if kernels else "default"}
        return session


BACKENDS.register("onnxruntime")(OnnxRuntimeBackend())
