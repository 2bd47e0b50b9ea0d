"""Evaluation speech and noises for the audio-quality benchmark, all at 16 kHz, all from Debian packages.

Speech (real recordings nobody here made):

* pocketsphinx-testdata: LibriVox (*Sense and Sensibility*, one reader) and the short clips its own
  tests decode (``cards/*.wav``, ``goforward.raw``, ``numbers.raw``, ``something.raw``,
  ``tidigits/dhd.2934z.raw``), 16 kHz 16-bit mono.
* asterisk-core-sounds-en-wav: Allison Smith's prompts, 8 kHz telephone band, resampled to 16 kHz. Only
  the files ``edge_sdk.train.speech_data`` holds out of the denoiser's training (its ``"test"`` split).

Noises: white, pink, babble (6 talkers drawn from the training split of the Asterisk prompts and from
synthesised sentences, so no evaluated utterance is ever part of the noise), and keyboard typing built from
the real key recordings of bucklespring-data (an IBM Model M, GPL-2+).

Held-out noises (``HELD_OUT``): real recordings from Debian's openttd-opensfx (OpenSFX 1.0.3, sounds under
CC-BY-3.0, CC-BY-SA-3.0 or CC0, credited in its readme), of kinds the tiny denoiser's recipe never reads:
engines (a propeller plane, a lift's machinery, a helicopter, two buses; over 90 % of their energy below
1 kHz, its density falling about 4-8 dB per octave), wind (a howl between 500 Hz and 1 kHz) and
machinery (a circular saw, an air hammer, a chainsaw, a jet taking off; broadband). Nothing
under ``edge_sdk/train`` opens that package, and checkpoints are selected on the recipe's own validation
noise, so these families are unseen.
"""

from __future__ import annotations

import io
import struct
import wave
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_sdk.audio import mix
from edge_sdk.train import speech_data

RATE = 16000
SPHINX = Path("/usr/share/pocketsphinx/test/data")
SPHINX_RAW = ("goforward.raw", "numbers.raw", "something.raw", "tidigits/dhd.2934z.raw")
BUCKLE = Path("/usr/share/buckle/wav")
NOISES = ("white", "pink", "babble", "keyboard")
OPENSFX = Path("/usr/share/games/openttd/baseset/opensfx/opensfx.cat")
#: Held-out noise families: each a set of OpenSFX recordings, by the title its catalogue gives them.
HELD_OUT: dict[str, tuple[str, ...]] = {
    "engines": (
        "Propeller plane start",
        "Mining machinery",
        "Helicopter",
        "Modern bus start",
        "Old bus start",
    ),
    "wind": ("Wind",),
    # added after the recipe gained its moving-air kinds and before any model trained with them was scored
    "machinery": ("Sawmill", "Jackhammer", "Lumber mill: Chainsaw", "Early jet take off"),
}
HELD_OUT_NOISES = tuple(HELD_OUT)
SNRS = (0, 5, 10)
SEED = 2026


@dataclass(frozen=True)
class Clip:
    """One evaluation utterance: a stable name, its corpus, and 16 kHz float32 samples."""

    name: str
    corpus: str
    audio: np.ndarray


@dataclass(frozen=True)
class Mixture:
    """Speech plus one noise at one SNR; ``noisy`` and ``clean`` share the same scaling."""

    clip: Clip
    noise: str
    snr: int
    noisy: np.ndarray
    clean: np.ndarray


def _read_raw(path: Path) -> np.ndarray:
    return (np.fromfile(path, dtype="<i2").astype(np.float32) / 32768.0).astype(np.float32)


def sphinx_clips(root: Path = SPHINX) -> list[Clip]:
    """The pocketsphinx test utterances: LibriVox WAVs, then the short test clips (WAV and raw)."""
    out = []
    for sub, corpus in (("librivox", "librivox"), ("cards", "sphinx-tests")):
        for path in sorted((root / sub).glob("*.wav")):
            audio, rate = speech_data.read_wav(path)
            out.append(Clip(f"{sub}/{path.name}", corpus, speech_data.resample(audio, rate)))
    for rel in SPHINX_RAW:
        if (root / rel).exists():
            out.append(Clip(rel, "sphinx-tests", _read_raw(root / rel)))
    return out


