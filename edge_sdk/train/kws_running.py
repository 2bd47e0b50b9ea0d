"""Running speech with keywords said inside it, cut into the windows a live spotter hears.

A spotter trained on isolated words hears a keyword spoken alone; a user says it inside a sentence
("press *one* for sales"), where it runs into its neighbours, and between keywords the spotter hears
nothing but other speech. Both are made here from synthesised utterances: a carrier text (a sentence of
prose or a string of other words, with every keyword and homophone removed) with, in most of them, one
keyword put among its words (first, last or between two) and the whole spoken as one utterance, so the
keyword is coarticulated as in life. Where the keyword sits is found by also synthesising the text up
to it, with and without it: the speech of a prefix ends where that prefix ends inside the whole.

Every window of the utterance's frames (computed once, as on a live stream) is then labelled: the keyword
when it holds the keyword whole, ``_unknown_`` when it holds at most a sliver of it, and left out in
between.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge_sdk.audio.features import kws_features
from edge_sdk.audio.front_end import FrontEnd
from edge_sdk.stages.kws import hop_frames
from edge_sdk.train import kws_data, speech_data
from edge_sdk.train.kws_data import UNKNOWN, AugmentConfig, Voice

SR = speech_data.SAMPLE_RATE
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
IGNORE = -1  # a window label: holds part of a keyword, neither a positive nor a negative
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


def banned_words(keywords: Sequence[str]) -> set[str]:
    """Words running speech without keywords must not hold: the keywords, the ten digits (the benchmark's
    real speech scores digits whatever the model) and the homophones of both."""
    words = set(keywords) | set(DIGITS)
    return words | {h for w in words for h in kws_data.HOMOPHONES.get(w, ())}


def prose_sentences() -> list[str]:
    """English prose that ships with every Python: the sentences of the language reference's help topics
    (``pydoc_data``), lower-cased words only, 5-30 words each."""
    from pydoc_data.topics import topics

    text = re.sub(r"\s+", " ", " ".join(topics.values()))
    out = []
    for s in re.split(r"(?<=[.!?:;])\s+", text):
        if re.search(r"[0-9_=()\[\]{}<>*/\\|@#$%^&+`\"]", s):
            continue  # code, not prose
        words = _WORD.findall(s.lower())
        if 5 <= len(words) <= 30:
            out.append(" ".join(words))
    return out


def carrier(
    rng: np.random.Generator, sentences: Sequence[str], others: Sequence[str], banned: set[str]
) -> list[str]:
    """The words of one carrier: 4-14 words of a prose sentence (70 %) or a string of 3-10 other words
    (split into single words), with banned words dropped."""
    if sentences and rng.random() < 0.7:
        words = sentences[int(rng.integers(len(sentences)))].split()
        n = int(rng.integers(4, 15))
        start = int(rng.integers(0, max(1, len(words) - n + 1)))
        words = words[start : start + n]
    else:
        words = [str(w) for w in rng.choice(others, int(rng.integers(3, 11)))]
    # other words can be two ("three d"), one of them a digit that is not a keyword
    return [part for w in words for part in w.replace("-", " ").split() if part not in banned]


@dataclass
class Utterance:
    """One synthesised utterance of running speech: its words, voice, the keyword said in it (or None)
    and where (samples ``[start, end)`` of ``audio``)."""

    text: str
    voice: str
    audio: np.ndarray
    keyword: str | None = None
    span: tuple[int, int] | None = None


def _spoken(text: str, voice: Voice) -> np.ndarray:
    return (
        kws_data.trim_speech(speech_data.synthesize(text, **voice.kwargs()))
        if text
        else np.zeros(0, np.float32)
    )


def _utterance(job: tuple[list[str], str | None, int, Voice]) -> Utterance | None:
    words, keyword, at, voice = job
    if keyword is None:
        audio = _spoken(" ".join(words), voice)
        return Utterance(" ".join(words), voice.desc(), audio) if len(audio) else None
    said = [*words[:at], keyword, *words[at:]]
    audio = _spoken(" ".join(said), voice)
    end = len(_spoken(" ".join(said[: at + 1]), voice))
    start = len(_spoken(" ".join(words[:at]), voice))
    if not len(audio) or end <= start or end > len(audio) + SR // 10:
        return None  # the prefixes do not line up with the whole: leave it out rather than mislabel it
    return Utterance(" ".join(said), voice.desc(), audio, keyword, (start, min(end, len(audio))))


def synthesize_running(
    keywords: Sequence[str],
    split: str,
    n: int,
    *,
    p_keyword: float = 0.6,
    seed: int = 0,
    engines: Sequence[str] = kws_data.ENGINES,
    workers: int = 2,
) -> list[Utterance]:
    """``n`` utterances by voices of ``split``; a share ``p_keyword`` says one keyword (drawn evenly) at a
    random place among the carrier's words. Deterministic for a seed."""
    rng = np.random.default_rng([seed, zlib.crc32(f"running-{split}".encode())])
    banned = banned_words(keywords)
    others = [w for w in kws_data.unknown_words(keywords) if w not in banned]
    sentences = prose_sentences()
    jobs = []
    for voice in kws_data.draw_voices(n, split, rng, engines):
        words = carrier(rng, sentences, others, banned)
        if not words:
            continue
        if rng.random() < p_keyword:
            jobs.append(
                (
                    words,
                    str(keywords[int(rng.integers(len(keywords)))]),
                    int(rng.integers(0, len(words) + 1)),
                    voice,
                )
            )
        else:
            jobs.append((words, None, 0, voice))
    prefetch = []
    for words, kw, at, v in jobs:
        said = [*words[:at], kw, *words[at:]] if kw else words
        texts = [" ".join(said)] + ([" ".join(said[: at + 1]), " ".join(words[:at])] if kw else [])
        prefetch += [{"text": t, **v.kwargs()} for t in texts if t]
    speech_data.prefetch(prefetch)
    with ThreadPoolExecutor(max(1, workers)) as pool:
        return [u for u in pool.map(_utterance, jobs) if u is not None]


