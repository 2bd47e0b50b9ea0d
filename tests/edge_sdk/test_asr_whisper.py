"""Whisper tiny.en through the SDK: pulled from its wheel, rebuilt as ONNX, converted by our own targets,
and run on real recorded speech (LibriVox, Asterisk's prompts) with the recogniser, its stream, the live
stage and the ``transcribe`` command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_sdk.asr import DecodeOptions, Recognizer
from edge_sdk.asr.text import wer
from edge_sdk.asr.whisper_build import MODEL_FILE, whisper_model
from edge_sdk.devices.sources.wav_file import WavFile, read_wav
from edge_sdk.errors import BadInputError
from edge_sdk.live.audio import AudioLoop
from edge_sdk.stages import SpeechSegment, Transcript
from edge_sdk.stages.chain import audio_stages

pytestmark = pytest.mark.network

LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
UTTERANCE = "sense_and_sensibility_01_austen_64kb-0870"
ASTERISK_DIGITS = Path("/usr/share/asterisk/sounds/en/digits")


def reference(utterance: str) -> str:
    for line in (LIBRIVOX / "transcription").read_text().splitlines():
        if line.endswith(f"({utterance})"):
            return line.replace("<s>", "").replace("</s>", "").rsplit("(", 1)[0].strip()
    raise AssertionError(f"no transcript of {utterance}")


@pytest.fixture(scope="module")
def built(whisper_cache: Path) -> Path:
    return whisper_model("zoo:whisper-tiny.en", cache_dir=whisper_cache)


@pytest.fixture(scope="module")
def recognizer(built: Path) -> Recognizer:
    return Recognizer.from_whisper(built)


def test_the_built_folder_records_its_source_tokens_and_artifacts_whose_parity_passed(built: Path) -> None:
    record = json.loads((built / MODEL_FILE).read_text())
    assert record["kind"] == "whisper" and record["failed"] == {}
    assert record["source"]["spec"] == "WhisperSpec" and len(record["source"]["model_sha256"]) == 64
    assert record["multilingual"] is False and record["languages"] == {}
    assert record["eot"] == 50256 and record["no_timestamps"] == 50362 and record["suppress"]
    assert set(record["artifacts"]) == {"onnx:fp32", "onnx:int8-dynamic"}
    for parts in record["artifacts"].values():
        for part in ("encoder", "decoder"):
            manifest = json.loads((built / parts[part] / "artifact.json").read_text())
            assert manifest["parity"]["passed"] and manifest["parity"]["inputs"] == "parity data"
    assert len((built / "vocabulary.txt").read_text(encoding="utf-8").splitlines()) == 51864


@pytest.mark.parametrize("target", ["onnx:fp32", "onnx:int8-dynamic"])
def test_real_read_speech_is_transcribed_by_both_precisions(built: Path, target: str) -> None:
    audio, rate, _ = read_wav(LIBRIVOX / f"{UTTERANCE}.wav")
    got = Recognizer.from_whisper(built, target=target).transcribe(audio, rate)
    # 21 words read by a LibriVox volunteer: tiny.en gets all or nearly all of them on any CPU.
    assert wer([reference(UTTERANCE)], [got.text]).wer <= 0.1, got.text
    assert got.token_ids and len(got.tokens) == len(got.token_ids)


def test_a_full_30_s_window_transcribes_the_same_speech_as_whisper_was_trained(built: Path) -> None:
    audio, rate, _ = read_wav(LIBRIVOX / f"{UTTERANCE}.wav")
    full = Recognizer.from_whisper(built, window="full").transcribe(audio, rate)
    assert wer([reference(UTTERANCE)], [full.text]).wer <= 0.1, full.text


def test_beam_search_finds_a_transcript_at_least_as_likely_and_as_good(recognizer: Recognizer) -> None:
    audio, rate, _ = read_wav(LIBRIVOX / f"{UTTERANCE}.wav")
    greedy = recognizer.transcribe(audio, rate)
    beam = recognizer.engine.transcribe(audio, DecodeOptions(beam=4))
    ref = reference(UTTERANCE)
    assert wer([ref], [beam.text]).wer <= max(0.1, wer([ref], [greedy.text]).wer)


def test_telephone_band_digits_at_8_khz_are_resampled_and_heard(recognizer: Recognizer) -> None:
    said = {"1": "one", "4": "four", "7": "seven", "9": "nine"}
    heard = []
    for digit in said:
        audio, rate, _ = read_wav(ASTERISK_DIGITS / f"{digit}.wav")
        assert rate == 8000
        heard.append(recognizer.transcribe(audio, rate).text)
    assert wer(list(said.values()), heard).wer <= 0.25, heard


def test_a_stream_commits_words_that_never_change_and_ends_with_the_offline_transcript(
    recognizer: Recognizer,
) -> None:
    audio, rate, _ = read_wav(LIBRIVOX / f"{UTTERANCE}.wav")
    stream = recognizer.create_stream()
    committed: list[str] = []
    for i in range(0, len(audio), rate):
        stream.accept_waveform(rate, audio[i : i + rate])
        result = stream.result()
        assert not result.final
        words = result.committed.split()
        assert words[: len(committed)] == committed  # committed words are only ever added to
        committed = words
    assert len(committed) >= 10  # most of the sentence was committed before the end
    stream.input_finished()
    final = stream.result()
    assert final.final and final.text == recognizer.transcribe(audio, rate).text
    with pytest.raises(BadInputError, match="finished"):
        stream.accept_waveform(rate, audio[:100])


def test_bad_audio_and_languages_are_refused_clearly(built: Path, recognizer: Recognizer) -> None:
    with pytest.raises(BadInputError, match="float samples"):
        recognizer.transcribe(np.zeros(1600, np.int16))
    with pytest.raises(BadInputError, match="NaN"):
        recognizer.transcribe(np.full(1600, np.nan, np.float32))
    with pytest.raises(BadInputError, match=r"\[samples\] or \[samples, channels\]"):
        recognizer.transcribe(np.zeros((2, 2, 2), np.float32))
    with pytest.raises(BadInputError, match="English-only.*'de'"):
        Recognizer.from_whisper(built, language="de")
    with pytest.raises(BadInputError, match="no onnx:int8 artifacts.*onnx:fp32"):
        Recognizer.from_whisper(built, target="onnx:int8")


def test_a_folder_that_is_no_whisper_is_named(tmp_path: Path) -> None:
    (tmp_path / "model.onnx").write_bytes(b"x")
    with pytest.raises(BadInputError, match="not a Whisper model.*CTranslate2 Whisper folder"):
        whisper_model(tmp_path)


def run_loop(recognizer: Recognizer, path: Path, **asr: Any) -> list[Any]:
    events: list[Any] = []
    stages, _ = audio_stages(
        vad="silero", asr=recognizer.model, asr_options={"recognizer": recognizer, **asr}
    )
    with WavFile(path, block_size=320) as source:
        AudioLoop(source, stages, on_event=events.append).run()
    return events


def test_the_live_stage_transcribes_each_segment_the_vad_closes(recognizer: Recognizer) -> None:
    events = run_loop(recognizer, LIBRIVOX / f"{UTTERANCE}.wav")
    segments = [e for e in events if isinstance(e, SpeechSegment)]
    finals = [e for e in events if isinstance(e, Transcript)]
    assert segments and len(finals) == len(segments)
    for seg, t in zip(segments, finals, strict=True):
        assert t.final and (t.start, t.end, t.time) == (seg.start, seg.end, seg.time)
        assert "audio" not in seg.to_dict() and t.to_dict()["event"] == "transcript"
    assert wer([reference(UTTERANCE)], [" ".join(t.text for t in finals)]).wer <= 0.15


def test_partials_come_while_speech_goes_on_and_their_committed_words_only_grow(
    recognizer: Recognizer,
) -> None:
    events = run_loop(recognizer, LIBRIVOX / f"{UTTERANCE}.wav", partials=True)
    partials = [e for e in events if isinstance(e, Transcript) and not e.final]
    final = next(e for e in events if isinstance(e, Transcript) and e.final)
    assert len(partials) >= 3 and all(p.time < final.time for p in partials)
    assert partials[0].time - partials[0].start <= 1.5  # the first partial within 1.5 s of speech
    for a, b in zip(partials, partials[1:], strict=False):
        assert b.committed.split()[: len(a.committed.split())] == a.committed.split()


def test_a_recogniser_needs_a_vad_in_the_chain() -> None:
    with pytest.raises(BadInputError, match="VAD"):
        audio_stages(asr="zoo:whisper-tiny.en")


def test_transcribe_command_json(built: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from edge_sdk.cli import main

    path = LIBRIVOX / f"{UTTERANCE}.wav"
    assert main(["transcribe", "--json", "--model", str(built), str(path)]) == 0
    out = json.loads(capsys.readouterr().out)
    (result,) = out["files"]
    assert result["path"] == str(path) and result["segments"]
    first = result["segments"][0]
    assert 0 <= first["start"] < first["end"] <= result["duration"] and first["tokens"]
    assert wer([reference(UTTERANCE)], [result["text"]]).wer <= 0.15


def test_multilingual_whisper_base_is_joined_from_its_two_wheels_and_takes_a_language(
    whisper_cache: Path, tmp_path: Path
) -> None:
    import subprocess

    base = Recognizer.from_whisper("zoo:whisper-base", language="en", cache_dir=whisper_cache)
    audio, rate, _ = read_wav(LIBRIVOX / f"{UTTERANCE}.wav")
    assert wer([reference(UTTERANCE)], [base.transcribe(audio, rate).text]).wer <= 0.1
    wav = tmp_path / "de.wav"
    subprocess.run(["espeak-ng", "-v", "de", "-w", str(wav), "Wie geht es Ihnen heute?"], check=True)
    german = Recognizer.from_whisper("zoo:whisper-base", language="de", cache_dir=whisper_cache)
    # espeak-ng's German is robotic: ask only that German words come out, as they do on any CPU
    heard = set(german.transcribe(*read_wav(wav)[:2]).text.lower().replace(",", " ").split())
    assert heard & {"wie", "geht", "es", "ihnen", "heute"}, heard
    with pytest.raises(BadInputError, match="unsupported language 'xx'; this model takes: .*de, .*en"):
        Recognizer.from_whisper("zoo:whisper-base", language="xx", cache_dir=whisper_cache)


def test_static_int8_is_converted_measured_and_refused_with_its_reason(whisper_cache: Path) -> None:
    from edge_sdk.asr.whisper_build import MIN_COSINE

    folder = whisper_model("zoo:whisper-tiny.en", ["onnx:fp32", "onnx:int8"], cache_dir=whisper_cache)
    record = json.loads((folder / MODEL_FILE).read_text())
    assert set(record["artifacts"]) == {"onnx:fp32"}
    assert any(k.endswith(" onnx:int8") and f"< {MIN_COSINE}" in v for k, v in record["failed"].items())
    assert not any(p.name.endswith("onnx-int8") for p in (folder / "decoder").iterdir())
    with pytest.raises(BadInputError, match="no onnx:int8 artifacts.*failed.*int8-dynamic"):
        Recognizer.from_whisper(folder, target="onnx:int8")
