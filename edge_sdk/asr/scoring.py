"""What CTC and transducer searches share: the result type, log-domain arithmetic, the input checks, and the
score a growing hypothesis earns besides the acoustic one (hotword bonuses, a word language model)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edge_sdk.asr.arpa import BOS, EOS, ArpaLM
from edge_sdk.asr.hotwords import Hotwords, HotwordState
from edge_sdk.asr.tokens import TokenTable
from edge_sdk.errors import BadInputError

NEG_INF = -math.inf


@dataclass(frozen=True)
class DecodeResult:
    """A decoded hypothesis: token ids, the output frame at which each was emitted, its score (acoustic
    log-probability plus any hotword and language-model score), and its text when a token table is known."""

    tokens: tuple[int, ...]
    frames: tuple[int, ...]
    score: float
    text: str = ""


def log_add(a: float, b: float) -> float:
    """``log(exp(a) + exp(b))`` without overflow."""
    if a < b:
        a, b = b, a
    if b == NEG_INF:
        return a
    return a + math.log1p(math.exp(b - a))


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Log-probabilities from logits along ``axis``."""
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def check_matrix(x: np.ndarray, width: int | None, what: str, columns: str) -> np.ndarray:
    """``x`` as a finite float 2-D array [frames, ``width``]; a clear BadInputError otherwise."""
    x = np.asarray(x)
    if x.ndim != 2:
        raise BadInputError(f"{what} must be 2-D [frames, {columns}], got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise BadInputError(f"{what} must be floating point, got {x.dtype}")
    if width is not None and x.shape[1] != width:
        raise BadInputError(f"{what} has {x.shape[1]} {columns} per frame, expected {width}")
    if np.isnan(x).any() or np.isposinf(x).any():
        raise BadInputError(f"{what} holds NaN or +inf (frame {int(np.argwhere(~(x < np.inf))[0][0])})")
    return x


@dataclass(frozen=True)
class PrefixState:
    """Everything the extra score of a hypothesis depends on: its LM history and unfinished word, its hotword
    match, and the extra score earned so far."""

    score: float = 0.0
    history: tuple[str, ...] = (BOS,)
    word: tuple[int, ...] = ()
    hot: HotwordState | None = None
    words: int = 0


class PrefixScorer:
    """Scores hypotheses as they grow token by token: ``alpha * ln P_lm(word | history) + beta`` for each word
    once it is complete, and hotword bonuses per token. The result depends only on the token sequence, so two
    paths to the same sequence share it."""

    def __init__(
        self,
        tokens: TokenTable | None = None,
        lm: ArpaLM | None = None,
        alpha: float = 0.5,
        beta: float = 1.0,
        hotwords: Hotwords | None = None,
    ) -> None:
        if lm is not None and (tokens is None or not tokens.has_words):
            raise BadInputError(
                "a word language model needs a token table that marks words: a delimiter symbol such as '|' "
                "or sentencepiece pieces starting with '▁'"
            )
        self.tokens, self.lm, self.alpha, self.beta, self.hotwords = tokens, lm, alpha, beta, hotwords

    @property
    def active(self) -> bool:
        """Whether any extra score is given at all (searches skip the bookkeeping otherwise)."""
        return self.lm is not None or self.hotwords is not None

    def start(self) -> PrefixState:
        """The state of the empty hypothesis."""
        return PrefixState(hot=self.hotwords.root if self.hotwords else None)

    def extend(self, state: PrefixState, token: int) -> PrefixState:
        """The state after appending ``token``."""
        score, hot = state.score, state.hot
        if self.hotwords is not None and hot is not None:
            bonus, hot = self.hotwords.advance(hot, token)
            score += bonus
        history, word, words = state.history, state.word, state.words
        if self.lm is not None and self.tokens is not None:
            delimiter = self.tokens.is_delimiter(token)
            if word and (delimiter or self.tokens.starts_word(token)):
                score += self._word_score(history, word)
                history, word, words = self.lm.state(history, self.tokens.word(word)), (), words + 1
            if not delimiter:
                word = (*word, token)
        return PrefixState(score, history, word, hot, words)

    def finish(self, state: PrefixState) -> float:
        """The score still to add at the end of the utterance: the last word, ``</s>``, and the take-back of
        a half-matched hotword."""
        extra = (
            self.hotwords.finish(state.hot) if self.hotwords is not None and state.hot is not None else 0.0
        )
        if self.lm is not None and self.tokens is not None:
            history = state.history
            if state.word:
                extra += self._word_score(history, state.word)
                history = self.lm.state(history, self.tokens.word(state.word))
            extra += self.alpha * self.lm.log_prob(history, EOS)
        return extra

    def _word_score(self, history: Sequence[str], word: tuple[int, ...]) -> float:
        assert self.lm is not None and self.tokens is not None
        return self.alpha * self.lm.log_prob(history, self.tokens.word(word)) + self.beta
