"""The runtimes depend on devices (a Session needs the board's profile and CPU), never the other way:
no module under ``devices/`` imports ``edge_sdk.runtimes``, at module level or inside a function. Detection
reaches the backends only through the registry and protocol ``devices/backends.py`` defines."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

DEVICES = Path(__file__).parents[2] / "devices"
FORBIDDEN = "edge_sdk.runtimes"


def imported(source: str, package: str) -> list[tuple[int, str]]:
    """(line, module) for every import in ``source``, a module of ``package``: import statements
    anywhere, relative ones resolved, and importlib.import_module / __import__ calls with a literal name."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                found.append((node.lineno, node.args[0].value))
    return found


def _package(path: Path) -> str:
    """The package a module file under devices/ belongs to (a package's __init__ belongs to itself)."""
    return ".".join(["edge_sdk", "devices", *path.parent.relative_to(DEVICES).parts])


def _is_forbidden(name: str) -> bool:
    return name == FORBIDDEN or name.startswith(FORBIDDEN + ".")


@pytest.mark.parametrize(
    "source",
    [
        "from edge_sdk.runtimes.session import BACKENDS",
        "def f():\n    import edge_sdk.runtimes.onnxruntime as ort",
        "from edge_sdk import runtimes",
        "from ...runtimes import loader",
        "import importlib\nimportlib.import_module('edge_sdk.runtimes.tflite')",
    ],
)
def test_the_check_sees_every_way_of_importing_the_runtimes(source: str) -> None:
    names = [name for _, name in imported(source, "edge_sdk.devices.sources")]
    assert any(_is_forbidden(n) for n in names), names


def test_no_module_under_devices_imports_the_runtimes() -> None:
    modules = sorted(DEVICES.rglob("*.py"))
    assert len(modules) > 20 and DEVICES / "accelerators.py" in modules
    offences = {
        (path.relative_to(DEVICES.parent), line): name
        for path in modules
        for line, name in reversed(imported(path.read_text(encoding="utf-8"), _package(path)))
        if _is_forbidden(name)
    }  # one per import statement: the module it names, before the names it takes from it
    lines = [f"{path}:{line} imports {name}" for (path, line), name in sorted(offences.items())]
    assert not lines, "devices must not import the runtimes:\n" + "\n".join(lines)


def test_importing_devices_loads_no_runtime_module() -> None:
    script = (
        "import sys, edge_sdk.devices, edge_sdk.devices.cpu, edge_sdk.devices.emulation; "
        f"print(sorted(m for m in sys.modules if m.startswith({FORBIDDEN!r})))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
