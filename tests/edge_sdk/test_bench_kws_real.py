"""The keyword benchmark's real-recording parts: transcripts to keyword references, the ordered alignment
of fired words, the filing of the installed recordings, real-noise mixtures, streaming in worker
processes, and the loop's cost through the stages."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from edge_sdk.train import speech_data

KEYWORDS = ("yes", "no", "up", "two", "four", "seven", "one", "go")
ASTERISK = speech_data.ASTERISK_TRANSCRIPTS.exists() and (speech_data.ASTERISK_ROOT / "digits/7.wav").exists()
SPHINX_DIGITS = Path("/usr/share/pocketsphinx/test/data/tidigits/dhd.2934z.raw").exists()


@pytest.fixture(scope="module")
def kr(bench_module: Callable[..., ModuleType]) -> ModuleType:
    return bench_module("kws_real", "soxr", "av")


@pytest.fixture(scope="module")
def ks(bench_module: Callable[..., ModuleType]) -> ModuleType:
    return bench_module("kws_stream", "soxr")


def words(refs: list) -> list[str]:
    return [r.word if r.required else f"({r.word})" for r in refs]


def test_references_read_numerals_and_mark_homophones_optional(kr: ModuleType) -> None:
    refs = kr.references("Please press 1 to mute, 4 or 7 for more; say yes, or NO.", KEYWORDS)
    assert words(refs) == ["one", "(two)", "four", "seven", "(four)", "yes", "no"]
    assert words(kr.references("Go-forward, non-stop: 2 up", KEYWORDS)) == ["go", "two", "up"]
    assert kr.references("Stopping at the gone dogs", KEYWORDS) == []  # whole words only
    for text in ("dial 1234 now", "a 28.8 kilobit modem"):
        with pytest.raises(kr.Ambiguous, match="no single reading"):
            kr.references(text, KEYWORDS)
    banned = kr.banned_words(KEYWORDS)
    assert kr.classify("Thank you.", KEYWORDS, banned) == ("free", [])
    assert kr.classify("Welcome to the system.", KEYWORDS, banned)[0] == "left out"  # only a homophone
    assert kr.classify("Press 5.", KEYWORDS, banned)[0] == "left out"  # a digit, not a keyword here


def test_align_counts_hits_substitutions_misses_and_insertions(kr: ModuleType) -> None:
    Ref = kr.Ref
    said = [Ref("one"), Ref("two", required=False), Ref("two"), Ref("three"), Ref("four")]
    a = kr.align(said, ["one", "two", "six", "four", "yes"])
    # one "two" fired: a hit of the word said, not the homophone's (which costs nothing to skip)
    assert a["hits"] == 3 and a["substitutions"] == ["three->six"] and a["insertions"] == ["yes"]
    assert a["misses"] == [] and a["keywords"] == 4
    b = kr.align(said, ["two", "two", "four"])
    assert b["hits"] == 2 and b["homophone_fires"] == 1 and b["misses"] == ["one", "three"]
    assert kr.align([Ref("to", required=False)], []) == {
        "hits": 0,
        "misses": [],
        "substitutions": [],
        "insertions": [],
        "homophone_fires": 0,
        "keywords": 0,
    }
    assert kr.align([], ["no", "no"])["insertions"] == ["no", "no"]
    refs, fired = kr.restrict([Ref("one"), Ref("yes"), Ref("two")], ["yes", "two", "go"], kr.DIGITS)
    assert words(refs) == ["one", "two"] and fired == ["two"]
    t = kr.tally([a, b])
    assert (t["keywords"], t["hits"], t["insertions"], t["substitutions"], t["misses"]) == (8, 5, 1, 1, 2)
    assert t["recall"] == pytest.approx(5 / 8) and t["accuracy"] == pytest.approx(4 / 8)
    assert t["top_misses"] == {"one": 1, "three": 1}


@pytest.mark.skipif(not SPHINX_DIGITS, reason="pocketsphinx-testdata is not installed")
def test_sphinx_transcripts_come_from_the_package(kr: ModuleType) -> None:
    texts = kr.sphinx_transcripts()
    assert texts["tidigits/dhd.2934z.raw"] == "two nine three four zero"
    assert texts["goforward.raw"] == "go forward ten meters"
    assert texts["cards/005.wav"] == "eight of spades four of clubs seven of hearts"
    assert "numbers.raw" not in texts  # no transcript ships for it


@pytest.mark.skipif(not ASTERISK, reason="the Asterisk prompts and their transcripts are not installed")
def test_real_sets_file_every_recording_by_its_transcript(kr: ModuleType) -> None:
    sets = kr.real_sets(KEYWORDS)
    keyword = {r.name: r for r in sets.keyword}
    for coding in ("wav", "g722"):
        assert words(keyword[f"asterisk/digits/7.{coding}"].refs) == ["seven"]
        assert keyword[f"asterisk/digits/7.{coding}"].group == "digits/7"  # one recording, two codings
    assert "asterisk/digits/5.wav" not in keyword  # not a keyword of this model
    assert "asterisk/demo-instruct.wav" in sets.left_out  # "dial 1234"
    free = {r.name for r in sets.free}
    assert "asterisk/auth-thankyou.wav" in free and not free & set(keyword)
    assert all(r.text and len(r.audio) > 0 for r in sets.keyword + sets.free)
    summary = sets.summary()
    assert summary["free"]["distinct_recordings"] < len(sets.free)  # the codings are not counted twice
    if SPHINX_DIGITS:
        assert words(keyword["sphinx/tidigits/dhd.2934z.raw"].refs) == ["two", "four"]
        assert "sphinx/numbers.raw" in sets.left_out
    small = kr.real_sets(KEYWORDS, asterisk_limit=2)
    asterisk = {r.group for r in small.keyword if r.corpus.startswith("asterisk")}
    assert asterisk == {"digits/1", "digits/2"}  # the digit files first, so a smoke run scores digits


def test_mixture_is_seeded_by_name_and_holds_its_snr(ks: ModuleType, bench_module) -> None:
    corpus = bench_module("speech_corpus")
    bank = corpus.NoiseBank()
    kinds, missing = ks.real_noise_kinds(bank)
    assert "babble" in kinds and "white" not in kinds and "pink" not in kinds
    assert set(kinds) | set(missing) == set(corpus.NOISES) - set(ks.GENERATED_NOISES)
    rng = np.random.default_rng(0)
    speech = (np.sin(np.arange(16000) / 5) * rng.uniform(0.2, 1.0)).astype(np.float32)
    clean = ks.mixture("a", speech, ks.Condition(), bank, seed=1)
    pad = int(ks.PAD_BEFORE * ks.SR)
    assert len(clean) == len(speech) + pad + int(ks.PAD_AFTER * ks.SR) and not clean[:pad].any()
    cond = ks.Condition("babble", 5)
    noisy = ks.mixture("a", speech, cond, bank, seed=1)
    assert np.array_equal(noisy, ks.mixture("a", speech, cond, bank, seed=1))
    assert not np.array_equal(noisy, ks.mixture("b", speech, cond, bank, seed=1))
    s = clean[pad : pad + len(speech)]
    gain = float(np.dot(noisy[pad : pad + len(speech)], s) / np.dot(s, s))  # noise is uncorrelated
    noise = noisy / gain - clean
    snr = 20 * np.log10(ks.active_rms(clean[pad : pad + len(speech)]) / np.sqrt(np.mean(noise**2)))
    assert snr == pytest.approx(5, abs=0.3)


@pytest.mark.skipif(not ASTERISK, reason="the Asterisk prompts and their transcripts are not installed")
def test_streams_fire_the_same_words_in_worker_processes(
    kr: ModuleType, ks: ModuleType, bench_module
) -> None:
    from edge_sdk.stages.kws import model_file

    corpus = bench_module("speech_corpus")
    model = model_file("zoo:commands-mfcc", None)
    sets = kr.real_sets(kr.DIGITS, asterisk_limit=6)
    streams = [(r.name, r.audio) for r in sets.keyword][:6] + ks.chunks(sets.free, 10.0)[:2]
    conds = ks.conditions(["babble"], [0])
    bank = corpus.NoiseBank()
    one = ks.fired_words(model, streams, conds, bank, seed=3, jobs=1)
    two = ks.fired_words(model, streams, conds, bank, seed=3, jobs=2)
    assert one == two and len(one) == len(streams) and all(len(per) == 2 for per in one)
    assert all(
        w in kr.DIGITS + ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
        for per in one
        for ws in per
        for w in ws
    )


def test_loop_cost_gates_the_spotter_by_the_vad(bench_module) -> None:
    from edge_sdk.stages.kws import model_file

    kc = bench_module("kws_cost", "soxr")
    rng = np.random.default_rng(0)
    talk = (rng.standard_normal(16000) * np.hanning(16000) * 0.3).astype(np.float32)
    c = kc.loop_cost(model_file("zoo:commands-mfcc", None), [talk], 6.0)
    assert c["audio_seconds"] == 6.0 and c["stage_names"][0] == "denoise.tiny"
    on, gated = c["runs"]["ungated"], c["runs"]["gated"]
    assert on["kws_skipped"] == 0 and on["kws_windows"] > 0
    # the silences between the bursts are not classified (each time the gate opens, the front end
    # restarts on the held last second, on its own hop grid: the counts need not add up exactly)
    assert gated["kws_skipped"] > 0 and gated["kws_windows"] < on["kws_windows"]
    assert on["cpu_per_audio_second"] > 0 and set(on["stages"]) == set(c["stage_names"])


def test_asterisk_transcripts_read_the_installed_file(tmp_path: Path) -> None:
    assert speech_data.asterisk_transcripts(tmp_path / "none.txt.gz") == {}
    if ASTERISK:
        texts = speech_data.asterisk_transcripts()
        assert texts["digits/7"] == "seven" and texts["auth-thankyou"] == "Thank you."
        assert not any(k.startswith(";") for k in texts)  # the file's comment lines are not prompts
