"""Text nested far deeper than a manifest, a recipe or a device profile ever is gets a BadInputError, even
in a process where a library has raised Python's recursion limit (torch and TensorFlow do): there the
parsers' recursion, or repr's in an error message, ran past the C stack and the whole process died with
a segfault. Each case runs in its own interpreter, so a crash fails the test instead of the suite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

DEEP = 100_000

LOADERS = {
    "manifest": (
        "artifact.json",
        '{"schema": ' + "[" * DEEP + "]" * DEEP + "}",
        "from edge_sdk.manifest import load_artifact as load",
    ),
    "recipe": (
        "edge.toml",
        "source = " + "[" * DEEP + "]" * DEEP + "\n",
        "from edge_sdk.converters.recipe import load_recipe as load",
    ),
    "profile": (
        "board.toml",
        "name = 'board'\nmatch = " + "[" * DEEP + "]" * DEEP + "\n",
        "from edge_sdk.devices.profile import load_profiles as load",
    ),
}

PROGRAM = """
import sys
from pathlib import Path
sys.setrecursionlimit(1_000_000)
{imports}
from edge_sdk.errors import BadInputError
try:
    load(Path(sys.argv[1]))
except BadInputError as e:
    print("BadInputError:", str(e)[-80:])
"""


@pytest.mark.parametrize("kind", sorted(LOADERS))
def test_deep_nesting_is_refused_with_a_raised_recursion_limit(kind: str, tmp_path: Path) -> None:
    name, text, imports = LOADERS[kind]
    (tmp_path / name).write_text(text)
    target = tmp_path if kind != "recipe" else tmp_path / name
    r = subprocess.run(
        [sys.executable, "-c", PROGRAM.format(imports=imports), str(target)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "BadInputError:" in r.stdout and "nested too deeply" in r.stdout, r.stdout
