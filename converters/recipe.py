"""Conversion recipes: an ``edge.toml`` that says what ``edge-sdk convert`` would take as flags.

One table, ``KEYS``, names every recipe key once: its TOML path (``quantize.max_drop``), its command-line
flag (``--max-drop``), its type and the ``convert()`` keyword it feeds. The CLI's options, the recipe's
validation and the key table in ``docs/recipes.md`` are all made from it, so they cannot drift apart.
Flags given on the command line override the recipe's values (table-valued keys such as ``options``
merge entry by entry). Relative paths in a recipe are relative to the recipe file.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import importlib.util
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_sdk.errors import BadInputError
from edge_sdk.manifest import read_toml


@dataclass(frozen=True)
class Key:
    """One recipe key: TOML path, flag (a bare word is the positional argument), kind, help, and the
    ``convert()`` keyword it feeds (None: the recipe resolves it itself)."""

    path: str
    flag: str
    kind: str
    help: str
    kwarg: str | None = None
    choices: tuple[str, ...] = ()
    metavar: str | None = None


# Kinds: what a value must be, said the same way in every error.
_KIND_TEXT = {
    "source": "a path to an .onnx file or zoo:NAME",
    "path": "a path (string)",
    "str": "a string",
    "float": "a number",
    "nonneg": "a number >= 0",
    "ratio": "a number between 0 and 1 (exclusive)",
    "drop": "a number >= 0 (absolute) or a percentage string like '1%' (relative)",
    "int": "an integer >= 1",
    "bool": "true or false",
    "targets": "a list of FORMAT:PRECISION strings (or one comma-separated string)",
    "scalars": "a table of NAME = number, string or boolean",
    "options": "a table of NAME = value for every format that takes NAME, and of FORMAT.NAME = value "
    "([options.FORMAT]) for one format",
    "shapes": "a table of NAME = [D1, D2, ...] positive integer dims",
    "function": "'file.py:function' or 'package.module:function'",
    "device": "a device profile name (edge-sdk devices lists this board's)",
}

KEYS: tuple[Key, ...] = (
    Key("source", "source", "source", "the model: an .onnx file or zoo:NAME"),
    Key("targets", "--to", "targets", "targets, e.g. onnx:int8,openvino:fp16", metavar="FMT:PRECISION[,...]"),
    Key(
        "device",
        "--device",
        "device",
        "device profile the artifacts are for: picks the targets when none are given; int8 artifacts "
        "record whether its CPU needs exact int8 kernels",
        "device",
    ),
    Key("out", "--out", "path", "directory for the artifacts (default: artifacts)", "out"),
    Key("name", "--name", "str", "artifact name prefix (default: the source's name)", "name"),
    Key(
        "calibration.data",
        "--calib",
        "path",
        "calibration data: folder of .npy/.npz files, or an .npz",
        "calibration",
        metavar="PATH",
    ),
    Key(
        "parity.data",
        "--parity-data",
        "path",
        "inputs for the parity check (default: calibration data)",
        "parity_data",
        metavar="PATH",
    ),
    Key(
        "parity.max_error",
        "--max-error",
        "nonneg",
        "fail a target whose max abs error vs the source exceeds this",
        "max_error",
    ),
    Key(
        "parity.samples",
        "--parity-samples",
        "int",
        "samples the parity check runs (default 32)",
        "parity_samples",
    ),
    Key(
        "input.fix",
        "--fix",
        "scalars",
        "make an input a constant (e.g. sr=16000)",
        "fixed_inputs",
        metavar="INPUT=VALUE",
    ),
    Key(
        "input.shapes",
        "--shape",
        "shapes",
        "fix an input's dynamic dims (e.g. input=1,576)",
        "input_shapes",
        metavar="INPUT=D1,D2,...",
    ),
    Key(
        "options",
        "--option",
        "options",
        "target option, e.g. per_channel=false; FORMAT.NAME=VALUE gives one format its own value, e.g. "
        "openvino.calibrator=nncf (docs/recipes.md lists every format's options)",
        "options",
        metavar="[FORMAT.]NAME=VALUE",
    ),
    Key(
        "quantize.max_drop",
        "--max-drop",
        "drop",
        "accuracy-aware int8: the most the metric may drop (0.01, or 1%)",
        "max_drop",
    ),
    Key(
        "quantize.evaluate",
        "--evaluate",
        "function",
        "the metric for accuracy-aware int8: evaluate(session) -> float",
        "evaluate",
        metavar="FILE.py:FUNCTION",
    ),
    Key(
        "prune.method",
        "--prune-method",
        "str",
        "torch sources: channels or sparsity",
        choices=("channels", "sparsity"),
    ),
    Key("prune.ratio", "--prune-ratio", "ratio", "torch sources: share of channels (or weights) to remove"),
    Key("prune.macs", "--prune-macs", "int", "torch sources: prune channels until MACs are at most this"),
    Key(
        "prune.scope",
        "--prune-scope",
        "str",
        "torch sources: rank per layer or global",
        choices=("layer", "global"),
    ),
    Key("prune.steps", "--prune-steps", "int", "torch sources: iterative pruning steps"),
    Key("cache", "--cache", "bool", "reuse cached conversions (default true; --no-cache rebuilds)", "cache"),
)
BY_PATH = {k.path: k for k in KEYS}
_TABLES = {k.path.split(".")[0] for k in KEYS if "." in k.path}
_PATH_KINDS = ("path", "source")
_TABLE_KINDS = ("scalars", "shapes", "options")  # given as NAME=VALUE pairs, merged entry by entry


def _fail(where: str, key: Key, value: Any, extra: str = "") -> BadInputError:
    allowed = f"one of: {', '.join(key.choices)}" if key.choices else _KIND_TEXT[key.kind]
    return BadInputError(f"{where}{key.path} = {value!r:.80}: must be {allowed}{extra}")


def check_value(key: Key, value: Any, where: str = "") -> Any:
    """``value`` for ``key`` in normal form, or a BadInputError naming the key and what it allows."""
    kind = key.kind
    if kind == "device":
        _profile(value, where)
        ok = True
    elif kind in ("source", "path", "str", "function"):
        if isinstance(value, str) and "\0" in value:  # no file or name can hold one; the OS refuses it
            raise _fail(where, key, value, "; it holds a NUL character")
        ok = isinstance(value, str) and value != ""
        if ok and kind == "function":
            ok = _is_function_spec(value)
    elif kind in ("float", "nonneg", "ratio"):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        ok = ok and (kind == "float" or value >= 0) and (kind != "ratio" or 0 < value < 1)
        value = float(value) if ok else value
    elif kind == "drop":
        ok = (isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0) or (
            isinstance(value, str) and value.endswith("%") and _is_number(value[:-1])
        )
    elif kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
    elif kind == "bool":
        ok = isinstance(value, bool)
    elif kind == "targets":
        if isinstance(value, str):
            value = [t.strip() for t in value.split(",") if t.strip()]
        ok = isinstance(value, list) and bool(value) and all(isinstance(t, str) for t in value)
        if ok:
            _check_targets(key, value, where)
    elif kind == "options":
        ok = isinstance(value, Mapping)
        if ok:
            value = _target_options(key, value, where)
    elif kind == "scalars":
        ok = isinstance(value, Mapping) and all(
            isinstance(v, (str, int, float, bool)) for v in value.values()
        )
        value = dict(value) if ok else value
    elif kind == "shapes":
        ok = isinstance(value, Mapping) and all(
            isinstance(v, list)
            and v
            and all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in v)
            for v in value.values()
        )
        value = {k: list(v) for k, v in value.items()} if ok else value
    else:  # pragma: no cover - a kind without a check is a bug in KEYS
        raise AssertionError(kind)
    if not ok or (key.choices and value not in key.choices):
        raise _fail(where, key, value)
    return value


def _target_options(key: Key, table: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The ``[options]`` table as flat ``NAME`` / ``FORMAT.NAME`` keys (a ``[options.FORMAT]`` table, or
    TOML's dotted ``FORMAT.NAME = ...``, holds one format's), with every name checked against the
    targets' declarations (``converters/options.py``); values are checked against the requested targets
    by ``convert()``."""
    from edge_sdk.converters.options import check_names

    flat: dict[str, Any] = {}
    for name, value in table.items():
        entries = value.items() if isinstance(value, Mapping) else [("", value)]
        for sub, v in entries:
            ok = isinstance(v, (str, int, float, bool)) or (
                isinstance(v, list) and all(isinstance(n, str) for n in v)
            )
            path = f"{name}.{sub}" if sub else name
            if not ok:
                what = "a number, string, boolean or list of names"
                raise BadInputError(f"{where}{key.path}.{path} = {v!r:.80}: must be {what}")
            flat[path] = v
    try:
        check_names(flat)
    except BadInputError as e:
        raise BadInputError(f"{where}{key.path}: {e}") from None
    return flat


