"""Streaming stages of the capture loops, and the registry they file themselves in.

A stage module registers a factory under ``KIND.NAME`` (``denoise.nsnet2``, ``vad.silero``); the CLI's
choices for ``--denoise`` and ``--vad`` are read from here, so a new stage is one new module.
"""

from __future__ import annotations

from collections.abc import Callable

from edge_sdk.registry import Registry
from edge_sdk.stages.base import (
    Block,
    Event,
    Frame,
    KeywordDetected,
    SpeechSegment,
    SpeechStart,
    Stage,
    Transcript,
)

stages: Registry[Callable[..., Stage]] = Registry("stage", "edge_sdk.stages")


def names_of(kind: str) -> list[str]:
    """The registered names of one kind of stage: ``names_of("denoise")`` → ``["nsnet2", "tiny"]``."""
    return [n.split(".", 1)[1] for n in stages.names() if n.startswith(kind + ".")]


def make(kind: str, name: str, **options: object) -> Stage:
    """Build the stage ``KIND.NAME`` with its options; an unknown name lists the known ones."""
    return stages.get(f"{kind}.{name}")(**options)


__all__ = [
    "Block",
    "Frame",
    "Event",
    "KeywordDetected",
    "SpeechSegment",
    "SpeechStart",
    "Stage",
    "Transcript",
    "make",
    "names_of",
    "stages",
]
