"""Real-speech test sets for the speech-recognition benchmark, all 16 kHz float32 mono, from Debian packages.

* ``librivox``: pocketsphinx-testdata's five LibriVox clips (*Sense and Sensibility*, one reader) with its
  ``librivox/transcription``.
* ``cards``: its five card-game recordings (``cards/*.wav``, ``cards.transcription``).
* ``tidigits``: its connected-digit recordings in audio (``tidigits/**.raw``; one is installed,
  ``dhd.2934z.raw``), headerless 16-bit little-endian PCM at 16 kHz (the rate pocketsphinx's own tests
  decode them at, and the one at which it hears "two nine three four zero"), and ``goforward.raw`` (same
  format; its transcript is the sentence its test grammar ``goforward.gram`` spells). A TIDIGITS file
  name is its transcript: the digits ``1``-``9``, ``z`` for "zero" and ``o`` for "oh" (TIDIGITS speakers
  said both for 0, and the transcripts keep which), then ``a`` or ``b`` for the speaker's first or second
  production of that string (absent in ``dhd.2934z``). The other TIDIGITS files there (``*.mfc``) are
  cepstra, not audio; ``numbers.raw`` and ``something.raw`` have no transcript: left out.
* ``asterisk-wav`` and ``asterisk-g722``: Allison Smith's Asterisk prompts, the same recordings in two
  codings: 8 kHz WAV (asterisk-core-sounds-en-wav, resampled to 16 kHz with soxr) and G.722
  (asterisk-core-sounds-en-g722, 16 kHz, decoded with PyAV). Transcripts from asterisk-core-sounds-en's
  ``core-sounds-en.txt.gz``. Chosen by a fixed rule (``asterisk_keys``): every numeral prompt
  ``digits/<number>`` (0-20 and the tens), then 40 sentence prompts: of the prompts outside ``digits/``,
  ``letters/`` and ``phonetic/`` whose transcript has at least 3 words, no markup (``[ ] < > ( ) { } "``,
  ``*``, ``#``) and no numeral of several digits (``1234`` has no single reading), less the prompts whose
  transcript is misspelt (``ERRATA``, found by checking every candidate's words against CMUdict), sorted
  by name, every k-th from the first, k = their count // 40. ``asterisk`` names both codings.

A digit string's reference and every hypothesis for it are normalised with ``digits_oh_as_zero`` and
``digits_one_by_one`` (``edge_sdk.asr.text``); every other utterance with the default rules.

Noise (``noisy``): real recordings, as the audio-quality benchmark uses them (``speech_corpus``): ``keyboard``
(bucklespring-data's IBM Model M keys, typed at about 5.5 keys a second) and ``engines`` (openttd-opensfx's
propeller plane, lift machinery, helicopter and two buses), mixed with ``edge_sdk.audio.mix.mix_at_snr``.
"""

from __future__ import annotations

import functools
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import kws_real
import numpy as np
import speech_corpus

from edge_sdk.asr.text import WerResult, normalize, wer
from edge_sdk.audio import mix
from edge_sdk.errors import BadInputError
from edge_sdk.train import speech_data

RATE = speech_data.SAMPLE_RATE
SETS = ("librivox", "cards", "tidigits", "asterisk-wav", "asterisk-g722")
ALIASES = {"asterisk": ("asterisk-wav", "asterisk-g722")}
NOISES = ("keyboard", "engines")
ASTERISK_SENTENCES = 40
_MARKUP = re.compile(r"[\[\]<>(){}\"*#]")
#: Candidate prompts whose transcript misspells a word it says: a wrong reference would count against
#: every system, so they are left out.
ERRATA = {
    "conf-adminmenu-menu8": "'umute' for 'unmute'",
    "queue-periodic-announce": "'represenatives'",
    "unidentified-no-callback": "'Un-indentified', 'witheld'",
}
_PACKAGES = {
    "librivox": "pocketsphinx-testdata",
    "cards": "pocketsphinx-testdata",
    "tidigits": "pocketsphinx-testdata",
    "asterisk-wav": "asterisk-core-sounds-en asterisk-core-sounds-en-wav",
    "asterisk-g722": "asterisk-core-sounds-en asterisk-core-sounds-en-g722",
}


