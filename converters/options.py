"""Target options as data, and the one routine that checks a call's options against its targets.

Each target declares the options it reads as :class:`Option` values (name, type, default, allowed values,
help) in its ``options`` mapping; an option several targets read (``int8_weights``, the int4 ones, the
onnx quantiser's) is declared once, beside the code that reads it, and shared. :func:`resolve` runs in
``convert()`` before the source is opened and hands each target exactly its own options, typed, with
the defaults filled in. The command line's ``--option``, the recipe's ``[options]`` table, the table in
docs/recipes.md and the cache keys read the same declarations.

How a call's options reach its targets:

- ``NAME=VALUE`` goes to every requested target that declares ``NAME``; a name that none of them
  declares is an error.
- ``FORMAT.NAME=VALUE`` (``openvino.calibrator=nncf``) goes to that format only and wins over an
  unprefixed ``NAME``. ``FORMAT`` must be one of the requested formats and must declare ``NAME``.
- Values are coerced to the declared type; the command line and recipes give strings such as
  ``"true"``, ``"64"`` or ``"a;b"`` (a list of names).
- An unprefixed value that some of the targets declaring it do not accept is given to those that do:
  ``calibrator=nncf`` with tflite and openvino reaches openvino, and tflite (which calibrates with
  tensorflow or onnxruntime) keeps its default. Each target that leaves such a value is logged at info
  with its reason. It is an error only when no requested target that declares the name accepts the
  value; a prefixed value that its target does not accept is always an error.
- Every problem found in one call is reported in one BadInputError.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edge_sdk.errors import BadInputError

if TYPE_CHECKING:
    from edge_sdk.converters.targets import TargetFormat

log = logging.getLogger("edge_sdk.converters")

# What a value of each type is, said the same way in errors, help and docs.
_TYPE_TEXT = {
    bool: "true or false",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "names (a list, or one string with ';' between them)",
}


@dataclass(frozen=True)
class Option:
    """One option a target reads: its name, Python type (bool, int, float, str, or list of names), its
    default (None: the target chooses, as the help says), the values it allows, and a one-line help.
    ``check`` normalises a value of the right type (before ``choices`` are compared, so it may map
    aliases onto them), or raises ValueError saying what is wrong with it."""

    name: str
    type: type
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    check: Callable[[Any], Any] | None = None

    def __post_init__(self) -> None:
        if self.type not in _TYPE_TEXT:
            raise TypeError(f"option {self.name}: unsupported type {self.type!r}")

    def allowed(self) -> str:
        """What a value must be, for errors, help and docs."""
        return f"one of: {', '.join(self.choices)}" if self.choices else _TYPE_TEXT[self.type]

    def noting(self, note: str) -> Option:
        """This option with ``note`` added to its help: how a target that shares it reads it."""
        return dataclasses.replace(self, help=f"{self.help}; {note}")

    def default_value(self) -> Any:
        """The default as the option holds it (None stays None: the target chooses)."""
        # coerced, so a list default is a fresh list each time
        return None if self.default is None else _coerce(self.type, self.default)

    def accept(self, value: Any) -> Any:
        """``value`` as this option holds it; a ValueError says what it must be instead."""
        typed = _coerce(self.type, value)
        if self.check is not None:
            typed = self.check(typed)
        if self.choices and typed not in self.choices:
            raise ValueError(f"is not one of: {', '.join(self.choices)}")
        return typed


@dataclass(frozen=True)
class Conflict:
    """Settings a target cannot take together (every one of ``settings`` given or defaulted at once),
    and what to do instead."""

    settings: Mapping[str, Any]
    advice: str


def declare(*options: Option) -> dict[str, Option]:
    """A target's options by name, in the order given (help and docs list them so)."""
    named = {o.name: o for o in options}
    if len(named) != len(options):
        raise ValueError(f"an option is declared twice: {[o.name for o in options]}")
    return named


def _coerce(kind: type, value: Any) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
    elif kind in (int, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool) and kind(value) == value:
            return kind(value)
        if isinstance(value, str):
            try:
                return kind(value)
            except ValueError:
                pass
    elif kind is list:
        if isinstance(value, str):
            return [n for n in value.split(";") if n]
        if isinstance(value, (list, tuple)) and all(isinstance(n, str) for n in value):
            return list(value)
    elif isinstance(value, str):
        return value
    raise ValueError(f"must be {_TYPE_TEXT[kind]}")


class _Refused(Exception):
    """A target does not take a value; the message names the target, option, value and why."""


def _take(target: TargetFormat, name: str, value: Any) -> Any:
    option = target.options[name]
    try:
        return option.accept(value)
    except (ValueError, BadInputError) as e:
        reason = str(e) if isinstance(e, ValueError) else f"is refused: {e}"
        raise _Refused(f"{target.name}: option {name}={value!r} {reason}") from None


def _registered() -> dict[str, TargetFormat]:
    """Every installed target by name, sorted: the order targets register in depends on imports."""
    from edge_sdk.converters.targets import TARGETS

    return dict(sorted(TARGETS))


