"""Real recordings streamed through the ``kws.onnx`` stage, clean and in real recorded noise.

Each recording (or, for false accepts, each chunk of keyword-free recordings strung together) is padded,
mixed with one real noise kind of ``speech_corpus.NoiseBank`` at one SNR, and fed to a fresh
``KeywordSpotter`` block by block as the capture loop does; the words it fires are kept. ``jobs`` worker
processes share the work (each with its own spotter, one thread each); every mixture is seeded by its
name, kind and SNR alone, so the result does not depend on ``jobs``.
"""

from __future__ import annotations

import logging
import multiprocessing
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import speech_corpus

from edge_sdk.audio.mix import rms
from edge_sdk.stages.base import Block
from edge_sdk.stages.chain import keyword_spotter
from edge_sdk.stages.kws import KeywordSpotter

log = logging.getLogger("bench.kws_stream")

SR = speech_corpus.RATE
#: NoiseBank kinds that are generated, not recorded: never used for the real-noise figures.
GENERATED_NOISES = ("white", "pink")
PAD_BEFORE, PAD_AFTER = 0.5, 1.0  # seconds of noise (or silence) around each stream
PEAK = 0.5  # speech is set to -6 dBFS peak before mixing, as the held-out windows are


@dataclass(frozen=True)
class Condition:
    """Clean (``kind`` None) or one noise kind at one SNR in dB."""

    kind: str | None = None
    snr: float = 0.0

    @property
    def label(self) -> str:
        return "clean" if self.kind is None else f"{self.kind} {self.snr:g} dB"


