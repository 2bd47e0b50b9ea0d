"""The speech-recognition benchmark's real test sets (Debian packages) and its two anchors: the sets load
as 16 kHz float32 mono with usable references, TIDIGITS names parse, noise mixes reproducibly, and the
anchors transcribe a real card recording."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from edge_sdk.errors import BadInputError

SPHINX = Path("/usr/share/pocketsphinx/test/data")
ASTERISK = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
NEEDS = {
    "librivox": SPHINX / "librivox",
    "cards": SPHINX / "cards",
    "tidigits": SPHINX / "tidigits/dhd.2934z.raw",
    "asterisk-wav": Path("/usr/share/asterisk/sounds/en/digits/7.wav"),
    "asterisk-g722": Path("/usr/share/asterisk/sounds/en/digits/7.g722"),
}


@pytest.fixture(scope="module")
def ad(bench_module: Callable[..., ModuleType]) -> ModuleType:
    return bench_module("asr_data", "soxr", "av")


def _need(name: str) -> None:
    if not NEEDS[name].exists() or (name.startswith("asterisk") and not ASTERISK.exists()):
        pytest.skip(f"{NEEDS[name]} is not installed")


@pytest.mark.parametrize("name", list(NEEDS))
def test_sets_load_as_16k_mono_with_references(ad: ModuleType, name: str) -> None:
    _need(name)
    utts = ad.load(name)
    assert utts and len({u.id for u in utts}) == len(utts)
    for u in utts:
        assert u.set == name and u.path.exists()
        assert u.words(), u.id
        assert all(w.replace("'", "").isalpha() for w in u.words()), u.id
        assert u.audio.dtype == np.float32 and u.audio.ndim == 1
        assert 0.2 < u.seconds < 60
        assert float(np.max(np.abs(u.audio))) <= 1.0


def test_tidigits_names(ad: ModuleType) -> None:
    assert ad.tidigits_words("tidigits/dhd.2934z.raw") == ["two", "nine", "three", "four", "zero"]
    assert ad.tidigits_words("man.ah.35oa.mfc") == ["three", "five", "oh"]
    assert ad.tidigits_words("woman.ak.48z66zza.mfc") == [
        "four",
        "eight",
        "zero",
        "six",
        "six",
        "zero",
        "zero",
    ]
    assert ad.tidigits_words("man.ah.zb.mfc") == ["zero"]
    for bad in ("goforward.raw", "man.ah.12x4a.mfc"):
        with pytest.raises(BadInputError, match="TIDIGITS"):
            ad.tidigits_words(bad)


def test_tidigits_set_scores_digit_strings_with_oh_as_zero(ad: ModuleType) -> None:
    _need("tidigits")
    utts = {u.id: u for u in ad.load("tidigits")}
    digits, go = utts["tidigits/dhd.2934z.raw"], utts["tidigits/goforward.raw"]
    assert digits.digit_string and not go.digit_string
    assert digits.words() == ["two", "nine", "three", "four", "zero"]
    # "oh" for 0 and a digit string written as a numeral both score as right; "10" in a sentence is "ten"
    assert ad.score([digits, go], ["2934 oh.", "Go forward 10 meters."]).errors == 0
    assert ad.score([digits], ["two nine three four"]).deletions == 1


def test_asterisk_rule(ad: ModuleType) -> None:
    texts = {f"digits/{i}": str(i) for i in (10, 2, 0)} | {
        "digits/h-1": "first",
        "beep": "[a beep]",
        "press-star": "press * now please",
        "pin": "enter 1234 now please",
        "letters/a": "a b c",
        "short": "Goodbye.",
        **{f"prompt-{i:02d}": f"please press {i % 10} now" for i in range(8)},
    }
    assert ad.asterisk_keys(texts, sentences=3) == [
        "digits/0",
        "digits/2",
        "digits/10",
        "prompt-00",
        "prompt-02",
        "prompt-04",
    ]


def test_asterisk_subset_is_fixed(ad: ModuleType) -> None:
    _need("asterisk-wav")
    keys = [u.id.split("/", 1)[1] for u in ad.load("asterisk-wav")]
    assert keys[:11] == [f"digits/{i}" for i in range(11)]
    assert len(keys) - sum(k.startswith("digits/") for k in keys) == ad.ASTERISK_SENTENCES
    assert [u.id.split("/", 1)[1] for u in ad.load("asterisk-g722")] == keys


def test_unknown_set(ad: ModuleType) -> None:
    with pytest.raises(BadInputError, match="unknown test set"):
        ad.load("timit")


def test_noisy_is_reproducible_real_noise(ad: ModuleType) -> None:
    _need("cards")
    u = ad.load("cards")[0]
    installed = {"keyboard": ad.speech_corpus.BUCKLE, "engines": ad.speech_corpus.OPENSFX}
    kinds = [k for k in ad.NOISES if installed[k].exists()]
    if not kinds:
        pytest.skip("neither bucklespring-data nor openttd-opensfx is installed")
    for kind in kinds:
        a = ad.noisy(u, 5, seed=1, kind=kind)
        assert a.shape == u.audio.shape and a.dtype == np.float32
        assert np.array_equal(a, ad.noisy(u, 5, seed=1, kind=kind))
        assert not np.array_equal(a, ad.noisy(u, 5, seed=2, kind=kind))
        # less noise at 10 dB than at 5 dB: the mixture is closer to the clean speech
        err5 = np.sum((a - u.audio) ** 2)
        err10 = np.sum((ad.noisy(u, 10, seed=1, kind=kind) - u.audio) ** 2)
        assert err10 < err5
    with pytest.raises(BadInputError, match="unknown noise"):
        ad.noisy(u, 5, kind="white")


def test_pocketsphinx_transcribes_a_card(bench_module: Callable[..., ModuleType], ad: ModuleType) -> None:
    _need("cards")
    anchors = bench_module("asr_anchors", "pocketsphinx")
    u = ad.load("cards")[0]
    hyp = anchors.load_pocketsphinx().transcribe(u.audio)
    assert ad.score([u], [hyp]).wer < 1.0, hyp


@pytest.mark.network
def test_whisper_transcribes_a_card(bench_module: Callable[..., ModuleType], ad: ModuleType) -> None:
    _need("cards")
    anchors = bench_module("asr_anchors", "faster_whisper")
    cache = Path(__file__).resolve().parents[2] / ".cache" / "test-models"
    folder = anchors.whisper_model_dir(cache)
    assert set(anchors.WHISPER_FILES) <= {p.name for p in folder.iterdir()}
    u = ad.load("cards")[0]
    hyp = anchors.load_whisper(1, folder).transcribe(u.audio)
    assert ad.score([u], [hyp]).wer < 1.0, hyp
