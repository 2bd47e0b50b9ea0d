"""bench/asr_paired.py: the paired WER difference of two recognisers is rescored per utterance from their
hypotheses with the benchmark's normalisation, and its interval resamples whole recordings."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
pytestmark = pytest.mark.skipif(
    not Path("/usr/share/asterisk/sounds/en/digits/7.g722").is_file(), reason="needs Asterisk's G.722 prompts"
)


@pytest.fixture(scope="module")
def ap(bench_module: Callable[..., ModuleType]) -> ModuleType:
    return bench_module("asr_paired", "soxr", "av")


def results(sets: dict[str, list[str]], name: str) -> dict:
    return {
        "system": name,
        "rows": [{"condition": "clean", "set": s, "hyps": hyps} for s, hyps in sets.items()],
    }


def test_a_dropped_prompt_costs_its_words_in_both_codings_drawn_together(
    ap: ModuleType, tmp_path: Path
) -> None:
    ad = ap.asr_data
    sets = {s: [u.text for u in ad.load(s)[:3]] for s in ("asterisk-wav", "asterisk-g722")}
    right = results(sets, "right")
    wrong_sets = {s: ["", *hyps[1:]] for s, hyps in sets.items()}  # the first prompt unheard in both
    wrong = results(wrong_sets, "wrong")
    ra, rw = ap.per_utterance(right, "clean"), ap.per_utterance(wrong, "clean")
    assert len(ra) == 6 and all(e == 0 for e, _ in ra.values())
    first = ad.load("asterisk-wav")[0]
    lost = len(first.words())
    assert sum(e for e, _ in rw.values()) == 2 * lost

    path = tmp_path / "r.json"
    path.write_text(json.dumps([right, wrong]))
    out = subprocess.run(
        [sys.executable, str(BENCH / "asr_paired.py"), str(path), "wrong", "right"],
        capture_output=True, text=True, check=True, cwd=BENCH,
    ).stdout  # fmt: skip
    words = sum(w for _, w in ra.values())
    assert f"{2 * lost} against 0 errors in {words} words" in out
    assert "draws of 3 recordings" in out  # the two codings of a prompt are one recording
    assert f"{100 * 2 * lost / words:+.2f} points" in out


def test_the_interval_of_equal_systems_is_zero(ap: ModuleType) -> None:
    a, words = np.array([1, 0, 2, 0]), np.array([5, 4, 6, 3])
    groups = np.array(["x", "x", "y", "z"])
    assert np.all(ap.bootstrap(a, a, words, groups, n=50) == 0.0)
    more = ap.bootstrap(a + 1, a, words, groups, n=50)
    assert np.all(more > 0)
