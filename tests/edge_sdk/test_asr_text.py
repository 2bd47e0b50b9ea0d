"""The speech-recognition benchmark's text normalisation and word error rate: worked examples of every
rule the module documents, and properties of the alignment."""

from __future__ import annotations

import pytest

from edge_sdk.asr.text import Op, WerResult, align, format_alignment, normalize, number_words, wer, words
from edge_sdk.errors import BadInputError

hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello,   World!  Don't stop.", "hello world don't stop"),
        ("“Quoted” ‘words’ and James' hat; it’s", "quoted words and james hat it's"),
        ("twenty-one call-forward", "twenty one call forward"),
        ("a.m. U.S.A. e.g", "am usa eg"),
        ("Mr. Dashwood, Mrs Jennings and Dr. Who", "mister dashwood missus jennings and doctor who"),
        ("50% & more", "fifty percent and more"),
        ("$5, $1 and $5.50", "five dollars one dollar and five dollars fifty cents"),
        ("10:30 10:05 10:00", "ten thirty ten oh five ten"),
    ],
)
def test_rules(text: str, expected: str) -> None:
    assert normalize(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", "zero"),
        ("7", "seven"),
        ("21", "twenty one"),
        ("105", "one hundred five"),
        ("1000", "one thousand"),
        ("1,000", "one thousand"),
        ("1,500", "one thousand five hundred"),
        ("12,345,678", "twelve million three hundred forty five thousand six hundred seventy eight"),
        ("1990", "nineteen ninety"),
        ("1905", "nineteen oh five"),
        ("1900", "nineteen hundred"),
        ("2015", "two thousand fifteen"),
        ("3rd", "third"),
        ("21st", "twenty first"),
        ("12th 20th 100th", "twelfth twentieth one hundredth"),
        ("the 1990s and 90's", "the nineteen nineties and nineties"),
        ("28.8", "twenty eight point eight"),
        ("007", "zero zero seven"),
        ("mp3", "mp three"),
        ("1234567890123456", "one two three four five six seven eight nine zero one two three four five six"),
    ],
)
def test_numbers_are_spelt(text: str, expected: str) -> None:
    assert normalize(text) == expected


def test_digit_options() -> None:
    assert normalize("three oh five") == "three oh five"
    assert normalize("three oh five, 3 O 5", digits_oh_as_zero=True) == "three zero five three zero five"
    assert normalize("2934 0", digits_one_by_one=True) == "two nine three four zero"
    # decimals and ordinals keep their reading
    assert normalize("1.5 3rd", digits_one_by_one=True) == "one point five third"
    assert words("Two-nine", digits_oh_as_zero=True) == ["two", "nine"]


def test_number_words_range() -> None:
    assert number_words(999_999_999_999_999)[:2] == ["nine", "hundred"]
    with pytest.raises(BadInputError):
        number_words(10**15)


@hypothesis.given(st.text(max_size=60))
def test_normalize_is_idempotent_and_clean(text: str) -> None:
    out = normalize(text)
    assert normalize(out) == out
    assert out == out.strip() and "  " not in out
    assert not any(c.isdigit() and c.isascii() for c in out)
    assert all(w.strip("'") == w for w in out.split())


def test_align_worked_example() -> None:
    ops = align("a b c d".split(), "a x c e d".split())
    assert [op.kind for op in ops] == ["ok", "sub", "ok", "ins", "ok"]
    assert ops[1] == Op("sub", "b", "x") and ops[3] == Op("ins", None, "e")
    assert format_alignment(align("the cat sat".split(), "the bat sat down".split())) == (
        "the CAT sat *",
        "the BAT sat DOWN",
    )
    assert [op.kind for op in align(["a", "b"], [])] == ["del", "del"]


_words = st.lists(st.sampled_from("a b c d".split()), max_size=8)


@hypothesis.given(_words, _words)
def test_align_properties(ref: list[str], hyp: list[str]) -> None:
    ops = align(ref, hyp)
    assert [op.ref for op in ops if op.ref is not None] == ref
    assert [op.hyp for op in ops if op.hyp is not None] == hyp
    errors = sum(op.kind != "ok" for op in ops)
    assert errors == sum(op.kind != "ok" for op in align(hyp, ref))  # edit distance is symmetric
    assert abs(len(ref) - len(hyp)) <= errors <= max(len(ref), len(hyp))
    assert all((op.ref == op.hyp) == (op.kind == "ok") for op in ops)


def test_wer_is_pooled_over_utterances() -> None:
    r = wer(["The cat sat.", "hello"], ["the bat sat down", ""])
    assert (r.substitutions, r.deletions, r.insertions, r.ref_words, r.utterances) == (1, 1, 1, 4, 2)
    assert r.wer == pytest.approx(0.75)
    # pooled, not the mean of per-utterance rates (which would be (2/3 + 1) / 2)
    assert wer(["Twenty-one"], ["21"]).wer == 0.0
    assert wer([""], [""]).wer == 0.0 and wer([""], ["uh"]).wer == float("inf")
    assert wer(["a"], ["b c d"]).wer == 3.0  # insertions can take it past 1
    assert (WerResult(1, 0, 0, 2, 1) + WerResult(0, 1, 1, 3, 1)).wer == pytest.approx(3 / 5)


def test_wer_rejects_mismatched_input() -> None:
    with pytest.raises(BadInputError, match="pair one to one"):
        wer(["a", "b"], ["a"])
    with pytest.raises(BadInputError, match="single string"):
        wer("a b", "a b")
    assert wer(["A b"], ["a b"], normalizer=None).substitutions == 1
