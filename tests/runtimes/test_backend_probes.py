"""What each backend tells detection through ``BackendProbe``: the packages that provide it, what each of
its accelerators needs, what it sees on this machine (the real onnxruntime, OpenVINO and LiteRT), and its
answer for one accelerator. Detection asks these alone, so they are checked here, backend by backend."""

from __future__ import annotations

import ctypes.util
import sys

import pytest

from edge_sdk.devices.accelerators import NEEDS, Prober
from edge_sdk.devices.backends import BACKENDS as PROBED
from edge_sdk.devices.detect import PACKAGES
from edge_sdk.devices.profile import load_profiles
from edge_sdk.runtimes import BACKENDS
from edge_sdk.runtimes.onnxruntime import PROVIDERS

NOTHING_INSTALLED: dict[str, str | None] = {}


def test_detection_and_the_runtimes_share_one_registry() -> None:
    assert PROBED is BACKENDS
    assert {"onnxruntime", "openvino", "tflite"} <= set(BACKENDS.names())


@pytest.mark.parametrize("name", ["onnxruntime", "openvino", "tflite"])
def test_every_backend_says_what_provides_it_and_what_its_accelerators_need(name: str) -> None:
    backend = BACKENDS.get(name)
    assert backend.packages.names and backend.packages.install.startswith("pip install")
    # detection looks for every package a backend or one of its accelerators names
    assert set(backend.packages.names) <= set(PACKAGES)
    for accelerator in backend.accelerators:
        need = backend.need(accelerator)
        assert need is not None and need.label, accelerator
        assert set(need.packages) <= set(PACKAGES), need
        if need.libraries:
            assert need.library_hint, need
    assert backend.need("no-such-accelerator") is None


def test_accelerators_of_backends_edge_sdk_lacks_are_judged_by_packages_detection_looks_for() -> None:
    for (backend, _), need in NEEDS.items():
        assert backend not in BACKENDS.names() and need.packages and set(need.packages) <= set(PACKAGES)


def test_every_accelerator_a_shipped_profile_lists_is_one_its_backend_takes() -> None:
    for profile in load_profiles().values():
        for spec in profile.accelerators:
            if spec.backend in BACKENDS.names():
                assert BACKENDS.get(spec.backend).need(spec.accelerator) is not None, (profile.name, spec)


def test_openvino_numbered_devices_need_what_their_family_needs() -> None:
    openvino = BACKENDS.get("openvino")
    assert openvino.need("GPU.1") == openvino.need("GPU") and openvino.need("GPU.1") is not None
    assert openvino.need("gpu") is None  # OpenVINO's names are upper case


def test_onnxruntime_probe_lists_its_providers() -> None:
    pytest.importorskip("onnxruntime")
    ort = BACKENDS.get("onnxruntime")
    probe = ort.probe()
    assert not probe.error and "CPUExecutionProvider" in probe.seen
    assert probe.record == {"onnxruntime": list(probe.seen)}
    assert ort.answer("cpu", probe, NOTHING_INSTALLED) == (True, "onnxruntime lists CPUExecutionProvider", "")
    if PROVIDERS["cuda"] in probe.seen:
        pytest.skip("this onnxruntime has the CUDA provider")
    listed, said, enable = ort.answer("cuda", probe, NOTHING_INSTALLED)
    assert not listed and said == "onnxruntime does not list CUDAExecutionProvider"
    assert enable == "pip install onnxruntime-gpu"


def test_onnxruntime_names_the_cpu_build_that_shadows_the_gpu_one() -> None:
    pytest.importorskip("onnxruntime")
    ort = BACKENDS.get("onnxruntime")
    probe = ort.probe()
    if PROVIDERS["tensorrt"] in probe.seen:
        pytest.skip("this onnxruntime has the TensorRT provider")
    both = {"onnxruntime": "1.20.0", "onnxruntime-gpu": "1.20.0"}
    listed, _, enable = ort.answer("tensorrt", probe, both)
    assert not listed
    assert enable.startswith("onnxruntime and onnxruntime-gpu are both installed and the CPU build shadows")
    assert enable.endswith("pip uninstall -y onnxruntime onnxruntime-gpu && pip install onnxruntime-gpu")


def test_a_backend_that_does_not_load_is_an_error_with_how_to_reinstall(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ort = BACKENDS.get("onnxruntime")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # importing it now raises ImportError
    prober = Prober()
    listed, said, enable = prober.answer(ort, "cpu", NOTHING_INSTALLED)
    assert not listed and said.startswith("onnxruntime does not load: ")
    assert enable == "reinstall it (pip install onnxruntime)"
    assert prober.record["onnxruntime"] == [] and prober.record["onnxruntime_error"] in said


def test_the_prober_asks_each_backend_once_and_keeps_what_each_said() -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("openvino")
    ort, ov = BACKENDS.get("onnxruntime"), BACKENDS.get("openvino")
    prober = Prober()
    assert prober.answer(ort, "cpu", NOTHING_INSTALLED).listed
    first = prober.probe(ort)
    assert prober.answer(ov, "CPU", NOTHING_INSTALLED).listed
    prober.answer(ort, "cuda", NOTHING_INSTALLED)
    assert prober.probe(ort) is first
    assert list(prober.record) == ["onnxruntime", "openvino"]


def test_openvino_probe_lists_its_devices() -> None:
    pytest.importorskip("openvino")
    ov = BACKENDS.get("openvino")
    probe = ov.probe()
    assert not probe.error and "CPU" in probe.seen and probe.record == {"openvino": list(probe.seen)}
    assert ov.answer("CPU", probe, NOTHING_INSTALLED) == (True, "OpenVINO lists CPU", "")
    if any(d.startswith("NPU") for d in probe.seen):
        pytest.skip("this machine has an NPU")
    listed, said, enable = ov.answer("NPU", probe, NOTHING_INSTALLED)
    assert not listed and said == f"OpenVINO does not list NPU (it lists {', '.join(probe.seen)})"
    assert "Intel NPU driver" in enable


def test_litert_probe_finds_the_interpreter_and_tries_a_delegate_only_when_asked() -> None:
    tflite = BACKENDS.get("tflite")
    ok, _ = tflite.available()
    if not ok:
        pytest.skip("no TFLite interpreter here")
    probe = tflite.probe()
    assert not probe.error and len(probe.seen) == 1 and probe.record["tflite"]["runtime"] == probe.seen[0]
    listed, said, _ = tflite.answer("cpu", probe, NOTHING_INSTALLED)
    assert listed and said.endswith("interpreter imports") and "tflite_delegates" not in probe.record
    if ctypes.util.find_library("edgetpu"):
        pytest.skip("libedgetpu is installed here")
    listed, said, enable = tflite.answer("edgetpu", probe, NOTHING_INSTALLED)
    assert not listed and said.startswith("libedgetpu.so.1 not loadable (")
    assert enable == "apt install libedgetpu1-std (from Coral's apt repository)"
    # the delegate's own hint stays in the record; the answer leaves it to `enable`
    assert probe.record["tflite_delegates"]["edgetpu"].endswith("plug in a Coral Edge TPU")