@dataclass(frozen=True)
class Utterance:
    """One test utterance: a stable id, its set, the reference transcript as written, 16 kHz float32 mono
    audio, the file it came from, and whether it is a digit string (normalised as one)."""

    id: str
    set: str
    text: str
    audio: np.ndarray
    path: Path
    digit_string: bool = False

    @property
    def seconds(self) -> float:
        return len(self.audio) / RATE

    def normalize(self, text: str) -> str:
        """``text`` (the reference or a hypothesis) normalised as this utterance's set requires."""
        return normalize(text, digits_oh_as_zero=self.digit_string, digits_one_by_one=self.digit_string)

    def words(self) -> list[str]:
        """The normalised reference words."""
        return self.normalize(self.text).split()


def tidigits_words(file_name: str) -> list[str]:
    """The words a TIDIGITS-named file says: ``dhd.2934z.raw`` → two nine three four zero,
    ``man.ah.35oa.mfc`` → three five oh (the last dotted part before the extension; a final ``a``/``b``
    is the production, not a digit)."""
    parts = Path(file_name).name.split(".")
    code = (parts[-2] if len(parts) > 1 else parts[0]).rstrip("ab")
    if not code or any(c not in kws_real.TIDIGITS_CHARS for c in code):
        raise BadInputError(f"{file_name!r} is not a TIDIGITS name (digits 1-9, z, o, then a or b)")
    return [kws_real.TIDIGITS_CHARS[c] for c in code]


def _missing(name: str, what: Path) -> BadInputError:
    return BadInputError(f"test set {name!r}: {what} is missing; apt-get install {_PACKAGES[name]}")


def _read_raw(path: Path) -> np.ndarray:
    # headerless 16-bit little-endian PCM at 16 kHz, as pocketsphinx's tests decode it
    return (np.fromfile(path, dtype="<i2") / 32768.0).astype(np.float32)


def _sphinx(name: str) -> list[Utterance]:
    texts = kws_real.sphinx_transcripts()
    out = []
    for clip in speech_corpus.sphinx_clips():
        if clip.name.startswith(f"{name}/") and clip.name in texts:
            path = speech_corpus.SPHINX / clip.name
            out.append(Utterance(f"{name}/{path.stem}", name, texts[clip.name], clip.audio, path))
    if not out:
        raise _missing(name, speech_corpus.SPHINX / name)
    return out


def _tidigits() -> list[Utterance]:
    raws = sorted((speech_corpus.SPHINX / "tidigits").rglob("*.raw"))
    if not raws:
        raise _missing("tidigits", speech_corpus.SPHINX / "tidigits")
    out = [
        Utterance(f"tidigits/{p.name}", "tidigits", " ".join(tidigits_words(p.name)), _read_raw(p), p, True)
        for p in raws
    ]
    goforward = speech_corpus.SPHINX / "goforward.raw"
    text = kws_real.sphinx_transcripts().get("goforward.raw")
    if goforward.exists() and text:
        out.append(Utterance("tidigits/goforward.raw", "tidigits", text, _read_raw(goforward), goforward))
    return out