def asterisk_clips(count: int, min_seconds: float = 1.0) -> list[Clip]:
    """``count`` held-out Asterisk prompts of at least ``min_seconds``, a seeded choice that does not depend
    on anything but the installed files (so every run scores the same ones)."""
    held_out = [u for u in speech_data.asterisk_prompts("test") if len(u.audio) >= min_seconds * RATE]
    held_out.sort(key=lambda u: u.name)
    order = np.random.default_rng(SEED).permutation(len(held_out))[:count]
    return [Clip(held_out[i].name, "asterisk", held_out[i].audio) for i in sorted(order)]


def evaluation_clips(asterisk: int = 40, limit: int | None = None) -> list[Clip]:
    """The evaluation set: every pocketsphinx clip and ``asterisk`` held-out prompts; with ``limit``, the
    first ``limit`` of them taken alternately from the two sources so a small run still sees both."""
    sphinx, ast = sphinx_clips(), asterisk_clips(asterisk)
    if limit is None:
        return sphinx + ast
    merged = [c for pair in zip(sphinx, ast, strict=False) for c in pair]
    longer = sphinx if len(sphinx) > len(ast) else ast
    merged += longer[min(len(sphinx), len(ast)) :]
    return merged[:limit]


def babble_voices(rng_seed: int = SEED + 1, real: int = 40, synthetic: int = 20) -> list[np.ndarray]:
    """Talkers for babble: ``real`` training-split Asterisk prompts and ``synthetic`` espeak-ng/flite
    sentences (several voices, so the babble is not one speaker), none of them evaluated."""
    rng = np.random.default_rng(rng_seed)
    train = sorted(speech_data.asterisk_prompts("train"), key=lambda u: u.name)
    voices = [train[i].audio for i in rng.permutation(len(train))[:real]]
    if synthetic and speech_data.tts_available("espeak-ng"):
        voices += [u.audio for u in speech_data.synthetic_corpus(synthetic, seed=rng_seed)]
    return voices


def key_sounds(root: Path = BUCKLE) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """bucklespring's recordings as ``{key code: (press, release)}`` at 16 kHz."""
    keys: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for press in sorted(root.glob("*-0.wav")):
        release = press.with_name(press.name.replace("-0.wav", "-1.wav"))
        if release.exists():
            keys[press.name[:-6]] = (speech_data.load_16k(press), speech_data.load_16k(release))
    if not keys:
        raise FileNotFoundError(f"no key recordings in {root} (apt-get install bucklespring-data)")
    return keys


