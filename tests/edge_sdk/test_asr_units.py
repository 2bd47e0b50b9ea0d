"""The pieces of speech recognition that need no model: Whisper's vocabulary and prompts, the loop guard,
LocalAgreement's commit rule, the audio history, Whisper's mel framing, and the events."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge_sdk.asr.recognizer import after_committed, agreed_prefix, as_mono_16k
from edge_sdk.asr.tokenizer import WhisperTokenizer, read_vocabulary
from edge_sdk.asr.whisper import WhisperDecoder, encoder_inputs, looping, mel_frames
from edge_sdk.errors import BadInputError
from edge_sdk.stages import SpeechSegment, Transcript
from edge_sdk.stages.history import AudioHistory

LANGS = ["en", "zh", "de"]


def vocabulary(multilingual: bool) -> list[str]:
    """A Whisper-shaped vocabulary: byte-level tokens, then the special tokens in Whisper's order, padded
    to the size that tells English-only (51864) from multilingual (51865) models."""
    tokens = ["Hello", "Ġworld", "Ġcaf", "Ã©", "!"]
    tokens += [f"tok{i}" for i in range(50256 - len(tokens))]
    tokens += ["<|endoftext|>", "<|startoftranscript|>"] + [f"<|{c}|>" for c in LANGS]
    tokens += ["<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nocaptions|>"]
    tokens += ["<|notimestamps|>"]
    size = 51865 if multilingual else 51864
    tokens += [f"<|{i * 0.02:.2f}|>" for i in range(size - len(tokens))]
    return tokens


def test_tokens_decode_through_the_byte_map_and_special_tokens_are_dropped() -> None:
    t = WhisperTokenizer(tuple(vocabulary(False)))
    assert t.decode([0, 1, 2, 3, 4]) == "Hello world café!"
    assert t.decode([t.sot, t.no_timestamps, 0, t.eot]) == "Hello"
    assert t.is_timestamp(len(t.tokens) - 1) and not t.is_timestamp(0)
    assert not t.multilingual and t.languages == {}
    with pytest.raises(BadInputError, match="no <|endoftext|>|not a Whisper vocabulary"):
        WhisperTokenizer(("a", "b"))


def test_vocabularies_are_read_from_any_of_the_three_files(tmp_path: Path) -> None:
    vocab = vocabulary(True)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "vocabulary.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "vocabulary.json").write_text(json.dumps(vocab), encoding="utf-8")
    (tmp_path / "c").mkdir()
    hf = {
        "model": {"vocab": {tok: i for i, tok in enumerate(vocab) if not tok.startswith("<|")}},
        "added_tokens": [{"id": i, "content": tok} for i, tok in enumerate(vocab) if tok.startswith("<|")],
    }
    (tmp_path / "c" / "tokenizer.json").write_text(json.dumps(hf), encoding="utf-8")
    for folder in "abc":
        assert read_vocabulary(tmp_path / folder) == vocab
    with pytest.raises(BadInputError, match="no Whisper vocabulary"):
        read_vocabulary(tmp_path)


def _decoder(multilingual: bool) -> WhisperDecoder:
    t = WhisperTokenizer(tuple(vocabulary(multilingual)))
    d = WhisperDecoder.__new__(WhisperDecoder)
    d.settings = {
        "sot": t.sot,
        "eot": t.eot,
        "no_timestamps": t.no_timestamps,
        "transcribe": t.id("<|transcribe|>"),
        "multilingual": multilingual,
        "languages": t.languages,
    }
    return d


def test_prompts_name_the_language_only_on_a_multilingual_model() -> None:
    english, multi = _decoder(False), _decoder(True)
    assert english.prompt(None) == english.prompt("en") == [50257, 50266]
    with pytest.raises(BadInputError, match="English-only.*'de'"):
        english.prompt("de")
    assert multi.languages() == sorted(LANGS)
    assert multi.prompt("de") == [50257, 50260, 50262, 50266]
    with pytest.raises(BadInputError, match="unsupported language 'xx'.*de, en, zh"):
        multi.prompt("xx")


@pytest.mark.parametrize(
    ("tokens", "cut"),
    [
        ([1, 2, 3], 0),
        ([7, 7, 7], 0),  # "oh oh oh" is speech
        ([7, 7, 7, 7], 3),
        ([1, 2, 3, 4, 5, 3, 4, 5, 3, 4, 5], 6),
        ([9, *range(10, 16), *range(10, 16)], 6),  # a phrase of six said twice back to back
        ([9, *range(10, 15), *range(10, 15)], 0),  # five tokens twice: not yet
    ],
)
def test_the_loop_guard_cuts_repeats_and_leaves_speech(tokens: list[int], cut: int) -> None:
    assert looping(tokens) == cut


def test_local_agreement_commits_what_two_hypotheses_share_whatever_the_punctuation() -> None:
    assert agreed_prefix("Mr. John Dash,".split(), "Mr. John Dashwood had".split()) == ["Mr.", "John"]
    assert agreed_prefix("to consider.".split(), "to consider how".split()) == ["to", "consider."]
    committed = ["Mr.", "John"]
    assert after_committed(committed, "mr john dashwood".split()) == ["dashwood"]
    assert after_committed(committed, "And Mr. John Dashwood".split()) == ["Dashwood"]
    assert after_committed(committed, "something else".split()) == []


def test_the_audio_history_is_cut_by_stream_time_and_forgets_the_oldest() -> None:
    h = AudioHistory(1.0, 100)
    for i in range(5):
        h.append(np.full(50, i, np.float32), start=0.5 * i)
    assert h.end == pytest.approx(2.5)
    np.testing.assert_array_equal(h.between(1.5, 2.5), np.repeat([3.0, 4.0], 50))
    assert len(h.between(0.0, 2.5)) == 100  # only the last second is kept
    assert len(h.between(3.0, 4.0)) == 0
    with pytest.raises(BadInputError):
        AudioHistory(0, 100)


def test_whisper_mel_frames_are_even_padded_and_at_most_30_s() -> None:
    assert mel_frames(np.zeros(16000, np.float32)).shape == (80, 200)  # 1 s + 1 s of silence
    assert mel_frames(np.zeros(0, np.float32)).shape[1] % 2 == 0
    assert mel_frames(np.zeros(40 * 16000, np.float32)).shape == (80, 3000)


def test_a_short_window_ends_with_silence_at_the_last_positions_and_a_full_one_is_whispers() -> None:
    audio = (0.1 * np.sin(np.arange(3 * 16000) / 10.0)).astype(np.float32)
    short = encoder_inputs(audio, "audio")
    ids = short["position_ids"]
    assert short["mel"].shape == (1, 80, 2 * len(ids))
    assert list(ids[:200]) == list(range(200)) and list(ids[-200:]) == list(range(1300, 1500))
    assert len(ids) == 200 + 200  # 3 s of audio and 1 s of padding, then 4 s of tail
    assert np.all(short["mel"][0, :, 400:] == short["mel"].min())  # the tail is silence
    full = encoder_inputs(audio, "full")
    assert full["mel"].shape == (1, 80, 3000) and list(full["position_ids"]) == list(range(1500))
    word = encoder_inputs(audio[:16000], "audio")  # a word or two: no tail
    assert list(word["position_ids"]) == list(range(100))
    long = encoder_inputs(np.zeros(29 * 16000, np.float32), "audio")
    assert len(long["position_ids"]) == 1500 and long["position_ids"][-1] == 1499  # no room left for a tail


def test_audio_is_brought_to_16_khz_mono_and_bad_audio_is_named() -> None:
    stereo = np.stack([np.ones(8000), -np.ones(8000)], axis=1).astype(np.float32)
    out = as_mono_16k(stereo, 8000)
    assert out.dtype == np.float32 and out.ndim == 1 and abs(len(out) - 16000) <= 2
    assert np.abs(out).max() < 1e-3  # the two channels cancel
    with pytest.raises(BadInputError, match="positive int"):
        as_mono_16k(np.zeros(10, np.float32), 0)


def test_events_serialise_without_audio() -> None:
    seg = SpeechSegment("vad", 2.0, 0.5, 1.5, audio=np.ones(16000, np.float32))
    assert "audio" not in seg.to_dict() and seg.to_dict()["end"] == 1.5
    t = Transcript("asr", 2.0, text="hi", start=0.5, end=1.5, tokens=(" hi",))
    assert json.loads(json.dumps(t.to_dict()))["tokens"] == [" hi"]


def test_a_vad_that_keeps_audio_hands_each_segment_its_samples() -> None:
    from edge_sdk.devices.sources.wav_file import WavFile
    from edge_sdk.live.audio import AudioLoop
    from edge_sdk.stages import make

    events: list[object] = []
    sample = (
        Path(__file__).resolve().parents[2] / "edge_sdk" / "samples" / "librivox-sense-and-sensibility.wav"
    )
    with WavFile(sample) as source:
        AudioLoop(source, [make("vad", "energy", keep_audio=30.0)], on_event=events.append).run()
    segments = [e for e in events if isinstance(e, SpeechSegment)]
    assert segments
    for s in segments:
        assert s.audio is not None and abs(len(s.audio) - round((s.end - s.start) * 16000)) <= 1
        assert np.abs(s.audio).max() > 0.01  # speech, not silence


def test_the_window_option_is_checked() -> None:
    from edge_sdk.asr import DecodeOptions

    assert DecodeOptions().window == "audio" and DecodeOptions(window="full").window == "full"
    with pytest.raises(BadInputError, match="window must be one of audio, full"):
        DecodeOptions(window="long")
