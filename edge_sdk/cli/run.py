"""``edge-sdk run``: an artifact or model file, once, on inputs from .npy or .npz files (``run ARTIFACT
--input FILE``), and the live loops, ``run audio`` and ``run video``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.cli import audio, console, video
from edge_sdk.errors import BadInputError
from edge_sdk.runtimes.arrays import read_npy, read_npz

# The subcommands of ``run``, in the order ``edge-sdk run --help`` lists them; each module has
# ``add_parser(subparsers, common)``.
SUBCOMMANDS = (audio, video)


class ArtifactOrSubcommand(argparse._SubParsersAction):  # type: ignore[type-arg]
    """``run``'s subcommands, where a first word that names none is the artifact of the plain run.

    argparse gives a parser positionals or subcommands, not both: ``run`` has the subcommands and the
    options of the plain run, and the plain run is a parser of its own, ``plain`` (the artifact and the same
    options), which gets the artifact and what follows it. As ever, a word names a subcommand only right
    after ``run``: ``run --json audio`` is a model file named audio, as is ``run ./audio``."""

    def __init__(self, *args: Any, plain: argparse.ArgumentParser, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.plain = plain
        self.choices = None  # type: ignore[assignment]  # any word: a subcommand or an artifact

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        assert isinstance(values, list)
        word, rest = values[0], values[1:]
        options_first = any(value != parser.get_default(key) for key, value in vars(namespace).items())
        if word in self._name_parser_map and not options_first:
            # parse_args: a subcommand reports the arguments it does not know under its own name
            vars(namespace).update(vars(self._name_parser_map[word].parse_args(rest)))
            return
        # The options given before the artifact are in the namespace already; plain adds what follows it.
        _, extras = self.plain.parse_known_args(values, namespace)
        if namespace.input is None:
            self.plain.error("the following arguments are required: --input")
        if extras:  # left to the top-level parser, which reports them for every command alike
            vars(namespace).setdefault(argparse._UNRECOGNIZED_ARGS_ATTR, []).extend(extras)


def _run_options() -> argparse.ArgumentParser:
    """The options of the plain run, for ``run`` and for its plain parser."""
    o = argparse.ArgumentParser(add_help=False)
    o.add_argument(
        "--input",
        action="append",
        metavar="[NAME=]FILE",
        help="a .npy for a single-input model, NAME=FILE.npy, or an .npz keyed by input name (required with "
        "an artifact)",
    )
    o.add_argument("--output", metavar="FILE.npz", help="save the outputs")
    o.add_argument("--backend", default="auto")
    o.add_argument("--accelerator", default="auto")
    o.add_argument("--threads", type=int)
    o.add_argument("--device", default="auto", help="a device profile name (default: detect this board)")
    o.add_argument("--strict", action="store_true", help="fail rather than fall back past an accelerator")
    return o


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Register ``run`` and its subcommands."""
    options = _run_options()
    description = (
        "Run an artifact or a model file once on inputs (edge-sdk run ARTIFACT --input FILE ...), or a live "
        "loop: 'run audio' (microphone or WAV file) or 'run video' (camera or video file)."
    )
    r = subparsers.add_parser(
        "run",
        parents=[common, options],
        help="run an artifact or model file on inputs, or a live loop",
        description=description,
    )
    plain = argparse.ArgumentParser(prog=r.prog, parents=[common, options], description=description)
    plain.add_argument("artifact", help="an artifact folder, a folder of artifacts, or a model file")
    plain.set_defaults(func=cmd_run)
    loops = r.add_subparsers(  # type: ignore[call-overload]  # typeshed knows only argparse's own keywords
        action=ArtifactOrSubcommand,
        plain=plain,
        required=True,
        metavar="artifact",
        help="an artifact folder, a folder of artifacts, or a model file; or one of these live loops:",
    )
    for subcommand in SUBCOMMANDS:
        subcommand.add_parser(loops, common)


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
            feeds.update(read_npz(p))
        elif p.suffix == ".npy":
            if not name:
                if len(specs) != 1:
                    raise BadInputError(
                        f"the model has inputs {[s.name for s in specs]}: use --input NAME=FILE.npy"
                    )
                name = specs[0].name
            feeds[name] = read_npy(p)
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
