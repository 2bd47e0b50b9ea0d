"""Speech for training recipes: synthesised sentences and real Asterisk prompts, all at 16 kHz.

* ``synthesize(text, voice, engine=...)`` speaks a sentence with espeak-ng (any ``voice+variant``, speed
  and pitch), flite (kal, kal16, slt, rms, awb) or festival (the kal and ked diphone voices and the slt
  HTS voice, each built from one real speaker's recordings), resampled to 16 kHz with soxr and cached on
  disk. ``prefetch`` synthesises many festival texts in one process per voice (starting festival costs
  more than speaking a word).
* ``asterisk_prompts(split)`` reads the Asterisk core prompts in English (one real speaker, Allison
  Smith, 8 kHz telephone band; CC-BY-SA-3.0), split by a hash of the file name: ``"train"`` is about
  80 %, ``"test"`` the rest, the same on every machine.
* ``asterisk_wideband(split, languages)`` reads the same prompt sets as recorded in G.722 (16 kHz, speech
  up to 7 kHz) in English, Spanish, French, Italian and Russian: four real speakers in the full band the
  live loop hears. English keeps the 8 kHz prompts' split, so a held-out prompt is held out in both.
* ``sentences()`` is the text pool: the Asterisk prompt transcripts and a set of Harvard sentences.

The pocketsphinx test data (LibriVox, AN4) is the quality benchmark's and is never read here. Generated
audio is cached under ``<cache>/speech`` (``$EDGE_SDK_CACHE``, else ``~/.cache/edge-sdk``), not in git.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import threading
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from edge_sdk.errors import BadInputError, MissingExtraError

SAMPLE_RATE = 16000
ASTERISK_ROOT = Path("/usr/share/asterisk/sounds/en")
ASTERISK_TRANSCRIPTS = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
ASTERISK_SOUNDS = Path("/usr/share/asterisk/sounds")
#: Asterisk prompt sets recorded in G.722 (Debian ``asterisk-core-sounds-LANG-g722``): who speaks each.
WIDEBAND_VOICES = {
    "en": "Allison Smith, CC-BY-SA-3.0",
    "es": "Allison Smith, CC-BY-SA-3.0",
    "fr": "June Wallack, CC-BY-SA-3.0",
    "it": "Carlo Flora, CC-BY-3.0",
    "ru": "Maxim Topal (ivrvoice.ru), CC-BY-3.0",
}
HELD_OUT_FRACTION = 0.2

#: espeak-ng English voices and the voice variants (``voice+variant``) used for variety.
ESPEAK_VOICES = ("en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan", "en-gb-x-gbcwmd")
ESPEAK_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5")
#: flite's built-in voices (kal is 8 kHz, the others 16 kHz).
FLITE_VOICES = ("kal", "kal16", "slt", "rms", "awb")
#: festival's English voices from Debian (festvox-kallpc16k, festvox-kdlpc16k, festvox-us-slt-hts).
FESTIVAL_VOICES = ("kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts")
FESTIVAL_VOICE_ROOT = Path("/usr/share/festival/voices")

#: Harvard sentences (IEEE 1969 recommended practice for speech quality measurements; public domain).
HARVARD = (
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.",
    "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.",
    "A large size in stockings is hard to sell.",
    "The boy was there when the sun rose.",
    "A rod is used to catch pink salmon.",
    "The source of the huge river is the clear spring.",
    "Kick the ball straight and follow through.",
    "Help the woman get back to her feet.",
    "A pot of tea helps to pass the evening.",
    "Smoky fires lack flame and heat.",
    "The soft cushion broke the man's fall.",
    "The salt breeze came across from the sea.",
    "The girl at the booth sold fifty bonds.",
    "The small pup gnawed a hole in the sock.",
    "The fish twisted and turned on the bent hook.",
    "Press the pants and sew a button on the vest.",
    "The swan dive was far short of perfect.",
    "The beauty of the view stunned the young boy.",
    "Two blue fish swam in the tank.",
    "Her purse was full of useless trash.",
    "The colt reared and threw the tall rider.",
    "It snowed, rained, and hailed the same morning.",
    "Read verse out loud for pleasure.",
    "Hoist the load to your left shoulder.",
    "Take the winding path to reach the lake.",
    "Note closely the size of the gas tank.",
    "Wipe the grease off his dirty face.",
    "Mend the coat before you go out.",
    "The wrist was badly strained and hung limp.",
    "The stray cat gave birth to kittens.",
    "The young girl gave no clear response.",
    "The meal was cooked before the bell rang.",
    "What joy there is in living.",
)


@dataclass(frozen=True)
class Utterance:
    """One clip of speech: a stable name, 16 kHz float32 samples in [-1, 1], and where it came from."""

    name: str
    audio: np.ndarray
    source: str


def cache_dir() -> Path:
    """Where generated speech is kept: ``<cache>/speech``, the cache being the zoo's."""
    base = os.environ.get("EDGE_SDK_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "edge-sdk"
    )
    path = Path(base) / "speech"
    path.mkdir(parents=True, exist_ok=True)
    return path


