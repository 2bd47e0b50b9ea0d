"""A word n-gram language model read from an ARPA file, scored with Katz-style back-off (as KenLM scores
the same file). Probabilities come out in natural log so they add to acoustic log-probabilities."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

from edge_sdk.errors import BadInputError

LN10 = math.log(10.0)
BOS, EOS, UNK = "<s>", "</s>", "<unk>"
# KenLM's probability for a word the model never saw, when the file gives no <unk> line.
UNK_LOG10 = -100.0
_SECTION = re.compile(r"^\\(\d+)-grams:$")


class ArpaLM:
    """``log P(word | history)`` with back-off; a history is the tuple of preceding words."""

    def __init__(self, ngrams: dict[tuple[str, ...], tuple[float, float]], order: int) -> None:
        # ngram → (log10 prob, log10 back-off weight), as in the file
        self._ngrams = ngrams
        self.order = order
        unk = ngrams.get((UNK,))
        self._unk_log10 = unk[0] if unk else UNK_LOG10

    @classmethod
    def from_file(cls, path: str | Path) -> ArpaLM:
        """Read an ARPA file (plain text; ``\\data\\``, ``\\N-grams:`` sections, ``\\end\\``)."""
        path = Path(path)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as e:
            raise BadInputError(f"cannot read ARPA language model {path}: {e}") from e
        ngrams: dict[tuple[str, ...], tuple[float, float]] = {}
        counts: dict[int, int] = {}
        section = 0  # 0: before \data\ ends; N: inside \N-grams:
        for number, raw in enumerate(lines, 1):
            line = raw.strip()
            if not line or line == "\\data\\":
                continue
            if line == "\\end\\":
                break
            if line.startswith("ngram "):
                n, _, count = line[6:].partition("=")
                counts[int(n)] = int(count)
                continue
            header = _SECTION.match(line)
            if header:
                section = int(header.group(1))
                continue
            if section == 0:
                raise BadInputError(f"{path}:{number}: not an ARPA file (expected \\data\\ and ngram counts)")
            fields = line.split()
            if len(fields) not in (section + 1, section + 2):
                raise BadInputError(
                    f"{path}:{number}: a {section}-gram line needs {section + 1} or "
                    f"{section + 2} fields, got {len(fields)}"
                )
            try:
                prob = float(fields[0])
                backoff = float(fields[section + 1]) if len(fields) == section + 2 else 0.0
            except ValueError:
                raise BadInputError(f"{path}:{number}: bad number in {line!r}") from None
            ngrams[tuple(fields[1 : section + 1])] = (prob, backoff)
        if not counts or not ngrams:
            raise BadInputError(f"{path}: no n-grams found; is it an ARPA file?")
        return cls(ngrams, order=max(counts))

    def __contains__(self, word: str) -> bool:
        return (word,) in self._ngrams

    def log10_prob(self, history: Sequence[str], word: str) -> float:
        """``log10 P(word | history)``: the longest n-gram in the file, plus the back-off weights of the
        histories that had to be shortened to reach it."""
        history = tuple(history[-(self.order - 1) :]) if self.order > 1 else ()
        penalty = 0.0
        while True:
            hit = self._ngrams.get((*history, word))
            if hit is not None:
                return penalty + hit[0]
            if not history:
                return penalty + self._unk_log10
            penalty += self._ngrams.get(history, (0.0, 0.0))[1]
            history = history[1:]

    def log_prob(self, history: Sequence[str], word: str) -> float:
        """``ln P(word | history)``."""
        return self.log10_prob(history, word) * LN10

    def state(self, history: Sequence[str], word: str) -> tuple[str, ...]:
        """The history after ``word``: only the last ``order - 1`` words can change a later probability."""
        keep = self.order - 1
        return (*history, word)[-keep:] if keep else ()

    def sentence_log_prob(self, words: Sequence[str]) -> float:
        """``ln P(<s> words </s>)``, as KenLM's ``score(sentence, bos=True, eos=True)`` (in ln, not log10)."""
        history: tuple[str, ...] = (BOS,)
        total = 0.0
        for word in [*words, EOS]:
            total += self.log_prob(history, word)
            history = self.state(history, word)
        return total
