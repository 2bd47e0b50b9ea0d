"""CTC and transducer models as recognisers: audio → features (``asr.features``) → the model's ONNX
file(s) → model-independent decoding (``asr.ctc``, ``asr.transducer``) → text.

A CTC model is one ONNX file whose first input is the features ``[N, T, D]`` (or ``[N, D, T]``, as NeMo
exports them; the axis with the fixed size is the feature axis), with an optional second input of lengths,
and whose first output is log-probabilities or logits ``[N, T', V]`` (logits are normalised here). A
transducer is sherpa-onnx's three files (see ``OnnxTransducer``). The token table is sherpa-onnx's
``tokens.txt``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.asr.features import feature_function
from edge_sdk.asr.frames import META_KIND
from edge_sdk.asr.scoring import DecodeResult, log_softmax
from edge_sdk.asr.tokens import TokenTable
from edge_sdk.asr.whisper import SAMPLE_RATE, Transcription
from edge_sdk.errors import BadInputError


def model_info(path: Path) -> tuple[dict[str, str], list[Any]]:
    """A model file's metadata and its graph inputs' shapes (dims as ints or names)."""
    import onnx

    if not path.is_file():
        raise BadInputError(f"ASR model file not found: {path}")
    try:
        model = onnx.load(os.fspath(path), load_external_data=False)
    except Exception as e:
        raise BadInputError(f"{path} is not a readable ONNX model: {e}") from e
    shapes = [
        [d.dim_value if d.HasField("dim_value") else d.dim_param for d in i.type.tensor_type.shape.dim]
        for i in model.graph.input
    ]
    return {p.key: p.value for p in model.metadata_props}, shapes


def _tokens(folder: Path, tokens: str | os.PathLike[str] | TokenTable | None) -> TokenTable:
    if isinstance(tokens, TokenTable):
        return tokens
    path = Path(tokens) if tokens is not None else folder / "tokens.txt"
    if not path.is_file():
        raise BadInputError(f"no token table {path}: give tokens= (sherpa-onnx's tokens.txt)")
    return TokenTable.from_file(path)


def _hotwords(hotwords: Any, tokens: TokenTable) -> Any:
    """Hotwords as the decoders take them: a ``Hotwords`` as it is, phrases given as text spelt with the
    model's own token table, nothing for none."""
    from edge_sdk.asr.hotwords import Hotwords

    if not hotwords or isinstance(hotwords, Hotwords):
        return hotwords or None
    return Hotwords.from_text(list(hotwords), tokens)


def _transcription(
    result: DecodeResult, tokens: TokenTable, seconds: float, frames: int, pad: float
) -> Transcription:
    """A decoding result as a Transcription; a token's time is the start of the output frame it was emitted
    on (``frames`` output frames span the audio's ``seconds`` and the ``pad`` of silence either side,
    whatever the model's subsampling), within the audio."""
    step = (seconds + 2 * pad) / frames if frames else 0.0
    return Transcription(
        text=result.text or tokens.text(list(result.tokens)),
        token_ids=list(result.tokens),
        tokens=[tokens.symbols[t] for t in result.tokens],
        avg_logprob=result.score / max(1, len(result.tokens)),
        duration=seconds,
        times=[round(min(max(f * step - pad, 0.0), seconds), 3) for f in result.frames],
    )