def resample(x: np.ndarray, rate_in: int, rate_out: int = SAMPLE_RATE) -> np.ndarray:
    """``x`` resampled with soxr (high quality); returned as float32."""
    if rate_in == rate_out:
        return np.asarray(x, np.float32)
    try:
        import soxr
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingExtraError("soxr", "train", "resampling speech") from exc
    return np.asarray(soxr.resample(np.asarray(x, np.float32), rate_in, rate_out), np.float32)


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """A 16-bit PCM WAV as mono float32 in [-1, 1] and its sample rate (channels are averaged)."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: only 16-bit PCM is read here")
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
        channels, rate = w.getnchannels(), w.getframerate()
    return data.reshape(-1, channels).mean(axis=1), rate


def load_16k(path: str | Path) -> np.ndarray:
    """A WAV file read and resampled to 16 kHz."""
    x, rate = read_wav(path)
    return resample(x, rate)


def split_of(name: str, held_out_fraction: float = HELD_OUT_FRACTION) -> str:
    """``"train"`` or ``"test"`` for a file name, from its sha1: fixed across machines and runs."""
    h = int.from_bytes(hashlib.sha1(name.encode()).digest()[:4], "big") / 2**32
    return "test" if h < held_out_fraction else "train"


def asterisk_files(root: Path = ASTERISK_ROOT) -> list[Path]:
    """Every Asterisk English prompt WAV under ``root``, sorted."""
    return sorted(Path(root).rglob("*.wav"))


def asterisk_prompts(
    split: str = "train", root: Path = ASTERISK_ROOT, min_seconds: float = 0.3
) -> list[Utterance]:
    """Asterisk prompts of one split (``"train"``, ``"test"`` or ``"all"``) at 16 kHz, tones excluded.

    The split is by file path relative to ``root`` (see ``split_of``); prompts shorter than
    ``min_seconds`` and the beep/tone files are skipped."""
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be train, test or all, not {split!r}")
    out = []
    for path in asterisk_files(root):
        rel = path.relative_to(root).as_posix()
        if split != "all" and split_of(rel) != split:
            continue
        if re.search(r"beep|tone|silence/", rel):
            continue
        audio = load_16k(path)
        if len(audio) >= min_seconds * SAMPLE_RATE:
            out.append(Utterance(f"asterisk/{rel}", audio, "asterisk"))
    return out


def decode_audio(source: str | Path | BinaryIO, fmt: str | None = None) -> tuple[np.ndarray, int]:
    """Any audio FFmpeg decodes (MP3, G.722, ...) as mono float32 in [-1, 1] and its sample rate, through
    PyAV (``train`` extra). ``fmt`` names a container FFmpeg cannot guess, such as ``"g722"`` for
    Asterisk's headerless files; ``source`` is a path or a binary file object."""
    try:
        import av
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingExtraError("av", "train", "decoding speech and noise recordings") from exc
    name = source if isinstance(source, (str, Path)) else getattr(source, "name", "<stream>")
    chunks, rate = [], 0
    try:
        with av.open(str(source) if isinstance(source, Path) else source, format=fmt) as container:
            for frame in container.decode(audio=0):
                a = frame.to_ndarray()
                if a.dtype.kind == "i":  # integer samples to [-1, 1]; FFmpeg's only unsigned one is u8
                    a = a / float(np.iinfo(a.dtype).max + 1)
                elif a.dtype.kind == "u":
                    a = (a.astype(np.float64) - 128) / 128
                channels = len(frame.layout.channels)
                # planar formats come as (channels, n); packed ones interleaved as (1, n * channels)
                chunks.append(
                    a.mean(axis=0) if frame.format.is_planar else a.reshape(-1, channels).mean(axis=1)
                )
                rate = frame.sample_rate
    except (av.error.FFmpegError, OSError) as exc:
        raise BadInputError(f"{name}: cannot be decoded ({exc})") from exc
    if not chunks:
        raise BadInputError(f"{name}: no audio in it")
    return np.concatenate(chunks).astype(np.float32), rate