def window_labels(
    n_frames: int,
    cfg: FrontEnd,
    span: tuple[int, int] | None,
    keyword: int,
    negative: int = 1,
    margin_s: float = 0.05,
) -> np.ndarray:
    """The label of each window of ``cfg.n_frames()`` frames in ``n_frames`` frames of an utterance
    (window ``j`` is frames ``j..j+n-1``): ``keyword`` where it holds ``span`` whole with ``margin_s``
    either side, ``negative`` (``_unknown_``'s index) where it overlaps at most a fifth of the span,
    else ``IGNORE``."""
    n = cfg.n_frames()
    count = max(0, n_frames - n + 1)
    starts = np.arange(count) * cfg.hop
    ends = starts + (n - 1) * cfg.hop + cfg.win
    out = np.full(count, negative, np.int64)
    if span is None:
        return out
    s, e = span
    m = int(margin_s * SR)
    whole = (starts <= s - m) & (ends >= e + m)
    overlap = np.clip(np.minimum(ends, e) - np.maximum(starts, s), 0, None)
    out[overlap > 0.2 * (e - s)] = IGNORE
    out[whole] = keyword
    return out


def running_windows(
    utterances: Sequence[Utterance],
    labels: Sequence[str],
    cfg: FrontEnd,
    rng: np.random.Generator,
    noise: dict[str, np.ndarray],
    aug: AugmentConfig,
    denoiser: Any = None,
    pad_s: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Windows ``[N, 1, frames, dims]`` and labels of every utterance, each degraded once as a whole
    (``kws_data.degrade``) with ``pad_s`` of silence either side, and a share ``aug.p_denoise`` of them
    then denoised by ``denoiser`` (as ``kws.batch_features`` does). Only the windows the ``kws.onnx``
    stage classifies are kept (one each ``hop_frames(cfg)`` frames), and of those not the ones that hold
    part of a keyword."""
    xs, ys = [], []
    pad, step, negative = int(pad_s * SR), hop_frames(cfg), list(labels).index(UNKNOWN)
    n = cfg.n_frames()
    for u in utterances:
        audio = kws_data.degrade(np.pad(u.audio, (pad, pad)), rng, noise, aug)
        if denoiser is not None and rng.random() < aug.p_denoise:
            audio = denoiser.process_batch(audio[None])[0]
        frames = kws_features(audio, cfg)
        span = None if u.span is None else (u.span[0] + pad, u.span[1] + pad)
        keyword = list(labels).index(u.keyword) if u.keyword else negative
        y = window_labels(len(frames), cfg, span, keyword, negative)
        # the windows the stage classifies: one every `step` frames
        keep = np.flatnonzero((y != IGNORE) & (np.arange(len(y)) % step == 0))
        xs.append(
            np.stack([frames[j : j + n] for j in keep])
            if len(keep)
            else np.zeros((0, n, cfg.dims()), np.float32)
        )
        ys.append(y[keep])
    return np.concatenate(xs)[:, None].astype(np.float32), np.concatenate(ys)


def describe(utterances: Sequence[Utterance]) -> dict[str, Any]:
    """Counts and seconds of a set of utterances, for the model card."""
    return {
        "utterances": len(utterances),
        "with_keyword": sum(u.keyword is not None for u in utterances),
        "seconds": round(sum(len(u.audio) for u in utterances) / SR, 1),
    }
