"""``edge-sdk verify``: re-measure an artifact's parity here, or on an emulated board's CPU."""

from __future__ import annotations

import argparse

from edge_sdk.cli import console


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Register ``verify``."""
    v = subparsers.add_parser(
        "verify",
        parents=[common],
        help="re-measure an artifact's parity on this machine (or an emulated board's CPU); exit 1 if off",
        description="Run the reference set an artifact carries through the backend this machine picks and "
        "compare with the fp32 source's outputs recorded in it; fail (exit 1) when an output misses the "
        "limits recorded at conversion. --emulate runs it on a board's CPU under QEMU (numerics only).",
    )
    v.add_argument("artifact")
    v.add_argument("--emulate", metavar="DEVICE", help="a device profile whose CPU QEMU emulates")
    v.add_argument(
        "--prepare",
        action="store_true",
        help="with --emulate: first fetch what emulation needs and is missing (QEMU 10, an arm64 Python, "
        "aarch64 wheels) into the emulation cache",
    )
    v.add_argument("--backend", default="auto")
    v.add_argument("--accelerator", default="auto")
    v.add_argument("--threads", type=int)
    v.set_defaults(func=cmd_verify)


def cmd_verify(args: argparse.Namespace) -> int:
    """Verify one artifact; print the report (or JSON) and return 1 when it failed."""
    from edge_sdk.errors import BadInputError
    from edge_sdk.verification.report import verify

    if args.prepare:
        if not args.emulate:
            raise BadInputError("--prepare readies an emulator: give --emulate DEVICE with it")
        from edge_sdk.devices.emulation import prepare

        prepare(args.emulate, report=lambda m: None if args.quiet else console.err.print(m, markup=False))
    report = verify(
        args.artifact,
        emulate=args.emulate,
        backend=args.backend,
        accelerator=args.accelerator,
        threads=args.threads,
    )
    if args.json:
        console.emit_json(report.to_dict())
    else:
        console.out.print(report.text(), markup=False, highlight=False)
    return 0 if report.passed else 1