def read_g722(path: str | Path) -> np.ndarray:
    """A raw G.722 file (Asterisk's ``.g722``: 16 kHz, no header) as float32 in [-1, 1]."""
    x, rate = decode_audio(path, "g722")
    return resample(x, rate)


def asterisk_wideband(
    split: str = "train",
    languages: tuple[str, ...] = tuple(WIDEBAND_VOICES),
    max_minutes: float | None = None,
    seed: int = 0,
    min_seconds: float = 0.3,
    root: Path = ASTERISK_SOUNDS,
) -> list[Utterance]:
    """The Asterisk prompts recorded in G.722 for ``languages``, 16 kHz, tones excluded.

    English follows ``asterisk_prompts``'s split, decided by the name of the prompt's WAV recording, so
    the English prompts held out there are held out here too. No other language is ever evaluated, so all
    of their prompts are ``"train"`` (``"test"`` has none). ``max_minutes`` keeps a seeded random choice of
    each language's prompts, at most that long. A language whose package is missing is an error naming it.
    """
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be train, test or all, not {split!r}")
    out = []
    for lang in languages:
        if lang not in WIDEBAND_VOICES:
            raise ValueError(f"no wideband Asterisk prompts in {lang!r}; there are {sorted(WIDEBAND_VOICES)}")
        folder = Path(root) / lang
        files = sorted(folder.rglob("*.g722")) if folder.is_dir() else []
        if not files:
            raise BadInputError(
                f"no G.722 prompts under {folder}: install them with "
                f"apt-get install asterisk-core-sounds-{lang}-g722"
            )
        order = np.random.default_rng([seed, *lang.encode()]).permutation(len(files))
        budget = float("inf") if max_minutes is None else max_minutes * 60 * SAMPLE_RATE
        for i in order:
            rel = files[i].relative_to(folder).as_posix()
            if re.search(r"beep|tone|silence/", rel):
                continue
            part = split_of(rel[: -len(".g722")] + ".wav") if lang == "en" else "train"
            if split != "all" and part != split:
                continue
            audio = read_g722(files[i])
            if len(audio) < min_seconds * SAMPLE_RATE or len(audio) > budget:
                continue
            budget -= len(audio)
            out.append(Utterance(f"asterisk-{lang}-g722/{rel}", audio, "asterisk-g722"))
    return out


