"""Training and evaluation data for keyword spotting, made from text (the openWakeWord approach).

Each keyword is synthesised by many voices (``speech_data.synthesize``: espeak-ng voice families x
variants at random speeds and pitches, flite voices, and festival's diphone and HTS voices, which are built
from real speakers' recordings; cached on disk), trimmed to its speech by energy
and placed in a 1 s window. ``_unknown_`` is a few hundred other English words (near-misses such as
"yet", "dog", "often" among them; exact homophones of a keyword such as "know" for "no" are left out,
since no model can tell them apart), ``_silence_`` is noise alone or a very low floor.

The voices are split, deterministically, by ``voice_split``: the ``HELD_OUT_ESPEAK_FAMILIES``, the
``HELD_OUT_ESPEAK_VARIANTS`` (in any family), the ``HELD_OUT_FLITE`` and the ``HELD_OUT_FESTIVAL`` voices
speak only the evaluation set; training never hears them. Where Asterisk's English digit prompts are
installed (one real human speaker, 8 kHz and G.722), ``real_digit_clips`` gives them as a second,
real-speech evaluation set.

Augmentation (``augment``): gain, a random position in the window, reverberation (exponentially decaying
noise impulse responses), a telephone band (8 kHz and back) in some clips, and noise from
``noise_data.GENERATORS`` and babble at several SNRs. A real dataset in the Speech Commands layout
(``DIR/<word>/*.wav``, ``DIR/_background_noise_/*.wav``, ``validation_list.txt``/``testing_list.txt``)
is read by ``load_speech_commands``.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.audio.mix import loop_to, rms
from edge_sdk.errors import BadInputError
from edge_sdk.train import noise_data, speech_data

SR = speech_data.SAMPLE_RATE
SILENCE = "_silence_"
UNKNOWN = "_unknown_"
#: The 20 words of the bundled ``zoo:commands`` model.
DEFAULT_WORDS = (
    "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go",
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
)  # fmt: skip

HELD_OUT_ESPEAK_FAMILIES = ("en-029",)
HELD_OUT_ESPEAK_VARIANTS = ("m3", "f2")
HELD_OUT_FLITE = ("rms",)
HELD_OUT_FESTIVAL = ("ked_diphone",)
#: Every synthesiser the recipe draws voices from (those not installed are left out).
ENGINES = ("espeak-ng", "flite", "festival")
#: Share of the draws per engine when all are installed: festival's voices come from real recordings and
#: are the closest to human speech, espeak-ng's many families and variants give the most variety.
ENGINE_SHARE = {"espeak-ng": 0.5, "flite": 0.2, "festival": 0.3}

#: Words that sound exactly like a keyword: never used as ``_unknown_`` while that keyword is trained.
HOMOPHONES: dict[str, tuple[str, ...]] = {
    "no": ("know",),
    "right": ("write", "rite", "wright"),
    "one": ("won",),
    "two": ("to", "too"),
    "four": ("for", "fore"),
    "eight": ("ate",),
    "off": (),
    "yes": (),
}

#: Other English words for ``_unknown_``: common words plus near-misses of the default keywords.
UNKNOWN_WORDS = tuple(
    """
    yet yeah yesterday yellow less mess guess nose note now new snow know nope nobody nothing north
    upon cup pup supper open happen dog duck dove town down-town dawn gown round loud ground left-over
    lift laugh leaf loft lot light bright write night white might fight rate ride run on-line onion
    often of awful cough soft stock stuff stab top shop step store goal ghost goat gold grow going
    hero zebra zoo seven-up won once wonder want two-way tool tooth tree three-d free through throw
    thirty forty fourth fort fire fine file five-star fifty sick six-pack sex socks sixty seventh
    heaven several eighty hate weight eighteen nineteen ninety nice night-time mine line nine-to-five
    bed bird house mouse cat dog-house marvin sheila wow happy learn follow forward backward visual
    apple banana orange water coffee table chair window door kitchen garden music movie picture
    paper pencil phone camera computer keyboard screen button system number letter answer question
    people person family friend mother father sister brother child children woman man girl boy
    morning evening afternoon today tomorrow tonight week month year hour minute second moment time
    always never sometimes usually again already also almost enough maybe perhaps really very quite
    about above after against along among around before behind below beneath beside between beyond
    during except inside into near outside over since toward under until within without
    make made take took give gave come came keep kept think thought look looked find found tell told
    ask asked work worked call called try tried need needed feel felt become became leave leaving
    put mean means help helped show showed hear heard play played move moved live lived believe
    bring brought begin began write-up stand stood lose lost pay paid meet met include continue
    set setting learned change changed lead understand watch watched speak spoke read spend spent
    grow grew open opened walk walked win wins offer offered remember love consider appear buy
    wait serve die send expect build stay fall cut reach kill remain suggest raise pass sell
    require report decide pull return explain hope develop carry break receive agree support hit
    produce eat cover catch draw choose cause point listen hello goodbye please thank thanks sorry
    okay alright great good bad big small large little long short high low old young early late
    important public private real best better sure free full special easy clear recent certain
    personal local human major simple strong whole true able hard political national social
    blue green purple brown black gray silver golden pink red
    city country state world school office street road river mountain ocean island forest
    monday tuesday wednesday thursday friday saturday sunday january february march april june
    july august september october november december spring summer autumn winter weather
    """.split()
)

SPEECH_COMMANDS_NOISE = "_background_noise_"


@dataclass(frozen=True)
class Voice:
    """One synthetic voice: engine, voice name (espeak ``family+variant`` or a flite voice), speed, pitch."""

    engine: str
    voice: str
    speed: int = 160
    pitch: int = 50

    def desc(self) -> str:
        """``engine:voice@speed/pitch``, stable across runs (used in clip names and the model card)."""
        return f"{self.engine}:{self.voice}@{self.speed}/{self.pitch}"

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``speech_data.synthesize``."""
        return {"engine": self.engine, "voice": self.voice, "speed": self.speed, "pitch": self.pitch}


