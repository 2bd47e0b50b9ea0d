"""The three sibling folders map into the package for wheels as well as for the editable install."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SUBPACKAGES = ("converters", "runtimes", "devices")


def test_editable_install_maps_the_sibling_folders() -> None:
    import edge_sdk.converters
    import edge_sdk.devices
    import edge_sdk.runtimes

    for name in SUBPACKAGES:
        module = getattr(edge_sdk, name)
        assert Path(module.__file__).parent == ROOT / name


def source_tree(dest: Path) -> Path:
    """The files git would commit, copied to ``dest``: a wheel built in the checkout itself would take
    whatever an old build left in its ignored ``build/`` folder, modules since moved away included."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split("\0")  # fmt: skip
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    return dest


def source_packages() -> set[str]:
    """Every folder of the product with an ``__init__.py``, as the wheel must hold it."""
    found = set()
    for folder, installed in (("edge_sdk", "edge_sdk"), *((s, f"edge_sdk/{s}") for s in SUBPACKAGES)):
        for init in (ROOT / folder).rglob("__init__.py"):
            found.add(f"{installed}/{init.parent.relative_to(ROOT / folder)}/__init__.py".replace("/./", "/"))
    return found


@pytest.mark.network  # the wheel build fetches setuptools into its isolated build environment
def test_wheel_holds_and_imports_every_package(tmp_path: Path) -> None:
    src = source_tree(tmp_path / "src")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(src)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (wheel,) = (tmp_path / "dist").glob("edge_sdk-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "edge_sdk/converters/targets/onnx/target.py",
        "edge_sdk/runtimes/onnxruntime.py",
        "edge_sdk/devices/__init__.py",
        "edge_sdk/zoo/catalog.toml",
        "edge_sdk/py.typed",
        "edge_sdk/samples/librivox-sense-and-sensibility.wav",
        "edge_sdk/samples/librivox-pink-noise-5db.wav",
        "edge_sdk/zoo/tiny-denoiser/model.onnx",
        "edge_sdk/zoo/tiny-denoiser/MODEL_CARD.md",
        "edge_sdk/zoo/commands/model.onnx",
        "edge_sdk/zoo/commands/MODEL_CARD.md",
        "edge_sdk/zoo/commands-mfcc/model.onnx",
        "edge_sdk/zoo/commands-mfcc/MODEL_CARD.md",
        "edge_sdk/samples/commands-demo.wav",
        "edge_sdk/samples/commands-demo.json",
        "edge_sdk/samples/chelsea-pan-3s.avi",
        "edge_sdk/zoo/video/model.onnx",
        "edge_sdk/zoo/video/MODEL_CARD.md",
        "edge_sdk/stages/denoise.py",
        "edge_sdk/train/tiny_denoiser.py",
    ):
        assert required in names
    assert source_packages() - names == set()  # a subpackage missing from pyproject's list
    assert "edge_sdk/audio_loop.py" not in names  # moved: only its alias in edge_sdk/moved.py remains
    assert not any(n.startswith(("converters/", "runtimes/", "devices/", "tests/", "tools/")) for n in names)
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    code = (
        "import edge_sdk, edge_sdk.converters, edge_sdk.runtimes, edge_sdk.devices, edge_sdk.zoo; "
        "print(edge_sdk.converters.__file__); print(sorted(edge_sdk.zoo.catalog())); "
        # the bundled denoiser loads from the installed package, not from the checkout
        "from edge_sdk.stages import make; print('tiny latency', make('denoise', 'tiny').latency)"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(target)},
        cwd=tmp_path,
    )
    assert r.stdout.splitlines()[0].startswith(str(target))
    assert "silero-vad" in r.stdout and "tiny latency" in r.stdout
