"""Real recordings for the keyword benchmark, and how a stream of fired words is scored against them.

Every real recording obtainable here is sorted by its transcript:

* **keyword recordings** (their transcript holds a keyword of the model): Asterisk's English prompts in
  both codings (8 kHz WAV and G.722; the same recordings of one speaker, Allison Smith), the digit files and
  every longer prompt whose transcript (``core-sounds-en.txt.gz``) holds a keyword or a spoken numeral;
  pocketsphinx's card recordings (``cards.transcription``), its connected-digit recording
  ``tidigits/dhd.2934z.raw`` (the digits are its TIDIGITS file name: ``z`` is zero, ``o`` is oh) and
  ``goforward.raw`` (the utterance its test grammar ``goforward.gram`` spells out);
* **keyword-free recordings**: Asterisk prompts whose transcript holds no keyword, digit, homophone or
  numeral, the LibriVox clips and the card recordings without any;
* **left out**, with the reason: recordings without a transcript (``numbers.raw``, ``something.raw``),
  prompts whose numerals have no single reading (``1234``, ``28.8``), tones and silences.

A transcript becomes a reference sequence of keywords; a homophone of a keyword (``to`` for ``two``) is an
optional reference: firing the keyword there is neither a hit nor an insertion, not firing it no miss.
``align`` scores fired words against it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import speech_corpus

from edge_sdk.train import kws_data, speech_data
from edge_sdk.train.kws_running import DIGITS, banned_words

TIDIGITS_CHARS = {"z": "zero", "o": "oh", **{str(i): DIGITS[i] for i in range(1, 10)}}
GOFORWARD_GRAMMAR = speech_corpus.SPHINX / "goforward.gram"
CARDS_TRANSCRIPTS = speech_corpus.SPHINX / "cards" / "cards.transcription"
LIBRIVOX_TRANSCRIPTS = speech_corpus.SPHINX / "librivox" / "transcription"
#: Asterisk recordings that are not speech (the same rule as ``speech_data.asterisk_prompts``).
NOT_SPEECH = re.compile(r"beep|tone|silence/")
_TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)?|[0-9]+(?:[.,][0-9]+)*[a-z]*|[#*]")


@dataclass(frozen=True)
class Ref:
    """One reference word: a keyword, and whether it must fire (False: a homophone, which may)."""

    word: str
    required: bool = True


@dataclass
class Recording:
    """A real recording: a stable name, its corpus (``asterisk-wav``...), the group of recordings that are
    the same speech (two codings of one prompt share it), its transcript, 16 kHz audio, references."""

    name: str
    corpus: str
    group: str
    text: str
    audio: np.ndarray
    refs: list[Ref] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return len(self.audio) / speech_data.SAMPLE_RATE


class Ambiguous(ValueError):
    """A transcript whose numerals can be read out more than one way (``1234``, ``28.8``)."""


def references(text: str, keywords: Sequence[str]) -> list[Ref]:
    """The keywords ``text`` speaks, in order: keyword words, single-digit numerals read as their digit
    word (``press 1``), homophones of a keyword as optional references. Raises Ambiguous for a numeral
    of several digits, which has no single reading."""
    homophone = {h: w for w in keywords for h in kws_data.HOMOPHONES.get(w, ())}
    out = []
    for tok in _TOKEN.findall(text.lower()):
        if tok[0].isdigit():
            number = re.match(r"[0-9.,]+", tok).group()  # type: ignore[union-attr]
            if len(number) > 1:
                raise Ambiguous(f"numeral {tok!r} has no single reading")
            tok = DIGITS[int(number)]
        if tok in keywords:
            out.append(Ref(tok))
        elif tok in homophone:
            out.append(Ref(homophone[tok], required=False))
    return out


def is_keyword_free(text: str, banned: set[str]) -> bool:
    """True when ``text`` holds no banned word and no numeral, ``#``, ``*`` or ``[`` (a tone's label)."""
    if re.search(r"[0-9#*\[]", text):
        return False
    return not set(re.findall(r"[a-z]+(?:'[a-z]+)?", text.lower())) & banned


def classify(text: str, keywords: Sequence[str], banned: set[str]) -> tuple[str, list[Ref] | str]:
    """``("keyword", references)`` when ``text`` says a keyword, ``("free", [])`` when it holds nothing
    banned, else ``("left out", why)``: a numeral without a single reading, or only homophones or digits
    that are not keywords of this model (neither a keyword test nor keyword-free)."""
    try:
        refs = references(text, keywords)
    except Ambiguous as e:
        return "left out", str(e)
    if any(r.required for r in refs):
        return "keyword", refs
    if is_keyword_free(text, banned):
        return "free", []
    return "left out", "holds a homophone or a digit that is not a keyword"