def typing(keys: dict[str, tuple[np.ndarray, np.ndarray]], n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of someone typing: key presses about 5.5 a second (gamma-distributed gaps), with
    a pause now and then, each key's release 60-140 ms after its press, levels varying by ±3 dB; unit RMS."""
    codes = sorted(keys)
    out = np.zeros(n + RATE, np.float32)  # headroom for a sample starting near the end
    t = int(rng.integers(0, RATE // 4))
    while t < n:
        press, release = keys[codes[int(rng.integers(len(codes)))]]
        gain = np.float32(10 ** (rng.uniform(-3, 3) / 20))
        out[t : t + len(press)] += gain * press[: len(out) - t]
        r = t + int(rng.uniform(0.06, 0.14) * RATE)
        out[r : r + len(release)] += gain * release[: max(0, len(out) - r)]
        gap = rng.gamma(4.0, 0.045) + (rng.uniform(0.4, 1.2) if rng.random() < 0.08 else 0.0)
        t += int(gap * RATE)
    return mix.rms_normalize(out[:n])


def opensfx_sounds(path: Path = OPENSFX) -> dict[str, np.ndarray]:
    """Every sound of an OpenTTD sound catalogue (``opensfx.cat``) as ``{title: 16 kHz float32}``. The
    catalogue starts with (offset | 0x80000000, size) pairs, one per sound; each sound is a length-prefixed
    description (its title in quotes, then credits) followed by a RIFF WAV. Empty placeholders are skipped."""
    if not path.exists():
        raise FileNotFoundError(f"no OpenSFX catalogue at {path} (apt-get install openttd-opensfx)")
    data = path.read_bytes()
    count = (struct.unpack_from("<I", data, 0)[0] & 0x7FFFFFFF) // 8
    sounds: dict[str, np.ndarray] = {}
    for i in range(count):
        offset, size = struct.unpack_from("<II", data, 8 * i)
        offset &= 0x7FFFFFFF
        name_len = data[offset]
        title = data[offset + 1 : offset + 1 + name_len].decode("latin-1").split('"')[1:2]
        riff = data[offset + 1 + name_len : offset + size]
        if not title or not riff.startswith(b"RIFF"):
            continue
        with wave.open(io.BytesIO(riff)) as w:
            width, channels, rate = w.getsampwidth(), w.getnchannels(), w.getframerate()
            raw = w.readframes(w.getnframes())
        if width != 2:
            continue
        x = np.frombuffer(raw[: len(raw) // (2 * channels) * 2 * channels], "<i2").astype(np.float32) / 32768
        sounds[title[0]] = speech_data.resample(x.reshape(-1, channels).mean(axis=1), rate)
    return sounds


def held_out_recordings(path: Path = OPENSFX) -> dict[str, list[np.ndarray]]:
    """The ``HELD_OUT`` families' recordings, each trimmed to where it is within 20 dB of its loudest
    50 ms (fades and silences would make the noise vanish under the speech)."""
    sounds = opensfx_sounds(path)
    out: dict[str, list[np.ndarray]] = {}
    for family, titles in HELD_OUT.items():
        missing = [t for t in titles if t not in sounds]
        if missing:
            raise FileNotFoundError(f"{path} lacks {missing}: not the OpenSFX 1.0.3 catalogue")
        out[family] = [_trim(sounds[t]) for t in titles]
    return out


def _trim(x: np.ndarray, frame: int = RATE // 20, floor_db: float = 20.0) -> np.ndarray:
    levels = np.sqrt(np.mean(x[: len(x) // frame * frame].reshape(-1, frame) ** 2, axis=1)) + 1e-9
    loud = np.flatnonzero(levels >= levels.max() * 10 ** (-floor_db / 20))
    return x[loud[0] * frame : (loud[-1] + 1) * frame]


def looped(
    recordings: list[np.ndarray], n: int, rng: np.random.Generator, fade: int = RATE // 20
) -> np.ndarray:
    """``n`` samples of one recording drawn from ``recordings``, from a random start, looped with
    ``fade``-sample cross-fades where it is shorter than ``n``; unit RMS."""
    x = recordings[int(rng.integers(len(recordings)))]
    x = np.roll(x, -int(rng.integers(len(x))))
    ramp = np.linspace(0, 1, fade, dtype=np.float32)
    out = x.copy()
    while len(out) < n:
        tail = out[-fade:] * ramp[::-1] + x[:fade] * ramp
        out = np.concatenate([out[:-fade], tail, x[fade:]])
    return mix.rms_normalize(out[:n])


class NoiseBank:
    """Makes each kind of noise on demand; the babble voices and key sounds are loaded once, lazily."""

    def __init__(self) -> None:
        self._voices: list[np.ndarray] | None = None
        self._keys: dict[str, tuple[np.ndarray, np.ndarray]] | None = None
        self._held_out: dict[str, list[np.ndarray]] | None = None

    def make(self, kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` samples of noise ``kind`` (one of NOISES or HELD_OUT_NOISES), unit RMS."""
        if kind == "white":
            return mix.white_noise(n, rng)
        if kind == "pink":
            return mix.pink_noise(n, rng)
        if kind == "babble":
            if self._voices is None:
                self._voices = babble_voices()
            return mix.babble(self._voices, n, rng, talkers=6)
        if kind == "keyboard":
            if self._keys is None:
                self._keys = key_sounds()
            return typing(self._keys, n, rng)
        if kind in HELD_OUT:
            if self._held_out is None:
                self._held_out = held_out_recordings()
            return looped(self._held_out[kind], n, rng)
        raise ValueError(f"unknown noise {kind!r}; known: {', '.join(NOISES + HELD_OUT_NOISES)}")


def mixtures(
    clips: list[Clip], bank: NoiseBank, noises: tuple[str, ...] = NOISES, snrs: tuple[int, ...] = SNRS
) -> list[Mixture]:
    """Every clip × noise × SNR. Each mixture's generator is seeded by (SEED, clip name, noise, SNR), so a
    mixture is the same whatever else is in the run (``--limit`` changes which, never how)."""
    out = []
    for clip in clips:
        for noise in noises:
            for snr in snrs:
                key = [SEED, zlib.crc32(clip.name.encode()), zlib.crc32(noise.encode()), snr]
                rng = np.random.default_rng(key)
                mixed = mix.mix_at_snr(clip.audio, bank.make(noise, len(clip.audio), rng), snr)
                out.append(Mixture(clip, noise, snr, mixed[0], mixed[1]))
    return out
