"""The ``edge-sdk`` command line, built on the public API.

Exit codes: 0 ok, 1 the job failed (a conversion, a parity gate, a download), 2 bad usage or input.
Errors are mapped to codes here and only here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
from rich.text import Text

from edge_sdk.cli import console
from edge_sdk.errors import BadInputError, EdgeSDKError

# -- convert ---------------------------------------------------------------------------------------


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


# -- inspect ---------------------------------------------------------------------------------------


def cmd_inspect(args: argparse.Namespace) -> int:
    from edge_sdk.converters.onnx_model import describe, load_onnx
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
            f"{', '.join(f.path for f in artifact.files)}"
        )  # type: ignore[union-attr]
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


# -- run -------------------------------------------------------------------------------------------


def _read_inputs(specs: list[Any], given: list[str]) -> dict[str, np.ndarray]:
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


# -- models ----------------------------------------------------------------------------------------


def cmd_models(args: argparse.Namespace) -> int:
    from edge_sdk import zoo

    if args.action == "pull":
        with console.progress_bars(not (args.quiet or args.json)) as progress:
            path = zoo.pull(args.name, progress=progress, force=args.force)
        entry = zoo.catalog()[args.name]
        if args.json:
            console.emit_json(
                {"name": args.name, "path": str(path), "license": entry.license, "sha256": entry.sha256}
            )
        else:
            console.out.print(f"{args.name}: {path} (licence {entry.license}; {entry.attribution})")
        return 0
    entries = zoo.catalog()
    if args.json:
        console.emit_json(
            [{**e.__dict__, "cached": str(zoo.cached(n) or "") or None} for n, e in entries.items()]
        )
        return 0
    rows = [[n, e.license, "yes" if zoo.cached(n) else "no", e.description] for n, e in entries.items()]
    console.table("models", ["name", "licence", "cached", "description"], rows)
    return 0


# -- devices ---------------------------------------------------------------------------------------


def cmd_devices(args: argparse.Namespace) -> int:
    if args.audio:
        from edge_sdk.cli.audio import cmd_devices_audio

        return cmd_devices_audio(args)
    if args.video:
        from edge_sdk.cli.video import cmd_devices_video

        return cmd_devices_video(args)
    from edge_sdk.devices import detect, open_telemetry
    from edge_sdk.devices.cpu import read_cpu
    from edge_sdk.runtimes import load

    d = detect(args.root, probe_backends=not args.no_probe)
    cpu = read_cpu(Path(args.root))
    telemetry = open_telemetry(list(d.profile.telemetry), root=args.root)
    chosen = load(args.artifacts, device=d).selection if args.artifacts else None
    if args.json:
        console.emit_json(
            {
                **d.to_dict(),
                "cpu": cpu.to_dict(),
                "telemetry": telemetry.to_dict(),
                "selection": chosen.to_dict() if chosen else None,
            }
        )
        return 0
    names = " + ".join([d.profile.name] + [a.name for a in d.addons])
    console.out.print(f"device: {names} — {d.profile.description}", markup=False)
    console.out.print(
        f"matched: {'; '.join(d.matched) or 'nothing specific (generic profile)'}", markup=False
    )
    console.out.print(
        f"threads: {d.threads or 'backend default'}; backends probed: {'yes' if d.probed else 'no'}"
    )
    exact = {
        True: "its fast int8 kernels saturate 8-bit weights: int8 runs on the exact ones (slower)",
        False: "its fast int8 kernels are exact",
        None: "",
    }[cpu.saturates_8bit_weights]
    console.out.print(f"cpu: {cpu.describe()}" + (f"; {exact}" if exact else ""), markup=False)
    shown = (
        "arch",
        "device_tree_model",
        "tegra_release",
        "cpu_model",
        "cpu_flags",
        "dev",
        "pci",
        "usb",
        "libraries",
        "packages",
        "probe",
    )
    evidence = [[k, str(d.evidence.get(k))] for k in shown if d.evidence.get(k) not in (None, [], {})]
    console.table("evidence", ["what", "found"], evidence)
    rows = [
        [f"{a.backend}/{a.accelerator}", "yes" if a.usable else "no", a.reason, a.enable]
        for a in d.accelerators
    ]
    console.table(
        "accelerators, in the order selection prefers them",
        ["accelerator", "usable", "why", "to enable"],
        rows,
    )
    console.out.print(str(telemetry), markup=False)
    if chosen is not None:
        console.out.print(f"for {args.artifacts}:\n{chosen}", markup=False)
    return 0


# -- demo ------------------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    from edge_sdk.cli.demo import cmd_demo as run_demo

    return run_demo(args)


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    common.add_argument("-v", "--verbose", action="store_true", help="show debug logs and third-party output")
    common.add_argument("-q", "--quiet", action="store_true", help="no progress bars, errors only")
    return common


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; target choices come from the converter registry."""
    from edge_sdk._version import __version__

    p = argparse.ArgumentParser(prog="edge-sdk", description="Convert, check and run models on edge devices.")
    p.add_argument("--version", action="version", version=f"edge-sdk {__version__}")
    common = _common_options()
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser(
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

    i = sub.add_parser(
        "inspect", parents=[common], help="show a model's or artifact's I/O, ops, size and parity"
    )
    i.add_argument("path")
    i.set_defaults(func=cmd_inspect)

    r = sub.add_parser(
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

    m = sub.add_parser("models", help="pretrained third-party models: list, pull")
    msub = m.add_subparsers(dest="action", required=True)
    ml = msub.add_parser("list", parents=[common], help="the catalog, and what is cached")
    ml.set_defaults(func=cmd_models)
    mp = msub.add_parser("pull", parents=[common], help="fetch a model into the cache, verifying its sha256")
    mp.add_argument("name")
    mp.add_argument("--force", action="store_true", help="fetch again even if cached")
    mp.set_defaults(func=cmd_models)

    dv = sub.add_parser("devices", parents=[common], help="the board, its accelerators and telemetry")
    dv.add_argument("--root", default="/", help="read the board's evidence under this path (a recorded tree)")
    dv.add_argument(
        "--no-probe", action="store_true", help="judge from files and packages; do not ask the backends"
    )
    dv.add_argument(
        "--artifacts", metavar="PATH", help="also say which of these artifacts would run, and where"
    )
    dv.add_argument("--audio", action="store_true", help="list the audio input devices instead")
    dv.add_argument("--video", action="store_true", help="list the cameras (under --root) instead")
    dv.set_defaults(func=cmd_devices)

    d = sub.add_parser(
        "demo",
        parents=[common],
        help="Silero VAD in every format, then the live audio loop on a bundled noisy clip",
    )
    d.add_argument("--out", default="demo-out", help="where the demo's artifacts go (default: demo-out)")
    d.set_defaults(func=cmd_demo)

    from edge_sdk.cli.train import add_train_parser
    from edge_sdk.cli.verify import add_verify_parser

    add_verify_parser(sub, common)
    add_train_parser(sub, common)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``edge-sdk``; returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:2] == ["run", "audio"]:
        # 'run audio' is its own parser: 'run ARTIFACT' keeps its positional, so existing use is unchanged
        # (a model file named 'audio' still runs as './audio').
        from edge_sdk.cli.audio import build_run_audio_parser

        args = build_run_audio_parser(_common_options()).parse_args(argv[2:])
    elif argv[:2] == ["run", "video"]:
        from edge_sdk.cli.video import build_run_video_parser

        args = build_run_video_parser(_common_options()).parse_args(argv[2:])
    else:
        args = build_parser().parse_args(argv)
    console.setup_logging(getattr(args, "verbose", False), getattr(args, "quiet", False))
    try:
        return int(args.func(args))
    except EdgeSDKError as e:
        console.err.print(Text.assemble(("error: ", "bold red"), str(e)))
        return e.exit_code
    except KeyboardInterrupt:
        console.err.print("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
