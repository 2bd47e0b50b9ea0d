"""``kws.verify``: a keyword spotter proposes at a low threshold and a speech recogniser confirms each
proposal on the audio around it; on real Asterisk prompts, with the real ``kws.ctc`` spotter and Whisper."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from edge_sdk.errors import BadInputError
from edge_sdk.stages import Block, KeywordDetected
from edge_sdk.stages.chain import audio_stages, keyword_spotter
from edge_sdk.stages.kws_verify import PROPOSAL_THRESHOLD, KeywordVerifier, spoken_words

RATE = 16000


def stream(stage, audio: np.ndarray, block: int = RATE // 10) -> list[KeywordDetected]:
    stage.reset()
    events: list[KeywordDetected] = []
    i = 0
    for i, at in enumerate(range(0, len(audio), block)):
        b = stage.process(Block(audio[at : at + block], RATE, at / RATE, i))
        events += [e for e in b.events if isinstance(e, KeywordDetected)]
    end = Block(audio[:0], RATE, len(audio) / RATE, i + 1)
    stage.flush(end)
    return events + [e for e in end.events if isinstance(e, KeywordDetected)]


# -- reading a transcript as spoken words ----------------------------------------------------------------


def test_numbers_are_read_as_they_are_said() -> None:
    assert spoken_words("Press 7 to go, or 1 for help.") == [
        "press", "seven", "to", "go", "or", "one", "for", "help",
    ]  # fmt: skip
    assert spoken_words("Oh, twenty-one.") == ["zero", "twenty", "one"]
    assert spoken_words("21") == ["twenty", "one"] and spoken_words("15") == ["fifteen"]
    assert spoken_words("7:30") == ["seven", "thirty"]


def test_an_ordinal_is_not_its_digit_and_a_long_numeral_has_both_readings() -> None:
    # "4th" is "fourth": the spotter hears "four" in it, the transcript must not confirm it
    assert "four" not in spoken_words("the 4th floor")
    assert "nine" not in spoken_words("9th") and spoken_words("21st") == ["twenty", "first"]
    # an ordinal or a decimal has one reading; a digit group or a numeral ending a sentence has both
    assert spoken_words("100th") == ["one", "hundredth"] and spoken_words("2.5") == ["two", "point", "five"]
    assert {"two", "nine", "three", "four"} <= set(spoken_words("2,934"))
    assert {"three", "four", "zero"} <= set(spoken_words("and 340."))
    assert {"four", "one", "five", "hundred", "fifteen"} <= set(spoken_words("call 415"))


# -- the stage -------------------------------------------------------------------------------------------


class Heard:
    """A recogniser that says the same words for any audio and keeps what it was given: for the
    stage's timing, which does not depend on what a recogniser hears."""

    kind = "fixed"

    def __init__(self, text: str) -> None:
        self.text, self.calls = text, []

    def transcribe(self, audio: np.ndarray, sample_rate: int):
        from edge_sdk.asr.whisper import Transcription

        self.calls.append(len(audio) / sample_rate)
        return Transcription(self.text)


def test_a_proposal_fires_once_its_audio_after_is_heard_and_only_if_the_words_hold_it(
    asterisk_prompt: Callable[..., np.ndarray],
) -> None:
    audio = asterisk_prompt("digits/3.wav", 0.5)
    alone = stream(keyword_spotter("zoo:commands-ctc", threshold=PROPOSAL_THRESHOLD), audio)
    assert [e.word for e in alone] == ["three"]

    says = Heard("3.")
    stage = KeywordVerifier(keyword_spotter("zoo:commands-ctc", threshold=0.3), recognizer=says)
    (e,) = stream(stage, audio)
    assert (e.word, e.stage, e.start, e.end) == ("three", "kws.verify", alone[0].start, alone[0].end)
    assert e.time >= alone[0].end + stage.after  # the wait is in its latency
    assert says.calls == [pytest.approx(stage.before + stage.after, abs=0.01)]
    assert (stage.proposed, stage.confirmed, stage.transcripts) == (1, 1, 1)

    stage.recognizer = Heard("Free.")
    assert stream(stage, audio) == [] and (stage.proposed, stage.confirmed) == (1, 0)


def test_proposals_still_waiting_at_the_end_of_the_stream_are_judged(
    asterisk_prompt: Callable[..., np.ndarray],
) -> None:
    # the stream ends before `after` seconds past the word
    audio = asterisk_prompt("digits/3.wav", 0.5, after=0.2)
    stage = KeywordVerifier(keyword_spotter("zoo:commands-ctc", threshold=0.3), recognizer=Heard("three"))
    events = stream(stage, audio)
    assert [e.word for e in events] == ["three"]
    assert events[0].time == pytest.approx(len(audio) / RATE)


def test_keyword_events_of_earlier_stages_pass_through_untouched() -> None:
    stage = KeywordVerifier(keyword_spotter("zoo:commands-ctc", threshold=0.3), recognizer=Heard("yes"))
    theirs = KeywordDetected("kws.other", 0.1, "yes", 0.9, 0.0, 0.1)
    block = stage.process(Block(np.zeros(RATE // 10, np.float32), RATE, 0.0, 0, [theirs]))
    assert block.events == [theirs] and stage.proposed == 0


def test_the_verifier_needs_a_spotter_and_sensible_seconds() -> None:
    with pytest.raises(BadInputError, match="keyword spotter"):
        KeywordVerifier(object(), recognizer=Heard(""))  # type: ignore[arg-type]
    spotter = keyword_spotter("zoo:commands-ctc")
    with pytest.raises(BadInputError, match="before > 0"):
        KeywordVerifier(spotter, recognizer=Heard(""), before=0.0)
    with pytest.raises(BadInputError, match="needs a keyword model"):
        audio_stages(kws_verify="zoo:whisper-tiny.en")


@pytest.mark.network
def test_whisper_confirms_real_digits_and_rejects_their_homophones(
    whisper_cache: Path, asterisk_prompt: Callable[..., np.ndarray]
) -> None:
    from edge_sdk.asr.recognizer import Recognizer
    from edge_sdk.asr.whisper_build import whisper_model

    built = whisper_model("zoo:whisper-tiny.en", cache_dir=whisper_cache)
    stage = keyword_spotter("zoo:commands-ctc", verify=built)  # proposes at PROPOSAL_THRESHOLD
    assert isinstance(stage, KeywordVerifier) and isinstance(stage.recognizer, Recognizer)
    assert stage.thresholds == dict.fromkeys(stage.info.keywords, PROPOSAL_THRESHOLD)
    # "Please press 1 to mute or unmute yourself, 2 to lock or unlock the conference, 3 to eject the last
    # user, 4 or 6 to decrease or increase the conference volume, 7 or 9 to decrease or increase your
    # volume, or 8 to exit this menu": every "to" and "or" is a homophone of no keyword or of two
    said = {"one", "two", "three", "four", "six", "seven", "nine", "eight"}
    events = stream(stage, asterisk_prompt("conf-adminmenu.wav", 0.5))
    fired = [e.word for e in events]
    # Measured: 6 of the 8 digits confirmed, nothing else, out of 14 proposals (many on "to" and "for").
    assert stage.proposed >= len(fired) + 4
    assert set(fired) <= said and len(fired) == len(set(fired)) and len(fired) >= 4, fired
