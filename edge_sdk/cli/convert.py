"""``edge-sdk convert``: a model into checked artifacts, from options, a recipe file, or both."""

from __future__ import annotations

import argparse

from edge_sdk.cli import console


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Register ``convert``; its options are the recipe keys (``edge_sdk.converters.recipe``)."""
    c = subparsers.add_parser(
        "convert",
        parents=[common],
        help="convert a model into artifacts",
        epilog="Every option is also a recipe key (shown in brackets); --recipe edge.toml reads them from a "
        "file and options given here override it. See docs/recipes.md.",
    )
    c.add_argument("--recipe", metavar="EDGE.toml", help="read the conversion from a recipe file")
    from edge_sdk.converters.recipe import add_arguments

    add_arguments(c)
    c.set_defaults(func=cmd_convert)


def cmd_convert(args: argparse.Namespace) -> int:
    from edge_sdk.converters import ConversionFailed, convert
    from edge_sdk.converters.recipe import Recipe, from_args, load_recipe

    recipe = load_recipe(args.recipe) if args.recipe else Recipe()
    recipe = recipe.merged(from_args(args))
    failures: dict[str, str] = {}
    with console.progress_bars(not (args.quiet or args.json)) as progress:
        try:
            artifacts = convert(recipe.source, recipe.targets, progress=progress, **recipe.convert_kwargs())
        except ConversionFailed as e:
            artifacts, failures = e.artifacts, e.failures
    reused = {a.name: getattr(a, "reused_from", "") for a in artifacts}
    if not args.quiet:
        for a in artifacts:
            if reused[a.name]:
                console.err.print(f"reused cached artifact {reused[a.name]} → {a.path}", markup=False)
    if args.json:
        console.emit_json(
            {
                "artifacts": [
                    {"path": str(a.path), "reused_from": reused[a.name] or None, **a.to_dict()}
                    for a in artifacts
                ],
                "failures": failures,
            }
        )
    else:
        rows = []
        for a in artifacts:
            p = a.parity or {}
            top1 = p.get("top1_agreement")
            rows.append(
                [
                    a.recipe["target"],
                    str(a.path),
                    console.fmt_size(a.size),
                    console.fmt_err(p.get("max_abs_error")),
                    f"{p.get('cosine_similarity', 0):.6f}",
                    "" if top1 is None else f"{top1:.1%}",
                    "ok (reused cached artifact)" if reused[a.name] else "ok",
                ]
            )
        rows += [[t, "", "", "", "", "", f"FAILED: {msg}"] for t, msg in failures.items()]
        console.table(
            "conversion", ["target", "artifact", "size", "max abs err", "cosine", "top-1", "status"], rows
        )
    return 1 if failures else 0
