"""The command line a recipe's model card records: the CLI's form when it came through ``edge-sdk train``,
with output folders reduced to their own names (a card must not name the machine it was made on)."""

from __future__ import annotations

from pathlib import Path


def recipe_command(recipe: str, argv: list[str] | None) -> str:
    """``edge-sdk train RECIPE ...`` or ``python -m edge_sdk.train.RECIPE ...`` for ``argv``."""
    argv = list(argv or [])
    for i, a in enumerate(argv[:-1]):
        if a == "--out":
            argv[i + 1] = Path(argv[i + 1]).name
    if argv[:2] == ["train", recipe]:
        return "edge-sdk " + " ".join(argv)
    return f"python -m edge_sdk.train.{recipe} " + " ".join(argv)
