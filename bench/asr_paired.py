"""Is one recogniser really ahead of another? The paired difference of pooled WER, with a bootstrap interval.

Reads the hypotheses that ``bench/asr_quality.py --json`` writes, rescoring each utterance against its
reference with the benchmark's own normalisation, and compares two systems on one condition. The interval
resamples whole recordings: Asterisk's WAV and G.722 copies of one prompt are one recording, so they are
drawn together.

    .venv/bin/python bench/asr_paired.py docs/asr-quality.json \\
        "edge-sdk tiny.en onnx int8-dynamic" "faster-whisper tiny.en int8"
"""

from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path

import asr_data
import numpy as np
from paired_difference import group_draws

from edge_sdk.asr.text import wer


@functools.cache
def _utterances(name: str) -> list[asr_data.Utterance]:
    """A test set's utterances, read once per process (a report compares every system with one anchor)."""
    return asr_data.load(name)


def per_utterance(result: dict, condition: str) -> dict[tuple[str, str], tuple[int, int]]:
    """(set, utterance id) → (errors, reference words) of one system on one condition."""
    out = {}
    for row in result["rows"]:
        if row["condition"] != condition:
            continue
        utterances = _utterances(row["set"])[: len(row["hyps"])]
        for u, hyp in zip(utterances, row["hyps"], strict=True):
            w = wer([u.text], [hyp], normalizer=u.normalize)
            out[(row["set"], u.id)] = (w.errors, w.ref_words)
    return out


def bootstrap(a: np.ndarray, b: np.ndarray, words: np.ndarray, groups: np.ndarray, n: int = 2000):
    """Pooled WER of ``a`` minus ``b`` over ``n`` resamplings of whole groups, with replacement."""
    return np.array([(a[p].sum() - b[p].sum()) / words[p].sum() for p in group_draws(groups, n)])


def compare(a: dict, b: dict, condition: str = "clean") -> dict | None:
    """Pooled WER of system result ``a`` minus ``b`` on the utterances both were scored on, with its 95 %
    bootstrap interval; None when they share none."""
    sa, sb = per_utterance(a, condition), per_utterance(b, condition)
    keys = sorted(set(sa) & set(sb))
    if not keys:
        return None
    ea, eb = np.array([sa[k][0] for k in keys]), np.array([sb[k][0] for k in keys])
    words = np.array([sa[k][1] for k in keys])
    # ids are "SET/NAME"; the two Asterisk codings of one prompt share NAME
    groups = np.array(["asterisk/" + i.split("/", 1)[1] if s.startswith("asterisk") else i for s, i in keys])
    lo, hi = np.percentile(bootstrap(ea, eb, words, groups), [2.5, 97.5])
    return {
        "difference": float((ea.sum() - eb.sum()) / words.sum()),
        "low": float(lo),
        "high": float(hi),
        "errors": (int(ea.sum()), int(eb.sum())),
        "words": int(words.sum()),
        "recordings": len(np.unique(groups)),
        "fewer": int((ea < eb).sum()),
        "more": int((ea > eb).sum()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results", type=Path, help="the JSON that bench/asr_quality.py --json wrote")
    ap.add_argument("a", help="system name as in the table")
    ap.add_argument("b", help="the system to compare against")
    ap.add_argument("--condition", default="clean", help="clean (default), or e.g. 'keyboard 10 dB'")
    args = ap.parse_args()
    systems = {r["system"]: r for r in json.loads(args.results.read_text())}
    for name in (args.a, args.b):
        if name not in systems:
            ap.error(f"no system {name!r} in {args.results}; it has: {', '.join(systems)}")
    c = compare(systems[args.a], systems[args.b], args.condition)
    if c is None:
        ap.error(f"the two systems share no utterance on condition {args.condition!r}")
    print(
        f"{args.a} minus {args.b}, {args.condition}: pooled WER {100 * c['difference']:+.2f} points "
        f"[{100 * c['low']:+.2f}, {100 * c['high']:+.2f}] (95 %, 2000 draws of {c['recordings']} "
        f"recordings); {c['errors'][0]} against {c['errors'][1]} errors in {c['words']} words; "
        f"utterances where {args.a} makes fewer errors {c['fewer']}, more {c['more']}"
    )


if __name__ == "__main__":
    main()
