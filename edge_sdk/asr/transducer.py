"""Decoding of stateless transducer (RNN-T) models in the sherpa-onnx / icefall ONNX layout: greedy search and
modified beam search over encoder output that may arrive chunk by chunk.

The search takes two callables, ``decoder_fn(y int64 [N, context]) -> [N, C]`` and
``joiner_fn(encoder_out [N, C], decoder_out [N, C]) -> logits [N, V]``, so it runs on any runtime;
``OnnxTransducer`` supplies them from ``encoder.onnx``, ``decoder.onnx`` and ``joiner.onnx``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from edge_sdk.asr.arpa import ArpaLM
from edge_sdk.asr.hotwords import Hotwords
from edge_sdk.asr.scoring import DecodeResult, PrefixScorer, PrefixState, check_matrix, log_add, log_softmax
from edge_sdk.asr.tokens import TokenTable
from edge_sdk.errors import BadInputError, RunFailed

DecoderFn = Callable[[np.ndarray], np.ndarray]
JoinerFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
METHODS = ("greedy_search", "modified_beam_search")


@dataclass(frozen=True)
class _Hyp:
    tokens: tuple[int, ...]
    frames: tuple[int, ...]
    am: float  # log-probability of the joiner's choices, blanks included
    state: PrefixState | None

    def extra(self) -> float:
        return self.state.score if self.state is not None else 0.0


@dataclass(frozen=True)
class _Config:
    decoder_fn: DecoderFn
    joiner_fn: JoinerFn
    context_size: int
    vocab_size: int | None
    blank: int
    method: str
    beam: int
    max_symbols_per_frame: int
    length_norm: bool
    tokens: TokenTable | None
    scorer: PrefixScorer


class TransducerDecoder:
    """Greedy search (``max_symbols_per_frame`` tokens at most per encoder frame; 1, as sherpa-onnx does) or
    modified beam search (one token per frame, hypotheses with the same tokens merged by log-add, the best
    picked by score per token as sherpa-onnx and icefall do when ``length_norm``). Hotwords and a word
    language model (shallow fusion at word ends) apply to modified beam search."""

    def __init__(
        self,
        decoder_fn: DecoderFn,
        joiner_fn: JoinerFn,
        *,
        context_size: int,
        vocab_size: int | None = None,
        blank: int = 0,
        method: str = "greedy_search",
        beam: int = 4,
        max_symbols_per_frame: int = 1,
        length_norm: bool = True,
        tokens: TokenTable | None = None,
        hotwords: Hotwords | None = None,
        lm: ArpaLM | None = None,
        alpha: float = 0.3,
        beta: float = 0.0,
    ) -> None:
        if method not in METHODS:
            raise BadInputError(f"unknown transducer decoding method {method!r}; choose one of {METHODS}")
        if context_size < 1:
            raise BadInputError(f"context_size must be at least 1, got {context_size}")
        if beam < 1 or max_symbols_per_frame < 1:
            raise BadInputError("beam and max_symbols_per_frame must be at least 1")
        if tokens is not None and vocab_size is not None and len(tokens) != vocab_size:
            raise BadInputError(f"the token table has {len(tokens)} symbols but the model {vocab_size}")
        scorer = PrefixScorer(tokens, lm=lm, alpha=alpha, beta=beta, hotwords=hotwords)
        if scorer.active and method == "greedy_search":
            raise BadInputError("hotwords and a language model need method='modified_beam_search'")
        vocab = vocab_size if vocab_size is not None else (len(tokens) if tokens is not None else None)
        self._config = _Config(
            decoder_fn,
            joiner_fn,
            context_size,
            vocab,
            blank,
            method,
            beam,
            max_symbols_per_frame,
            length_norm,
            tokens,
            scorer,
        )

    def decode(self, encoder_out: np.ndarray) -> DecodeResult:
        """The best hypothesis for a whole utterance's encoder output [T, C]."""
        stream = self.stream()
        stream.accept(encoder_out)
        return stream.finish()

    def stream(self) -> TransducerStream:
        """A fresh stream that takes encoder output chunk by chunk."""
        return TransducerStream(self._config)