def _is_function_spec(spec: str) -> bool:
    """``file.py:function`` or ``package.module:function``: an importable module name, as importlib would
    otherwise refuse an empty or relative one with errors of its own."""
    module, _, func = spec.rpartition(":")
    return func.isidentifier() and (
        module.endswith(".py") or all(p.isidentifier() for p in module.split("."))
    )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _check_targets(key: Key, value: list[str], where: str) -> None:
    from edge_sdk.converters.targets import all_targets, parse_target

    for t in value:
        try:
            parse_target(t)
        except BadInputError as e:
            near = difflib.get_close_matches(t, all_targets(), n=1)
            hint = f"; did you mean '{near[0]}'?" if near else ""
            raise BadInputError(f"{where}{key.path}: {e}{hint}") from None


def _unknown(where: str, path: str, candidates: list[str]) -> BadInputError:
    near = difflib.get_close_matches(path, candidates, n=1, cutoff=0.5)
    hint = f"; did you mean '{near[0]}'?" if near else ""
    return BadInputError(f"{where}unknown key '{path}'{hint} Known keys: {', '.join(k.path for k in KEYS)}")


def _walk(data: Mapping[str, Any], prefix: str, where: str, out: dict[str, Any]) -> None:
    for name, value in data.items():
        path = f"{prefix}{name}"
        if path in BY_PATH:
            out[path] = check_value(BY_PATH[path], value, where)
        elif not prefix and name in _TABLES:
            if not isinstance(value, Mapping):
                raise BadInputError(
                    f"{where}{path} must be a table ([{path}]) holding keys such as "
                    f"{', '.join(k.path for k in KEYS if k.path.startswith(path + '.'))}"
                )
            _walk(value, f"{path}.", where, out)
        else:
            raise _unknown(where, path, [k.path for k in KEYS] + sorted(_TABLES))


