"""CTC decoding: greedy and prefix beam search agree with pyctcdecode and with an exhaustive search, the word
language model and hotwords move the result the way they should, streaming changes nothing, and bad input
is refused with a message that says what is wrong."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest

from edge_sdk.asr.arpa import ArpaLM
from edge_sdk.asr.ctc import CtcDecoder, greedy
from edge_sdk.asr.hotwords import Hotwords
from edge_sdk.asr.scoring import PrefixScorer, log_softmax
from edge_sdk.asr.tokens import TokenTable
from edge_sdk.errors import BadInputError

CHARS = TokenTable(("<blk>", "a", "b", "c"))
WORDS = TokenTable(("<blk>", "|", "c", "a", "o", "t", "h", "e"))

# A trigram model over a few words; "the cat" is likely, "cot" is not. Several n-grams are missing so that
# scoring has to back off (e.g. "cat </s>" after "the" backs off to the bigram).
ARPA = """\\data\\
ngram 1=7
ngram 2=6
ngram 3=2

\\1-grams:
-1.0\t<s>\t-0.3
-1.2\t</s>
-0.9\tthe\t-0.4
-1.1\tcat\t-0.2
-2.5\tcot\t-0.1
-1.8\tact\t-0.5
-1.6\t<unk>

\\2-grams:
-0.3\t<s> the\t-0.1
-0.2\tthe cat\t-0.05
-1.5\tthe cot
-0.4\tcat </s>
-0.6\tcot </s>
-0.9\t<s> cat

\\3-grams:
-0.1\t<s> the cat
-0.7\tthe cat </s>