@dataclass
class Clip:
    """A labelled piece of audio: ``audio`` is the word alone (trimmed), or a 1 s window for real data."""

    label: str
    audio: np.ndarray
    source: str
    voice: str = ""
    placed: bool = False  # True: already a whole window (real recordings); only shifted, not re-placed


@dataclass
class KwsData:
    """Clips per split (``train``, ``test``; ``val`` for real datasets that have one) and noise per split."""

    labels: list[str]
    clips: dict[str, list[Clip]] = field(default_factory=dict)
    noise: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


def labels_for(words: Sequence[str]) -> list[str]:
    """The model's labels: ``_silence_``, ``_unknown_``, then the keywords in the order given."""
    words = [w.strip().lower() for w in words]
    bad = [w for w in words if not re.fullmatch(r"[a-z][a-z' -]*", w)]
    if bad or not words:
        raise BadInputError(f"keywords must be plain English words, got {list(words) if words else 'none'}")
    if len(set(words)) != len(words):
        raise BadInputError(f"keywords are repeated: {words}")
    return [SILENCE, UNKNOWN, *words]


def unknown_words(words: Iterable[str]) -> list[str]:
    """``UNKNOWN_WORDS`` minus the keywords, their homophones and any hyphenated form containing them."""
    kw = set(words)
    banned = kw | {h for w in kw for h in HOMOPHONES.get(w, ())}
    out = []
    for u in UNKNOWN_WORDS:
        parts = set(u.split("-"))
        if u in banned or parts & banned:
            continue
        out.append(u.replace("-", " "))
    return sorted(set(out))


def _parse_voice(voice: Voice | dict[str, Any] | str) -> tuple[str, str]:
    if isinstance(voice, Voice):
        return voice.engine, voice.voice
    if isinstance(voice, dict):
        return str(voice.get("engine", "espeak-ng")), str(voice["voice"])
    engine, _, rest = str(voice).partition(":")
    if not rest:
        raise BadInputError(f"a voice is 'engine:voice[@speed/pitch]', not {voice!r}")
    return engine, rest.split("@")[0]


def voice_split(voice: Voice | dict[str, Any] | str) -> str:
    """``"test"`` for a held-out voice, ``"train"`` otherwise; depends on the engine and voice name only
    (speed and pitch do not make a new speaker)."""
    engine, name = _parse_voice(voice)
    if engine == "espeak-ng":
        family, _, variant = name.partition("+")
        held = family in HELD_OUT_ESPEAK_FAMILIES or variant in HELD_OUT_ESPEAK_VARIANTS
    elif engine == "flite":
        held = name in HELD_OUT_FLITE
    elif engine == "festival":
        held = name in HELD_OUT_FESTIVAL
    else:
        raise BadInputError(f"unknown speech synthesiser {engine!r} in voice {voice!r}")
    return "test" if held else "train"


