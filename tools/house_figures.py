"""Figures of the layout: modules in each folder's root, the largest files and the largest functions of the
product code (edge_sdk/, converters/, runtimes/, devices/), counted in lines as the files hold them.

    python -m tools.house_figures [--top 10]
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("edge_sdk", "converters", "runtimes", "devices")


def figures(top: int) -> list[str]:
    """The report's lines: modules per folder root, then the ``top`` largest files and functions."""
    per_folder: dict[str, int] = {}
    files: list[tuple[int, str]] = []
    functions: list[tuple[int, str]] = []
    for path in sorted(p for folder in PRODUCT for p in (ROOT / folder).rglob("*.py")):
        name = path.relative_to(ROOT).as_posix()
        folder = path.parent.relative_to(ROOT).as_posix()
        per_folder[folder] = per_folder.get(folder, 0) + 1
        text = path.read_text(encoding="utf-8")
        files.append((text.count("\n"), name))
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                assert node.end_lineno is not None
                functions.append((node.end_lineno - node.lineno + 1, f"{name}:{node.name}"))
    lines = ["modules in each folder's root:"]
    lines += [f"{n:5d}  {folder}" for folder, n in sorted(per_folder.items())]
    lines += [f"{len(files)} modules, {sum(n for n, _ in files)} lines", f"largest files (lines), top {top}:"]
    lines += [f"{n:5d}  {name}" for n, name in sorted(files, reverse=True)[:top]]
    lines += [f"largest functions (lines, docstring included), top {top}:"]
    lines += [f"{n:5d}  {name}" for n, name in sorted(functions, reverse=True)[:top]]
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=10, help="how many files and functions to list")
    print("\n".join(figures(parser.parse_args(argv).top)))


if __name__ == "__main__":
    main()
