"""The layout holds: the package root keeps only the ground floor, moved import paths still work (and say
where to go), nothing private is imported across packages, and the shipped docs name no machine's paths."""

from __future__ import annotations

import ast
import builtins
import importlib
import re
import warnings
from pathlib import Path

import pytest

import edge_sdk
from edge_sdk.moved import MOVED

REPO = Path(__file__).resolve().parents[2]
# Source folder → the package it installs as (pyproject's package-dir).
PACKAGES = {
    "edge_sdk": "edge_sdk",
    "converters": "edge_sdk.converters",
    "runtimes": "edge_sdk.runtimes",
    "devices": "edge_sdk.devices",
}


def product_modules() -> dict[str, Path]:
    """Every module of the product: dotted name → file."""
    found = {}
    for folder, package in PACKAGES.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            parts = list(path.relative_to(REPO / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


def test_the_package_root_holds_only_the_ground_floor_and_the_public_face() -> None:
    root = sorted(p.stem for p in (REPO / "edge_sdk").glob("*.py"))
    assert root == ["__init__", "errors", "integrity", "manifest", "moved", "registry", "version"]


@pytest.mark.parametrize("old", sorted(MOVED))
def test_a_moved_import_path_gives_the_module_at_its_new_home_and_warns(old: str) -> None:
    new = importlib.import_module(MOVED[old])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(old)
    assert module is new
    assert any(issubclass(w.category, DeprecationWarning) and MOVED[old] in str(w.message) for w in caught)


def test_names_of_a_module_that_became_a_package_are_forwarded_with_a_warning() -> None:
    from edge_sdk.demo import formats

    with pytest.warns(DeprecationWarning, match=r"edge_sdk\.demo\.formats\.read_wav"):
        from edge_sdk.demo import read_wav
    assert read_wav is formats.read_wav
    with pytest.raises(ImportError):
        from edge_sdk.demo import no_such_name  # noqa: F401


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _package_of(module: str, modules: dict[str, Path]) -> str:
    return module if modules[module].name == "__init__.py" else module.rpartition(".")[0]


def test_nothing_private_is_imported_across_packages() -> None:
    """A module or name with a leading underscore is used only inside its own package."""
    modules = product_modules()
    crossings = []
    for name, path in modules.items():
        here = _package_of(name, modules)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.ImportFrom) and node.module in modules):
                continue
            for alias in node.names:
                what = f"{node.module}.{alias.name}"
                if what in modules:  # a module imported from its package
                    private, owner = _private(alias.name), node.module
                else:  # a name imported from a module
                    private = _private(alias.name) or _private(node.module.rpartition(".")[2])
                    owner = _package_of(node.module, modules)
                if private and owner != here:
                    crossings.append(f"{path.relative_to(REPO)}:{node.lineno} {what}")
    assert crossings == []


def test_the_public_docstring_example_defines_every_name_it_uses() -> None:
    tree = ast.parse(edge_sdk.__doc__.split("\n", 1)[1])
    bound = set(dir(builtins))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            bound |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            bound.add(node.id)
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    assert used - bound == set()


def test_shipped_docs_name_no_machines_paths() -> None:
    """Generated reports and model cards use repository-relative paths (Debian's data under /usr/share is a
    package's path, the same on every machine)."""
    docs = [REPO / "README.md", REPO / "ARCHITECTURE.md", *(REPO / "docs").glob("*.md")]
    docs += [*(REPO / "edge_sdk").rglob("*.md")]
    machine = re.compile(r"(?<![\w.])/(?:work|tmp|root|home|Users|mnt)/")
    found = [f"{p.relative_to(REPO)}: {m.group(0)}" for p in docs for m in machine.finditer(p.read_text())]
    assert found == []
