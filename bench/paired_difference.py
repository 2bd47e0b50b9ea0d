"""Is one denoiser really ahead of another? The paired difference of a metric, with a bootstrap interval.

Reads the per-mixture scores that ``bench/audio_quality.py --json`` prints and compares two methods on the
mixtures both were scored on. The interval resamples whole utterances (each is mixed with every noise and
SNR, so its mixtures are not independent):

    .venv/bin/python bench/audio_quality.py --json > scores.json
    .venv/bin/python bench/paired_difference.py scores.json "edge-sdk tiny denoiser" "RNNoise 0.2 (pyrnnoise)"
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import numpy as np


def paired(
    scores: list[dict], a: str, b: str, metric: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-mixture ``metric`` of ``a`` and ``b`` where both have it, and each mixture's clip and corpus."""
    by: dict[tuple, dict[str, float]] = defaultdict(dict)
    corpus = {row["clip"]: row["corpus"] for row in scores}
    for row in scores:
        value = row.get(metric)
        if value is not None and np.isfinite(value):
            by[(row["clip"], row["noise"], row["snr"])][row["method"]] = float(value)
    keys = sorted(k for k, v in by.items() if a in v and b in v)
    if not keys:
        raise SystemExit(f"no mixture has {metric} for both {a!r} and {b!r}")
    return (
        np.array([by[k][a] for k in keys]),
        np.array([by[k][b] for k in keys]),
        np.array([k[0] for k in keys]),
        np.array([corpus[k[0]] for k in keys]),
    )


def group_draws(groups: np.ndarray, n: int = 2000, seed: int = 0) -> Iterator[np.ndarray]:
    """``n`` bootstrap draws of row indices: whole groups (all rows of one utterance) resampled with
    replacement, as many groups as there are."""
    rng = np.random.default_rng(seed)
    names = np.unique(groups)
    rows = [np.flatnonzero(groups == g) for g in names]
    for _ in range(n):
        yield np.concatenate([rows[i] for i in rng.integers(len(names), size=len(names))])


def bootstrap(diff: np.ndarray, clips: np.ndarray, n: int = 2000, seed: int = 0) -> np.ndarray:
    """Means of ``diff`` over ``n`` resamplings of whole clips, with replacement."""
    return np.array([diff[pick].mean() for pick in group_draws(clips, n, seed)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("scores", type=Path, help="the JSON that bench/audio_quality.py --json printed")
    ap.add_argument("a", help="method name as in the table")
    ap.add_argument("b", help="the method to compare against")
    ap.add_argument("--metrics", nargs="+", default=["pesq", "si_sdr", "stoi"])
    args = ap.parse_args()
    scores = json.loads(args.scores.read_text())["scores"]
    print(f"{args.a} minus {args.b}; 95 % interval from resampling utterances (2000 draws)")
    for metric in args.metrics:
        a, b, clips, corpora = paired(scores, args.a, args.b, metric)
        diff = a - b
        means = bootstrap(diff, clips)
        lo, hi = np.percentile(means, [2.5, 97.5])
        per = ", ".join(f"{c} {diff[corpora == c].mean():+.3f}" for c in sorted(set(corpora)))
        print(
            f"  {metric:7s} {diff.mean():+.4f}  [{lo:+.4f}, {hi:+.4f}]  ahead in {np.mean(means > 0):.0%}"
            f" of draws; {len(diff)} mixtures, {len(np.unique(clips))} utterances; per corpus: {per}"
        )


if __name__ == "__main__":
    main()