# -- the corpora -------------------------------------------------------------------------------------


@dataclass
class RealSets:
    """Every real recording, sorted: with keywords, without, and those left out with why."""

    keyword: list[Recording] = field(default_factory=list)
    free: list[Recording] = field(default_factory=list)
    left_out: dict[str, str] = field(default_factory=dict)

    def add(self, rec: Recording, keywords: Sequence[str], banned: set[str]) -> None:
        """File ``rec`` by its transcript."""
        kind, refs = classify(rec.text, keywords, banned)
        if kind == "keyword":
            rec.refs = refs  # type: ignore[assignment]
            self.keyword.append(rec)
        elif kind == "free":
            self.free.append(rec)
        else:
            self.left_out[rec.name] = str(refs)

    def summary(self) -> dict[str, Any]:
        """Counts and seconds per corpus, distinct seconds (one coding per group), what was left out."""

        def per(recs: list[Recording]) -> dict[str, Any]:
            out: dict[str, dict[str, float]] = {}
            for r in recs:
                c = out.setdefault(r.corpus, {"recordings": 0, "seconds": 0.0})
                c["recordings"] += 1
                c["seconds"] += r.seconds
            distinct = {r.group: r.seconds for r in recs}
            return {
                "corpora": out,
                "distinct_recordings": len(distinct),
                "distinct_seconds": sum(distinct.values()),
            }

        return {
            "keyword": per(self.keyword),
            "free": per(self.free),
            "left_out": dict(sorted(self.left_out.items())),
        }


def asterisk_recordings(sets: RealSets, keywords: Sequence[str], banned: set[str], limit: int | None) -> None:
    """Every transcribed Asterisk prompt in both codings, filed into ``sets`` (at most ``limit`` prompts
    of each kind, for a smoke run: the digit files first, so even a small run scores digits)."""
    texts = speech_data.asterisk_transcripts()
    order = sorted(texts, key=lambda k: (not k.startswith("digits/"), k))
    taken = {"keyword": 0, "free": 0}
    for key in order:
        text = texts[key]
        if NOT_SPEECH.search(key) or "[" in text:
            continue
        if limit is not None:
            kind = classify(text, keywords, banned)[0]
            if kind not in taken or taken[kind] >= limit:
                continue
            taken[kind] += 1
        base = speech_data.ASTERISK_ROOT / key
        for suffix, corpus, reader in (
            (".wav", "asterisk-wav", speech_data.load_16k),
            (".g722", "asterisk-g722", speech_data.read_g722),
        ):
            path = base.with_suffix(suffix)
            if path.exists():
                sets.add(
                    Recording(f"asterisk/{key}{suffix}", corpus, key, text, reader(path)), keywords, banned
                )


def sphinx_transcripts() -> dict[str, str]:
    """Transcripts of pocketsphinx's test recordings, keyed as ``speech_corpus.sphinx_clips`` names them."""
    out: dict[str, str] = {}
    for path, folder in ((CARDS_TRANSCRIPTS, "cards"), (LIBRIVOX_TRANSCRIPTS, "librivox")):
        if path.exists():
            for line in path.read_text().splitlines():
                m = re.match(r"\s*<s>(.*)</s>\s*\((\S+)\)", line)
                if m:
                    out[f"{folder}/{m.group(2)}.wav"] = m.group(1).strip()
    if GOFORWARD_GRAMMAR.exists():
        m = re.search(r"public <move> = ([a-z ]+);", GOFORWARD_GRAMMAR.read_text())
        if m:
            out["goforward.raw"] = m.group(1).strip()
    for name in ("tidigits/dhd.2934z.raw",):
        digits = Path(name).stem.split(".")[-1].rstrip("ab")
        if digits and all(c in TIDIGITS_CHARS for c in digits):
            out[name] = " ".join(TIDIGITS_CHARS[c] for c in digits)
    return out


def sphinx_recordings(sets: RealSets, keywords: Sequence[str], banned: set[str]) -> None:
    """pocketsphinx's test recordings (``speech_corpus.sphinx_clips``) filed by their transcripts; one
    without a transcript is left out."""
    texts = sphinx_transcripts()
    for clip in speech_corpus.sphinx_clips():
        corpus = "librivox" if clip.corpus == "librivox" else "sphinx"
        if clip.name not in texts:
            sets.left_out[f"sphinx/{clip.name}"] = "no transcript in pocketsphinx-testdata"
            continue
        rec = Recording(f"sphinx/{clip.name}", corpus, f"sphinx/{clip.name}", texts[clip.name], clip.audio)
        sets.add(rec, keywords, banned)
    mfc = sorted(speech_corpus.SPHINX.glob("tidigits/*.mfc"))
    if mfc:
        sets.left_out["sphinx/tidigits/*.mfc"] = (
            f"{len(mfc)} connected-digit files stored as cepstra, not audio"
        )


