"""``edge-sdk devices``: the board this runs on (what matched, its accelerators, telemetry, which artifact
would run where), or its audio inputs (``--audio``) or cameras (``--video``)."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from edge_sdk.cli import console


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Register ``devices``."""
    dv = subparsers.add_parser("devices", parents=[common], help="the board, its accelerators and telemetry")
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


def cmd_devices(args: argparse.Namespace) -> int:
    """The board, its CPU, accelerators and telemetry (or, with ``--audio`` / ``--video``, its inputs)."""
    if args.audio:
        return cmd_devices_audio(args)
    if args.video:
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


def _listing(args: argparse.Namespace, found: Sequence[Any], none: str, title: str, columns: list[str],
             row: Callable[[Any], list[Any]]) -> int:  # fmt: skip
    """Print what a ``devices --audio``/``--video`` listing found: JSON, a table, or why there is none."""
    if args.json:
        console.emit_json([dataclasses.asdict(d) for d in found])
    elif not found:
        console.out.print(none)
    else:
        console.table(title, columns, [row(d) for d in found])
    return 0


def cmd_devices_audio(args: argparse.Namespace) -> int:
    """``edge-sdk devices --audio``: the audio inputs PortAudio sees."""
    from edge_sdk.devices.sources.microphone import list_input_devices

    return _listing(
        args, list_input_devices(), "no audio input devices found (PortAudio sees none)", "audio inputs",
        ["index", "name", "channels", "default rate", "host API"],
        lambda d: [d.index, d.name, d.max_input_channels, f"{d.default_sample_rate:g}", d.host_api],
    )  # fmt: skip


def cmd_devices_video(args: argparse.Namespace) -> int:
    """``edge-sdk devices --video``: the cameras (and video nodes) under ``--root``."""
    from edge_sdk.devices.sources.video import list_cameras

    capture = {True: "yes", False: "no", None: "?"}
    return _listing(
        args, list_cameras(args.root), "no cameras found (no /dev/video* nodes, no CSI sensor)", "cameras",
        ["node", "name", "kind", "capture", "--source", "note"],
        lambda c: [c.path, c.name, c.kind, capture[c.capture], c.source, c.note],
    )  # fmt: skip
