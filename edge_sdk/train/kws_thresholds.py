"""Per-word thresholds for live keyword spotting, tuned on running speech rather than on isolated clips.

The recipe's first thresholds keep false accepts under 1 % of held-out *clips*. A live spotter classifies
ten windows a second, so 1 % of windows is hundreds of false accepts an hour. Here each word's threshold
is the lowest at which running speech without keywords (prose and strings of other words spoken by
*training* voices, in noise) has at most ``target`` windows an hour whose smoothed posterior reaches
it: every false accept needs at least one such window, so this bounds the rate from above. The thresholds
go into the model's ``edge_sdk.kws.thresholds`` metadata, where the ``kws.onnx`` stage reads them.

    python -m edge_sdk.train.kws_thresholds --model runs/kws/model.onnx --out runs/kws/tuned.onnx
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.audio.features import kws_features
from edge_sdk.audio.mix import rms
from edge_sdk.train import kws_data, kws_running, speech_data

log = logging.getLogger("edge_sdk.train.kws_thresholds")

SR = speech_data.SAMPLE_RATE
META_THRESHOLDS = "edge_sdk.kws.thresholds"


def negative_speech(
    words: list[str], minutes: float, seed: int = 0, engines: tuple[str, ...] = kws_data.ENGINES
) -> np.ndarray:
    """About ``minutes`` of running speech with none of ``words``: carriers of ``kws_running`` (pieces
    of prose sentences and strings of other words, no keyword, digit or homophone), each spoken as one
    utterance by a random training voice, 0.2-1.0 s apart, in a noise bank's noise at 5-30 dB SNR (per
    utterance). Deterministic for a seed."""
    rng = np.random.default_rng([seed, 11])
    banned = kws_running.banned_words(words)
    others = [w for w in kws_data.unknown_words(words) if w not in banned]
    sentences = kws_running.prose_sentences()
    noise = kws_data.make_noise(10.0, seed + 17)
    kinds = sorted(noise)
    pieces, total = [], 0
    while total < minutes * 60 * SR:
        (voice,) = kws_data.draw_voices(1, "train", rng, engines)
        text = " ".join(kws_running.carrier(rng, sentences, others, banned))
        if not text:
            continue
        speech = kws_data.trim_speech(speech_data.synthesize(text, **voice.kwargs()))
        if not len(speech):
            continue
        clip = np.concatenate([speech, np.zeros(int(rng.uniform(0.2, 1.0) * SR), np.float32)])
        bank = noise[kinds[int(rng.integers(len(kinds)))]]
        start = int(rng.integers(0, max(1, len(bank) - len(clip))))
        n = np.resize(bank[start:], len(clip))
        scale = rms(speech) / (rms(n) * 10 ** (float(rng.uniform(5, 30)) / 20) + 1e-12)
        pieces.append(clip + scale * n)
        total += len(clip)
    x = np.concatenate(pieces).astype(np.float32)
    return (x * (0.3 / (np.max(np.abs(x)) + 1e-9))).astype(np.float32)


def smoothed_posteriors(
    model: str | os.PathLike[str], audio: np.ndarray, hop: float | None = None, smoothing: int = 3
) -> tuple[list[str], np.ndarray]:
    """The model's labels and its posteriors for every window of ``audio`` the ``kws.onnx`` stage would
    classify (one each ``hop`` seconds; default the stage's), averaged over the last ``smoothing``
    windows as the stage does: [windows, labels]. The front end's frames are computed once over the
    whole audio and shared by the overlapping windows, as on a live stream."""
    from edge_sdk.stages.kws import hop_frames, read_kws_metadata, softmax
    from edge_sdk.train.kws import onnx_logits

    info = read_kws_metadata(model)
    cfg = info.features
    step, n = hop_frames(cfg, hop), cfg.n_frames()
    frames = kws_features(np.asarray(audio, np.float32), cfg)
    ends = np.arange(n, len(frames) + 1, step)
    feats = (
        np.stack([frames[e - n : e] for e in ends]) if len(ends) else np.zeros((0, n, cfg.dims()), np.float32)
    )
    p = softmax(onnx_logits(Path(model), feats[:, None]))
    kernel = np.ones(smoothing) / smoothing
    smooth = np.stack([np.convolve(p[:, j], kernel)[: len(p)] for j in range(p.shape[1])], axis=1)
    # the first windows average fewer than `smoothing` posteriors, as the stage's history does
    smooth[: smoothing - 1] *= smoothing / np.arange(1, smoothing)[:, None]
    return list(info.labels), smooth


def tune(
    labels: list[str], smooth: np.ndarray, hours: float, target_per_hour: float = 1.0, floor: float = 0.5
) -> dict[str, float]:
    """Per keyword, the lowest threshold (at least ``floor``, at most 0.999) with at most
    ``target_per_hour`` windows an hour at or above it in ``smooth``."""
    allowed = int(np.floor(target_per_hour * hours))
    out = {}
    for j, word in enumerate(labels):
        if word.startswith("_"):
            continue
        scores = np.sort(smooth[:, j])[::-1]
        t = float(scores[allowed]) + 1e-4 if allowed < len(scores) else floor
        out[word] = round(min(0.999, max(floor, t)), 4)
    return out


def write_thresholds(
    model: str | os.PathLike[str], thresholds: dict[str, float], out: str | os.PathLike[str]
) -> Path:
    """A copy of ``model`` with ``thresholds`` as its ``edge_sdk.kws.thresholds`` metadata, written
    atomically."""
    import onnx

    from edge_sdk.integrity import atomic_write

    m = onnx.load(str(model))
    kept = [(p.key, p.value) for p in m.metadata_props if p.key != META_THRESHOLDS]
    del m.metadata_props[:]
    for k, v in [*kept, (META_THRESHOLDS, json.dumps(thresholds))]:
        m.metadata_props.add(key=k, value=v)
    out = Path(out)
    atomic_write(out, m.SerializeToString())
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Command line: tune a model's thresholds on synthesised running speech and write the tuned copy."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="a KWS ONNX model (the recipe's model.onnx)")
    ap.add_argument("--out", required=True, help="where to write the copy with tuned thresholds")
    ap.add_argument("--minutes", type=float, default=30.0, help="running speech to tune on")
    ap.add_argument("--target", type=float, default=1.0, help="windows an hour allowed over a threshold")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from edge_sdk.stages.kws import read_kws_metadata

    words = list(read_kws_metadata(args.model).keywords)
    audio = negative_speech(words, args.minutes, args.seed)
    labels, smooth = smoothed_posteriors(args.model, audio)
    hours = len(audio) / SR / 3600
    thresholds = tune(labels, smooth, hours, args.target)
    write_thresholds(args.model, thresholds, args.out)
    report = {"hours": round(hours, 3), "target_per_hour": args.target, "thresholds": thresholds}
    log.info(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