def real_sets(keywords: Sequence[str], asterisk_limit: int | None = None) -> RealSets:
    """Every real recording obtainable here, filed for the model's ``keywords``."""
    banned = banned_words(keywords)
    sets = RealSets()
    asterisk_recordings(sets, keywords, banned, asterisk_limit)
    sphinx_recordings(sets, keywords, banned)
    return sets


# -- scoring -----------------------------------------------------------------------------------------


ERROR, MATCH, NEVER = 1000, -1, 10**9  # alignment costs: fewest errors first, then most matches


def _step(ref: Ref, fired: str) -> int:
    """Cost of aligning ``fired`` with ``ref``: a match, a substitution, or (for a homophone) never."""
    if ref.word == fired:
        return MATCH
    return ERROR if ref.required else NEVER


def align(refs: Sequence[Ref], fired: Sequence[str]) -> dict[str, Any]:
    """Ordered alignment (edit distance) of the fired words with the references: hits, substitutions
    (``said->fired``), misses, insertions. An optional reference costs nothing to skip and is matched only
    by its own word (``homophone_fires``). Of the alignments with the fewest errors, one with the most
    matches is taken, so a word fired is not called a substitution where it can be a hit."""
    n, m = len(refs), len(fired)
    skip = [ERROR if r.required else 0 for r in refs]
    cost = np.zeros((n + 1, m + 1), np.int64)
    cost[0, :] = np.arange(m + 1) * ERROR
    for i in range(1, n + 1):
        cost[i, 0] = cost[i - 1, 0] + skip[i - 1]
        for j in range(1, m + 1):
            cost[i, j] = min(
                cost[i - 1, j - 1] + _step(refs[i - 1], fired[j - 1]),
                cost[i - 1, j] + skip[i - 1],
                cost[i, j - 1] + ERROR,
            )
    out: dict[str, Any] = {
        "hits": 0,
        "misses": [],
        "substitutions": [],
        "insertions": [],
        "homophone_fires": 0,
    }
    i, j = n, m
    while i or j:
        if i and j and cost[i, j] == cost[i - 1, j - 1] + _step(refs[i - 1], fired[j - 1]):
            r, f = refs[i - 1], fired[j - 1]
            if r.word == f:
                out["hits" if r.required else "homophone_fires"] += 1
            else:
                out["substitutions"].append(f"{r.word}->{f}")
            i, j = i - 1, j - 1
        elif i and cost[i, j] == cost[i - 1, j] + skip[i - 1]:
            if refs[i - 1].required:
                out["misses"].append(refs[i - 1].word)
            i -= 1
        else:
            out["insertions"].append(fired[j - 1])
            j -= 1
    for k in ("misses", "substitutions", "insertions"):
        out[k].reverse()
    out["keywords"] = sum(r.required for r in refs)
    return out


def restrict(refs: Sequence[Ref], fired: Sequence[str], words: Iterable[str]) -> tuple[list[Ref], list[str]]:
    """References and fired words limited to ``words`` (the digits alone are scored this way)."""
    keep = set(words)
    return [r for r in refs if r.word in keep], [w for w in fired if w in keep]


def tally(scores: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Alignments summed: counts, ``recall`` (hits / keywords) and ``accuracy`` ((hits - insertions) /
    keywords, the complement of a keyword error rate), and the most frequent errors of each kind."""
    total: dict[str, Any] = {"recordings": 0, "keywords": 0, "hits": 0, "homophone_fires": 0}
    errors: dict[str, dict[str, int]] = {"misses": {}, "substitutions": {}, "insertions": {}}
    for s in scores:
        total["recordings"] += 1
        for k in ("keywords", "hits", "homophone_fires"):
            total[k] += s[k]
        for k, counts in errors.items():
            for w in s[k]:
                counts[w] = counts.get(w, 0) + 1
    for k, counts in errors.items():
        total[k] = sum(counts.values())
        total[f"top_{k}"] = dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:8])
    n = total["keywords"]
    total["recall"] = total["hits"] / n if n else None
    total["accuracy"] = (total["hits"] - total["insertions"]) / n if n else None
    return total