class CtcModel:
    """A CTC acoustic model and its decoder (greedy when ``beam`` is 1, else prefix beam search)."""

    def __init__(
        self,
        model: str | os.PathLike[str],
        *,
        tokens: str | os.PathLike[str] | TokenTable | None = None,
        beam: int = 1,
        hotwords: Any = None,
        lm: Any = None,
        device: str = "auto",
        backend: str = "auto",
        threads: int | None = 1,
        **decoder_options: Any,
    ) -> None:
        from edge_sdk import load
        from edge_sdk.asr.arpa import ArpaLM
        from edge_sdk.asr.ctc import CtcDecoder

        self.path = Path(model)
        metadata, shapes = model_info(self.path)
        if metadata.get(META_KIND, "ctc") != "ctc":
            raise BadInputError(f"{self.path} is a {metadata[META_KIND]} model, not a CTC model")
        first = shapes[0] if shapes else []
        if len(first) != 3:
            raise BadInputError(
                f"{self.path}: a CTC model takes features [N, T, D] (or [N, D, T]) first; its first input "
                f"has shape {first}"
            )
        self.channels_first = isinstance(first[1], int) and first[1] > 0 and not isinstance(first[2], int)
        dim = first[1] if self.channels_first else first[2]
        self.features, self.front_end, self.pad = feature_function(
            metadata, dim if isinstance(dim, int) and dim else None
        )
        self.tokens = _tokens(self.path.parent, tokens)
        self.session = load(self.path, device=device, backend=backend, threads=threads)
        if lm is not None and not isinstance(lm, ArpaLM):
            lm = ArpaLM.from_file(lm)
        hot = _hotwords(hotwords, self.tokens)
        self.decoder = CtcDecoder(self.tokens, beam=beam, hotwords=hot, lm=lm, **decoder_options)
        self.beam = beam

    def log_probs(self, audio: np.ndarray) -> np.ndarray:
        """Log-probabilities ``[T', V]`` of 16 kHz ``audio``."""
        feats = np.asarray(self.features(audio), np.float32)
        x = feats.T[None] if self.channels_first else feats[None]
        names = self.session.input_names
        feeds: dict[str, np.ndarray] = {names[0]: x}
        if len(names) > 1:
            feeds[names[1]] = np.array([len(feats)], np.int64)
        out = np.asarray(self.session.run(feeds)[self.session.output_names[0]], np.float32)[0]
        if out.shape[-1] != len(self.tokens):
            raise BadInputError(
                f"{self.path} gives {out.shape[-1]} classes per frame; the token table has {len(self.tokens)}"
            )
        return out if np.allclose(np.exp(out).sum(-1), 1.0, atol=1e-3) else log_softmax(out)

    def transcribe(self, audio: np.ndarray, options: Any = None) -> Transcription:
        """Text of ``audio`` (16 kHz mono float)."""
        from edge_sdk.asr.ctc import greedy

        lp = self.log_probs(audio)
        result = greedy(lp, tokens=self.tokens) if self.beam == 1 else self.decoder.decode(lp)
        return _transcription(result, self.tokens, len(audio) / SAMPLE_RATE, len(lp), self.pad)


class TransducerModel:
    """A stateless transducer (encoder, decoder, joiner ONNX files) and its search."""

    def __init__(
        self,
        folder: str | os.PathLike[str],
        *,
        tokens: str | os.PathLike[str] | TokenTable | None = None,
        method: str = "greedy_search",
        beam: int = 4,
        hotwords: Any = None,
        threads: int = 1,
        **search_options: Any,
    ) -> None:
        from edge_sdk.asr.transducer import OnnxTransducer

        self.folder = Path(folder)
        self.model = OnnxTransducer.from_dir(self.folder, threads=threads)
        metadata, _ = model_info(self.folder / "encoder.onnx")
        self.features, self.front_end, self.pad = feature_function(metadata, self.model.feature_dim)
        self.tokens = _tokens(self.folder, tokens)
        options = {"method": method, "hotwords": _hotwords(hotwords, self.tokens), **search_options}
        if method != "greedy_search":
            options["beam"] = beam
        self.search = self.model.search(self.tokens, **options)

    def transcribe(self, audio: np.ndarray, options: Any = None) -> Transcription:
        """Text of ``audio`` (16 kHz mono float)."""
        encoded = self.model.encode(np.asarray(self.features(audio), np.float32))
        return _transcription(
            self.search.decode(encoded), self.tokens, len(audio) / SAMPLE_RATE, len(encoded), self.pad
        )