@dataclass
class Recipe:
    """Validated recipe values by dotted key, where each came from, and the folder paths are relative to."""

    values: dict[str, Any] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)

    def merged(self, overrides: Mapping[str, Any], origin: str = "command line") -> Recipe:
        """A recipe with ``overrides`` (dotted key → value, already checked) taking precedence."""
        values, where = dict(self.values), dict(self.origin)
        for path, value in overrides.items():
            if BY_PATH[path].kind in _TABLE_KINDS and isinstance(values.get(path), dict):
                value = {**values[path], **value}
            values[path], where[path] = value, origin
        return Recipe(values, where)

    @property
    def source(self) -> str:
        if "source" not in self.values:
            raise BadInputError("no source: give it on the command line or as source = '...' in the recipe")
        return str(self.values["source"])

    @property
    def targets(self) -> list[str]:
        """The recipe's targets, or those the device profile prefers when none are given."""
        if "targets" in self.values:
            return list(self.values["targets"])
        if "device" in self.values:
            return _device_targets(self.values["device"], "calibration.data" in self.values)
        raise BadInputError("no targets: give --to / targets = [...], or a device whose profile picks them")

    def convert_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``convert()`` (all but source and targets)."""
        kwargs = {k.kwarg: self.values[k.path] for k in KEYS if k.kwarg and k.path in self.values}
        if "evaluate" in kwargs:
            kwargs["evaluate"] = load_function(kwargs["evaluate"])
        prune = {p.split(".", 1)[1]: v for p, v in self.values.items() if p.startswith("prune.")}
        if prune:
            kwargs["prune"] = prune
        return kwargs


def _profile(device: Any, where: str = "") -> Any:
    from edge_sdk.devices.profile import profile_named

    try:
        return profile_named(device)
    except BadInputError as e:
        raise BadInputError(f"{where}device = {device!r}: {e}") from None


def _device_targets(device: str, calibrated: bool) -> list[str]:
    from edge_sdk.converters.targets import TARGETS

    profile = _profile(device)
    for fmt in profile.formats:
        if fmt not in TARGETS.names() or not TARGETS.get(fmt).available()[0]:
            continue
        target = TARGETS.get(fmt)
        for precision in profile.precisions:
            if precision in target.calibrated and not calibrated:
                precision = f"{precision}-dynamic"  # no calibration data: the weight-only variant
            if precision in target.precisions:
                return [f"{fmt}:{precision}"]
    raise BadInputError(f"device '{device}' prefers {list(profile.formats)}, none of which can be made here")


def load_function(spec: str) -> Callable[..., Any]:
    """``'file.py:function'`` or ``'package.module:function'`` → the function."""
    module_name, _, func = spec.rpartition(":")
    try:
        if module_name.endswith(".py"):
            loader = importlib.util.spec_from_file_location(Path(module_name).stem, module_name)
            if loader is None or loader.loader is None or not Path(module_name).is_file():
                raise FileNotFoundError(module_name)
            module = importlib.util.module_from_spec(loader)
            loader.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
        return getattr(module, func)  # type: ignore[no-any-return]
    except (ImportError, FileNotFoundError, AttributeError) as e:
        raise BadInputError(f"quantize.evaluate = '{spec}': cannot load it ({e})") from None


def recipe_from_dict(data: Mapping[str, Any], where: str = "", base: Path | None = None) -> Recipe:
    """Validate a recipe given as a dict (a parsed TOML document); paths are taken relative to ``base``."""
    values: dict[str, Any] = {}
    _walk(data, "", where, values)
    if base is not None:
        for path, value in values.items():
            kind = BY_PATH[path].kind
            if kind in _PATH_KINDS and not value.startswith("zoo:"):
                values[path] = str((base / value).resolve()) if not Path(value).is_absolute() else value
            elif kind == "function" and value.split(":")[0].endswith(".py"):
                file, _, func = value.rpartition(":")
                values[path] = f"{(base / file).resolve()}:{func}"
    return Recipe(values, dict.fromkeys(values, where.rstrip(": ") or "recipe"))


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate an ``edge.toml``; a BadInputError names the offending key and what it allows."""
    p = Path(path)
    if not p.is_file():
        raise BadInputError(f"recipe {p}: no such file")
    data = read_toml(p, f"recipe {p}", "recipe")
    return recipe_from_dict(data, f"{p}: ", p.resolve().parent)