def base_voices(split: str, engines: Sequence[str] = ENGINES) -> list[tuple[str, str]]:
    """The (engine, voice) pairs of a split that are installed here."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be train or test, not {split!r}")
    out: list[tuple[str, str]] = []
    if "espeak-ng" in engines and speech_data.tts_available("espeak-ng"):
        for fam in speech_data.ESPEAK_VOICES:
            for var in speech_data.ESPEAK_VARIANTS:
                out.append(("espeak-ng", f"{fam}+{var}"))
    if "flite" in engines and speech_data.tts_available("flite"):
        out += [("flite", v) for v in speech_data.FLITE_VOICES]
    if "festival" in engines and speech_data.tts_available("festival"):
        out += [("festival", v) for v in speech_data.festival_voices()]
    out = [v for v in out if voice_split(f"{v[0]}:{v[1]}") == split]
    if not out:
        raise BadInputError(
            "no speech synthesiser installed for KWS data (apt-get install espeak-ng flite festival "
            "festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts)"
        )
    return out


def held_out_voices() -> dict[str, list[str]]:
    """The held-out voice rules, for reports and model cards."""
    return {
        "espeak_families": list(HELD_OUT_ESPEAK_FAMILIES),
        "espeak_variants": list(HELD_OUT_ESPEAK_VARIANTS),
        "flite": list(HELD_OUT_FLITE),
        "festival": list(HELD_OUT_FESTIVAL),
    }


def draw_voices(
    n: int, split: str, rng: np.random.Generator, engines: Sequence[str] = ENGINES
) -> list[Voice]:
    """``n`` voices of a split: an engine drawn by ``ENGINE_SHARE`` (among those installed and asked
    for), one of its base voices, and a random speed and pitch."""
    pool = base_voices(split, engines)
    by_engine = {e: [v for v in pool if v[0] == e] for e in ENGINES if any(v[0] == e for v in pool)}
    names = list(by_engine)
    share = np.array([ENGINE_SHARE[e] for e in names])
    out = []
    for _ in range(n):
        engine = names[int(rng.choice(len(names), p=share / share.sum()))]
        _, name = by_engine[engine][int(rng.integers(len(by_engine[engine])))]
        if engine == "espeak-ng":
            out.append(Voice(engine, name, int(rng.integers(110, 210)), int(rng.integers(20, 86))))
        elif engine == "flite":
            pitch = 50 if rng.random() < 0.5 else int(rng.integers(30, 76))
            out.append(Voice(engine, name, int(rng.integers(120, 200)), pitch))
        else:
            out.append(Voice(engine, name, int(rng.integers(128, 200))))
    return out


def trim_speech(x: np.ndarray, rel_db: float = 35.0, margin_s: float = 0.02) -> np.ndarray:
    """``x`` cut to its speech: from the first to the last 10 ms frame within ``rel_db`` of the loudest,
    plus ``margin_s`` either side. Silence stays an empty array."""
    x = np.asarray(x, np.float32)
    hop = SR // 100
    n = len(x) // hop
    if n == 0:
        return x
    energy = np.mean(x[: n * hop].reshape(n, hop).astype(np.float64) ** 2, axis=1)
    peak = energy.max()
    if peak <= 1e-10:
        return x[:0]
    on = np.flatnonzero(energy >= peak * 10 ** (-rel_db / 10))
    m = int(margin_s * SR)
    return x[max(0, on[0] * hop - m) : min(len(x), (on[-1] + 1) * hop + m)]


def synthesize_clip(text: str, voice: Voice, label: str) -> Clip:
    """One word spoken by ``voice``, trimmed to its speech (at most 1 s kept, from the start)."""
    audio = trim_speech(speech_data.synthesize(text, **voice.kwargs()))
    return Clip(label, audio[:SR], f"tts/{voice.desc()}/{text}", voice.desc())


def synthesize_words(
    words: Sequence[str],
    split: str,
    per_word: int,
    *,
    seed: int = 0,
    n_unknown: int | None = None,
    engines: Sequence[str] = ENGINES,
    workers: int = 2,
) -> list[Clip]:
    """``per_word`` clips of each keyword and ``n_unknown`` (default ``max(per_word, 15 % of all keyword
    clips)``) of other words, by voices of ``split`` only; deterministic for a seed."""
    rng = np.random.default_rng([seed, 0 if split == "train" else 1])
    jobs: list[tuple[str, Voice, str]] = []
    for w in words:
        for v in draw_voices(per_word, split, rng, engines):
            jobs.append((w, v, w))
    others = unknown_words(words)
    if n_unknown is None:
        n_unknown = max(per_word, int(round(0.15 * per_word * len(words))))
    for v in draw_voices(n_unknown, split, rng, engines):
        jobs.append((others[int(rng.integers(len(others)))], v, UNKNOWN))
    speech_data.prefetch([{"text": text, **v.kwargs()} for text, v, _ in jobs])
    with ThreadPoolExecutor(max(1, workers)) as pool:
        clips = list(pool.map(lambda j: synthesize_clip(*j), jobs))
    return [c for c in clips if len(c.audio) >= SR // 10]


def _around(word: np.ndarray, before: np.ndarray, after: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 1 s window holding ``word`` whole (at least 0.1 s from either edge when it fits, so ``augment``'s
    shift keeps it whole), the end of ``before`` and the start of ``after`` 30-150 ms either side: a keyword
    said inside a phrase ("turn *left*"), as the live loop's sliding window hears it."""
    out = np.zeros(SR, np.float32)
    w = word[:SR]
    margin = min(SR // 10, (SR - len(w)) // 2)
    start = int(rng.integers(margin, SR - len(w) - margin + 1))
    out[start : start + len(w)] = w
    end_before = start - int(rng.uniform(0.03, 0.15) * SR)
    if end_before > 0 and len(before):
        seg = before[-end_before:]
        out[end_before - len(seg) : end_before] = seg
    start_after = start + len(w) + int(rng.uniform(0.03, 0.15) * SR)
    if start_after < SR and len(after):
        seg = after[: SR - start_after]
        out[start_after : start_after + len(seg)] = seg
    return out


def _crops(x: np.ndarray, rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """``n`` random 1 s windows of ``x`` (zero-padded when shorter)."""
    x = np.pad(x, (0, max(0, SR - len(x))))
    return [x[(s := int(rng.integers(0, len(x) - SR + 1))) : s + SR].copy() for _ in range(n)]


def synthesize_context(
    words: Sequence[str],
    split: str,
    n_context: int,
    n_phrases: int,
    *,
    seed: int = 0,
    engines: Sequence[str] = ENGINES,
    workers: int = 2,
) -> list[Clip]:
    """Windows of running speech, by voices of ``split``: ``n_context`` keywords between two other words
    of the same voice (labelled with the keyword, see ``_around``), and 1 s crops (two each) of
    ``n_phrases`` strings of 3-7 other words spoken as one utterance (``_unknown_``). Isolated words alone
    teach a spotter nothing about what runs into them; without these it fires all through continuous
    speech. Deterministic for a seed."""
    rng = np.random.default_rng([seed, 2 if split == "train" else 3])
    others = unknown_words(words)
    ctx_jobs = []
    for v in draw_voices(n_context, split, rng, engines):
        ctx_jobs.append((words[int(rng.integers(len(words)))], v, *rng.choice(others, 2)))
    phrase_jobs = [
        (" ".join(rng.choice(others, int(rng.integers(3, 8)))), v)
        for v in draw_voices(n_phrases, split, rng, engines)
    ]
    speech_data.prefetch(
        [{"text": t, **v.kwargs()} for w, v, *texts in ctx_jobs for t in (w, *texts)]
        + [{"text": t, **v.kwargs()} for t, v in phrase_jobs]
    )

    def context(job: tuple) -> Clip:
        word, v, a, b = job
        parts = [trim_speech(speech_data.synthesize(t, **v.kwargs())) for t in (word, a, b)]
        window = _around(
            parts[0],
            parts[1],
            parts[2],
            np.random.default_rng([seed, zlib.crc32(f"{v.desc()} {a} {b}".encode())]),
        )
        return Clip(word, window, f"tts-context/{v.desc()}/{a} {word} {b}", v.desc(), placed=True)

    def phrase(job: tuple) -> list[Clip]:
        text, v = job
        audio = trim_speech(speech_data.synthesize(text, **v.kwargs()))
        crops = _crops(audio, np.random.default_rng([seed, zlib.crc32(f"{v.desc()} {text}".encode())]), 2)
        return [Clip(UNKNOWN, c, f"tts-phrase/{v.desc()}/{text}", v.desc(), placed=True) for c in crops]

    with ThreadPoolExecutor(max(1, workers)) as pool:
        out = list(pool.map(context, ctx_jobs))
        out += [c for clips in pool.map(phrase, phrase_jobs) for c in clips]
    return out


def _babble_streams(clips: Sequence[Clip], n: int = 40) -> list[np.ndarray]:
    """Talker streams for babble: unknown-word clips strung together, so babble never contains keywords."""
    words = [c.audio for c in clips if c.label == UNKNOWN and len(c.audio)]
    if not words:
        return []
    return [np.concatenate(words[i::n]) for i in range(min(n, len(words)))]


def make_noise(seconds_each: float, seed: int, talkers: Sequence[Clip] = ()) -> dict[str, np.ndarray]:
    """A noise bank (``noise_data.noise_bank``) with babble from the unknown words of ``talkers``."""
    rng = np.random.default_rng([seed, 7])
    return noise_data.noise_bank(seconds_each, rng, voices=_babble_streams(talkers) or None)


def exp_rir(rng: np.random.Generator, rt60: float | None = None) -> np.ndarray:
    """A simple room impulse response: a direct path then exponentially decaying noise (RT60 0.15-0.7 s)."""
    rt60 = float(rng.uniform(0.15, 0.7)) if rt60 is None else rt60
    n = int(rt60 * SR)
    t = np.arange(n) / SR
    rir = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    rir[: int(0.002 * SR)] = 0.0
    rir[0] = 1.0 / (10 ** (rng.uniform(-3, 6) / 20))  # direct-to-reverberant ratio
    return (rir / np.sqrt(np.sum(rir**2))).astype(np.float32)


def reverberate(x: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """``x`` convolved with ``rir`` (FFT), same length as ``x``, level kept."""
    n = len(x) + len(rir) - 1
    size = 1 << (n - 1).bit_length()
    y = np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(rir, size), size)[: len(x)]
    return (y * (rms(x) / (rms(y) + 1e-12))).astype(np.float32)


def telephone(x: np.ndarray) -> np.ndarray:
    """``x`` through an 8 kHz channel (resampled down and back up): nothing above 4 kHz."""
    y = speech_data.resample(speech_data.resample(x, SR, 8000), 8000, SR)
    return np.pad(y, (0, max(0, len(x) - len(y))))[: len(x)].astype(np.float32)


@dataclass(frozen=True)
class AugmentConfig:
    """How ``augment`` perturbs a clip; ``none()`` only places it (for a clean evaluation)."""

    p_noise: float = 0.8
    snr_db: tuple[float, float] = (0.0, 25.0)
    p_reverb: float = 0.3
    p_telephone: float = 0.2
    gain_db: tuple[float, float] = (-30.0, -3.0)  # peak level of the result, dBFS
    shift_s: float = 0.1  # placed windows (real data) move by up to this much
    silence_floor_db: tuple[float, float] = (-75.0, -35.0)
    # share of windows passed through a speech denoiser after all the rest (see kws.batch_features): the
    # live loop runs the spotter behind its denoiser, whose residue and gaps untouched audio never has
    p_denoise: float = 0.0

    @classmethod
    def none(cls) -> AugmentConfig:
        """No noise, reverb or band limit; fixed -6 dBFS peak."""
        return cls(p_noise=0.0, p_reverb=0.0, p_telephone=0.0, gain_db=(-6.0, -6.0))


def _place(clip: Clip, rng: np.random.Generator, aug: AugmentConfig, length: int = SR) -> np.ndarray:
    out = np.zeros(length, np.float32)
    x = clip.audio[:SR]
    if clip.placed:
        # a 1 s window already arranged (real data, keywords in phrases): shifted, and anywhere in a
        # longer window
        shift = int(rng.integers(-int(aug.shift_s * SR), int(aug.shift_s * SR) + 1)) if aug.shift_s else 0
        src = np.pad(x, (0, SR - len(x)))
        if shift >= 0:
            src = np.concatenate([np.zeros(shift, np.float32), src[: SR - shift]])
        else:
            src = np.concatenate([src[-shift:], np.zeros(-shift, np.float32)])
        at = int(rng.integers(0, length - SR + 1)) if length > SR else 0
        out[at : at + SR] = src[: length - at]
        return out
    start = int(rng.integers(0, length - len(x) + 1))
    out[start : start + len(x)] = x
    return out


def augment(
    clip: Clip,
    rng: np.random.Generator,
    noise: dict[str, np.ndarray],
    aug: AugmentConfig,
    length: int = SR,
) -> np.ndarray:
    """A float32 window of ``length`` samples (1 s by default) for ``clip``: placed (or shifted), maybe
    reverberated and band-limited, noise added at an SNR, scaled to a random peak level. ``_silence_`` clips
    are noise only (or a faint floor)."""
    if length < SR:
        raise BadInputError(f"keyword windows are at least 1 s ({SR} samples), not {length}")
    lo_db, hi_db = aug.gain_db
    if clip.label == SILENCE:
        kinds = sorted(noise)
        if clip.placed and len(clip.audio):
            x = loop_to(clip.audio, length, rng)
        elif kinds and rng.random() < 0.7:
            x = loop_to(noise[kinds[int(rng.integers(len(kinds)))]], length, rng)
        else:
            x = rng.standard_normal(length).astype(np.float32)
        level = 10 ** (rng.uniform(*aug.silence_floor_db) / 20) if rng.random() < 0.5 else None
        if level is None:
            level = 10 ** (rng.uniform(lo_db - 10, lo_db + 15) / 20)
        return (x * (level / (np.max(np.abs(x)) + 1e-12))).astype(np.float32)
    return degrade(_place(clip, rng, aug, length), rng, noise, aug)


def degrade(
    x: np.ndarray, rng: np.random.Generator, noise: dict[str, np.ndarray], aug: AugmentConfig
) -> np.ndarray:
    """``x`` of any length maybe reverberated and band-limited, with noise at an SNR from ``aug`` (against
    its non-zero samples), scaled to a random peak level: float32."""
    if aug.p_reverb and rng.random() < aug.p_reverb:
        x = reverberate(x, exp_rir(rng))
    if aug.p_telephone and rng.random() < aug.p_telephone:
        x = telephone(x)
    if noise and aug.p_noise and rng.random() < aug.p_noise:
        kinds = sorted(noise)
        n = loop_to(noise[kinds[int(rng.integers(len(kinds)))]], len(x), rng)
        speech_rms = rms(x[np.abs(x) > 0]) if np.any(x) else 0.0
        snr = rng.uniform(*aug.snr_db)
        x = x + n * (speech_rms / (rms(n) + 1e-12) / 10 ** (snr / 20))
    peak = float(np.max(np.abs(x)))
    if peak > 0:
        x = x * (10 ** (rng.uniform(*aug.gain_db) / 20) / peak)
    return x.astype(np.float32)


def silence_clips(n: int, source: str = "noise") -> list[Clip]:
    """``n`` ``_silence_`` placeholders: ``augment`` fills each with noise or a faint floor."""
    return [Clip(SILENCE, np.zeros(0, np.float32), f"{source}/{i}") for i in range(n)]


def real_digit_clips(words: Sequence[str], root: Path = speech_data.ASTERISK_ROOT) -> list[Clip]:
    """Asterisk's recordings of the digit keywords among ``words`` (``digits/N.wav`` at 8 kHz and
    ``digits/N.g722`` at 16 kHz; one real speaker): a real-speech evaluation set. Empty when not installed."""
    names = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
    out = []
    for w in words:
        if w not in names:
            continue
        base = Path(root) / "digits" / str(names.index(w))
        for path, reader in (
            (base.with_suffix(".wav"), speech_data.load_16k),
            (base.with_suffix(".g722"), speech_data.read_g722),
        ):
            if path.exists():
                out.append(
                    Clip(w, trim_speech(reader(path))[:SR], f"asterisk/{path.name}", "asterisk:allison")
                )
    return out


def _speaker(path: Path) -> str:
    return path.name.split("_nohash_")[0]


def load_speech_commands(
    root: str | Path, words: Sequence[str], *, max_per_label: int | None = None, seed: int = 0
) -> KwsData:
    """A dataset in the Speech Commands layout: ``root/<word>/*.wav`` (keywords are their folders, every
    other folder is ``_unknown_``), ``root/_background_noise_/*.wav`` (silence and augmentation noise).
    ``validation_list.txt``/``testing_list.txt`` decide the split when present; otherwise the speaker
    (the file name before ``_nohash_``) is hashed, 10 % val and 10 % test, so a speaker is in one split."""
    root = Path(root)
    if not root.is_dir():
        raise BadInputError(f"{root}: no such dataset folder")
    labels = labels_for(words)
    kw = set(labels[2:])
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("_"))
    missing = sorted(kw - {p.name for p in folders})
    if missing:
        raise BadInputError(
            f"{root}: no folder for the keywords {missing} (Speech Commands layout: DIR/<word>/*.wav)"
        )
    lists = {}
    for split, name in (("val", "validation_list.txt"), ("test", "testing_list.txt")):
        f = root / name
        if f.exists():
            lists[split] = {line.strip() for line in f.read_text().splitlines() if line.strip()}
    rng = np.random.default_rng(seed)
    clips: dict[str, list[Clip]] = {"train": [], "val": [], "test": []}
    for folder in folders:
        label = folder.name if folder.name in kw else UNKNOWN
        files = sorted(folder.glob("*.wav"))
        if max_per_label is not None and len(files) > max_per_label:
            files = [files[i] for i in sorted(rng.choice(len(files), max_per_label, replace=False))]
        for path in files:
            rel = f"{folder.name}/{path.name}"
            if lists:
                split = next((s for s, names in lists.items() if rel in names), "train")
            else:
                h = int.from_bytes(hashlib.sha1(_speaker(path).encode()).digest()[:4], "big") / 2**32
                split = "test" if h < 0.1 else "val" if h < 0.2 else "train"
            audio = speech_data.load_16k(path)[:SR]
            clips[split].append(Clip(label, audio, f"speech-commands/{rel}", _speaker(path), placed=True))
    for split, items in clips.items():
        items += silence_clips(max(1, len(items) // 10), f"silence-{split}") if items else []
    noise: dict[str, np.ndarray] = {}
    bg = root / SPEECH_COMMANDS_NOISE
    for path in sorted(bg.glob("*.wav")) if bg.is_dir() else []:
        x = speech_data.load_16k(path)
        if len(x) >= SR:
            noise[path.stem] = x
    if not clips["train"]:
        raise BadInputError(f"{root}: no training clips (all files are in the validation/testing lists?)")
    return KwsData(
        labels,
        clips,
        {s: noise for s in clips},
        {"source": f"speech-commands:{root}", "lists": sorted(lists)},
    )


def build_synthetic(
    words: Sequence[str],
    per_word: int,
    *,
    test_per_word: int | None = None,
    seed: int = 0,
    noise_seconds: float = 20.0,
    engines: Sequence[str] = ENGINES,
    workers: int = 2,
    context: float = 0.0,
) -> KwsData:
    """Train and test clips from synthesis (train voices / held-out voices), silence placeholders
    (10 % of each split, at least ``per_word // 2``), noise banks per split (the test bank from another
    seed, with babble from test-voice unknown words), and, where installed, ``real`` Asterisk digits."""
    labels = labels_for(words)
    kws = labels[2:]
    test_per_word = max(4, per_word // 4) if test_per_word is None else test_per_word
    data = KwsData(labels)
    for split, n in (("train", per_word), ("test", test_per_word)):
        clips = synthesize_words(kws, split, n, seed=seed, engines=engines, workers=workers)
        if context > 0 and split == "train":
            clips += synthesize_context(
                kws, split, int(context * n * len(kws)), int(context * n * len(kws) / 4), seed=seed,
                engines=engines, workers=workers,
            )  # fmt: skip
        clips += silence_clips(max(n // 2, len(clips) // 10), f"silence-{split}")
        data.clips[split] = clips
        data.noise[split] = make_noise(noise_seconds, seed + (0 if split == "train" else 1000), clips)
    real = real_digit_clips(kws)
    if real:
        data.clips["real"] = real
        data.noise["real"] = data.noise["test"]
    data.info = {
        "source": "synthetic",
        "engines": list(engines),
        "held_out": held_out_voices(),
        "per_word": per_word,
        "test_per_word": test_per_word,
        "context": context,
        "unknown_words": len(unknown_words(kws)),
    }
    return data
