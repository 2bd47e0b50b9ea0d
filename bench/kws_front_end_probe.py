"""Quality probe for the KWS front ends (mfcc, speech-embedding, whisper-encoder): the same
logistic-regression head on each one's frames of synthesised digit clips (training voices) in 1 s windows,
scored on held-out synthetic voices (what the whisper window and pooling are chosen by, with ``--sweep``) and
on Asterisk's real recordings of the digits (reported only, never used to choose).

    nice -n 10 .venv/bin/python bench/kws_front_end_probe.py [--per-word 40] [--threads 1] [--sweep]
    nice -n 10 .venv/bin/python bench/kws_front_end_probe.py --timing

``--timing`` instead measures CPU time per second of audio of each streaming front end on one thread (and,
with ``--sweep``, of the whisper encoder per window length): 20 s of noise pushed in 1280-sample blocks,
best of 3.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from edge_sdk.audio.features import KwsFeatureConfig
from edge_sdk.audio.speech_embedding import SpeechEmbeddingConfig
from edge_sdk.audio.whisper_encoder import WhisperEncoderConfig
from edge_sdk.train import kws_data
from edge_sdk.train.kws_running import DIGITS

SR = 16000


def place(clips: list, rng: np.random.Generator | None) -> tuple[np.ndarray, np.ndarray]:
    """Each clip in a 1 s window: centred at peak 0.5 (evaluation) or shifted up to 0.1 s and at a random
    peak 0.2-0.9 (training); a -60 dBFS noise bed either way."""
    labels = list(DIGITS) + [kws_data.UNKNOWN]
    noise = np.random.default_rng(99)
    out = np.zeros((len(clips), SR), np.float32)
    for i, c in enumerate(clips):
        a = c.audio[:SR].astype(np.float32)
        a = a / max(float(np.abs(a).max()), 1e-6)
        start = (SR - len(a)) // 2
        if rng is not None:
            start = int(np.clip(start + rng.integers(-1600, 1601), 0, SR - len(a)))
            a = a * rng.uniform(0.2, 0.9)
        else:
            a = a * 0.5
        out[i, start : start + len(a)] = a
        out[i] += 1e-3 * noise.standard_normal(SR).astype(np.float32)
    return out, np.array([labels.index(c.label) for c in clips])


def head(
    train: np.ndarray, y: np.ndarray, tests: list[np.ndarray], reduce: str
) -> tuple[list[np.ndarray], float]:
    """A logistic regression on frames reduced per clip (flattened or averaged): predictions per test set."""

    def r(f: np.ndarray) -> np.ndarray:
        return f.reshape(len(f), -1) if reduce == "flat" else f.mean(axis=1)

    sc = StandardScaler().fit(r(train))
    lr = LogisticRegression(C=0.05, max_iter=3000).fit(sc.transform(r(train)), y)
    return [lr.predict(sc.transform(r(t))) for t in tests], lr.score(sc.transform(r(train)), y)


def timing(cache_dir: str | None, sweep: bool) -> None:
    """CPU ms per second of audio, streaming, one thread, per front end (and whisper window length)."""
    x = (0.1 * np.random.default_rng(0).standard_normal(SR * 20)).astype(np.float32)
    configs: list[tuple[str, object]] = [
        ("mfcc", KwsFeatureConfig()),
        ("speech-embedding", SpeechEmbeddingConfig()),
        ("whisper-encoder W=50", WhisperEncoderConfig()),
    ]
    if sweep:
        configs += [
            (f"whisper-encoder W={w}", WhisperEncoderConfig(window_frames=w)) for w in (32, 64, 96, 100)
        ]
    for name, cfg in configs:
        stream = cfg.stream(threads=1, cache_dir=cache_dir)
        runs = []
        for _ in range(4):  # the first is a warm-up
            stream.reset()
            t = time.process_time()
            for i in range(0, len(x), 1280):
                stream.push(x[i : i + 1280])
            runs.append((time.process_time() - t) * 1000 / (len(x) / SR))
        print(f"{name:22} (frame of {cfg.win / SR:.3f} s): {min(runs[1:]):6.1f} ms CPU per s of audio")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-word", type=int, default=40)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--timing", action="store_true", help="measure CPU cost instead of quality")
    ap.add_argument("--sweep", action="store_true", help="also whisper window lengths and poolings")
    args = ap.parse_args()
    if args.timing:
        timing(args.cache_dir, args.sweep)
        return
    t0 = time.time()
    train_clips = kws_data.synthesize_words(DIGITS, "train", args.per_word, seed=0)
    val_clips = kws_data.synthesize_words(DIGITS, "test", max(5, args.per_word // 3), seed=1)
    real_clips = kws_data.real_digit_clips(DIGITS)
    xtr, ytr = place(train_clips, np.random.default_rng(0))
    xva, yva = place(val_clips, None)
    xre, yre = place(real_clips, None)
    print(
        f"{len(xtr)} training clips, {len(xva)} held-out synthetic, {len(xre)} real "
        f"(synthesis {time.time() - t0:.0f} s)"
    )
    configs: list[tuple[str, object]] = [
        ("mfcc", KwsFeatureConfig()),
        ("speech-embedding", SpeechEmbeddingConfig(clip_seconds=1.0)),
        ("whisper W=50 mean", WhisperEncoderConfig()),
    ]
    for w in (32, 50, 64, 96) if args.sweep else ():
        for pool in ("mean", "max", "last"):
            configs.append((f"whisper W={w} {pool}", WhisperEncoderConfig(window_frames=w, pool=pool)))
    print(f"{'front end':24} {'frames':>6} {'head':>5} {'train':>6} {'held-out TTS':>12} {'real digits':>11}")
    for name, cfg in configs:
        feats = [cfg.features(x, threads=args.threads, cache_dir=args.cache_dir) for x in (xtr, xva, xre)]
        for reduce in ("flat", "mean"):
            (pva, pre), fit = head(feats[0], ytr, feats[1:], reduce)
            print(
                f"{name:24} {feats[0].shape[1]:6d} {reduce:>5} {fit:6.3f} {np.mean(pva == yva):12.3f} "
                f"{np.mean(pre == yre):11.3f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