\\end\\
"""


@pytest.fixture()
def arpa(tmp_path: Path) -> Path:
    path = tmp_path / "lm.arpa"
    path.write_text(ARPA, encoding="utf-8")
    return path


def peaky(table: TokenTable, text: str, rng: np.random.Generator, peak: float = 0.9) -> np.ndarray:
    """Log-probabilities whose best path spells ``text`` (one frame per symbol, a blank frame after each)."""
    ids = []
    for ch in text:
        ids += [table.id_of("|" if ch == " " else ch), table.blank]
    noise = rng.random((len(ids), len(table))) + 0.05
    probs = noise / noise.sum(axis=1, keepdims=True) * (1 - peak)
    probs[np.arange(len(ids)), ids] += peak
    return np.log(probs)


def ambiguous(table: TokenTable, first: str, second: str, p_first: float, p_second: float) -> np.ndarray:
    """A clear "the c?t" where the vowel frame gives ``first`` and ``second`` the probabilities given."""
    x = peaky(table, "the cat", np.random.default_rng(7), peak=0.97)
    vowel = 2 * "the cat".index("a")
    row = np.full(len(table), (1 - p_first - p_second) / (len(table) - 2))
    row[table.id_of(first)], row[table.id_of(second)] = p_first, p_second
    x[vowel] = np.log(row)
    return x


def ctc_log_prob(x: np.ndarray, labels: tuple[int, ...], blank: int) -> float:
    """Exact ``ln P(labels | x)`` by the CTC forward recursion over the blank-extended label sequence."""
    ext = [blank]
    for label in labels:
        ext += [label, blank]
    alpha = np.full(len(ext), -np.inf)
    alpha[0] = x[0, blank]
    if labels:
        alpha[1] = x[0, ext[1]]
    for t in range(1, len(x)):
        new = np.full(len(ext), -np.inf)
        for s, label in enumerate(ext):
            paths = [alpha[s]] + ([alpha[s - 1]] if s >= 1 else [])
            if s >= 2 and label != blank and label != ext[s - 2]:
                paths.append(alpha[s - 2])
            new[s] = np.logaddexp.reduce(paths) + x[t, label]
        alpha = new
    return float(np.logaddexp(alpha[-1], alpha[-2]) if labels else alpha[-1])


def brute_force(x: np.ndarray, table: TokenTable, extra=lambda labels: 0.0) -> tuple[int, ...]:
    """The label sequence with the highest exact CTC log-probability plus ``extra``, over all of them."""
    symbols = [i for i in range(len(table)) if i != table.blank]
    best: tuple[int, ...] = ()
    best_score = -math.inf
    for n in range(len(x) + 1):
        for labels in itertools.product(symbols, repeat=n):
            repeats = sum(a == b for a, b in itertools.pairwise(labels))
            if n + repeats > len(x):
                continue  # a repeated label needs a blank frame between its two copies
            score = ctc_log_prob(x, labels, table.blank) + extra(labels)
            if score > best_score:
                best, best_score = labels, score
    return best


def random_log_probs(rng: np.random.Generator, frames: int, vocab: int, spread: float = 2.0) -> np.ndarray:
    return log_softmax(rng.normal(0.0, spread, (frames, vocab)))


# --- greedy and the token table -------------------------------------------------------------------------


def test_greedy_collapses_repeats_drops_blanks_and_gives_the_first_frame_of_each_token() -> None:
    best = [1, 1, 0, 1, 2, 2, 0, 0, 3, 0]  # a a _ a b b _ _ c _
    x = np.log(np.full((len(best), 4), 0.1))
    x[np.arange(len(best)), best] = np.log(0.7)
    result = greedy(x, tokens=CHARS)
    assert result.tokens == (1, 1, 2, 3)
    assert result.frames == (0, 3, 4, 8)
    assert result.text == "aabc"
    assert result.score == pytest.approx(len(best) * math.log(0.7))


def test_greedy_on_no_frames_is_empty() -> None:
    assert greedy(np.zeros((0, 4)), tokens=CHARS).tokens == ()


def test_a_sherpa_tokens_txt_is_read_and_turns_ids_into_text(tmp_path: Path) -> None:
    path = tmp_path / "tokens.txt"
    path.write_text(
        "<blk> 0\n<unk> 1\n▁HE 2\nLLO 3\n▁WORLD 4\n<0xE4> 5\n<0xBD> 6\n<0xA0> 7\n", encoding="utf-8"
    )
    table = TokenTable.from_file(path)
    assert len(table) == 8 and table.blank == 0 and table.delimiter is None and table.has_words
    assert table.text([2, 3, 0, 4, 1]) == "HELLO WORLD"
    assert table.text([5, 6, 7]) == "你"  # byte-fallback pieces decode together
    assert [table.starts_word(t) for t in (2, 3, 4)] == [True, False, True]
    assert table.encode("HELLO WORLD") == [2, 3, 4]

    chars = tmp_path / "chars.txt"
    chars.write_text("<blk> 0\n 1\na 2\nb 3\n", encoding="utf-8")  # a line with only an id is the space
    spaced = TokenTable.from_file(chars)
    assert spaced.delimiter == " " and spaced.text([2, 1, 1, 3]) == "a b"
    assert spaced.encode("ab ba") == [2, 3, 1, 3, 2]


def test_a_bad_tokens_txt_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tokens.txt"
    path.write_text("<blk> 0\na 2\n", encoding="utf-8")
    with pytest.raises(BadInputError, match="without gaps"):
        TokenTable.from_file(path)
    with pytest.raises(BadInputError, match="cannot read"):
        TokenTable.from_file(tmp_path / "missing.txt")


# --- prefix beam search ---------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_a_wide_beam_finds_the_exact_best_label_sequence(seed: int) -> None:
    x = random_log_probs(np.random.default_rng(seed), frames=5, vocab=4)
    result = CtcDecoder(CHARS, beam=500, top_k=None, min_log_prob=None).decode(x)
    assert result.tokens == brute_force(x, CHARS)
    assert result.score == pytest.approx(ctc_log_prob(x, result.tokens, 0), abs=1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_prefix_beam_search_agrees_with_pyctcdecode_when_neither_prunes(seed: int) -> None:
    pyctcdecode = pytest.importorskip("pyctcdecode")
    x = random_log_probs(np.random.default_rng(100 + seed), frames=6, vocab=4)
    ours = CtcDecoder(CHARS, beam=2000, top_k=None, min_log_prob=None).decode(x)
    theirs = pyctcdecode.build_ctcdecoder(["<pad>", "a", "b", "c"]).decode_beams(
        x, beam_width=5000, beam_prune_logp=-1e9, token_min_logp=-1e9, prune_history=False
    )[0]
    assert ours.text == theirs[0]
    assert ours.score == pytest.approx(theirs[3], abs=1e-9)  # both are the exact ln P(text | x)


@pytest.mark.parametrize("seed", range(4))
def test_prefix_beam_search_agrees_with_pyctcdecode_on_peaky_speech_like_input(seed: int) -> None:
    pyctcdecode = pytest.importorskip("pyctcdecode")
    rng = np.random.default_rng(200 + seed)
    words = ["the", "cat", "hot", "oat", "each", "tea"]
    text = " ".join(rng.choice(words, size=4))
    x = peaky(WORDS, text, rng, peak=0.6)
    ours = CtcDecoder(WORDS, beam=16).decode(x)
    labels = ["<pad>", "|", *WORDS.symbols[2:]]
    theirs = pyctcdecode.build_ctcdecoder(labels).decode(x, beam_width=16)
    assert ours.text == theirs == text


def test_beam_one_follows_the_best_path_on_peaky_input() -> None:
    rng = np.random.default_rng(3)
    for text in ("the cat", "cot", "tea each"):
        x = peaky(WORDS, text, rng, peak=0.8)
        assert CtcDecoder(WORDS, beam=1).decode(x).tokens == greedy(x, tokens=WORDS).tokens


def test_beam_search_gives_each_token_the_frame_where_it_peaks() -> None:
    x = peaky(WORDS, "the cat", np.random.default_rng(4), peak=0.9)
    result = CtcDecoder(WORDS, beam=8).decode(x)
    assert result.text == "the cat"
    assert result.frames == tuple(range(0, 2 * len("the cat"), 2))


# --- language model and hotwords ------------------------------------------------------------------------


def test_the_arpa_reader_backs_off_as_the_file_says(arpa: Path) -> None:
    lm = ArpaLM.from_file(arpa)
    ln10 = math.log(10)
    assert lm.order == 3
    assert lm.log_prob(("<s>", "the"), "cat") == pytest.approx(-0.1 * ln10)  # trigram present
    # "the cot" has no trigram after "<s>": back-off of "<s> the" plus the bigram
    assert lm.log_prob(("<s>", "the"), "cot") == pytest.approx((-0.1 - 1.5) * ln10)
    # nothing after "cot" but </s>: back-off of "cot" plus the unigram
    assert lm.log_prob(("the", "cot"), "act") == pytest.approx((-0.1 - 1.8) * ln10)
    assert lm.log_prob(("the",), "dog") == pytest.approx((-0.4 - 1.6) * ln10)  # unknown word: <unk>


def test_the_arpa_reader_scores_sentences_as_kenlm_does(arpa: Path) -> None:
    kenlm = pytest.importorskip("kenlm")
    ours, theirs = ArpaLM.from_file(arpa), kenlm.Model(str(arpa))
    for sentence in ("the cat", "the cot", "cat the act", "act", "the cat the cot cat", "the dog"):
        words = sentence.split()
        assert ours.sentence_log_prob(words) == pytest.approx(theirs.score(sentence) * math.log(10), abs=1e-5)


def test_a_bad_arpa_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.arpa"
    path.write_text("hello\n", encoding="utf-8")
    with pytest.raises(BadInputError, match="not an ARPA file"):
        ArpaLM.from_file(path)


@pytest.mark.parametrize("seed", range(3))
def test_with_a_language_model_a_wide_beam_finds_the_exhaustive_best(arpa: Path, seed: int) -> None:
    table = TokenTable(("<blk>", "|", "c", "a", "t"))
    lm = ArpaLM.from_file(arpa)
    alpha, beta = 0.8, 0.5

    def lm_score(labels: tuple[int, ...]) -> float:
        words = [w for w in "".join(table.symbols[i] for i in labels).split("|") if w]
        return alpha * lm.sentence_log_prob(words) + beta * len(words)

    x = random_log_probs(np.random.default_rng(300 + seed), frames=5, vocab=5, spread=1.5)
    decoder = CtcDecoder(table, beam=2000, top_k=None, min_log_prob=None, lm=lm, alpha=alpha, beta=beta)
    result = decoder.decode(x)
    assert result.tokens == brute_force(x, table, lm_score)
    assert result.score == pytest.approx(ctc_log_prob(x, result.tokens, 0) + lm_score(result.tokens))


def test_the_language_model_picks_the_likely_word_like_pyctcdecode_with_kenlm(arpa: Path) -> None:
    x = ambiguous(WORDS, "o", "a", 0.5, 0.4)  # the acoustics slightly prefer "cot"
    assert CtcDecoder(WORDS).decode(x).text == "the cot"
    with_lm = CtcDecoder(WORDS, lm=ArpaLM.from_file(arpa), alpha=0.5, beta=1.0).decode(x)
    assert with_lm.text == "the cat"
    pytest.importorskip("kenlm")
    pyctcdecode = pytest.importorskip("pyctcdecode")
    labels = ["<pad>", "|", *WORDS.symbols[2:]]
    theirs = pyctcdecode.build_ctcdecoder(labels, str(arpa), alpha=0.5, beta=1.0)
    assert theirs.decode(x) == with_lm.text


def test_sentencepiece_pieces_make_the_words_the_language_model_scores(arpa: Path) -> None:
    table = TokenTable(("<blk>", "▁the", "▁c", "at", "ot"))
    x = np.log(np.full((5, 5), 0.02))
    for frame, (token, p) in enumerate([(1, 0.9), (0, 0.9), (2, 0.9), (4, 0.5), (0, 0.9)]):
        x[frame, token] = math.log(p)
    x[3, 3] = math.log(0.42)
    x = log_softmax(x)
    assert CtcDecoder(table).decode(x).text == "the cot"
    assert CtcDecoder(table, lm=ArpaLM.from_file(arpa)).decode(x).text == "the cat"


def test_a_language_model_needs_a_table_that_marks_words(arpa: Path) -> None:
    with pytest.raises(BadInputError, match="marks words"):
        CtcDecoder(CHARS, lm=ArpaLM.from_file(arpa))


def test_a_hotword_wins_an_ambiguous_frame_but_not_a_clear_one() -> None:
    hot = Hotwords.from_text(["cot"], WORDS, bonus=1.0)
    unsure = ambiguous(WORDS, "a", "o", 0.45, 0.40)
    assert CtcDecoder(WORDS).decode(unsure).text == "the cat"
    assert CtcDecoder(WORDS, hotwords=hot).decode(unsure).text == "the cot"
    clear = ambiguous(WORDS, "a", "o", 0.99, 0.001)
    assert CtcDecoder(WORDS, hotwords=hot).decode(clear).text == "the cat"


def test_a_half_matched_hotword_earns_nothing() -> None:
    hot = Hotwords([[WORDS.id_of(c) for c in "cate"]], bonus=0.5)
    x = peaky(WORDS, "the cat", np.random.default_rng(5), peak=0.9)
    assert CtcDecoder(WORDS, hotwords=hot).decode(x).tokens == CtcDecoder(WORDS).decode(x).tokens
    scorer = PrefixScorer(WORDS, hotwords=hot)
    state = scorer.start()
    for token in WORDS.encode("the cat"):
        state = scorer.extend(state, token)
    assert state.score == pytest.approx(1.5)  # "cat" matched 3 of the 4 tokens so far
    assert state.score + scorer.finish(state) == pytest.approx(0.0)  # and all of it is taken back


def test_hotword_bonus_is_taken_back_when_the_match_breaks() -> None:
    hot = Hotwords([[1, 2, 3], [2, 4]], bonus=1.0)
    state, total = hot.root, 0.0
    for token in (1, 2):
        bonus, state = hot.advance(state, token)
        total += bonus
    assert total == pytest.approx(2.0)
    bonus, state = hot.advance(state, 4)  # "1 2" breaks, "2 4" completes through the fail link
    total += bonus
    assert total == pytest.approx(2.0) and state is hot.root
    bonus, state = hot.advance(state, 1)
    assert bonus + hot.finish(state) == pytest.approx(0.0)


# --- streaming ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_streaming_in_chunks_gives_exactly_the_whole_utterance_result(arpa: Path, seed: int) -> None:
    rng = np.random.default_rng(400 + seed)
    x = np.concatenate([peaky(WORDS, "the cat", rng, 0.5), random_log_probs(rng, 12, len(WORDS))])
    decoder = CtcDecoder(
        WORDS, beam=6, lm=ArpaLM.from_file(arpa), hotwords=Hotwords.from_text(["cot", "tea"], WORDS)
    )
    whole = decoder.decode(x)
    stream = decoder.stream()
    cuts = sorted(rng.choice(np.arange(1, len(x)), size=5, replace=False))
    for chunk in np.split(x, cuts):
        stream.accept(chunk)
        assert isinstance(stream.partial().text, str)
    stream.accept(x[:0])  # an empty chunk is fine
    assert stream.finish() == whole


def test_partial_results_grow_with_the_audio() -> None:
    x = peaky(WORDS, "the cat", np.random.default_rng(6), peak=0.9)
    stream = CtcDecoder(WORDS).stream()
    stream.accept(x[:6])
    assert stream.partial().text == "the"
    stream.accept(x[6:])
    assert stream.partial().text == "the cat" == stream.finish().text
    with pytest.raises(BadInputError, match="finished"):
        stream.accept(x)


# --- bad input ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (np.zeros((2, 3, 8)), "must be 2-D"),
        (np.log(np.full((4, 5), 0.2)), "5 tokens per frame, expected 8"),
        (np.where(np.eye(4, 8) > 0, np.nan, -2.0), "NaN"),
        (np.ones((3, 8)), "look like logits"),
        (np.zeros((3, 8), dtype=np.int64), "floating point"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(x: np.ndarray, message: str) -> None:
    with pytest.raises(BadInputError, match=message):
        CtcDecoder(WORDS).decode(x)
    with pytest.raises(BadInputError, match=message):
        greedy(x, tokens=WORDS)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(BadInputError, match="beam"):
        CtcDecoder(WORDS, beam=0)
    with pytest.raises(BadInputError, match="blank id 9"):
        CtcDecoder(vocab_size=4, blank=9)
    with pytest.raises(BadInputError, match="differs"):
        CtcDecoder(WORDS, vocab_size=3)
    stream = CtcDecoder(blank=5).stream()
    with pytest.raises(BadInputError, match="blank id 5"):
        stream.accept(np.log(np.full((2, 4), 0.25)))
