"""Keyword spotter quality: held-out synthetic voices, every real keyword recording here streamed through
the spotter clean and in real recorded noise, false accepts per hour on real keyword-free speech in real
noise, detection latency, the loop's CPU cost, and int8 variants per format.

    nice -n 10 .venv/bin/python bench/kws_quality.py [--model zoo:commands] [--quick] [--jobs N]
        [--json PATH] [--out docs/kws-quality.md]

The synthetic sets are made with ``edge_sdk.train.kws_data`` from fixed seeds, by the voices ``voice_split``
calls ``"test"`` only (never heard in training). The real recordings (``kws_real``: Asterisk's prompts in
two codings, pocketsphinx's test recordings) are scored by their transcripts: each is streamed whole
through the ``kws.onnx`` stage (``edge_sdk.stages.kws.KeywordSpotter``) block by block, as the capture
loop does (``kws_stream``), and the words it fires are aligned with the keywords the transcript says.
Real noise is the recorded kinds of ``speech_corpus.NoiseBank``. The model is read only through its
metadata, its features only through ``kws_features``/``batch_features``, so any front end is measured the
same way. The int8 variants come from ``edge_sdk.converters.convert`` and run through
``edge_sdk.runtimes`` Sessions on one thread. See ``kws_quality_report.py`` for the document.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kws_real
import kws_stream
import numpy as np
import speech_corpus
from kws_cost import loop_cost
from kws_real import banned_words, is_keyword_free
from kws_stream import run_stream

from edge_sdk.audio.features import KwsFeatureConfig, kws_features
from edge_sdk.audio.mix import rms
from edge_sdk.devices.cpu import this_cpu
from edge_sdk.stages import make as make_stage
from edge_sdk.stages.chain import keyword_spotter
from edge_sdk.stages.kws import KeywordSpotter, KwsModelInfo, detection_latency
from edge_sdk.train import kws_data, speech_data
from edge_sdk.train.kws import batch_features
from edge_sdk.train.kws_data import SR, AugmentConfig, Clip

SEED = 2026
REAL_SNRS = (20, 10, 5, 0)
FORMATS = ("onnx", "openvino", "tflite")
TARGETS = {
    "accuracy": 0.95,
    "real": 0.90,  # real human digits, clean
    "real_noisy": 0.80,  # real human digits at 0-20 dB SNR in real noise
    "fa_per_hour": 2.0,
    "fa_hours": 2.0,  # at least this much real keyword-free audio heard
    "latency": 0.300,
    "int8_drop": 0.01,
}


@dataclass
class Settings:
    """How big each measurement is; ``quick()`` is a smoke run."""

    per_word: int = 50  # held-out synthetic clips per keyword
    calib_per_word: int = 24  # training-voice clips per keyword for int8 calibration (each clean and noisy)
    harvard_voices: int = 10  # held-out voices per Harvard sentence (synthetic false-accept speech)
    asterisk_limit: int | None = None  # at most this many Asterisk prompts with keywords, and without
    latency_per_word: int = 5  # keywords per word in the latency stream
    real_positions: int = 3  # placements of each clean real digit recording in its window
    latency_runs: int = 300  # timed single-window inferences per format
    noise_seconds: float = 20.0
    formats: tuple[str, ...] = FORMATS
    real_snrs: tuple[float, ...] = REAL_SNRS  # real keyword recordings, in each real noise kind
    fa_snrs: tuple[float, ...] = REAL_SNRS  # real keyword-free speech, in each real noise kind
    fa_synthetic_snrs: tuple[float, ...] = (10,)  # the synthetic sentences, on top
    chunk_seconds: float = 60.0  # keyword-free recordings are streamed in runs of about this long
    cost_seconds: float = 120.0  # real audio the loop's CPU cost is measured on
    jobs: int = 1  # worker processes for the streaming measurements
    verify: str | None = None  # a recogniser confirming the spotter's proposals in every stream (kws.verify)

    @classmethod
    def quick(cls) -> Settings:
        return cls(
            per_word=4,
            calib_per_word=2,
            harvard_voices=1,
            asterisk_limit=12,
            latency_per_word=1,
            real_positions=1,
            latency_runs=30,
            noise_seconds=4.0,
            real_snrs=(10,),
            fa_snrs=(10,),
            cost_seconds=10.0,
        )


# -- data --------------------------------------------------------------------------------------------


def heldout_clips(words: list[str], s: Settings, seed: int) -> tuple[list[Clip], dict[str, np.ndarray]]:
    """Held-out-voice keyword and unknown-word clips, silence placeholders, and a test noise bank (the
    recipe's own functions, another seed than training)."""
    clips = kws_data.synthesize_words(words, "test", s.per_word, seed=seed)
    clips += kws_data.silence_clips(max(s.per_word // 2, len(clips) // 10), "silence-test")
    noise = kws_data.make_noise(s.noise_seconds, seed + 1000, clips)
    return clips, noise


def features_of(
    clips: list[Clip], labels: list[str], noise: dict, aug: AugmentConfig, seed: int, cfg, denoiser=None
):
    """``[n,1,frames,dims]`` features of the clips placed (and augmented, and with ``aug.p_denoise`` and a
    ``denoiser``, denoised) in windows of the model's length, and labels."""
    rng = np.random.default_rng([seed, 99])
    x = batch_features(clips, rng, noise, aug, cfg, denoiser)
    return x, np.array([labels.index(c.label) for c in clips])


def real_digit_windows(
    words: list[str], noise: dict[str, np.ndarray], s: Settings, seed: int, cfg: KwsFeatureConfig
) -> dict[str, Any]:
    """Asterisk's digit recordings (8 kHz WAV resampled, and G.722) in the model's windows: clean (each at
    ``real_positions`` seeded offsets) and mixed with each kind of ``noise`` (the real recorded kinds) at
    each of ``s.real_snrs``."""
    clips = kws_data.real_digit_clips(words)
    rng = np.random.default_rng([seed, 5])
    out: dict[str, Any] = {"recordings": [c.source for c in clips], "sets": {}}
    if not clips:
        return out
    kinds = sorted(noise)
    length = cfg.clip_samples  # the window the model hears (1 s for MFCC, longer for an embedding)

    def window(c: Clip) -> np.ndarray:
        w = np.zeros(length, np.float32)
        x = c.audio[:length]
        start = int(rng.integers(0, length - len(x) + 1))
        w[start : start + len(x)] = x
        return w

    def scale(x: np.ndarray) -> np.ndarray:
        return (x * (0.5 / (np.max(np.abs(x)) + 1e-12))).astype(np.float32)  # -6 dBFS peak

    for fmt in ("wav", "g722"):
        chosen = [c for c in clips if c.source.endswith(fmt)]
        if not chosen:
            continue
        clean = [scale(window(c)) for c in chosen for _ in range(s.real_positions)]
        out["sets"][f"{fmt}-clean"] = (clean, [c.label for c in chosen for _ in range(s.real_positions)])
        for snr in s.real_snrs if kinds else ():  # no real noise here: clean only
            mixed, lab = [], []
            for c in chosen:
                for kind in kinds:
                    x = window(c)
                    n = kws_data.loop_to(noise[kind], length, rng)
                    speech = rms(x[np.abs(x) > 0])
                    mixed.append(scale(x + n * (speech / (rms(n) + 1e-12) / 10 ** (snr / 20))))
                    lab.append(c.label)
            out["sets"][f"{fmt}-{snr:g}dB"] = (mixed, lab)
    for name, (audio, lab) in list(out["sets"].items()):
        out["sets"][name] = (kws_features(np.stack(audio), cfg)[:, None], lab)
    return out


def harvard_negatives(banned: set[str], n_voices: int, seed: int) -> list[tuple[str, np.ndarray]]:
    """Harvard sentences (public domain) without banned words, each spoken by ``n_voices`` held-out voices."""
    texts = [t for t in speech_data.HARVARD if is_keyword_free(t, banned)]
    rng = np.random.default_rng([seed, 11])
    out = []
    for i, text in enumerate(texts):
        for v in kws_data.draw_voices(n_voices, "test", rng):
            out.append((f"harvard/{i}/{v.desc()}", speech_data.synthesize(text, **v.kwargs())))
    return out


# -- measurements ------------------------------------------------------------------------------------


def onnx_logits(spotter: KeywordSpotter, x: np.ndarray) -> np.ndarray:
    """The spotter's label scores (argmax decides) of windows ``x`` ``[n,1,frames,dims]``, its model run
    by onnxruntime directly on one thread."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(spotter.path), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    x = spotter.window_input(x)
    return spotter.window_scores(
        np.concatenate([sess.run(None, {name: x[i : i + 256]})[0] for i in range(0, len(x), 256)])
    )


def accuracy(logits: np.ndarray, y: np.ndarray, labels: list[str]) -> dict[str, Any]:
    """Overall accuracy and per-class recall (argmax over all labels)."""
    pred = logits.argmax(axis=1)
    per = {}
    for i, lab in enumerate(labels):
        m = y == i
        if m.any():
            per[lab] = {"n": int(m.sum()), "recall": float(np.mean(pred[m] == i))}
    wrong: dict[str, int] = {}
    for t, p in zip(y, pred, strict=True):
        if t != p:
            k = f"{labels[t]}->{labels[p]}"
            wrong[k] = wrong.get(k, 0) + 1
    top = dict(sorted(wrong.items(), key=lambda kv: -kv[1])[:8])
    return {"n": int(len(y)), "accuracy": float(np.mean(pred == y)), "per_class": per, "confusions": top}


def real_noise(
    bank: speech_corpus.NoiseBank, kinds: list[str], seconds: float, seed: int
) -> dict[str, np.ndarray]:
    """``seconds`` of each real noise kind, seeded: what the 1 s real-digit windows are mixed with."""
    return {
        k: bank.make(k, int(seconds * SR), np.random.default_rng([seed, zlib.crc32(k.encode())]))
        for k in kinds
    }


def real_keywords(
    model: Path, sets: kws_real.RealSets, kinds: list[str], bank, words: list[str], s: Settings, seed: int
) -> dict[str, Any]:
    """Every real keyword recording streamed whole through the stage (100 ms blocks, default settings and
    thresholds), clean and in each real noise kind at each SNR of ``s.real_snrs``; the fired words aligned
    with the transcript's keywords, all keywords and the digits alone, per corpus and condition."""
    conds = kws_stream.conditions(kinds, s.real_snrs)
    recs = sets.keyword
    t0 = time.time()
    fired = kws_stream.fired_words(
        model, [(r.name, r.audio) for r in recs], conds, bank, seed=seed, jobs=s.jobs, verify=s.verify
    )
    digits = [w for w in words if w in kws_real.DIGITS]
    scores = []  # (recording, condition, all, digits)
    for r, per in zip(recs, fired, strict=True):
        for cond, got in zip(conds, per, strict=True):
            d = kws_real.align(*kws_real.restrict(r.refs, got, digits)) if digits else None
            scores.append((r, cond, kws_real.align(r.refs, got), d, got))

    def pooled(keep) -> dict[str, Any]:
        chosen = [x for x in scores if keep(x)]
        dig = [x[3] for x in chosen if x[3] is not None and x[3]["keywords"] + len(x[3]["insertions"])]
        return {
            "all": kws_real.tally(x[2] for x in chosen),
            "digits": kws_real.tally(dig) if digits else None,
        }

    corpora = sorted({r.corpus for r in recs})
    rows = [
        {
            "corpus": c,
            "condition": cond.label,
            **pooled(lambda x, c=c, k=cond: x[0].corpus == c and x[1] == k),
        }
        for c in corpora
        for cond in conds
    ]
    clean_errors = [
        {"name": r.name, "text": r.text, "said": [f.word for f in r.refs if f.required], "fired": got}
        for r, cond, a, _, got in scores
        if cond.kind is None and (a["misses"] or a["substitutions"] or a["insertions"])
    ]
    return {
        "conditions": [c.label for c in conds],
        "rows": rows,
        "clean": pooled(lambda x: x[1].kind is None),
        "noisy": pooled(lambda x: x[1].kind is not None),
        "by_condition": {c.label: pooled(lambda x, k=c: x[1] == k) for c in conds},
        "clean_errors": clean_errors,
        "seconds_compute": round(time.time() - t0, 1),
    }


def false_accepts(
    model: Path,
    sets: kws_real.RealSets,
    synthetic: list[tuple[str, np.ndarray]],
    kinds: list[str],
    bank,
    s: Settings,
    seed: int,
) -> dict[str, Any]:
    """Every real keyword-free recording, strung together per corpus (0.5 s gaps) in runs of about
    ``s.chunk_seconds``, streamed clean and in each real noise kind at each SNR of ``s.fa_snrs`` (and the
    synthetic sentences, on top, clean and at ``s.fa_synthetic_snrs``); every keyword event is a false
    accept. The target is judged on the real speech alone."""
    spotter = keyword_spotter(model, verify=s.verify, threads=1)
    t0 = time.time()
    groups: dict[str, list] = {}
    for r in sets.free:
        groups.setdefault(r.corpus, []).append(r)
    plan = [(c, True, kws_stream.chunks(recs, s.chunk_seconds), s.fa_snrs) for c, recs in groups.items()]
    if synthetic:
        syn = [kws_real.Recording(n, "harvard-tts", n, "", x) for n, x in synthetic]
        plan.append(("harvard-tts", False, kws_stream.chunks(syn, s.chunk_seconds), s.fa_synthetic_snrs))
    rows = []
    for corpus, real, streams, snrs in plan:
        conds = kws_stream.conditions(kinds, snrs)
        fired = kws_stream.fired_words(model, streams, conds, bank, seed=seed, jobs=s.jobs, verify=s.verify)
        n_utts = len(groups.get(corpus, synthetic))
        for c, cond in enumerate(conds):
            words = [w for per in fired for w in per[c]]
            seconds = sum(len(x) / SR + kws_stream.PAD_BEFORE + kws_stream.PAD_AFTER for _, x in streams)
            rows.append(
                {
                    "corpus": corpus,
                    "real": real,
                    "condition": cond.label,
                    "noisy": cond.kind is not None,
                    "utterances": n_utts,
                    "seconds": seconds,
                    "false_accepts": len(words),
                    "words": words,
                }
            )

    def total(keep) -> dict[str, Any]:
        chosen = [r for r in rows if keep(r)]
        hours = sum(r["seconds"] for r in chosen) / 3600
        n = sum(r["false_accepts"] for r in chosen)
        return {"hours": hours, "false_accepts": n, "per_hour": n / hours if hours else None}

    free = sets.summary()["free"]
    return {
        "rows": rows,
        "real": total(lambda r: r["real"]),
        "real_noisy": total(lambda r: r["real"] and r["noisy"]),
        "synthetic": total(lambda r: not r["real"]),
        "all": total(lambda r: True),
        "distinct_hours": free["distinct_seconds"] / 3600,
        "distinct_recordings": free["distinct_recordings"],
        "thresholds": spotter.thresholds,
        "seconds_compute": round(time.time() - t0, 1),
    }


def latency_stream(model: Path, clips: list[Clip], noise: dict, s: Settings, seed: int) -> dict[str, Any]:
    """Held-out keyword clips strung together with 1.2-2.0 s gaps, at 20 dB SNR in test noise; each
    word's true span is its trimmed clip (energy within 35 dB of its peak, plus 20 ms either side)."""
    spotter = keyword_spotter(model, verify=s.verify, threads=1)
    kws = spotter.info.keywords
    rng = np.random.default_rng([seed, 17])
    chosen = []
    for w in kws:
        mine = [c for c in clips if c.label == w]
        chosen += [mine[i] for i in rng.permutation(len(mine))[: s.latency_per_word]]
    chosen = [chosen[i] for i in rng.permutation(len(chosen))]
    parts, truth, t = [np.zeros(SR, np.float32)], [], SR
    for c in chosen:
        x = c.audio * (0.5 / (np.abs(c.audio).max() + 1e-9))
        truth.append((c.label, t / SR, (t + len(x)) / SR))
        gap = np.zeros(int(rng.uniform(1.2, 2.0) * SR), np.float32)
        parts += [x.astype(np.float32), gap]
        t += len(x) + len(gap)
    speech = np.concatenate(parts)
    n = kws_data.loop_to(np.concatenate([noise[k] for k in sorted(noise)]), len(speech), rng)
    active = rms(speech[np.abs(speech) > 1e-4])
    audio = (speech + n * (active / (rms(n) + 1e-12) / 10 ** (20 / 20))).astype(np.float32)
    events = run_stream(spotter, audio, SR // 50)  # 20 ms blocks
    rep = detection_latency(events, truth).to_dict()
    wrong = [e for e in events if not any(e["word"] == w for w, _, _ in truth)]
    rep.update(
        seconds=len(audio) / SR,
        detection_rate=rep["hits"] / max(1, rep["keywords"]),
        wrong_word_events=len(wrong),
    )
    rep.pop("latencies")
    return rep


def model_parameters(path: Path) -> dict[str, Any]:
    """Parameters as the trainer counted them (from the file's doc string) and float initializer values."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(path))
    init = sum(numpy_helper.to_array(t).size for t in m.graph.initializer if t.data_type == 1)
    found = re.search(r"([0-9]+) parameters", m.doc_string or "")
    return {"trained": int(found.group(1)) if found else None, "initializer_values": int(init)}


def int8_formats(
    spotter: KeywordSpotter,
    calib: np.ndarray,
    evals: dict[str, tuple[np.ndarray, np.ndarray]],
    labels,
    s: Settings,
) -> list[dict[str, Any]]:
    """fp32 and int8 of each format through ``convert`` and a one-thread ``runtimes`` Session: accuracy
    on every evaluation set, file size, median single-window latency. A failed conversion is a row with
    its error."""
    from edge_sdk.converters.convert import convert
    from edge_sdk.runtimes import load

    model = spotter.path
    calib = spotter.window_input(calib)
    cal = [{"features": calib[i : i + 1]} for i in range(len(calib))]
    rows = []
    with tempfile.TemporaryDirectory(prefix="kws-quality-") as tmp:
        for fmt in s.formats:
            for precision in ("fp32", "int8"):
                row: dict[str, Any] = {"format": fmt, "precision": precision}
                rows.append(row)
                t0 = time.time()
                try:
                    shape = [1, *calib.shape[1:]]  # the model's own front end, batch 1
                    kw = {"input_shapes": {"features": shape}} if fmt == "tflite" else {}
                    (art,) = convert(
                        str(model), f"{fmt}:{precision}", out=tmp, calibration=cal, name="kws", **kw
                    )
                    row["convert_seconds"] = round(time.time() - t0, 1)
                    row["bytes"] = sum(f.size for f in art.files)
                    sess = load(art.path, threads=1)
                    row["backend"] = f"{sess.selection.backend}/{sess.selection.accelerator}"
                    spec = sess.inputs[0]
                    batch = 64 if not isinstance(spec.shape[0], int) else 1
                    out = sess.output_names[0]
                    for name, (x, y) in evals.items():
                        x = spotter.window_input(x)
                        logits = spotter.window_scores(
                            np.concatenate(
                                [
                                    sess.run({spec.name: x[i : i + batch]})[out]
                                    for i in range(0, len(x), batch)
                                ]
                            )
                        )
                        row[name] = accuracy(logits, y, labels)["accuracy"]
                    one = spotter.window_input(evals[next(iter(evals))][0][:1])
                    for _ in range(10):
                        sess.run({spec.name: one})
                    times = []
                    for _ in range(s.latency_runs):
                        t1 = time.perf_counter()
                        sess.run({spec.name: one})
                        times.append(time.perf_counter() - t1)
                    row["ms_per_inference"] = 1000 * float(np.median(times))
                except Exception as e:  # noqa: BLE001 - the error is the result we report
                    row["error"] = f"{type(e).__name__}: {e}"
    return rows


# -- main --------------------------------------------------------------------------------------------


def measure(model_ref: str, s: Settings, seed: int = SEED, log=print) -> dict[str, Any]:
    """Every measurement on one model; a JSON-ready dict."""
    from edge_sdk.stages.kws import model_file

    t_start = time.time()
    path = model_file(model_ref, None)
    spotter = keyword_spotter(path, threads=1)
    info: KwsModelInfo = spotter.info
    labels, words, cfg = list(info.labels), list(info.keywords), spotter.window_front_end
    report: dict[str, Any] = {
        "model": model_ref,
        "path": _repo_relative(path),
        "sha256": _sha256(path),
        "labels": labels,
        # Windows are judged by the spotter alone at its own thresholds; streams, with s.verify, by the
        # spotter proposing at its proposal threshold and the recogniser confirming.
        "spotter": "kws.verify" if s.verify else spotter.name,
        "first_stage": spotter.name,
        "verify": s.verify,
        "thresholds": spotter.thresholds,
        "parameters": model_parameters(path),
        "seed": seed,
        "settings": {k: v for k, v in vars(s).items()},
        "held_out": kws_data.held_out_voices(),
        "targets": TARGETS,
    }
    log("held-out synthetic clips ...")
    clips, noise = heldout_clips(words, s, seed)
    report["heldout_voices"] = sorted({c.voice.split("@")[0] for c in clips if c.voice})
    evals: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    report["synthetic"] = {}
    # noisy-denoised: the noisy windows after the loop's tiny denoiser, as the spotter hears them live
    denoiser = make_stage("denoise", "tiny")
    for cond, aug, den in (
        ("clean", AugmentConfig.none(), None),
        ("noisy", AugmentConfig(), None),
        ("noisy-denoised", AugmentConfig(p_denoise=1.0), denoiser),
    ):
        x, y = features_of(clips, labels, noise, aug, seed, cfg, den)
        evals[f"synthetic-{cond}"] = (x, y)
        report["synthetic"][cond] = accuracy(onnx_logits(spotter, x), y, labels)
    log("real recordings ...")
    bank = speech_corpus.NoiseBank()
    kinds, missing = kws_stream.real_noise_kinds(bank, seed)
    sets = kws_real.real_sets(words, s.asterisk_limit)
    report["real_noise"] = {"kinds": kinds, "missing": missing}
    report["real_corpus"] = sets.summary()
    log("real digits in single windows ...")
    real = real_digit_windows(words, real_noise(bank, kinds, s.noise_seconds, seed), s, seed, cfg)
    report["real"] = {"recordings": real["recordings"], "sets": {}}
    for name, (x, lab) in real["sets"].items():
        y = np.array([labels.index(w) for w in lab])
        report["real"]["sets"][name] = accuracy(onnx_logits(spotter, x), y, labels)
    if real["sets"]:
        clean = [v for k, v in real["sets"].items() if k.endswith("clean")]
        noisy = [v for k, v in real["sets"].items() if not k.endswith("clean")]
        for key, group in (("real-clean", clean), ("real-noisy", noisy)):
            if not group:
                continue
            x = np.concatenate([g[0] for g in group])
            y = np.array([labels.index(w) for g in group for w in g[1]])
            evals[key] = (x, y)
            report["real"][key] = accuracy(onnx_logits(spotter, x), y, labels)
    log(f"real keyword recordings streamed ({len(sets.keyword)}, noise: {', '.join(kinds) or 'none'}) ...")
    report["real_stream"] = real_keywords(path, sets, kinds, bank, words, s, seed)
    log("false accepts on keyword-free speech ...")
    banned = banned_words(words)
    synthetic = harvard_negatives(banned, s.harvard_voices, seed)
    report["negatives"] = {"banned_words": sorted(banned), "synthetic_utterances": len(synthetic)}
    report["false_accepts"] = false_accepts(path, sets, synthetic, kinds, bank, s, seed)
    log("the loop's CPU cost ...")
    wideband = [r.audio for r in sets.keyword if r.corpus == "asterisk-g722"]
    report["cost"] = loop_cost(
        path, wideband or [r.audio for r in sets.keyword], s.cost_seconds, verify=s.verify
    )
    log("latency stream ...")
    report["latency"] = latency_stream(path, clips, noise, s, seed)
    log("int8 variants ...")
    cal_clips = kws_data.synthesize_words(words, "train", s.calib_per_word, seed=seed + 1)
    cal_clips += kws_data.silence_clips(max(2, len(cal_clips) // 10), "silence-calib")
    cal_noise = kws_data.make_noise(s.noise_seconds, seed + 2, cal_clips)
    # Calibrate on what the model will meet, clean and noisy windows alike: calibrated on noisy windows
    # only, tflite int8 lost 1.2 points on clean held-out voices; on both, 0.2.
    calib = np.concatenate(
        [
            features_of(cal_clips, labels, cal_noise, AugmentConfig(), seed + 3, cfg)[0],
            features_of(cal_clips, labels, cal_noise, AugmentConfig.none(), seed + 6, cfg)[0],
        ]
    )
    report["calibration"] = {"windows": int(len(calib)), "per_word": s.calib_per_word}
    report["formats"] = int8_formats(spotter, calib, evals, labels, s)
    report["seconds"] = round(time.time() - t_start, 1)
    return report


def _repo_relative(path: Path) -> str:
    """``path`` as the report shows it: relative to the repository when inside it, else its name."""
    root = Path(__file__).resolve().parents[1]
    try:
        return Path(path).resolve().relative_to(root).as_posix()
    except ValueError:
        return Path(path).name


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    from kws_quality_report import to_markdown

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="zoo:commands", help="KWS ONNX path or zoo:NAME")
    ap.add_argument("--quick", action="store_true", help="a small smoke run (minutes)")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument(
        "--jobs", type=int, default=1, help="worker processes for the streamed recordings (same results)"
    )
    ap.add_argument(
        "--verify",
        metavar="zoo:whisper-tiny.en",
        help="stream with kws.verify: the spotter proposes and this recogniser confirms each proposal",
    )
    ap.add_argument("--out", default="docs/kws-quality.md", help="Markdown report ('' for none)")
    ap.add_argument("--json", nargs="?", const="-", help="also write the raw results (path, or - for stdout)")
    args = ap.parse_args(argv)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    s = Settings.quick() if args.quick else Settings()
    if args.jobs < 1:
        ap.error(f"--jobs must be at least 1, not {args.jobs}")
    s.jobs = args.jobs
    s.verify = args.verify
    load = os.getloadavg()[0]
    report = measure(args.model, s, args.seed, log=lambda m: print(m, file=sys.stderr, flush=True))
    report["load_average_at_start"] = load
    report["cpus"] = os.cpu_count()
    report["cpu"] = this_cpu().describe()  # int8 speed depends on the CPU's int8 kernels
    report["argv"] = list(sys.argv[1:] if argv is None else argv)
    if args.out:
        Path(args.out).write_text(to_markdown(report))
    if args.json:
        text = json.dumps(report, indent=1, default=float)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
