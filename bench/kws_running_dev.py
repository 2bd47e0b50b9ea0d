"""Keyword spotters compared on synthesised running speech: the development set for choosing a model.

Utterances by *training* voices (another seed than any training run's: ``kws_running.synthesize_running``
with ``--seed``), most saying one keyword inside a sentence, each heard clean and in noise, streamed as the
``kws.onnx`` stage hears them (front-end frames once, one window per hop, posteriors smoothed over three
windows). Per model, at its own thresholds and at fixed ones: the share of keywords whose smoothed
posterior reaches the threshold while a window holds them whole (recall), and the windows without any part
of a keyword in which some keyword reaches its threshold, per hour (each false accept needs one). Real
recordings are never used here: they are what ``bench/kws_quality.py`` reports.

    nice -n 10 .venv/bin/python bench/kws_running_dev.py MODEL.onnx [MODEL.onnx ...] [--utterances 600]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.stages.kws import hop_frames, read_kws_metadata
from edge_sdk.train import kws_data, kws_running
from edge_sdk.train.kws_data import AugmentConfig
from edge_sdk.train.kws_thresholds import smoothed_posteriors

SR = 16000


def score(
    model: Path, utterances: list[kws_running.Utterance], seed: int, fixed: tuple[float, ...]
) -> dict[str, Any]:
    """Recall and negative windows over threshold per hour, at the model's thresholds and at ``fixed``."""
    info = read_kws_metadata(model)
    labels, cfg = list(info.labels), info.features
    step, negative = hop_frames(cfg), labels.index(kws_data.UNKNOWN)
    noise = kws_data.make_noise(10.0, seed)
    rng = np.random.default_rng(seed)
    keyword_cols = [i for i, lab in enumerate(labels) if not lab.startswith("_")]
    own = np.array([info.thresholds.get(labels[i], 0.5) for i in keyword_cols])
    points = {"own": own, **{f"{t:g}": np.full(len(keyword_cols), t) for t in fixed}}
    hits = {p: [] for p in points}
    over = dict.fromkeys(points, 0)
    neg_windows = 0
    pad = SR // 2
    for u in utterances:
        for aug in (AugmentConfig.none(), AugmentConfig(p_reverb=0.0, p_telephone=0.0)):
            audio = kws_data.degrade(np.pad(u.audio, (pad, pad)), rng, noise, aug)
            _, smooth = smoothed_posteriors(model, audio)
            frames = (len(smooth) - 1) * step + cfg.n_frames()
            span = None if u.span is None else (u.span[0] + pad, u.span[1] + pad)
            k = labels.index(u.keyword) if u.keyword else negative
            y = kws_running.window_labels(frames, cfg, span, k, negative)[::step][: len(smooth)]
            neg = smooth[y == negative][:, keyword_cols]
            neg_windows += len(neg)
            for p, th in points.items():
                over[p] += int(np.sum((neg >= th).any(axis=1)))
                if u.keyword:
                    col = keyword_cols.index(k)
                    hits[p].append(bool(np.any(smooth[y == k, k] >= th[col])))
    hours = neg_windows * step * cfg.hop / SR / 3600
    return {
        "model": str(model),
        "keywords": len(hits["own"]),
        "negative_hours": round(hours, 3),
        **{
            p: {"recall": round(float(np.mean(hits[p])), 3), "windows_per_hour": round(over[p] / hours, 1)}
            for p in points
        },
    }


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", type=Path)
    ap.add_argument("--utterances", type=int, default=600)
    ap.add_argument("--seed", type=int, default=77, help="not a seed any training run used")
    ap.add_argument("--thresholds", default="0.5,0.7,0.9", help="fixed thresholds to compare at")
    args = ap.parse_args(argv)
    fixed = tuple(float(t) for t in args.thresholds.split(","))
    out, made = [], {}
    for model in args.models:
        words = tuple(read_kws_metadata(model).keywords)
        if words not in made:
            made[words] = kws_running.synthesize_running(
                list(words), "train", args.utterances, seed=args.seed
            )
        out.append(score(model, made[words], args.seed, fixed))
        print(json.dumps(out[-1]))
    return out


if __name__ == "__main__":
    main()