def sentences() -> list[str]:
    """Text to synthesise: the Asterisk prompt transcripts (when installed) and the Harvard sentences."""
    texts = list(HARVARD)
    if ASTERISK_TRANSCRIPTS.exists():
        with gzip.open(ASTERISK_TRANSCRIPTS, "rt", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if ":" not in line or line.startswith(";"):
                    continue
                text = line.split(":", 1)[1].strip()
                if text and "[" not in text and len(text) > 8:
                    texts.append(text)
    return texts


def tts_available(engine: str = "espeak-ng") -> bool:
    """Whether the synthesiser's command is on PATH (festival: and one of its voices is installed)."""
    if engine == "festival":
        return shutil.which("festival") is not None and bool(festival_voices())
    return shutil.which(engine) is not None


def festival_voices(root: Path = FESTIVAL_VOICE_ROOT) -> list[str]:
    """The ``FESTIVAL_VOICES`` installed under festival's voice folder."""
    return [v for v in FESTIVAL_VOICES if any(Path(root).glob(f"*/{v}"))]


def _cache_key(text: str, voice: str, engine: str, speed: int, pitch: int) -> Path:
    key = hashlib.sha1(f"{engine}|{voice}|{speed}|{pitch}|{text}".encode()).hexdigest()
    return cache_dir() / f"{key}.npy"


# np.load parses the .npy header with ast.literal_eval, and CPython 3.11's AST constructor keeps its
# recursion depth per interpreter, not per thread (gh-106905): two synthesis threads parsing at once
# raise "AST constructor recursion depth mismatch". One lock makes the loads take turns.
_LOAD_LOCK = threading.Lock()


def _load_cached(path: Path) -> np.ndarray:
    with _LOAD_LOCK:
        return np.load(path)


def _save_cached(path: Path, audio: np.ndarray) -> None:
    # Threads of one process may write the same key at once, so the temporary name carries the thread.
    tmp_path = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp.npy")
    np.save(tmp_path, audio)
    os.replace(tmp_path, path)


def _festival_text(text: str) -> str:
    # A Scheme string literal: festival reads the script, so quotes and backslashes must not end it early.
    return '"' + text.replace("\\", " ").replace('"', " ") + '"'


def _festival_batch(voice: str, items: list[tuple[str, int]]) -> list[np.ndarray]:
    """``(text, speed)`` items spoken by one festival voice in one process, at 16 kHz.

    Festival's HTS voice ignores its duration parameter, so speed is applied afterwards the same way for
    every festival voice: resampling by ``speed/160`` (tempo and pitch move together, as in the common
    speed-perturbation augmentation)."""
    if voice not in FESTIVAL_VOICES:
        raise BadInputError(f"unknown festival voice {voice!r}; known: {', '.join(FESTIVAL_VOICES)}")
    if not tts_available("festival") or voice not in festival_voices():
        raise BadInputError(
            f"festival voice {voice} is not installed (apt-get install festival festvox-kallpc16k "
            "festvox-kdlpc16k festvox-us-slt-hts)"
        )
    with tempfile.TemporaryDirectory() as tmp:
        lines = [f"(voice_{voice})"]
        for i, (text, _) in enumerate(items):
            lines.append(
                f'(utt.save.wave (utt.synth (Utterance Text {_festival_text(text)})) "{tmp}/{i}.wav" \'riff)'
            )
        script = os.path.join(tmp, "speak.scm")
        Path(script).write_text("\n".join(lines) + "\n")
        subprocess.run(
            ["festival", "-b", script], check=True, capture_output=True, timeout=60 + 2 * len(items)
        )
        out = []
        for i, (_, speed) in enumerate(items):
            x, rate = read_wav(os.path.join(tmp, f"{i}.wav"))
            out.append(resample(x, int(round(rate * speed / 160))))
    return out


def prefetch(jobs: list[dict], chunk: int = 400) -> int:
    """Synthesise the festival jobs among ``jobs`` (``synthesize`` keyword dicts with ``text``) that are not
    cached yet, one festival process per voice and ``chunk`` texts; returns how many were made. Other
    engines start fast enough to run one process per text and are left to ``synthesize``."""
    todo: dict[str, dict[tuple[str, int], Path]] = {}
    for j in jobs:
        if j.get("engine") != "festival":
            continue
        speed, pitch = int(j.get("speed", 160)), int(j.get("pitch", 50))
        path = _cache_key(j["text"], j["voice"], "festival", speed, pitch)
        if not path.exists():
            todo.setdefault(j["voice"], {})[(j["text"], speed)] = path
    made = 0
    for voice, items in todo.items():
        keys = list(items)
        for k in range(0, len(keys), chunk):
            part = keys[k : k + chunk]
            for key, audio in zip(part, _festival_batch(voice, part), strict=True):
                _save_cached(items[key], audio)
                made += 1
    return made


def synthesize(
    text: str,
    voice: str = "en-us+m1",
    engine: str = "espeak-ng",
    *,
    speed: int = 160,
    pitch: int = 50,
    cache: bool = True,
) -> np.ndarray:
    """``text`` spoken by ``engine`` (``"espeak-ng"``, ``"flite"`` or ``"festival"``) at 16 kHz, float32.

    For espeak-ng, ``voice`` is ``name[+variant]`` (``en-gb-x-rp+f3``), ``speed`` words per minute and
    ``pitch`` 0-99; for flite, ``voice`` is one of ``FLITE_VOICES``, ``speed`` scales the duration as
    160/speed and ``pitch`` maps to a mean F0 of ``pitch*2 + 40`` Hz (only when it differs from 50); for
    festival, ``voice`` is one of ``FESTIVAL_VOICES``, ``speed`` resamples by speed/160 (see
    ``_festival_batch``) and ``pitch`` is not used."""
    path = _cache_key(text, voice, engine, speed, pitch)
    if cache and path.exists():
        return _load_cached(path)
    if engine == "festival":
        audio = _festival_batch(voice, [(text, speed)])[0]
        if cache:
            _save_cached(path, audio)
        return audio
    if not tts_available(engine):
        raise BadInputError(f"{engine} is not installed (system package: apt-get install {engine})")
    with tempfile.TemporaryDirectory() as tmp:
        wav = os.path.join(tmp, "out.wav")
        if engine == "espeak-ng":
            cmd = ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", wav, text]
        elif engine == "flite":
            cmd = ["flite", "-voice", voice, "--setf", f"duration_stretch={160 / speed:.3f}"]
            if pitch != 50:
                cmd += ["--setf", f"int_f0_target_mean={pitch * 2 + 40}"]
            cmd += ["-t", text, "-o", wav]
        else:
            raise ValueError(f"unknown speech synthesiser {engine!r}")
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)
        audio = load_16k(wav)
    if cache:
        _save_cached(path, audio)
    return audio


