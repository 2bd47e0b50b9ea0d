"""Keyword spotting in two stages, ``kws.verify``: a small spotter proposes keywords at a low threshold, and
a speech recogniser confirms each proposal on the audio around it.

A spotter small enough to run on every audio frame cannot both hear most real keywords and stay silent
on look-alike speech ("to" for two, "for" for four, "fourth"): a threshold trades one for the other. A
recogniser hears words in context, but costs too much to run on every frame. Run together, the spotter
decides *when* to look and the recogniser *what* was said: the recogniser runs only on proposals (a few
per minute of speech), so its cost follows the proposals, not the audio. This is how deployed wake-word
systems pair a small on-device detector with a larger verifier.

A proposal waits until ``after`` seconds of audio past its decision have been heard, so the recogniser
hears the word's end and what follows (which tells "two" in "press 2" from "to"); it is then confirmed
when the word is among the recogniser's words for the ``before`` + ``after`` seconds around it, read
as spoken (numerals as their digits' or their number's words, an ordinal's last word not a keyword).
A confirmed keyword fires at the stream time of its confirmation, so the wait is in its latency.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from typing import Any

from edge_sdk.asr.text import words
from edge_sdk.errors import BadInputError
from edge_sdk.stages import stages
from edge_sdk.stages.base import Block, KeywordDetected, Stage
from edge_sdk.stages.history import AudioHistory

__all__ = ["PROPOSAL_THRESHOLD", "KeywordVerifier", "spoken_words"]

log = logging.getLogger("edge_sdk.stages.kws_verify")

PROPOSAL_THRESHOLD = 0.3
"""The first stage's threshold when it proposes for a verifier and none is given: a round figure fixed
before the verifier was measured (the spotter's own tuned thresholds are for firing alone)."""

#: A numeral as written: digits, with any group commas or decimal point inside it and an ordinal ending.
_NUMERAL = re.compile(r"\d+(?:[.,]\d+)*(?:st|nd|rd|th)?")


def spoken_words(text: str) -> list[str]:
    """The words a transcript says, as a keyword spotter names them: the benchmark's normalisation
    (``asr.text.words``: numerals as words, "4th" as fourth, so not four) with "oh" as zero. A whole
    number of three or more digits ("415", "2,934") is said as a number or digit by digit, and both
    readings count."""
    out = words(text, digits_oh_as_zero=True)
    for numeral in _NUMERAL.findall(text):
        digits = numeral.replace(",", "")
        if digits.isdigit() and len(digits) >= 3:  # not a decimal, not an ordinal
            out += words(digits, digits_one_by_one=True)
    return out


@stages.register("kws.verify")
class KeywordVerifier(Stage):
    """A keyword spotter (``spotter``, a ``kws.onnx`` or ``kws.ctc`` stage, built at a low threshold)
    whose events are confirmed by a speech recogniser before they fire (see the module's docstring).

    ``model`` is the recogniser (Whisper by default: ``zoo:whisper-tiny.en`` or any model
    ``Recognizer.from_model`` takes; ``recognizer`` passes one already built); ``before`` and ``after``
    are the seconds of audio it hears before and after a proposal's decision. The stage has the spotter's
    ``info`` and ``thresholds``; ``proposed``, ``confirmed`` and ``transcripts`` count its work.
    """

    name = "kws.verify"

    def __init__(
        self,
        spotter: Any,
        model: str | os.PathLike[str] = "zoo:whisper-tiny.en",
        *,
        before: float = 1.2,
        after: float = 0.4,
        target: str = "onnx:int8-dynamic",
        threads: int | None = 1,
        recognizer: Any = None,
    ) -> None:
        from edge_sdk.asr.recognizer import Recognizer

        if not hasattr(spotter, "info") or not isinstance(spotter, Stage):
            raise BadInputError(f"kws.verify confirms a keyword spotter's events; {spotter!r} is not one")
        if before <= 0 or after < 0:
            raise BadInputError(f"kws.verify hears before > 0 and after >= 0 seconds, not {before}, {after}")
        if recognizer is None:
            recognizer = Recognizer.from_model(model, threads=threads or 1, target=target)
        self.spotter, self.recognizer = spotter, recognizer
        self.before, self.after = before, after
        self.sample_rate = spotter.sample_rate
        self.latency = spotter.latency
        self.history = AudioHistory(before + after + 1.0, self.sample_rate)
        self.reset()

    @property
    def info(self) -> Any:
        """The spotter's model information (labels, front end)."""
        return self.spotter.info

    @property
    def thresholds(self) -> dict[str, float]:
        """The spotter's proposal thresholds."""
        return dict(self.spotter.thresholds)

    def reset(self) -> None:
        """Forget the stream: the spotter's state, the audio kept and the proposals waiting."""
        self.spotter.reset()
        self.history.reset()
        self._waiting: list[KeywordDetected] = []
        self.proposed = self.confirmed = self.transcripts = 0

    def process(self, block: Block) -> Block:
        """Run the spotter; hold its keyword events; confirm those whose audio has all been heard."""
        self.history.append(block.samples, block.start)
        earlier = len(block.events)
        block = self.spotter.process(block)
        self._take(block, earlier)
        self._confirm(block, block.start + block.duration, final=False)
        return block

    def flush(self, block: Block) -> None:
        """End of stream: proposals still waiting are judged on the audio there is."""
        earlier = len(block.events)
        self.spotter.flush(block)
        self._take(block, earlier)
        self._confirm(block, block.start, final=True)

    def _take(self, block: Block, earlier: int) -> None:
        """Hold the keyword events the spotter added after the block's first ``earlier`` events (those
        came from stages before it and pass through)."""
        mine = [e for e in block.events[earlier:] if isinstance(e, KeywordDetected)]
        if mine:
            self._waiting += mine
            self.proposed += len(mine)
            block.events[earlier:] = [e for e in block.events[earlier:] if not isinstance(e, KeywordDetected)]

    def _confirm(self, block: Block, now: float, final: bool) -> None:
        due = [e for e in self._waiting if final or now >= e.end + self.after]
        if not due:
            return
        self._waiting = [e for e in self._waiting if e not in due]
        # Proposals due together share one transcript of the audio around all of them.
        t0, t1 = min(e.end for e in due) - self.before, max(e.end for e in due) + self.after
        audio = self.history.between(t0, t1)
        text = ""
        if len(audio):  # none kept (a source that jumped in time): nothing can confirm the word
            text = self.recognizer.transcribe(audio, self.sample_rate).text
            self.transcripts += 1
        heard = spoken_words(text)
        for e in due:
            if e.word in heard:
                self.confirmed += 1
                block.events.append(dataclasses.replace(e, stage=self.name, time=round(max(now, e.time), 6)))
            else:
                log.debug("kws.verify: %r at %.2f s not confirmed; heard %r", e.word, e.end, text)

    def close(self) -> None:
        """Close the spotter."""
        self.spotter.close()
