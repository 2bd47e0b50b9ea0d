"""``edge-sdk run ARTIFACT --input ...``: an artifact or model file, once, on inputs from .npy or .npz."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.cli import console
from edge_sdk.errors import BadInputError


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Register ``run``."""
    r = subparsers.add_parser(
        "run",
        parents=[common],
        help="run an artifact or model file on inputs; 'run audio' / 'run video' run the live loops",
        epilog="'edge-sdk run audio --help' describes the live audio loop (microphone or WAV file); "
        "'edge-sdk run video --help' the live video loop (camera or video file).",
    )
    r.add_argument("artifact")
    r.add_argument(
        "--input",
        action="append",
        required=True,
        metavar="[NAME=]FILE",
        help="a .npy for a single-input model, NAME=FILE.npy, or an .npz keyed by input name",
    )
    r.add_argument("--output", metavar="FILE.npz", help="save the outputs")
    r.add_argument("--backend", default="auto")
    r.add_argument("--accelerator", default="auto")
    r.add_argument("--threads", type=int)
    r.add_argument("--device", default="auto", help="a device profile name (default: detect this board)")
    r.add_argument("--strict", action="store_true", help="fail rather than fall back past an accelerator")
    r.set_defaults(func=cmd_run)


def _read_inputs(specs: list[Any], given: list[str]) -> dict[str, np.ndarray]:
    """The ``--input`` files as feeds by input name; a bare .npy goes to a single-input model's input."""
    feeds: dict[str, np.ndarray] = {}
    for item in given:
        name, sep, file = item.partition("=")
        if not sep:
            name, file = "", item
        p = Path(file)
        if not p.is_file():
            raise BadInputError(f"--input {item}: {p} is not a file")
        if p.suffix == ".npz":
            with np.load(p) as z:
                feeds.update({k: z[k] for k in z.files})
        elif p.suffix == ".npy":
            if not name:
                if len(specs) != 1:
                    raise BadInputError(
                        f"the model has inputs {[s.name for s in specs]}: use --input NAME=FILE.npy"
                    )
                name = specs[0].name
            feeds[name] = np.load(p)
        else:
            raise BadInputError(f"--input {item}: give a .npy or .npz file")
    return feeds


def cmd_run(args: argparse.Namespace) -> int:
    """Run the artifact once on the inputs; print (or save) its outputs."""
    from edge_sdk.runtimes import load

    session = load(
        args.artifact,
        device=args.device,
        backend=args.backend,
        accelerator=args.accelerator,
        threads=args.threads,
        strict=args.strict,
    )
    outputs = session.run(_read_inputs(session.inputs, args.input))
    if args.output:
        np.savez(args.output, **outputs)
    if args.json:
        console.emit_json(
            {
                "selection": session.selection.to_dict(),
                "outputs": {
                    k: {"shape": list(v.shape), "dtype": str(v.dtype), "values": v.tolist()}
                    for k, v in outputs.items()
                },
            }
        )
        return 0
    console.out.print(str(session.selection))
    rows = [
        [k, str(v.dtype), str(list(v.shape)), np.array2string(v.ravel()[:6], precision=4)]
        for k, v in outputs.items()
    ]
    console.table("outputs", ["name", "dtype", "shape", "first values"], rows)
    if args.output:
        console.out.print(f"saved to {args.output}")
    return 0
