"""Import paths that moved in 0.2 keep working for one release: importing an old path gives the module at
its new home (the same object, so ``isinstance`` and pickled references hold) and a DeprecationWarning
naming the new path. One table and one import hook instead of a stub file at every old path."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import Any

# old module path → new module path
MOVED = {
    "edge_sdk._version": "edge_sdk.version",
    "edge_sdk.audio_features": "edge_sdk.audio.features",
    "edge_sdk.audio_loop": "edge_sdk.live.audio",
    "edge_sdk.audio_mix": "edge_sdk.audio.mix",
    "edge_sdk.cli_audio": "edge_sdk.cli.audio",
    "edge_sdk.cli_demo": "edge_sdk.cli.demo",
    "edge_sdk.cli_train": "edge_sdk.cli.train",
    "edge_sdk.cli_verify": "edge_sdk.cli.verify",
    "edge_sdk.cli_video": "edge_sdk.cli.video",
    "edge_sdk.console": "edge_sdk.cli.console",
    "edge_sdk.converters.accuracy_aware": "edge_sdk.converters.quantize.accuracy_aware",
    "edge_sdk.converters.front_end": "edge_sdk.converters.quantize.front_end",
    "edge_sdk.converters.int4": "edge_sdk.converters.quantize.int4",
    "edge_sdk.converters.int8_weights": "edge_sdk.converters.quantize.int8_weights",
    "edge_sdk.converters.keras_tflite": "edge_sdk.converters.targets.tflite.keras",
    "edge_sdk.converters.litert_torch_convert": "edge_sdk.converters.targets.tflite.litert_torch",
    "edge_sdk.converters.onnx2tflite": "edge_sdk.converters.targets.tflite.onnx2tflite",
    "edge_sdk.converters.onnx_model": "edge_sdk.converters.graph.onnx_model",
    "edge_sdk.converters.openvino_accuracy": "edge_sdk.converters.targets.openvino.accuracy",
    "edge_sdk.converters.range_transfer": "edge_sdk.converters.targets.tflite.range_transfer",
    "edge_sdk.converters.sensitivity": "edge_sdk.converters.quantize.sensitivity",
    "edge_sdk.converters.simplify": "edge_sdk.converters.graph.simplify",
    "edge_sdk.converters.specialize": "edge_sdk.converters.graph.specialize",
    "edge_sdk.converters.streaming": "edge_sdk.converters.graph.streaming",
    "edge_sdk.converters.targets._tflite_process": "edge_sdk.converters.targets.tflite.process",
    "edge_sdk.converters.tflite_accuracy": "edge_sdk.converters.targets.tflite.accuracy",
    "edge_sdk.converters.tflite_worker": "edge_sdk.converters.targets.tflite.worker",
    "edge_sdk.demo_audio": "edge_sdk.demo.audio",
    "edge_sdk.demo_kws": "edge_sdk.demo.kws",
    "edge_sdk.demo_video": "edge_sdk.demo.video",
    "edge_sdk.devices.audio_source": "edge_sdk.devices.sources.audio",
    "edge_sdk.devices.camera": "edge_sdk.devices.sources.camera",
    "edge_sdk.devices.microphone": "edge_sdk.devices.sources.microphone",
    "edge_sdk.devices.resample": "edge_sdk.devices.sources.resample",
    "edge_sdk.devices.ring_buffer": "edge_sdk.devices.sources.ring_buffer",
    "edge_sdk.devices.telemetry_jetson": "edge_sdk.devices.telemetry.jetson",
    "edge_sdk.devices.telemetry_rapl": "edge_sdk.devices.telemetry.rapl",
    "edge_sdk.devices.telemetry_raspberrypi": "edge_sdk.devices.telemetry.raspberrypi",
    "edge_sdk.devices.telemetry_sensors": "edge_sdk.devices.telemetry.sensors",
    "edge_sdk.devices.video_file": "edge_sdk.devices.sources.video_file",
    "edge_sdk.devices.video_sources": "edge_sdk.devices.sources.video",
    "edge_sdk.devices.wav_file": "edge_sdk.devices.sources.wav_file",
    "edge_sdk.events": "edge_sdk.live.events",
    "edge_sdk.loop_base": "edge_sdk.live.base",
    "edge_sdk.loop_stats": "edge_sdk.live.stats",
    "edge_sdk.matrix": "edge_sdk.bench.matrix",
    "edge_sdk.preview": "edge_sdk.live.preview",
    "edge_sdk.progress": "edge_sdk.cli.progress",
    "edge_sdk.recipes": "edge_sdk.train",
    "edge_sdk.recipes.image_data": "edge_sdk.train.image_data",
    "edge_sdk.recipes.kws": "edge_sdk.train.kws",
    "edge_sdk.recipes.kws_data": "edge_sdk.train.kws_data",
    "edge_sdk.recipes.kws_thresholds": "edge_sdk.train.kws_thresholds",
    "edge_sdk.recipes.noise_data": "edge_sdk.train.noise_data",
    "edge_sdk.recipes.speech_data": "edge_sdk.train.speech_data",
    "edge_sdk.recipes.tiny_denoiser": "edge_sdk.train.tiny_denoiser",
    "edge_sdk.recipes.video_card": "edge_sdk.train.video_card",
    "edge_sdk.recipes.video_denoiser": "edge_sdk.train.video_denoiser",
    "edge_sdk.reference_set": "edge_sdk.verification.reference_set",
    "edge_sdk.video_loop": "edge_sdk.live.video",
    "edge_sdk.video_sinks": "edge_sdk.live.sinks",
}


def _warn(old: str, new: str) -> None:
    warnings.warn(f"{old} moved to {new}; the old path goes away in the next release", DeprecationWarning, 3)


class _MovedFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds old module paths (and modules inside a moved package) and loads them as their new module."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        new = _new_name(fullname)
        if new is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, self, origin=new)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        assert spec.origin is not None
        _warn(spec.name, spec.origin)
        return importlib.import_module(spec.origin)

    def exec_module(self, module: ModuleType) -> None:
        """The module is the new one, already run."""


def _new_name(fullname: str) -> str | None:
    if fullname in MOVED:
        return MOVED[fullname]
    parent, _, leaf = fullname.rpartition(".")
    # a module inside a moved package (edge_sdk.recipes.kws) that the table does not name itself
    return f"{MOVED[parent]}.{leaf}" if parent in MOVED else None


def install() -> None:
    """Put the finder in front of the path finders, once: it must answer for an old name before a path
    finder loads the same file a second time under that name."""
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _MovedFinder())


def forward(old: str, new: str | Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for a module path that became a package: names the old module defined are
    looked up in their new module, with a DeprecationWarning. ``new`` is that module, or, where the old
    module's names were split up, a mapping from each name to the module that now holds it."""

    def __getattr__(name: str) -> Any:
        module = new if isinstance(new, str) else new.get(name)
        if name.startswith("__") or module is None:
            raise AttributeError(f"module '{old}' has no attribute '{name}'")
        value = getattr(importlib.import_module(module), name)
        _warn(f"{old}.{name}", f"{module}.{name}")
        setattr(sys.modules[old], name, value)  # warned once; later lookups find it directly
        return value

    return __getattr__