class _DecoderCache:
    """Decoder outputs by context (the last ``context_size`` tokens): a stateless decoder sees nothing else,
    so each context is run once, and what the next frame or chunk needs is kept."""

    def __init__(self, config: _Config) -> None:
        self._c = config
        self._rows: dict[tuple[int, ...], np.ndarray] = {}

    def context(self, tokens: tuple[int, ...]) -> tuple[int, ...]:
        size = self._c.context_size
        # Before any token the context is all blanks (icefall's decoder embeds blank as zeros).
        return ((self._c.blank,) * size + tokens)[-size:]

    def rows(self, hyps: Sequence[_Hyp]) -> np.ndarray:
        keys = [self.context(h.tokens) for h in hyps]
        missing = list(dict.fromkeys(k for k in keys if k not in self._rows))
        if missing:
            out = np.asarray(self._c.decoder_fn(np.array(missing, dtype=np.int64)))
            if out.ndim != 2 or out.shape[0] != len(missing):
                raise RunFailed(f"the transducer decoder gave shape {out.shape} for {len(missing)} contexts")
            self._rows.update(zip(missing, out, strict=True))
        return np.stack([self._rows[k] for k in keys])

    def keep(self, hyps: Sequence[_Hyp]) -> None:
        wanted = {self.context(h.tokens) for h in hyps}
        self._rows = {k: v for k, v in self._rows.items() if k in wanted}


class TransducerStream:
    """Search over chunks of encoder output. Frames are searched one at a time and decoder outputs are kept
    between chunks, so ``finish()`` equals ``TransducerDecoder.decode`` on the whole encoder output."""

    def __init__(self, config: _Config) -> None:
        self._c = config
        self._cache = _DecoderCache(config)
        start = _Hyp((), (), 0.0, config.scorer.start() if config.scorer.active else None)
        self._hyps: dict[tuple[int, ...], _Hyp] = {(): start}
        self._width: int | None = None
        self._frame = 0
        self._done = False

    def accept(self, encoder_out: np.ndarray) -> None:
        """Search the next chunk of encoder output [t, C]."""
        if self._done:
            raise BadInputError("this transducer stream is finished; start a new one")
        x = check_matrix(encoder_out, self._width, "transducer encoder output", "channels")
        self._width = x.shape[1]
        step = self._greedy_step if self._c.method == "greedy_search" else self._beam_step
        for frame in x:
            step(frame)
            self._frame += 1

    def partial(self) -> DecodeResult:
        """The best hypothesis so far (without the end-of-utterance scores)."""
        return self._best(final=False)

    def finish(self) -> DecodeResult:
        """The best hypothesis once the utterance has ended; the stream takes no more frames."""
        self._done = True
        return self._best(final=True)

    def _best(self, final: bool) -> DecodeResult:
        c = self._c

        def score(h: _Hyp) -> float:
            end = c.scorer.finish(h.state) if final and h.state is not None else 0.0
            return h.am + h.extra() + end

        def rank(h: _Hyp) -> float:
            # sherpa-onnx and icefall divide by the length of the token list that starts with the context's
            # blanks; that keeps an empty hypothesis comparable
            return score(h) / (len(h.tokens) + c.context_size) if c.length_norm else score(h)

        best = max(self._hyps.values(), key=rank)
        text = c.tokens.text(best.tokens) if c.tokens is not None else ""
        return DecodeResult(best.tokens, best.frames, score(best), text)

    def _log_probs(self, frame: np.ndarray, hyps: Sequence[_Hyp]) -> np.ndarray:
        dec = self._cache.rows(hyps)
        enc = np.repeat(frame[None, :].astype(np.float32), len(hyps), axis=0)
        logits = np.asarray(self._c.joiner_fn(enc, dec.astype(np.float32, copy=False)))
        vocab = self._c.vocab_size
        if (
            logits.ndim != 2
            or logits.shape[0] != len(hyps)
            or (vocab is not None and logits.shape[1] != vocab)
        ):
            raise RunFailed(
                f"the transducer joiner gave shape {logits.shape} for {len(hyps)} hypotheses "
                f"(expected [{len(hyps)}, {vocab if vocab is not None else 'V'}])"
            )
        if not np.isfinite(logits).all():
            raise RunFailed("the transducer joiner gave NaN or infinite logits")
        return log_softmax(logits.astype(np.float64))

    def _greedy_step(self, frame: np.ndarray) -> None:
        (hyp,) = self._hyps.values()
        for _ in range(self._c.max_symbols_per_frame):
            row = self._log_probs(frame, [hyp])[0]
            token = int(row.argmax())
            hyp = replace(hyp, am=hyp.am + float(row[token]))
            if token == self._c.blank:
                break
            hyp = replace(hyp, tokens=(*hyp.tokens, token), frames=(*hyp.frames, self._frame))
        self._hyps = {hyp.tokens: hyp}
        self._cache.keep([hyp])

    def _beam_step(self, frame: np.ndarray) -> None:
        c = self._c
        hyps = list(self._hyps.values())
        log_probs = self._log_probs(frame, hyps)
        totals = log_probs + np.array([h.am + h.extra() for h in hyps])[:, None]
        flat = totals.ravel()
        k = min(c.beam, flat.size)
        # best first, ties to the lower index, so merged hypotheses keep the frames of the better path
        top = np.argsort(-flat, kind="stable")[:k]
        merged: dict[tuple[int, ...], _Hyp] = {}
        for index in top:
            n, token = divmod(int(index), log_probs.shape[1])
            parent, lp = hyps[n], float(log_probs[n, token])
            if token == c.blank:
                child = replace(parent, am=parent.am + lp)
            else:
                state = c.scorer.extend(parent.state, token) if parent.state is not None else None
                child = _Hyp((*parent.tokens, token), (*parent.frames, self._frame), parent.am + lp, state)
            seen = merged.get(child.tokens)
            merged[child.tokens] = child if seen is None else replace(seen, am=log_add(seen.am, child.am))
        self._hyps = merged
        self._cache.keep(list(merged.values()))


