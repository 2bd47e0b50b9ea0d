"""The shape of the ``edge-sdk`` command line: one module per command, registered the same way, and
``run``'s subcommands beside the plain ``run ARTIFACT``. The help is read from the installed command."""

from __future__ import annotations

import argparse
import inspect
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from edge_sdk import cli
from edge_sdk.cli import audio, convert, demo, devices, models, run, video
from edge_sdk.cli import inspect as inspect_command
from edge_sdk.cli.main import COMMANDS, _common_options, build_parser

EXE = shutil.which("edge-sdk", path=str(Path(sys.executable).parent)) or "edge-sdk"
# Modules of edge_sdk.cli that hold no command: the parser itself and what renders results.
HELPERS = {"__init__", "main", "console", "progress", "summary"}
COMMAND_MODULES = (*COMMANDS, *run.SUBCOMMANDS)


def cli_help(*args: str) -> list[str]:
    # argparse wraps help text to COLUMNS: wide enough here that no help text starts a line of its own,
    # whatever the terminal the tests run in
    env = {**os.environ, "COLUMNS": "250"}
    r = subprocess.run([EXE, *args, "--help"], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


def listed(lines: list[str]) -> list[tuple[int, str]]:
    """(indent, first word) of each line: a command's name opens its line in argparse's list."""
    return [(len(line) - len(line.lstrip()), line.split()[0]) for line in lines if line.strip()]


def name(module: ModuleType) -> str:
    return module.__name__.rpartition(".")[2]


def test_every_module_of_the_cli_is_a_listed_command_or_a_helper() -> None:
    files = {p.stem for p in Path(cli.__file__).parent.glob("*.py")}
    assert sorted(files - HELPERS) == sorted(name(m) for m in COMMAND_MODULES)


@pytest.mark.parametrize("module", COMMAND_MODULES, ids=name)
def test_every_command_module_registers_itself_the_same_way(module: ModuleType) -> None:
    assert list(inspect.signature(module.add_parser).parameters) == ["subparsers", "common"]
    parser = argparse.ArgumentParser(prog="edge-sdk")
    subparsers = parser.add_subparsers()
    module.add_parser(subparsers, _common_options())
    assert list(subparsers.choices) == [name(module)]  # one command, named as its module
    commands = [f for n, f in vars(module).items() if n.startswith("cmd_") and callable(f)]
    assert commands and all(f.__module__ == module.__name__ for f in commands)


def test_names_of_the_former_cli_module_resolve_to_their_command_modules() -> None:
    moved = {
        "cmd_convert": convert,
        "cmd_inspect": inspect_command,
        "cmd_run": run,
        "_read_inputs": run,
        "cmd_models": models,
        "cmd_devices": devices,
        "cmd_demo": demo,
    }
    with pytest.deprecated_call():
        for old, module in moved.items():
            assert getattr(cli, old) is getattr(module, old)
        assert cli.build_parser is build_parser
    with pytest.raises(AttributeError):
        cli.cmd_nothing  # noqa: B018


def test_top_level_help_lists_every_command_with_its_subcommands_under_it() -> None:
    lines = listed(cli_help())
    words = [w for _, w in lines]
    for module in COMMANDS:
        assert name(module) in words
    indent = {w: i for i, w in lines}
    for command, subcommands in {
        "run": ["audio", "video"],
        "models": ["list", "pull"],
        "train": ["kws"],
    }.items():
        at = words.index(command)
        assert words[at + 1 : at + 1 + len(subcommands)] == subcommands
        assert all(indent[s] > indent[command] for s in subcommands)


def test_run_help_lists_audio_and_video_and_the_plain_run() -> None:
    lines = cli_help("run")
    words = [w for _, w in listed(lines)]
    assert "audio" in words and "video" in words
    assert "artifact" in words and "--input" in words and "--strict" in words
    assert "--source" not in words  # the loops' own options are in their own help
    assert "--source" in [w for _, w in listed(cli_help("run", "audio"))]


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(argv)


@pytest.mark.parametrize(
    ("argv", "artifact"),
    [
        (["run", "m.onnx", "--input", "x.npy"], "m.onnx"),
        (["run", "--input", "x.npy", "--json", "m.onnx"], "m.onnx"),
        # an artifact named like a subcommand: by its path, or after any option, as before 'run audio'
        (["run", "./audio", "--input", "x.npy"], "./audio"),
        (["run", "--json", "audio", "--input", "x.npy"], "audio"),
        (["run", "--input", "x.npy", "video"], "video"),
    ],
)
def test_a_word_that_names_no_subcommand_is_the_plain_runs_artifact(argv: list[str], artifact: str) -> None:
    args = parse(*argv)
    assert args.func is run.cmd_run and args.artifact == artifact and args.input == ["x.npy"]


def test_options_around_the_artifact_add_up_as_before() -> None:
    args = parse("run", "--input", "a=x.npy", "--threads", "2", "m.onnx", "--input", "b=y.npy", "--strict")
    assert args.input == ["a=x.npy", "b=y.npy"] and args.threads == 2 and args.strict
    assert (args.backend, args.accelerator, args.device, args.json) == ("auto", "auto", "auto", False)


def test_run_audio_and_run_video_are_subcommands_with_their_own_defaults() -> None:
    args = parse("run", "audio", "--source", "talk.wav", "--json")
    assert args.func is audio.cmd_run_audio and args.source == "talk.wav" and args.json
    assert args.threads == 1 and args.block_size == 320
    args = parse("run", "video", "--frames", "3")
    assert args.func is video.cmd_run_video and args.frames == 3 and args.source == "camera"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "m.onnx"], "edge-sdk run: error: the following arguments are required: --input"),
        (["run", "--input", "x.npy"], "edge-sdk run: error: the following arguments are required: artifact"),
        (["run", "m.onnx", "extra", "--input", "x.npy"], "edge-sdk: error: unrecognized arguments: extra"),
        (["run", "audio", "extra"], "edge-sdk run audio: error: unrecognized arguments: extra"),
        (["run", "video", "--frames", "1", "--seconds", "1"], "edge-sdk run video: error: argument"),
    ],
)
def test_usage_errors_exit_2_under_the_name_of_the_parser_that_found_them(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as e:
        parse(*argv)
    assert e.value.code == 2
    assert message in capsys.readouterr().err
