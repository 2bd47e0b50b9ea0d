"""Keyword spotting stage ``kws.ctc``: keywords as the words a small streaming CTC recogniser emits.

A classifier (``kws.onnx``) must tell each keyword from every other sound a window can hold, and its
per-word thresholds fight look-alike speech. A recogniser whose vocabulary is the keywords plus a filler
token for any other speech (``edge-sdk train asr --filler``) decides the other way round: every stretch of
speech is explained as words or filler, and a keyword fires where the model emits it. The model is one
``edge_sdk.train.asr`` CTC file (``model.onnx`` with ``tokens.txt`` beside it) over a KWS front end, so
it shares the streaming front end and the gate of ``kws.onnx``: each new frame completes a window of the
last ``context`` seconds of frames, the model runs on it, and the posterior of the frame its look-ahead
has fully heard is judged like a classifier's (threshold, re-arming, refractory period).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_sdk.asr.acoustic import model_info
from edge_sdk.asr.frames import META_FRONT_END, META_KIND, META_LOOKAHEAD, PAD_SECONDS
from edge_sdk.asr.tokens import TokenTable
from edge_sdk.audio import front_end
from edge_sdk.audio.front_end import FrontEnd
from edge_sdk.errors import BadInputError
from edge_sdk.stages import stages
from edge_sdk.stages.kws import FILLERS, META_THRESHOLDS, KeywordSpotter, KwsModelInfo, check_thresholds

if TYPE_CHECKING:
    from edge_sdk.runtimes.session import Session

__all__ = ["ALIASES", "CtcKeywordSpotter", "is_ctc_model"]

#: Tokens reported as another keyword: "oh" is how people say zero in digit strings.
ALIASES = {"oh": "zero"}
#: The filler token (``edge_sdk.train.asr_data.FILLER``); with the blank it makes ``FILLERS``.
FILLER_TOKENS = ("<unk>",)
#: Frames of a model's look-ahead when its metadata does not say (the recipe's centred convolutions).
LOOKAHEAD_FRAMES = 3


def is_ctc_model(path: str | os.PathLike[str]) -> bool:
    """Whether an ONNX file is a CTC recogniser of ``edge_sdk.train.asr`` (metadata kind ``ctc``); an
    unreadable file is not (the stage that opens it says why)."""
    try:
        return model_info(Path(path))[0].get(META_KIND) == "ctc"
    except BadInputError:
        return False


@stages.register("kws.ctc")
class CtcKeywordSpotter(KeywordSpotter):
    """Keyword spotting with a CTC recogniser of keywords and filler (see the module's docstring).

    ``model`` is the CTC ``model.onnx`` (a path, its folder, or a zoo name); ``keywords`` limits which of
    its words fire (default all; "oh" fires as "zero"); ``context`` is the seconds of frames each run
    sees. Thresholds: ``threshold``, else the model's metadata (the recipe's choice on its development
    set), else 0.5. The other options are ``kws.onnx``'s, with a shorter refractory period (the
    re-arming already stops one word from firing twice) and no smoothing (a CTC posterior is a spike,
    not a plateau).
    """

    name = "kws.ctc"

    def __init__(
        self,
        model: str | os.PathLike[str] = "zoo:commands-ctc",
        *,
        keywords: list[str] | None = None,
        context: float = 2.0,
        threshold: float | Mapping[str, float] | None = None,
        smoothing: int = 1,
        refractory: float = 0.3,
        **options: Any,
    ) -> None:
        self._wanted = keywords
        self._context = context
        super().__init__(model, threshold=threshold, smoothing=smoothing, refractory=refractory, **options)

    def _open(self, session: Session) -> None:
        self.session = session
        where = f"keyword recogniser {self.path}"
        meta = model_info(self.path)[0]
        if meta.get(META_KIND) != "ctc" or META_FRONT_END not in meta:
            raise BadInputError(
                f"{where} is not a CTC recogniser of `edge-sdk train asr` (metadata {META_KIND}=ctc and "
                f"{META_FRONT_END}); a classifier model runs in kws.onnx"
            )
        cfg = front_end.from_dict(json.loads(meta[META_FRONT_END]))
        table = self.path.parent / "tokens.txt"
        if not table.is_file():
            raise BadInputError(f"{where} has no tokens.txt beside it")
        tokens = TokenTable.from_file(table)
        words = [s.lstrip("▁") for s in tokens.symbols]
        fillers = [i for i, w in enumerate(words) if i == 0 or w in FILLER_TOKENS]
        spoken = {ALIASES.get(w, w) for i, w in enumerate(words) if i not in fillers}
        wanted = sorted(spoken, key=lambda w: words.index(w) if w in words else len(words))
        if self._wanted is not None:
            unknown = sorted(set(self._wanted) - spoken)
            if unknown:
                raise BadInputError(f"{where} cannot spot {unknown}; its words are {wanted}")
            wanted = [w for w in wanted if w in self._wanted]
        # Label space as kws.onnx's: _silence_ (the blank), _unknown_ (filler), then the keywords; each
        # label's posterior is the sum of its tokens' (an alias adds to its word's).
        labels = (*FILLERS, *wanted)
        self._columns = np.zeros((len(words), len(labels)), np.float32)
        for i, w in enumerate(words):
            label = 0 if i == 0 else 1 if i in fillers else None
            if label is None:
                w = ALIASES.get(w, w)
                label = labels.index(w) if w in labels else 1
            self._columns[i, label] = 1.0
        tuned = json.loads(meta.get(META_THRESHOLDS, "{}") or "{}")
        if not isinstance(tuned, dict):
            raise BadInputError(
                f"{where}: metadata '{META_THRESHOLDS}' must be a JSON object {{word: threshold}}"
            )
        tuned = {w: t for w, t in tuned.items() if w in wanted}
        self.info = KwsModelInfo(labels, cfg, check_thresholds(tuned, labels, where))
        try:
            lag = int(meta.get(META_LOOKAHEAD, LOOKAHEAD_FRAMES))
        except ValueError as e:
            raise BadInputError(f"{where}: metadata {META_LOOKAHEAD} is not a number of frames: {e}") from e
        self._n = max(lag + 1, round(self._context * cfg.sample_rate / cfg.hop))
        self._lag, self._min_window = lag, lag + 1
        self._input = session.input_names[0]
        self._output = session.output_names[0]

    def _classify(self, frames: list[np.ndarray]) -> np.ndarray:
        """Label posteriors of each window's frame the model's look-ahead before its end."""
        out = []
        for f in frames:  # windows differ in length only while the stream (or gate) has just started
            self.windows += 1
            lp = np.asarray(self.session.run({self._input: f[None]})[self._output], np.float64)[0]
            out.append(np.exp(lp[len(f) - 1 - self._lag]) @ self._columns)
        return np.stack(out)

    @property
    def window_front_end(self) -> FrontEnd:
        """The front end's window with the recogniser's silence either side (``asr.frames.PAD_SECONDS``):
        a CTC model emits a word once it has heard past its end, which a stream always gives it."""
        cfg = self.info.features
        return dataclasses.replace(cfg, clip_seconds=cfg.clip_seconds + 2 * PAD_SECONDS)  # type: ignore[type-var]

    def window_scores(self, log_probs: np.ndarray) -> np.ndarray:
        """One-hot label scores ``[windows, labels]`` of the model's output over whole windows
        ``[windows, T, V]``, judged as the stream judges them: the keyword with the highest peak posterior
        if that reaches its threshold, else ``_unknown_`` where filler peaks above one half, else
        ``_silence_``."""
        peak = (np.exp(np.asarray(log_probs, np.float64)) @ self._columns).max(axis=1)
        thresholds = np.array([self.thresholds[w] for w in self.info.keywords])
        out = np.zeros_like(peak)
        for row, p in zip(out, peak, strict=True):
            k = int(np.argmax(p[len(FILLERS) :]))
            if p[len(FILLERS) + k] >= thresholds[k]:
                row[len(FILLERS) + k] = 1.0
            else:
                row[1 if p[1] >= 0.5 else 0] = 1.0
        return out

    def window_input(self, windows: np.ndarray) -> np.ndarray:
        """The model's input for windows as ``kws.onnx`` takes them (``[N, 1, frames, dims]``)."""
        return np.asarray(windows, np.float32)[:, 0]
