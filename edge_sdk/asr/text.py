"""Text normalisation applied alike to every reference and every system's output, and word error rate.

``normalize(text)`` applies these rules, in this order:

1. Unicode NFKC, then lower case; curly apostrophes (’ ‘) become ``'``.
2. Abbreviations spelt with dots are joined: ``a.m.`` → ``am``, ``U.S.`` → ``us``; the titles ``mr``,
   ``mrs`` and ``dr`` (with or without their dot) are spelt out: ``mister``, ``missus``, ``doctor``.
3. Symbols are spoken: ``%`` → ``percent``, ``&`` → ``and``; ``$5`` → ``five dollars`` (``$1`` →
   ``one dollar``, ``$5.50`` → ``five dollars fifty cents``).
4. Clock times: ``10:30`` → ``ten thirty``, ``10:05`` → ``ten oh five``, ``10:00`` → ``ten``.
5. Numerals are spelt as words (no "and": ``105`` → ``one hundred five``):

   * digit groups with commas are one number: ``1,000`` → ``one thousand`` (so is ``1000``);
   * decimals are read digit by digit after ``point``: ``28.8`` → ``twenty eight point eight``;
   * ordinals: ``3rd`` → ``third``, ``21st`` → ``twenty first``, ``100th`` → ``one hundredth``;
   * plurals: ``1990s`` / ``90's`` → ``nineteen nineties`` / ``nineties``;
   * years: a four-digit numeral from 1100 to 1999 written without a comma is read in pairs:
     ``1990`` → ``nineteen ninety``, ``1905`` → ``nineteen oh five``, ``1900`` → ``nineteen hundred``;
     from 2000 on, numerals are cardinals (``2015`` → ``two thousand fifteen``);
   * a numeral with a leading zero is read digit by digit: ``0`` → ``zero``, ``007`` → ``zero zero seven``;
     so is one of 16 or more digits;
   * digits glued to letters are split from them: ``mp3`` → ``mp three``.
6. Hyphens become spaces (``twenty-one`` → ``twenty one``, ``call-forward`` → ``call forward``).
7. Every other character that is neither a letter, a digit nor an apostrophe becomes a space; an
   apostrophe is kept only inside a word (``don't``, ``o'clock``), so quotes and trailing possessive
   apostrophes (``james'``) go.
8. Whitespace is collapsed; the result has single spaces and no leading or trailing space.

Options, for test sets that need them (the same options for every system scored on that set):

* ``digits_oh_as_zero``: the words ``oh`` and ``o`` become ``zero``. For digit sets (TIDIGITS transcripts
  say ``oh`` where a speaker said it), where both words mean the digit 0.
* ``digits_one_by_one``: every integer numeral is read digit by digit (``2934`` → ``two nine three
  four``), as a speaker of a digit string reads it; decimals and ordinals are unaffected.

Out of scope: British/American spellings, filler words (``um``), contractions (``don't`` ≠ ``do not``),
numbers spelt in words are never turned into digits.

``wer(refs, hyps)`` pools a Levenshtein word alignment over utterances: (substitutions + deletions +
insertions) / reference words. ``align`` gives the operations of one utterance's alignment.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from edge_sdk.errors import BadInputError

__all__ = ["Op", "WerResult", "align", "format_alignment", "normalize", "number_words", "wer", "words"]

_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen \
sixteen seventeen eighteen nineteen".split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))
_ORDINAL = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}
_MAX_DIGITS = 15  # up to 999 trillion read as a cardinal; longer strings are codes, read digit by digit

_ABBREV = re.compile(r"(?<![\w.])[a-z](?:\.[a-z])+\.?(?!\w)")
_TITLES = {"mr": "mister", "mrs": "missus", "dr": "doctor"}
_TITLE = re.compile(r"\b(mrs?|dr)\b\.?")
_MONEY = re.compile(r"\$\s?(\d[\d,]*)(?:\.(\d\d))?(?!\d)")
_TIME = re.compile(r"(?<![\d:])(\d{1,2}):(\d\d)(?![\d:])")
_NUMBER = re.compile(
    r"(?P<int>\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.(?P<frac>\d+))?"
    r"(?P<suffix>(?:st|nd|rd|th)(?![a-z])|'?s(?![a-z]))?"
)


def _below_1000(n: int) -> list[str]:
    out: list[str] = []
    if n >= 100:
        out += [_ONES[n // 100], "hundred"]
        n %= 100
    if n >= 20:
        out.append(_TENS[n // 10])
        n %= 10
        if n:
            out.append(_ONES[n])
    elif n or not out:
        out.append(_ONES[n])
    return out


def number_words(n: int) -> list[str]:
    """The cardinal ``n`` (0 ≤ n < 10**15) as words, without "and": 1205 → one thousand two hundred five."""
    if not 0 <= n < 10**_MAX_DIGITS:
        raise BadInputError(f"number_words reads 0 to {10**_MAX_DIGITS - 1}, not {n}")
    if n < 1000:
        return _below_1000(n)
    out: list[str] = []
    for value, name in _SCALES:
        if n >= value:
            out += [*_below_1000(n // value), name]
            n %= value
    return out + (_below_1000(n) if n else [])


def _digits(s: str) -> list[str]:
    return [_ONES[int(c)] for c in s]


def _year(n: int) -> list[str]:
    high, low = divmod(n, 100)
    if low == 0:
        return [*_below_1000(high), "hundred"]
    return [*_below_1000(high), *(["oh", _ONES[low]] if low < 10 else _below_1000(low))]


def _ordinal(word: str) -> str:
    if word in _ORDINAL:
        return _ORDINAL[word]
    return word[:-1] + "ieth" if word.endswith("y") else word + "th"


def _plural(word: str) -> str:
    if word.endswith("y"):
        return word[:-1] + "ies"
    return word + "es" if word.endswith("x") else word + "s"


def _spell(m: re.Match[str], one_by_one: bool) -> str:
    raw, frac, suffix = m["int"], m["frac"], m["suffix"] or ""
    digits = raw.replace(",", "")
    spoken_as_code = (len(digits) > 1 and digits[0] == "0") or len(digits) > _MAX_DIGITS
    if spoken_as_code or (one_by_one and "," not in raw and not suffix and frac is None):
        out = _digits(digits)
    elif "," not in raw and len(digits) == 4 and 1100 <= int(digits) <= 1999:
        out = _year(int(digits))
    else:
        out = number_words(int(digits))
    if frac is not None:
        out += ["point", *_digits(frac)]
    if suffix in ("st", "nd", "rd", "th"):
        out[-1] = _ordinal(out[-1])
    elif suffix:
        out[-1] = _plural(out[-1])
    return f" {' '.join(out)} "


def _money(m: re.Match[str]) -> str:
    amount = m[1].rstrip(",")
    unit = "dollar" if amount == "1" else "dollars"
    cents = f" {m[2]} cents" if m[2] and m[2] != "00" else ""
    return f" {amount} {unit}{cents} "


def _time(m: re.Match[str]) -> str:
    hour, minute = int(m[1]), m[2]
    if minute == "00":
        return f" {hour} "
    return f" {hour} oh {minute[1]} " if minute[0] == "0" else f" {hour} {minute} "


def normalize(text: str, *, digits_oh_as_zero: bool = False, digits_one_by_one: bool = False) -> str:
    """``text`` normalised by the module's rules (see the module docstring): lower-case words, numerals
    spelt out, punctuation gone, single spaces."""
    t = unicodedata.normalize("NFKC", text).lower().replace("’", "'").replace("‘", "'")
    t = _ABBREV.sub(lambda m: m[0].replace(".", ""), t)
    t = _TITLE.sub(lambda m: _TITLES[m[1]], t)
    t = t.replace("%", " percent ").replace("&", " and ")
    t = _MONEY.sub(_money, t)
    t = _TIME.sub(_time, t)
    t = _NUMBER.sub(lambda m: _spell(m, digits_one_by_one), t)
    t = re.sub(r"[^\w\s']|_", " ", t)  # hyphens included
    t = re.sub(r"(?<!\w)'+|'+(?!\w)", " ", t)
    out = t.split()
    if digits_oh_as_zero:
        out = ["zero" if w in ("oh", "o") else w for w in out]
    return " ".join(out)


def words(text: str, **options: bool) -> list[str]:
    """``normalize(text, **options)`` split into words."""
    return normalize(text, **options).split()


# -- alignment and word error rate ---------------------------------------------------------------------


@dataclass(frozen=True)
class Op:
    """One step of an alignment: ``kind`` is ``"ok"``, ``"sub"``, ``"del"`` (a reference word missed) or
    ``"ins"`` (a word the hypothesis added); ``ref``/``hyp`` are the words (None where there is none)."""

    kind: str
    ref: str | None
    hyp: str | None


def align(ref_words: Sequence[str], hyp_words: Sequence[str]) -> list[Op]:
    """A minimum-edit (Levenshtein, unit costs) alignment of two word lists, in order. Among alignments
    with the fewest errors, matches and substitutions are preferred to a deletion plus an insertion."""
    n, m = len(ref_words), len(hyp_words)
    # cost[i][j]: errors aligning ref[:i] with hyp[:j]
    cost = [[0] * (m + 1) for _ in range(n + 1)]
    for j in range(m + 1):
        cost[0][j] = j
    for i in range(1, n + 1):
        cost[i][0] = i
        r, row, prev = ref_words[i - 1], cost[i], cost[i - 1]
        for j in range(1, m + 1):
            row[j] = min(prev[j - 1] + (r != hyp_words[j - 1]), prev[j] + 1, row[j - 1] + 1)
    ops: list[Op] = []
    i, j = n, m
    while i or j:
        if i and j and cost[i][j] == cost[i - 1][j - 1] + (ref_words[i - 1] != hyp_words[j - 1]):
            same = ref_words[i - 1] == hyp_words[j - 1]
            ops.append(Op("ok" if same else "sub", ref_words[i - 1], hyp_words[j - 1]))
            i, j = i - 1, j - 1
        elif i and cost[i][j] == cost[i - 1][j] + 1:
            ops.append(Op("del", ref_words[i - 1], None))
            i -= 1
        else:
            ops.append(Op("ins", None, hyp_words[j - 1]))
            j -= 1
    ops.reverse()
    return ops


def format_alignment(ops: Sequence[Op]) -> tuple[str, str]:
    """Two aligned lines, ``ref`` and ``hyp``: correct words in lower case, errors in upper case, ``*``
    filling the side a deletion or insertion lacks."""
    top, bottom = [], []
    for op in ops:
        r, h = op.ref or "", op.hyp or ""
        if op.kind != "ok":
            r, h = (r.upper() or "*"), (h.upper() or "*")
        width = max(len(r), len(h))
        top.append(r.ljust(width))
        bottom.append(h.ljust(width))
    return " ".join(top).rstrip(), " ".join(bottom).rstrip()


@dataclass(frozen=True)
class WerResult:
    """Error counts pooled over utterances. ``wer`` is (substitutions + deletions + insertions) /
    ``ref_words``, a fraction (it can exceed 1); with no reference words it is 0 without insertions, else
    infinite."""

    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    ref_words: int = 0
    utterances: int = 0

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def wer(self) -> float:
        if self.ref_words == 0:
            return 0.0 if self.errors == 0 else float("inf")
        return self.errors / self.ref_words

    def __add__(self, other: WerResult) -> WerResult:
        return WerResult(
            self.substitutions + other.substitutions,
            self.deletions + other.deletions,
            self.insertions + other.insertions,
            self.ref_words + other.ref_words,
            self.utterances + other.utterances,
        )


def wer(
    refs: Sequence[str], hyps: Sequence[str], *, normalizer: Callable[[str], str] | None = normalize
) -> WerResult:
    """Word error rate of ``hyps`` against ``refs`` (one string per utterance, paired in order), pooled:
    every utterance's errors and reference words are summed before dividing. Both sides pass through
    ``normalizer`` first (None: split as given)."""
    if isinstance(refs, str) or isinstance(hyps, str):
        raise BadInputError("wer takes sequences of utterances, not a single string; wrap it in a list")
    if len(refs) != len(hyps):
        raise BadInputError(f"wer: {len(refs)} references but {len(hyps)} hypotheses; they pair one to one")
    norm = normalizer or (lambda s: s)
    total = WerResult()
    for ref, hyp in zip(refs, hyps, strict=True):
        r, h = norm(ref).split(), norm(hyp).split()
        kinds = [op.kind for op in align(r, h)]
        total += WerResult(kinds.count("sub"), kinds.count("del"), kinds.count("ins"), len(r), 1)
    return total
