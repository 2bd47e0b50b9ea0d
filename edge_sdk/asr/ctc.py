"""CTC decoding of a model's per-frame log-probabilities [T, V]: greedy, and prefix beam search with per-frame
token pruning, hotword boosting and a word n-gram language model, fed whole or chunk by chunk."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge_sdk.asr.arpa import ArpaLM
from edge_sdk.asr.hotwords import Hotwords
from edge_sdk.asr.scoring import NEG_INF, DecodeResult, PrefixScorer, PrefixState, check_matrix, log_add
from edge_sdk.asr.tokens import TokenTable
from edge_sdk.errors import BadInputError

# Log-softmax output is never above 0; a little slack for float16 rounding, while logits are caught.
_MAX_LOG_PROB = 1e-3


def check_log_probs(log_probs: np.ndarray, vocab_size: int | None) -> np.ndarray:
    """``log_probs`` as float64 [T, V], or a BadInputError that says what is wrong with it."""
    x = check_matrix(log_probs, vocab_size, "CTC log-probabilities", "tokens").astype(np.float64, copy=False)
    if x.size and x.max() > _MAX_LOG_PROB:
        raise BadInputError(
            f"CTC log-probabilities hold values above 0 (max {x.max():.3g}): these look like logits; "
            "apply log_softmax over the token axis first"
        )
    return x


def greedy(log_probs: np.ndarray, blank: int | None = None, tokens: TokenTable | None = None) -> DecodeResult:
    """Best path: the most likely token of each frame, repeats collapsed, blanks dropped (``blank``: the
    table's, else 0). Each token's frame is the first frame of its run; the score is the best path's
    log-probability."""
    x = check_log_probs(log_probs, len(tokens) if tokens is not None else None)
    blank = (tokens.blank if tokens is not None else 0) if blank is None else blank
    if not 0 <= blank < max(x.shape[1], 1):
        raise BadInputError(f"blank id {blank} is outside the {x.shape[1]} tokens")
    best = x.argmax(axis=1) if x.size else np.zeros(0, dtype=np.int64)
    # a frame emits when its token differs from the previous frame's and is not blank
    starts = np.flatnonzero((best != np.concatenate(([-1], best[:-1]))) & (best != blank))
    ids = tuple(int(t) for t in best[starts])
    score = float(x[np.arange(len(best)), best].sum())
    return DecodeResult(ids, tuple(int(f) for f in starts), score, tokens.text(ids) if tokens else "")


class _Prefix:
    """One prefix in the beam: the log-probability of its alignments ending in blank (``pb``) and in its last
    token (``pnb``), the frames its tokens were emitted at, and its language-model/hotword state."""

    __slots__ = ("pb", "pnb", "frames", "state", "lead")

    def __init__(self, frames: tuple[int, ...], state: PrefixState | None) -> None:
        self.pb = self.pnb = NEG_INF
        self.frames, self.state = frames, state
        self.lead = NEG_INF  # largest single contribution this frame: its path decides the frames

    def total(self) -> float:
        return log_add(self.pb, self.pnb)

    def extra(self) -> float:
        return self.state.score if self.state is not None else 0.0

    def add(self, blank: bool, value: float, frames: tuple[int, ...]) -> None:
        if blank:
            self.pb = log_add(self.pb, value)
        else:
            self.pnb = log_add(self.pnb, value)
        if value > self.lead:
            self.lead, self.frames = value, frames


@dataclass(frozen=True)
class _Config:
    tokens: TokenTable | None
    vocab_size: int | None
    blank: int
    beam: int
    top_k: int | None
    min_log_prob: float | None
    scorer: PrefixScorer


class CtcDecoder:
    """CTC prefix beam search (log domain, blank and non-blank probabilities per prefix).

    ``top_k`` and ``min_log_prob`` prune the tokens tried at each frame (the frame's best token is always
    tried; ``None`` turns either off); ``hotwords`` boost phrases; ``lm`` adds
    ``alpha * ln P(word | history) + beta`` as each word completes (words from the token table's delimiter or
    ``▁`` pieces) and ``</s>`` at the end."""

    def __init__(
        self,
        tokens: TokenTable | None = None,
        *,
        vocab_size: int | None = None,
        blank: int | None = None,
        beam: int = 8,
        top_k: int | None = 16,
        min_log_prob: float | None = -10.0,
        hotwords: Hotwords | None = None,
        lm: ArpaLM | None = None,
        alpha: float = 0.5,
        beta: float = 1.0,
    ) -> None:
        if beam < 1:
            raise BadInputError(f"beam must be at least 1, got {beam}")
        if top_k is not None and top_k < 1:
            raise BadInputError(f"top_k must be at least 1, got {top_k}")
        if tokens is not None and vocab_size is not None and vocab_size != len(tokens):
            raise BadInputError(
                f"vocab_size {vocab_size} differs from the token table's {len(tokens)} symbols"
            )
        blank = (tokens.blank if tokens is not None else 0) if blank is None else blank
        vocab = len(tokens) if tokens is not None else vocab_size
        if blank < 0 or (vocab is not None and blank >= vocab):
            raise BadInputError(f"blank id {blank} is outside the {vocab} tokens")
        scorer = PrefixScorer(tokens, lm=lm, alpha=alpha, beta=beta, hotwords=hotwords)
        self._config = _Config(tokens, vocab, blank, beam, top_k, min_log_prob, scorer)

    def decode(self, log_probs: np.ndarray) -> DecodeResult:
        """The best hypothesis for a whole utterance's log-probabilities [T, V]."""
        stream = self.stream()
        stream.accept(log_probs)
        return stream.finish()

    def stream(self) -> CtcStream:
        """A fresh stream that takes the log-probabilities chunk by chunk."""
        return CtcStream(self._config)


class CtcStream:
    """Prefix beam search over chunks of frames. Frames are searched one at a time whatever the chunking, so
    ``finish()`` equals ``CtcDecoder.decode`` on the whole matrix."""

    def __init__(self, config: _Config) -> None:
        self._c = config
        self._vocab = config.vocab_size
        start = _Prefix((), config.scorer.start() if config.scorer.active else None)
        start.pb = 0.0
        self._beam: dict[tuple[int, ...], _Prefix] = {(): start}
        self._frame = 0
        self._done = False

    def accept(self, log_probs: np.ndarray) -> None:
        """Search the next chunk of frames, log-probabilities [t, V]."""
        if self._done:
            raise BadInputError("this CTC stream is finished; start a new one")
        x = check_log_probs(log_probs, self._vocab)
        if self._vocab is None:
            if self._c.blank >= x.shape[1]:
                raise BadInputError(f"blank id {self._c.blank} is outside the {x.shape[1]} tokens")
            self._vocab = x.shape[1]
        for row in x:
            self._step(row)
            self._frame += 1

    def partial(self) -> DecodeResult:
        """The best hypothesis so far (without the end-of-utterance scores)."""
        key, prefix = max(self._beam.items(), key=lambda kv: kv[1].total() + kv[1].extra())
        return self._result(key, prefix, prefix.total() + prefix.extra())

    def finish(self) -> DecodeResult:
        """The best hypothesis once the utterance has ended; the stream takes no more frames."""
        self._done = True
        scorer = self._c.scorer

        def final(prefix: _Prefix) -> float:
            end = scorer.finish(prefix.state) if prefix.state is not None else 0.0
            return prefix.total() + prefix.extra() + end

        key, prefix = max(self._beam.items(), key=lambda kv: final(kv[1]))
        return self._result(key, prefix, final(prefix))

    def _result(self, key: tuple[int, ...], prefix: _Prefix, score: float) -> DecodeResult:
        tokens = self._c.tokens
        return DecodeResult(key, prefix.frames, score, tokens.text(key) if tokens is not None else "")

    def _candidates(self, row: np.ndarray) -> list[int]:
        c = self._c
        ids = np.argsort(-row, kind="stable")[: c.top_k] if c.top_k is not None else np.arange(len(row))
        if c.min_log_prob is not None:
            ids = ids[(row[ids] >= c.min_log_prob) | (ids == int(row.argmax()))]
        return [int(i) for i in ids if i != c.blank and row[i] > NEG_INF]

    def _step(self, row: np.ndarray) -> None:
        c, t = self._c, self._frame
        candidates = self._candidates(row)
        tried = set(candidates)
        blank_lp = float(row[c.blank])
        nxt: dict[tuple[int, ...], _Prefix] = {}

        def entry(key: tuple[int, ...], parent: _Prefix, token: int | None) -> _Prefix:
            found = nxt.get(key)
            if found is None:
                # a prefix already in the beam keeps its state; a new one derives it from its parent once
                old = self._beam.get(key)
                if old is not None:
                    found = _Prefix(old.frames, old.state)
                else:
                    state = parent.state
                    if state is not None and token is not None:
                        state = c.scorer.extend(state, token)
                    found = _Prefix(parent.frames, state)
                nxt[key] = found
            return found

        for key, prefix in self._beam.items():
            total = prefix.total()
            entry(key, prefix, None).add(True, total + blank_lp, prefix.frames)
            last = key[-1] if key else None
            # The last token's own continuation is always followed, even when pruned from this frame's list:
            # dropping it would lose the prefix's non-blank mass.
            tokens = candidates if last is None or last in tried else [*candidates, last]
            for token in tokens:
                lp = float(row[token])
                if token == last:
                    entry(key, prefix, None).add(False, prefix.pnb + lp, prefix.frames)
                    grow = prefix.pb + lp  # a repeat makes a new token only after a blank
                else:
                    grow = total + lp
                if grow > NEG_INF:
                    entry((*key, token), prefix, token).add(False, grow, (*prefix.frames, t))
        ranked = sorted(nxt.items(), key=lambda kv: kv[1].total() + kv[1].extra(), reverse=True)
        self._beam = dict(ranked[: c.beam])