def asterisk_keys(texts: dict[str, str], sentences: int = ASTERISK_SENTENCES) -> list[str]:
    """The Asterisk prompts the benchmark scores (the rule in the module docstring), numerals first."""
    digits = sorted((k for k in texts if re.fullmatch(r"digits/\d+", k)), key=lambda k: int(k.split("/")[1]))
    pool = sorted(
        k
        for k, t in texts.items()
        if not k.startswith(("digits/", "letters/", "phonetic/"))
        and k not in ERRATA
        and not kws_real.NOT_SPEECH.search(k)
        and not _MARKUP.search(t)
        and not re.search(r"\d{2,}|\d[.,:]\d", t)
        and len(normalize(t).split()) >= 3
    )
    step = max(1, len(pool) // sentences) if sentences else 1
    return digits + pool[::step][:sentences]


def _asterisk(name: str, sentences: int) -> list[Utterance]:
    texts = speech_data.asterisk_transcripts()
    if not texts:
        raise _missing(name, speech_data.ASTERISK_TRANSCRIPTS)
    suffix, read = (
        (".wav", speech_data.load_16k) if name == "asterisk-wav" else (".g722", speech_data.read_g722)
    )
    out = []
    for key in asterisk_keys(texts, sentences):
        path = speech_data.ASTERISK_ROOT / (key + suffix)
        if not path.exists():
            raise _missing(name, path)
        out.append(Utterance(f"{name}/{key}", name, texts[key], read(path), path))
    return out


def load(name: str, asterisk_sentences: int = ASTERISK_SENTENCES) -> list[Utterance]:
    """The utterances of test set ``name`` (one of SETS, or ``asterisk`` for both codings), in a fixed
    order. A set whose Debian package is missing is a BadInputError naming the package."""
    if name in ALIASES:
        return [u for part in ALIASES[name] for u in load(part, asterisk_sentences)]
    if name not in SETS:
        raise BadInputError(f"unknown test set {name!r}; there are {', '.join(SETS + tuple(ALIASES))}")
    if name.startswith("asterisk"):
        return _asterisk(name, asterisk_sentences)
    return _tidigits() if name == "tidigits" else _sphinx(name)


def score(utterances: Sequence[Utterance], hyps: Sequence[str]) -> WerResult:
    """Pooled word error rate of ``hyps`` (one per utterance, in order), each side normalised as its
    utterance requires."""
    if len(utterances) != len(hyps):
        raise BadInputError(f"{len(utterances)} utterances but {len(hyps)} hypotheses")
    total = WerResult()
    for u, h in zip(utterances, hyps, strict=True):
        total += wer([u.text], [h], normalizer=u.normalize)
    return total


@functools.lru_cache(maxsize=1)
def _bank() -> speech_corpus.NoiseBank:
    return speech_corpus.NoiseBank()


def noisy(
    utterance: Utterance, snr_db: float, seed: int = speech_corpus.SEED, kind: str = "keyboard"
) -> np.ndarray:
    """``utterance``'s audio with real noise ``kind`` (one of NOISES) at ``snr_db`` (speech RMS over the
    whole utterance to noise RMS). The noise is drawn from a generator seeded by (seed, utterance id,
    kind, SNR), so a mixture never depends on what else is mixed in the run."""
    if kind not in NOISES:
        raise BadInputError(f"unknown noise {kind!r}; real noises here: {', '.join(NOISES)}")
    key = [
        seed,
        zlib.crc32(utterance.id.encode()),
        zlib.crc32(kind.encode()),
        int(round(snr_db * 100)) & 0xFFFFFFFF,
    ]
    try:
        noise = _bank().make(kind, len(utterance.audio), np.random.default_rng(key))
    except FileNotFoundError as e:
        package = "bucklespring-data" if kind == "keyboard" else "openttd-opensfx"
        raise BadInputError(f"noise {kind!r}: {e} (apt-get install {package})") from e
    return mix.mix_at_snr(utterance.audio, noise, snr_db)[0]


def summary(sets: Sequence[str] = SETS) -> list[dict[str, float | int | str]]:
    """Per set: utterances, reference words (normalised), minutes."""
    rows: list[dict[str, float | int | str]] = []
    for name in sets:
        utts = load(name)
        rows.append(
            {
                "set": name,
                "utterances": len(utts),
                "words": sum(len(u.words()) for u in utts),
                "minutes": sum(u.seconds for u in utts) / 60,
            }
        )
    return rows


def main() -> None:
    rows = summary()
    print(f"{'set':<14} {'utterances':>10} {'words':>6} {'minutes':>8}")
    for r in rows:
        print(f"{r['set']:<14} {r['utterances']:>10} {r['words']:>6} {r['minutes']:>8.2f}")
    n, w, m = (sum(float(r[k]) for r in rows) for k in ("utterances", "words", "minutes"))
    print(f"{'total':<14} {int(n):>10} {int(w):>6} {m:>8.2f}")


if __name__ == "__main__":
    main()
