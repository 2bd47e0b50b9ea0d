"""The error hierarchy: every error edge-sdk raises on purpose is an EdgeSDKError from edge_sdk.errors."""

from __future__ import annotations

import numpy as np

import edge_sdk
from edge_sdk.errors import BadInputError, EdgeSDKError, StageFailed
from edge_sdk.stages import Block, Frame


def test_stage_failed_lives_with_the_other_errors_and_keeps_its_old_homes() -> None:
    from edge_sdk.live import audio, stats

    assert issubclass(StageFailed, EdgeSDKError)
    assert edge_sdk.StageFailed is stats.StageFailed is audio.StageFailed is StageFailed
    assert dir(edge_sdk).count("StageFailed") == 1


def test_stage_failed_says_where_and_keeps_the_cause_exit_code() -> None:
    block = Block(np.zeros(320, np.float32), 16000, 0.5, 25)
    e = StageFailed("vad", block, BadInputError("8000 Hz only"), summary="figures so far")
    assert (e.stage, e.summary, e.exit_code) == ("vad", "figures so far", 2)
    assert str(e) == "stage vad failed on block 25 (stream time 0.500 s): BadInputError: 8000 Hz only"
    frame = Frame(np.zeros((2, 2, 3), np.uint8), 1.25, 30)
    e = StageFailed("denoise", frame, ValueError("bad pixel"), summary=None)
    assert e.exit_code == 1
    assert str(e) == "stage denoise failed on frame 30 (stream time 1.250 s): ValueError: bad pixel"