# -- the command line, from the same table ---------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one option per key (defaults None, so a flag that was not given does not override a recipe)."""
    from edge_sdk.converters.options import summary
    from edge_sdk.converters.targets import all_targets

    for key in KEYS:
        text = f"{key.help} [recipe: {key.path}]".replace("%", "%%")  # argparse formats help with %
        if key.flag == "source":
            parser.add_argument("source", nargs="?", help=f"{text}; optional with --recipe")
        elif key.kind == "bool":
            parser.add_argument(key.flag, action=argparse.BooleanOptionalAction, default=None, help=text)
        elif key.kind in _TABLE_KINDS:
            extra = f"; options by format: {summary()}" if key.kind == "options" else ""
            parser.add_argument(key.flag, action="append", metavar=key.metavar, help=text + extra)
        else:
            extra = f"; available: {', '.join(all_targets())}" if key.kind == "targets" else ""
            parser.add_argument(
                key.flag, metavar=key.metavar, choices=key.choices or None, help=text + extra, default=None
            )


def _from_text(key: Key, text: str) -> Any:
    """A flag's string as the value the recipe would hold."""
    if key.kind in ("float", "nonneg", "ratio", "int") or (key.kind == "drop" and not text.endswith("%")):
        try:
            return int(text) if key.kind == "int" else float(text)
        except ValueError:
            raise _fail(f"{key.flag}: ", key, text) from None
    return text


def _literal(value: str) -> Any:
    low = value.lower()
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


def _pairs(key: Key, items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise BadInputError(f"{key.flag} takes {key.metavar}, got '{item}'")
        if key.kind == "shapes":
            try:
                out[name] = [int(d) for d in value.split(",")]
            except ValueError:
                raise BadInputError(
                    f"{key.flag} takes {key.metavar} with integer dims, got '{item}'"
                ) from None
        elif key.kind == "options":
            out[name] = value  # the option's declared type reads the text (converters/options.py)
        else:
            out[name] = _literal(value)
    return out


def from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The keys given on the command line (dotted key → checked value)."""
    given: dict[str, Any] = {}
    for key in KEYS:
        raw = getattr(args, key.flag.lstrip("-").replace("-", "_"), None)
        if raw is None:
            continue
        value = _pairs(key, raw) if key.kind in _TABLE_KINDS else raw
        value = _from_text(key, value) if isinstance(value, str) else value
        given[key.path] = check_value(key, value, f"{key.flag}: ")
    return given


def key_table() -> str:
    """The markdown table of every key (docs/recipes.md holds it)."""
    rows = ["| recipe key | flag | value | `convert()` argument | what |", "|---|---|---|---|---|"]
    for k in KEYS:
        allowed = f"one of: {', '.join(k.choices)}" if k.choices else _KIND_TEXT[k.kind]
        flag = (
            "positional"
            if k.flag == "source"
            else ("`--cache` / `--no-cache`" if k.kind == "bool" else f"`{k.flag}`")
        )
        arg = f"`{k.kwarg}`" if k.kwarg else ("`prune`" if k.path.startswith("prune.") else "")
        rows.append(f"| `{k.path}` | {flag} | {allowed} | {arg} | {k.help} |")
    return "\n".join(rows)