def real_noise_kinds(bank: speech_corpus.NoiseBank, seed: int = 0) -> tuple[list[str], dict[str, str]]:
    """The recorded kinds ``bank`` can make here (every kind of ``speech_corpus.NOISES`` that is not
    generated), and those it cannot, with the reason; each missing one is logged as a warning."""
    usable, missing = [], {}
    for kind in speech_corpus.NOISES:
        if kind in GENERATED_NOISES:
            continue
        try:
            bank.make(kind, SR // 10, np.random.default_rng(seed))
        except (OSError, ValueError) as e:
            missing[kind] = f"{type(e).__name__}: {e}"
            log.warning("real noise %r is not available, so it is left out: %s", kind, e)
            continue
        usable.append(kind)
    return usable, missing


def conditions(kinds: Sequence[str], snrs: Sequence[float]) -> list[Condition]:
    """Clean, then every kind at every SNR."""
    return [Condition()] + [Condition(k, s) for k in kinds for s in snrs]


def active_rms(x: np.ndarray, frame: int = 320, floor_db: float = 40.0) -> float:
    """RMS over the 20 ms frames within ``floor_db`` of the loudest: the speech's level, not its pauses'."""
    n = len(x) // frame
    if n == 0:
        return rms(x)
    energy = np.mean(np.square(x[: n * frame].reshape(n, frame), dtype=np.float64), axis=1)
    loud = energy >= energy.max() * 10 ** (-floor_db / 10)
    return float(np.sqrt(energy[loud].mean()))


def mixture(
    name: str, speech: np.ndarray, cond: Condition, bank: speech_corpus.NoiseBank, seed: int
) -> np.ndarray:
    """``speech`` at -6 dBFS peak, padded, and with ``cond``'s noise over the whole stream at its SNR
    (relative to the speech's active level); scaled down together if the sum would clip."""
    x = np.asarray(speech, np.float32) * (PEAK / (float(np.max(np.abs(speech))) + 1e-12))
    out = np.concatenate([np.zeros(int(PAD_BEFORE * SR)), x, np.zeros(int(PAD_AFTER * SR))])
    if cond.kind is not None:
        key = [seed, zlib.crc32(name.encode()), zlib.crc32(cond.kind.encode()), int(round(cond.snr * 10))]
        noise = bank.make(cond.kind, len(out), np.random.default_rng(key))
        out = out + noise * (active_rms(x) / (rms(noise) + 1e-12) / 10 ** (cond.snr / 20))
        out = out * min(1.0, 0.95 / float(np.max(np.abs(out))))
    return out.astype(np.float32)


def run_stream(spotter: KeywordSpotter, audio: np.ndarray, block: int) -> list[dict[str, Any]]:
    """Feed ``audio`` to the stage in blocks of ``block`` samples from a fresh stream; its keyword events
    as dicts."""
    spotter.reset()
    events = []
    i = 0
    for i, start in enumerate(range(0, len(audio), block)):
        b = Block(audio[start : start + block], SR, start / SR, i)
        events += [e.to_dict() for e in spotter.process(b).events]
    end = Block(audio[:0], SR, len(audio) / SR, i + 1)
    spotter.flush(end)  # a verifier judges the proposals still waiting
    return events + [e.to_dict() for e in end.events]


# What the workers read: set before they fork, so the audio is never pickled.
_SHARED: dict[str, Any] = {}


def _worker_job(job: tuple[int, int]) -> list[str]:
    i, c = job
    s = _SHARED
    if "spotter" not in s:
        s["spotter"] = keyword_spotter(s["model"], verify=s["verify"], threads=1)
    name, audio = s["streams"][i]
    cond = s["conditions"][c]
    return [
        e["word"]
        for e in run_stream(s["spotter"], mixture(name, audio, cond, s["bank"], s["seed"]), s["block"])
    ]


def fired_words(
    model: Path,
    streams: Sequence[tuple[str, np.ndarray]],
    conds: Sequence[Condition],
    bank: speech_corpus.NoiseBank,
    *,
    seed: int,
    jobs: int = 1,
    block: int = SR // 10,
    verify: str | None = None,
) -> list[list[list[str]]]:
    """``[stream][condition]`` → the words the stage fired on that mixture, in order (with ``verify``, the
    words a recogniser confirmed: ``keyword_spotter``)."""
    for cond in conds:  # load the bank's talkers and key sounds once, before any fork
        if cond.kind is not None:
            bank.make(cond.kind, SR // 10, np.random.default_rng(0))
    _SHARED.clear()
    _SHARED.update(
        model=model,
        verify=verify,
        streams=list(streams),
        conditions=list(conds),
        bank=bank,
        seed=seed,
        block=block,
    )
    todo = [(i, c) for i in range(len(streams)) for c in range(len(conds))]
    # longest first, so no worker is left with a long stream at the end
    todo.sort(key=lambda ic: -len(streams[ic[0]][1]))
    try:
        if jobs <= 1:
            words = [_worker_job(j) for j in todo]
        else:
            with multiprocessing.get_context("fork").Pool(jobs) as pool:
                words = pool.map(_worker_job, todo, chunksize=max(1, len(todo) // (jobs * 8)))
    finally:
        _SHARED.clear()
    out: list[list[list[str]]] = [[[] for _ in conds] for _ in streams]
    for (i, c), w in zip(todo, words, strict=True):
        out[i][c] = w
    return out


def chunks(recordings: Sequence[Any], seconds: float, gap: float = 0.5) -> list[tuple[str, np.ndarray]]:
    """Recordings (with ``name`` and ``audio``) strung together with ``gap`` s of silence, each at -6 dBFS
    peak, cut into streams of about ``seconds``; each named after its first recording."""
    out: list[tuple[str, np.ndarray]] = []
    parts: list[np.ndarray] = []
    first = ""
    pause = np.zeros(int(gap * SR), np.float32)
    for rec in recordings:
        if not parts:
            first = rec.name
        parts += [rec.audio * np.float32(PEAK / (float(np.max(np.abs(rec.audio))) + 1e-12)), pause]
        if sum(map(len, parts)) >= seconds * SR:
            out.append((first, np.concatenate(parts)))
            parts = []
    if parts:
        out.append((first, np.concatenate(parts)))
    return out