def _unknown_name(name: str, targets: Iterable[TargetFormat]) -> str:
    targets = list(targets)
    known = sorted({n for t in targets for n in t.options})
    near = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean '{near[0]}'?)" if near else ""
    formats = ", ".join(t.name for t in targets)
    return f"unknown option '{name}'{hint} for {formats}; known: {', '.join(known) or 'none'}"


def _split(
    given: Mapping[str, Any], requested: Mapping[str, TargetFormat], problems: list[str]
) -> tuple[dict[str, Any], dict[tuple[str, str], Any]]:
    """Unprefixed options by name, and prefixed ones by (format, name), after checking both names."""
    plain: dict[str, Any] = {}
    prefixed: dict[tuple[str, str], Any] = {}
    registered = _registered()
    for key, value in given.items():
        fmt, dot, name = str(key).rpartition(".")
        if not dot:
            if any(name in t.options for t in requested.values()):
                plain[name] = value
            else:
                problems.append(_unknown_name(name, requested.values()))
        elif fmt not in registered:
            problems.append(f"option {key}: unknown target format '{fmt}'; known: {', '.join(registered)}")
        elif fmt not in requested:
            problems.append(
                f"option {key}: {fmt} is not among the requested formats ({', '.join(requested)})"
            )
        elif name not in requested[fmt].options:
            problems.append(_unknown_name(name, [requested[fmt]]))
        else:
            prefixed[(fmt, name)] = value
    return plain, prefixed


def _spread(
    name: str,
    value: Any,
    requested: Mapping[str, TargetFormat],
    chosen: dict[str, dict[str, Any]],
    problems: list[str],
) -> None:
    """Give an unprefixed value to each requested target that declares it, has no prefixed value for it,
    and accepts it; it is a problem only if every such target refuses it."""
    open_to = [t for t in requested.values() if name in t.options and name not in chosen[t.name]]
    if not open_to:
        log.info("option %s=%r applies to no target: each that takes it was given its own", name, value)
        return
    refusals: list[str] = []
    for target in open_to:
        try:
            chosen[target.name][name] = _take(target, name, value)
        except _Refused as e:
            refusals.append(str(e))
    if len(refusals) == len(open_to):
        problems.extend(refusals)
        return
    takers = ", ".join(t.name for t in open_to if name in chosen[t.name])
    for why in refusals:
        log.info("%s; that target keeps its own setting (the value goes to %s)", why, takers)


def _complete(target: TargetFormat, chosen: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    """The target's options in declaration order, defaults filled in, checked for conflicts."""
    resolved = {
        name: chosen[name] if name in chosen else option.default_value()
        for name, option in target.options.items()
    }
    for conflict in target.conflicts:
        if all(resolved.get(k) == v for k, v in conflict.settings.items()):
            settings = " and ".join(f"{k}={v!r}" for k, v in conflict.settings.items())
            problems.append(f"{target.name}: options {settings} do not go together: {conflict.advice}")
    return resolved


def resolve(targets: Iterable[TargetFormat], given: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Each target's options (format name → option name → value) for the call's ``given`` options,
    checked as the module docstring says; every problem is reported in one BadInputError."""
    requested = {t.name: t for t in targets}
    problems: list[str] = []
    plain, prefixed = _split(given, requested, problems)
    chosen: dict[str, dict[str, Any]] = {fmt: {} for fmt in requested}
    for (fmt, name), value in prefixed.items():
        try:
            chosen[fmt][name] = _take(requested[fmt], name, value)
        except _Refused as e:
            problems.append(str(e))
    for name, value in plain.items():
        _spread(name, value, requested, chosen, problems)
    resolved = {fmt: _complete(t, chosen[fmt], problems) for fmt, t in requested.items()}
    if len(problems) == 1:
        raise BadInputError(problems[0])
    if problems:
        raise BadInputError(f"{len(problems)} problems with the options:\n  " + "\n  ".join(problems))
    return resolved


def defaults(target: TargetFormat) -> dict[str, Any]:
    """The options ``target`` builds with when none are given."""
    return resolve([target], {})[target.name]


def check_names(given: Mapping[str, Any]) -> None:
    """Refuse option names (``NAME`` or ``FORMAT.NAME``) that no installed target declares, before the
    targets of a call are known (a recipe); values are checked by :func:`resolve`."""
    problems: list[str] = []
    _split(given, _registered(), problems)
    if problems:
        raise BadInputError("; ".join(problems))


def summary() -> str:
    """Every format's option names, for the command line's help."""
    return "; ".join(f"{fmt}: {', '.join(t.options)}" for fmt, t in _registered().items())


def option_table() -> str:
    """The markdown table of every format's options (docs/recipes.md holds it)."""
    rows = ["| format | option | value | default | what |", "|---|---|---|---|---|"]
    for fmt, target in _registered().items():
        for name, o in target.options.items():
            default = "chosen by the target" if o.default is None else f"`{_text(o.default_value())}`"
            rows.append(f"| {fmt} | `{name}` | {o.allowed()} | {default} | {o.help} |")
    return "\n".join(rows)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return ";".join(value) or "(none)"
    return str(value)