def random_voice(rng: np.random.Generator, engines: tuple[str, ...] = ("espeak-ng", "flite")) -> dict:
    """Keyword arguments for ``synthesize`` picking a random engine, voice, speed and pitch."""
    usable = [e for e in engines if tts_available(e)]
    if not usable:
        raise BadInputError("no speech synthesiser installed (apt-get install espeak-ng flite)")
    engine = usable[int(rng.integers(len(usable)))]
    if engine == "espeak-ng":
        voice = f"{rng.choice(ESPEAK_VOICES)}+{rng.choice(ESPEAK_VARIANTS)}"
        return {
            "engine": engine,
            "voice": voice,
            "speed": int(rng.integers(120, 200)),
            "pitch": int(rng.integers(25, 80)),
        }
    return {
        "engine": engine,
        "voice": str(rng.choice(FLITE_VOICES)),
        "speed": int(rng.integers(130, 190)),
        "pitch": 50 if rng.random() < 0.5 else int(rng.integers(30, 75)),
    }


def synthetic_corpus(n: int, seed: int = 0, texts: list[str] | None = None) -> list[Utterance]:
    """``n`` synthesised utterances: random sentences from ``texts`` (default ``sentences()``), each
    with a random engine, voice, speed and pitch (``random_voice``); deterministic for a seed."""
    rng = np.random.default_rng(seed)
    pool = texts if texts is not None else sentences()
    out = []
    for i in range(n):
        text = pool[int(rng.integers(len(pool)))]
        kw = random_voice(rng)
        out.append(Utterance(f"tts/{i}/{kw['engine']}/{kw['voice']}", synthesize(text, **kw), kw["engine"]))
    return out


def asterisk_transcripts(path: Path = ASTERISK_TRANSCRIPTS) -> dict[str, str]:
    """``{prompt name: transcript}`` from Asterisk's ``core-sounds-en.txt.gz`` (``digits/7: seven``), in
    file order; empty when the transcripts are not installed. The name is the recording's path under
    ``ASTERISK_ROOT`` without its extension."""
    if not Path(path).exists():
        return {}
    out: dict[str, str] = {}
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if ":" in line and not line.startswith(";"):
                key, text = (p.strip() for p in line.split(":", 1))
                if key and text:
                    out[key] = text
    return out
