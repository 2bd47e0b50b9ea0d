"""The input front-end of a graph: ops computed from the model's inputs (and constants) alone, before any
weighted layer, such as an in-graph mean normalisation. Static int8 keeps them float: quantising them
quantises the raw input per tensor, and features whose parts differ in scale (MFCC c0 and the rest) lose
the small parts. One walk serves every format; each target describes its graph as plain tuples."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence


def front_end(
    ops: Iterable[tuple[str, str, Sequence[Hashable], Sequence[Hashable]]],
    inputs: Iterable[Hashable],
    constants: Iterable[Hashable],
    weighted: Iterable[str],
    unlisted: Iterable[str] = (),
) -> list[str]:
    """Names of the front-end ops among ``ops`` (``(name, kind, input values, output values)`` in graph
    order), given the values that are model ``inputs`` and ``constants`` and the ``weighted`` op kinds.
    An op that also takes a weighted layer's output (a residual add of the input) is not front-end, nor is
    anything after it. Kinds in ``unlisted`` (shape arithmetic) are walked through but not returned."""
    fed = set(inputs)  # values that depend on an input, and on inputs and constants only
    pre = fed | set(constants)  # values that depend on inputs and constants only
    weighted, unlisted = set(weighted), set(unlisted)
    front = []
    for name, kind, ins, outs in ops:
        if kind in weighted or not all(v in pre for v in ins):
            continue
        pre.update(outs)
        if any(v in fed for v in ins):
            fed.update(outs)
            if kind not in unlisted:
                front.append(name)
    return front
