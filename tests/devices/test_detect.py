"""``detect()`` on recorded fingerprint trees (``fixtures/<board>/``: a fake /proc, /sys, /dev, /etc and
library directories as each board has them) and on this machine. Nothing in the detector is mocked.

In the fixture trees the backends are not probed, so usability follows from the tree and from the
packages installed here; the expectations below ask the same question of this environment.
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
import shutil
from pathlib import Path

import pytest

from edge_sdk.devices import AcceleratorStatus, Detection, detect
from edge_sdk.errors import DeviceError

FIXTURES = Path(__file__).parent / "fixtures"
NOT_PROBED = "backends not probed"


def installed(*dists: str) -> bool:
    """Whether any of these distributions is installed here."""
    for dist in dists:
        try:
            importlib.metadata.version(dist)
            return True
        except importlib.metadata.PackageNotFoundError:
            continue
    return False


ORT = installed("onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino")
OPENVINO = installed("openvino")
LITERT = installed("ai-edge-litert", "tflite-runtime", "tensorflow")
ORT_GPU = installed("onnxruntime-gpu")


def board(name: str) -> Detection:
    return detect(FIXTURES / name, probe_backends=False)


def status(d: Detection, backend: str, accelerator: str) -> AcceleratorStatus:
    matches = [a for a in d.accelerators if (a.backend, a.accelerator) == (backend, accelerator)]
    assert len(matches) == 1, f"{backend}/{accelerator} listed {len(matches)} times:\n{d}"
    return matches[0]


def order(d: Detection) -> list[str]:
    return [f"{a.backend}/{a.accelerator}" for a in d.accelerators]


def assert_cpu_backends(d: Detection) -> None:
    """The CPU entries a profile lists are usable exactly when their package is installed here."""
    for a in d.accelerators:
        if (a.backend, a.accelerator) in (("onnxruntime", "cpu"), ("openvino", "CPU"), ("tflite", "cpu")):
            expected = {"onnxruntime": ORT, "openvino": OPENVINO, "tflite": LITERT}[a.backend]
            assert a.usable is expected, a
            assert NOT_PROBED in a.reason and a.enable == ("" if expected else a.enable)


def test_jetson_orin_nano_jetpack6() -> None:
    d = board("jetson-orin")
    assert d.profile.name == "jetson-orin" and not d.addons and not d.probed
    ev = d.evidence
    assert ev["device_tree_model"] == "NVIDIA Jetson Orin Nano Developer Kit"  # the trailing NUL is gone
    assert "nvidia,tegra234" in ev["device_tree_compatible"]
    assert ev["tegra_release"].startswith("# R36 (release), REVISION: 4.0") and ev["l4t"] == "36.4.0"
    assert (ev["arch"], ev["arch_from"]) == ("aarch64", "/proc/sys/kernel/arch")
    assert ev["cpu_model"] == ["ARMv8 Processor rev 1 (v8l)", "Cortex-A78AE"]
    assert {"asimd", "asimddp", "fphp"} <= set(ev["cpu_flags"])
    assert "/dev/nvgpu/igpu0/ctrl" in ev["dev"]
    assert "/usr/lib/aarch64-linux-gnu/libnvinfer.so.10" in ev["libraries"]
    assert any("contains 'Orin'" in m for m in d.matched) and "arch aarch64" in d.matched
    assert d.threads == 6
    assert order(d) == ["onnxruntime/tensorrt", "onnxruntime/cuda", "onnxruntime/cpu", "tflite/cpu"]
    if not ORT_GPU:
        for acc in ("tensorrt", "cuda"):
            a = status(d, "onnxruntime", acc)
            assert not a.usable and "onnxruntime-gpu not installed" in a.reason
            assert "present" in a.reason  # the GPU itself was seen
            assert "pip install onnxruntime-gpu" in a.enable and "JetPack" in a.enable
    trt = status(d, "onnxruntime", "tensorrt")
    assert trt.precisions == ("fp16", "int8") and trt.formats == ("onnx",)
    assert_cpu_backends(d)


@pytest.mark.parametrize(
    ("tree", "model", "compatible"),
    [
        ("jetson-nano", "NVIDIA Jetson Nano Developer Kit", "nvidia,tegra210"),
        ("jetson-xavier-nx", "NVIDIA Jetson Xavier NX Developer Kit", "nvidia,tegra194"),
    ],
)
def test_jetson_nano_and_xavier(tree: str, model: str, compatible: str) -> None:
    d = board(tree)
    assert d.profile.name == "jetson-nano-xavier"
    assert d.evidence["device_tree_model"] == model and compatible in d.evidence["device_tree_compatible"]
    assert d.evidence["arch"] == "aarch64" and d.evidence["arch_from"] == "/proc/cpuinfo"
    assert "/dev/nvhost-ctrl-gpu" in d.evidence["dev"]
    assert order(d)[:2] == ["onnxruntime/tensorrt", "onnxruntime/cuda"]
    if tree == "jetson-xavier-nx":
        # JetPack 5's R35 runs on Orin too, so it proved nothing; the model and the SoC did.
        assert not any("nv_tegra_release" in m for m in d.matched)
        assert "NVIDIA Carmel" in d.evidence["cpu_model"]
        trt = status(d, "onnxruntime", "tensorrt")
        assert not trt.usable and "libnvinfer.so* not found" in trt.reason
        assert "install TensorRT" in trt.enable
    else:
        assert d.evidence["l4t"] == "32.7.1" and "Cortex-A57" in d.evidence["cpu_model"]
    assert_cpu_backends(d)


def test_raspberry_pi_4() -> None:
    d = board("raspberry-pi-4")
    assert d.profile.name == "raspberry-pi-4" and not d.addons
    assert d.evidence["device_tree_model"] == "Raspberry Pi 4 Model B Rev 1.4"
    assert (
        "Raspberry Pi 4 Model B Rev 1.4" in d.evidence["cpu_model"]
        and "Cortex-A72" in d.evidence["cpu_model"]
    )
    assert d.threads == 4
    assert order(d) == ["tflite/cpu", "onnxruntime/cpu", "openvino/CPU"]
    assert status(d, "tflite", "cpu").precisions == ("int8", "fp32")
    assert d.evidence["usb"] == []  # the root hub and the VL805 hub are no evidence of anything
    assert_cpu_backends(d)


def test_raspberry_pi_4_with_a_coral_usb_accelerator() -> None:
    d = board("raspberry-pi-4-coral-usb")
    assert d.profile.name == "raspberry-pi-4"
    assert [a.name for a in d.addons] == ["coral"]
    assert "coral: USB 1a6e:089a present" in d.matched
    assert d.evidence["usb"] == ["1a6e:089a"]
    assert order(d)[0] == "tflite/edgetpu"  # the add-on goes before the board's own list
    tpu = status(d, "tflite", "edgetpu")
    assert tpu.profile == "coral" and tpu.precisions == ("int8",) and tpu.formats == ("tflite",)
    assert "USB 1a6e:089a present" in tpu.reason
    assert "/usr/lib/aarch64-linux-gnu/libedgetpu.so.1 found" in tpu.reason
    assert tpu.usable is LITERT and NOT_PROBED in tpu.reason
    assert_cpu_backends(d)


def test_raspberry_pi_5_without_an_ai_kit_lists_no_hailo() -> None:
    d = board("raspberry-pi-5")
    assert d.profile.name == "raspberry-pi-5"
    assert "asimddp" in d.evidence["cpu_flags"] and "Cortex-A76" in d.evidence["cpu_model"]
    assert order(d) == ["tflite/cpu", "onnxruntime/cpu", "openvino/CPU"]
    assert_cpu_backends(d)


def test_raspberry_pi_5_with_the_hailo_ai_kit() -> None:
    d = board("raspberry-pi-5-hailo")
    assert d.profile.name == "raspberry-pi-5"
    assert order(d)[0] == "hailort/hailo"
    hailo = status(d, "hailort", "hailo")
    assert "/dev/hailo0 present" in hailo.reason
    assert not hailo.usable and "edge-sdk has no 'hailort' backend yet" in hailo.reason
    assert "1e60:2864" in d.evidence["pci"] and hailo.formats == ("hef",)


def test_intel_core_ultra_npu() -> None:
    d = board("intel-core-ultra")
    assert d.profile.name == "intel-core-ultra-npu"
    ev = d.evidence
    assert ev["cpu_model"] == ["Intel(R) Core(TM) Ultra 7 155H"]
    assert {"avx2", "avx_vnni"} <= set(ev["cpu_flags"]) and "avx512f" not in ev["cpu_flags"]
    assert "8086:7d1d" in ev["pci"] and "/dev/accel/accel0" in ev["dev"]
    assert "PCI 8086:7d1d present" in d.matched
    assert (ev["cpu_count"], ev["physical_cores"], d.threads) == (22, 16, 16)
    assert order(d)[:3] == ["openvino/NPU", "openvino/GPU", "openvino/CPU"]
    npu, gpu = status(d, "openvino", "NPU"), status(d, "openvino", "GPU")
    assert npu.usable is OPENVINO and gpu.usable is OPENVINO
    assert "/dev/accel/accel0 present" in npu.reason and "libze_intel_vpu.so.1 found" in npu.reason
    assert "/usr/lib/x86_64-linux-gnu/intel-opencl/libigdrcl.so found" in gpu.reason
    ep = status(d, "onnxruntime", "openvino")
    if not installed("onnxruntime-openvino"):
        assert not ep.usable and ep.enable == "pip install onnxruntime-openvino"
    assert_cpu_backends(d)


def test_intel_npu_without_its_user_space_driver(tmp_path: Path) -> None:
    root = shutil.copytree(FIXTURES / "intel-core-ultra", tmp_path / "tree")
    (root / "usr/lib/x86_64-linux-gnu/libze_intel_vpu.so.1").unlink()
    npu = status(detect(root, probe_backends=False), "openvino", "NPU")
    assert not npu.usable
    assert "/dev/accel/accel0 present" in npu.reason and "libze_intel_vpu.so* not found" in npu.reason
    assert "Intel NPU driver" in npu.enable


def test_intel_npu_on_pci_without_its_kernel_driver(tmp_path: Path) -> None:
    root = shutil.copytree(FIXTURES / "intel-core-ultra", tmp_path / "tree")
    (root / "dev/accel/accel0").unlink()
    d = detect(root, probe_backends=False)
    assert d.profile.name == "intel-core-ultra-npu"  # the PCI id alone still tells the board
    npu = status(d, "openvino", "NPU")
    assert not npu.usable and "Intel NPU on PCI (8086:7d1d) but no /dev/accel/accel*" in npu.reason
    assert "intel_vpu" in npu.enable


def test_generic_x86_64_server() -> None:
    d = board("x86-64-xeon")
    assert d.profile.name == "x86-64" and d.matched == ["arch x86_64"] and not d.addons
    assert d.evidence["arch_from"] == "/proc/cpuinfo"  # the lm flag
    assert "avx512_vnni" in d.evidence["cpu_flags"] and d.threads == 2
    gpu = status(d, "openvino", "GPU")  # the BMC's VGA is a display device, but not an Intel GPU
    assert not gpu.usable and "no Intel GPU" in gpu.reason
    cuda = status(d, "onnxruntime", "cuda")
    assert not cuda.usable and "no NVIDIA GPU" in cuda.reason
    assert_cpu_backends(d)


def test_coral_pcie_on_a_desktop_without_libedgetpu(tmp_path: Path) -> None:
    d = board("x86-64-coral-pcie")
    assert d.profile.name == "x86-64" and [a.name for a in d.addons] == ["coral"]
    tpu = status(d, "tflite", "edgetpu")
    assert not tpu.usable
    assert tpu.reason.startswith("/dev/apex_0 present") and "libedgetpu.so.1 not found" in tpu.reason
    assert "apt install libedgetpu1-std" in tpu.enable
    # Without the apex driver the module is still on the bus; the fix is then the driver.
    root = shutil.copytree(FIXTURES / "x86-64-coral-pcie", tmp_path / "tree")
    (root / "dev/apex_0").unlink()
    tpu = status(detect(root, probe_backends=False), "tflite", "edgetpu")
    assert not tpu.usable and "Edge TPU on PCI (1ac1:089a) but no /dev/apex_*" in tpu.reason
    assert "gasket-dkms" in tpu.enable


def test_generic_aarch64_from_cpuinfo_alone() -> None:
    d = board("aarch64-server")
    assert d.profile.name == "aarch64" and d.matched == ["arch aarch64"]
    assert (d.evidence["arch"], d.evidence["arch_from"]) == ("aarch64", "/proc/cpuinfo")
    assert d.evidence["device_tree_model"] is None and d.evidence["cpu_model"] == ["Neoverse-N1"]
    gpu = status(d, "tflite", "gpu")
    assert not gpu.usable and "no GPU" in gpu.reason
    assert_cpu_backends(d)


def test_a_tree_with_no_evidence_gets_the_generic_profile(tmp_path: Path) -> None:
    d = detect(tmp_path, probe_backends=False)
    assert d.profile.name == "generic" and d.evidence["arch"] is None and d.threads is None
    assert order(d) == ["onnxruntime/cpu", "tflite/cpu", "openvino/CPU"]
    (tmp_path / "proc/sys/kernel").mkdir(parents=True)
    (tmp_path / "proc/sys/kernel/arch").write_text("x86_64\n")
    assert detect(tmp_path, probe_backends=False).profile.name == "x86-64"


def test_a_fixture_tree_is_never_probed_with_the_hosts_backends() -> None:
    d = detect(FIXTURES / "jetson-orin", probe_backends=True)
    assert not d.probed and d.evidence["probe"] is None
    assert all(NOT_PROBED in a.reason for a in d.accelerators)


def test_no_profile_for_the_architecture_is_a_device_error(tmp_path: Path) -> None:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles/only-x86.toml").write_text(
        'name = "only-x86"\ndescription = "x86 only"\narch = ["x86_64"]\n'
    )
    from edge_sdk.devices import load_profiles

    with pytest.raises(DeviceError, match=r"no device profile matches .* \(arch aarch64\)"):
        detect(
            FIXTURES / "aarch64-server", probe_backends=False, profiles=load_profiles(tmp_path / "profiles")
        )


def test_to_dict_is_json() -> None:
    d = board("raspberry-pi-4-coral-usb")
    data = json.loads(json.dumps(d.to_dict()))
    assert data["profile"]["name"] == "raspberry-pi-4" and data["addons"][0]["name"] == "coral"
    first = data["accelerators"][0]
    assert first["backend"] == "tflite" and first["accelerator"] == "edgetpu"
    assert set(first) >= {"usable", "reason", "enable", "formats", "precisions", "label", "profile"}
    assert data["evidence"]["usb"] == ["1a6e:089a"] and data["probed"] is False
    assert "raspberry-pi-4 + coral" in str(d)


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="expects an x86-64 host")
def test_this_machine() -> None:
    d = detect()
    if d.profile.name != "x86-64" or d.addons:
        pytest.skip(f"this host is a {d.profile.name} with {d.addons}, not a plain x86-64")
    assert d.probed and d.evidence["root"] == "/" and d.evidence["arch_from"] == "uname"
    assert d.evidence["probe"]["onnxruntime"]  # what onnxruntime really lists
    assert status(d, "onnxruntime", "cpu").usable is ORT
    assert "lists CPUExecutionProvider" in status(d, "onnxruntime", "cpu").reason
    ov = status(d, "openvino", "CPU")
    assert ov.usable is OPENVINO
    if OPENVINO:
        assert "OpenVINO lists CPU" in ov.reason
    else:
        assert "openvino not installed" in ov.reason
    if ORT_GPU or d.evidence["pci"] or any(n.startswith("/dev/nvidia") for n in d.evidence["dev"]):
        pytest.skip("this host has an NVIDIA GPU or onnxruntime-gpu")
    for acc in ("tensorrt", "cuda"):
        a = status(d, "onnxruntime", acc)
        assert not a.usable and "onnxruntime-gpu not installed" in a.reason and "no NVIDIA GPU" in a.reason
        assert "pip install onnxruntime-gpu" in a.enable
