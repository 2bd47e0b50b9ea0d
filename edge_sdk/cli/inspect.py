"""``edge-sdk inspect``: a model's or an artifact's inputs and outputs, ops, size and recorded parity."""

from __future__ import annotations

import argparse
from pathlib import Path

from edge_sdk.cli import console
from edge_sdk.errors import BadInputError


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Register ``inspect``."""
    i = subparsers.add_parser(
        "inspect", parents=[common], help="show a model's or artifact's I/O, ops, size and parity"
    )
    i.add_argument("path")
    i.set_defaults(func=cmd_inspect)


def cmd_inspect(args: argparse.Namespace) -> int:
    """Describe a model file or an artifact (any format): I/O, ops, size, and the parity it records."""
    from edge_sdk.converters.graph.onnx_model import describe, load_onnx
    from edge_sdk.manifest import is_artifact, load_artifact

    path = Path(args.path)
    if not path.exists():
        raise BadInputError(f"{path}: no such file or directory")
    artifact = load_artifact(path) if is_artifact(path) else None
    model_file = artifact.model_file if artifact else path
    if model_file.suffix != ".onnx" and artifact is None:
        raise BadInputError(f"{model_file}: inspect reads artifacts (any format) and .onnx files")
    # The graph itself is described for ONNX; other formats show what their manifest records.
    info = describe(load_onnx(model_file, check=False)) if model_file.suffix == ".onnx" else None
    size = artifact.size if artifact else model_file.stat().st_size
    if args.json:
        console.emit_json(
            {
                "path": str(path),
                "size": size,
                "model": info,
                "artifact": artifact.to_dict() if artifact else None,
            }
        )
        return 0
    if info is not None:
        console.out.print(
            f"[bold]{path}[/bold]  {console.fmt_size(size)}, {info['parameters']:,} parameters, "
            f"{info['nodes']} nodes, opsets {info['opsets']}, producer {info['producer'] or '?'}"
        )
        io_rows = [
            [kind, s["name"], s["dtype"], str(s["shape"]), "", ""]
            for kind in ("inputs", "outputs")
            for s in info[kind]
        ]
    else:
        console.out.print(
            f"[bold]{path}[/bold]  {console.fmt_size(size)}, files: "
            f"{', '.join(f.path for f in artifact.files)}"  # type: ignore[union-attr]
        )
    if artifact is not None:
        io_rows = [
            [
                kind,
                s.name,
                s.dtype,
                str(s.shape),
                f"{s.layout or ''} → {s.stored_layout or ''}"
                if s.stored_layout != s.layout
                else (s.layout or ""),
                str(artifact.quantization.get(s.name, "")),
            ]
            for kind, specs in (("inputs", artifact.inputs), ("outputs", artifact.outputs))
            for s in specs
        ]
    console.table("inputs and outputs", ["", "name", "dtype", "shape", "layout", "integer I/O"], io_rows)
    if info is not None:
        console.table("ops", ["op", "count"], list(info["ops"].items()))
    if artifact:
        console.out.print(
            f"artifact {artifact.name}: {artifact.format}:{artifact.precision}, source "
            f"{artifact.source.get('framework')} {artifact.source.get('path') or ''}"
        )
        p = artifact.parity
        if p:
            rows = [
                [
                    n,
                    console.fmt_err(e["max_abs_error"]),
                    console.fmt_err(e["mean_abs_error"]),
                    f"{e['cosine_similarity']:.6f}",
                    "" if e["top1_agreement"] is None else f"{e['top1_agreement']:.1%}",
                ]
                for n, e in p["outputs"].items()
            ]
            console.table(
                f"parity vs {p['reference']} on {p['samples']} {p['inputs']} samples",
                ["output", "max abs err", "mean abs err", "cosine", "top-1"],
                rows,
            )
    return 0
