"""``edge-sdk models``: the catalog of pretrained third-party models, and fetching one into the cache."""

from __future__ import annotations

import argparse

from edge_sdk.cli import console


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Register ``models`` and its actions, ``list`` and ``pull``."""
    m = subparsers.add_parser("models", help="pretrained third-party models: list, pull")
    msub = m.add_subparsers(dest="action", required=True)
    ml = msub.add_parser("list", parents=[common], help="the catalog, and what is cached")
    ml.set_defaults(func=cmd_models)
    mp = msub.add_parser("pull", parents=[common], help="fetch a model into the cache, verifying its sha256")
    mp.add_argument("name")
    mp.add_argument("--force", action="store_true", help="fetch again even if cached")
    mp.set_defaults(func=cmd_models)


def cmd_models(args: argparse.Namespace) -> int:
    """``models pull NAME`` fetches into the cache; ``models list`` prints the catalog."""
    from edge_sdk import zoo

    if args.action == "pull":
        with console.progress_bars(not (args.quiet or args.json)) as progress:
            path = zoo.pull(args.name, progress=progress, force=args.force)
        entry = zoo.catalog()[args.name]
        if args.json:
            console.emit_json(
                {
                    "name": args.name,
                    "path": str(path),
                    "license": entry.license,
                    "license_note": entry.license_note or None,
                    "sha256": entry.sha256,
                }
            )
        else:
            console.out.print(f"{args.name}: {path} (licence {entry.license}; {entry.attribution})")
            if entry.license_note:
                console.out.print(f"licence question: {entry.license_note}")
        return 0
    entries = zoo.catalog()
    if args.json:
        console.emit_json(
            [{**e.__dict__, "cached": str(zoo.cached(n) or "") or None} for n, e in entries.items()]
        )
        return 0
    rows = [
        [
            n,
            e.license + (" (see note)" if e.license_note else ""),
            "yes" if zoo.cached(n) else "no",
            e.description,
        ]
        for n, e in entries.items()
    ]
    console.table("models", ["name", "licence", "cached", "description"], rows)
    for n, e in entries.items():
        if e.license_note:
            console.out.print(f"{n}: licence question: {e.license_note}")
    return 0
