"""The ``edge-sdk`` command line, built on the public API: the parser, made of one module per command, and
the one place that maps errors to exit codes.

Exit codes: 0 ok, 1 the job failed (a conversion, a parity gate, a download) or a live loop finished but
lost input (``run video`` on a file with frames it could not decode: the summary is printed first), 2 bad
usage or input. A live loop (``run audio``, ``run video``) ended by Ctrl-C, SIGTERM or SIGHUP finishes
cleanly and exits 0 (1 if it had lost input); 130 is a Ctrl-C anywhere else.
"""

from __future__ import annotations

import argparse
import sys

from rich.text import Text

from edge_sdk.cli import console, convert, demo, devices, inspect, models, run, train, transcribe, verify
from edge_sdk.errors import EdgeSDKError, StageFailed

# In the order ``edge-sdk --help`` lists them; each module has ``add_parser(subparsers, common)``.
COMMANDS = (convert, inspect, run, transcribe, models, devices, demo, verify, train)


class _Commands(argparse._SubParsersAction):  # type: ignore[type-arg]
    """The commands, listed in ``edge-sdk --help`` with their own subcommands (``run audio``, ``models
    pull``) indented under them: argparse itself lists one level."""

    def _get_subactions(self) -> list[argparse.Action]:
        return [_Command(line, self._name_parser_map[line.dest]) for line in self._choices_actions]


class _Command(argparse.Action):
    """A command's line in the help, whose subactions are the lines of the command's subcommands."""

    def __init__(self, line: argparse.Action, parser: argparse.ArgumentParser) -> None:
        super().__init__(option_strings=[], dest=line.dest, metavar=line.metavar, help=line.help)
        self.parser = parser

    def _get_subactions(self) -> list[argparse.Action]:
        return [
            line
            for action in self.parser._actions
            if isinstance(action, argparse._SubParsersAction)
            for line in action._get_subactions()
        ]


def _common_options() -> argparse.ArgumentParser:
    """The options every command takes: --json, --verbose, --quiet."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    common.add_argument("-v", "--verbose", action="store_true", help="show debug logs and third-party output")
    common.add_argument("-q", "--quiet", action="store_true", help="no progress bars, errors only")
    return common


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; target choices come from the converter registry."""
    from edge_sdk.version import __version__

    p = argparse.ArgumentParser(prog="edge-sdk", description="Convert, check and run models on edge devices.")
    p.add_argument("--version", action="version", version=f"edge-sdk {__version__}")
    common = _common_options()
    sub = p.add_subparsers(action=_Commands, dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub, common)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``edge-sdk``; returns the exit code."""
    args = build_parser().parse_args(argv)
    console.setup_logging(getattr(args, "verbose", False), getattr(args, "quiet", False))
    try:
        return int(args.func(args))
    except EdgeSDKError as e:
        if isinstance(e, StageFailed) and e.summary is not None:
            # What a live loop did before the failure still matters (which stage was slow, what was written).
            console.err.print(e.summary.text(), markup=False, highlight=False)
        console.err.print(Text.assemble(("error: ", "bold red"), str(e)))
        return e.exit_code
    except KeyboardInterrupt:
        console.err.print("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