def _metadata_int(session: object, key: str) -> int | None:
    meta = session.get_modelmeta().custom_metadata_map  # type: ignore[attr-defined]
    return int(meta[key]) if key in meta else None


class OnnxTransducer:
    """The three ONNX files of a stateless transducer run through onnxruntime (one thread each by default)."""

    def __init__(
        self, encoder: str | Path, decoder: str | Path, joiner: str | Path, threads: int = 1
    ) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = threads
        sessions = []
        for path in (encoder, decoder, joiner):
            if not Path(path).is_file():
                raise BadInputError(f"transducer model file not found: {path}")
            try:
                sessions.append(ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"]))
            except Exception as e:  # onnxruntime raises its own classes for unreadable or invalid models
                raise BadInputError(f"cannot load {path} into onnxruntime: {e}") from e
        self._encoder, self._decoder, self._joiner = sessions
        y, logit = self._decoder.get_inputs()[0], self._joiner.get_outputs()[0]
        context = _metadata_int(self._decoder, "context_size")
        vocab = _metadata_int(self._decoder, "vocab_size")
        self.context_size: int = context if context is not None else _static(y.shape, 1, "decoder input y")
        self.vocab_size: int = vocab if vocab is not None else _static(logit.shape, 1, "joiner output logit")
        self.feature_dim: int | None = _maybe_static(self._encoder.get_inputs()[0].shape, 2)

    @classmethod
    def from_dir(cls, folder: str | Path, threads: int = 1) -> OnnxTransducer:
        """Load ``encoder.onnx``, ``decoder.onnx`` and ``joiner.onnx`` from ``folder``."""
        folder = Path(folder)
        return cls(folder / "encoder.onnx", folder / "decoder.onnx", folder / "joiner.onnx", threads=threads)

    def encode(self, features: np.ndarray) -> np.ndarray:
        """Encoder output [T', C] for one utterance's features [T, feature_dim]."""
        x = check_matrix(features, self.feature_dim, "transducer input features", "features")
        outputs = self._run(
            self._encoder,
            {"x": x[None].astype(np.float32), "x_lens": np.array([len(x)], dtype=np.int64)},
        )
        length = int(np.asarray(outputs[1]).reshape(-1)[0])
        return np.asarray(outputs[0])[0, :length]

    def decoder(self, y: np.ndarray) -> np.ndarray:
        """``decoder_out`` [N, C] for contexts ``y`` int64 [N, context_size]."""
        return self._run(self._decoder, {"y": y.astype(np.int64, copy=False)})[0]

    def joiner(self, encoder_out: np.ndarray, decoder_out: np.ndarray) -> np.ndarray:
        """``logit`` [N, V] for matched rows of encoder and decoder output."""
        return self._run(self._joiner, {"encoder_out": encoder_out, "decoder_out": decoder_out})[0]

    def search(self, tokens: TokenTable | None = None, **options: object) -> TransducerDecoder:
        """A ``TransducerDecoder`` over this model; ``options`` are its keyword arguments."""
        return TransducerDecoder(
            self.decoder,
            self.joiner,
            context_size=self.context_size,
            vocab_size=self.vocab_size,
            tokens=tokens,
            **options,  # type: ignore[arg-type]
        )

    @staticmethod
    def _run(session: object, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        try:
            return session.run(None, feeds)  # type: ignore[attr-defined]
        except Exception as e:  # onnxruntime's failures carry the node; keep them, with the shapes
            shapes = {k: v.shape for k, v in feeds.items()}
            raise RunFailed(f"transducer model failed in onnxruntime on inputs {shapes}: {e}") from e


def _maybe_static(shape: Sequence[object], axis: int) -> int | None:
    return shape[axis] if len(shape) > axis and isinstance(shape[axis], int) else None  # type: ignore[return-value]


def _static(shape: Sequence[object], axis: int, what: str) -> int:
    value = _maybe_static(shape, axis)
    if value is None:
        raise BadInputError(
            f"the model has no metadata for it and the {what} has no fixed size on axis {axis}"
        )
    return value
