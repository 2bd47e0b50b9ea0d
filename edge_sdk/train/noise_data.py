"""Noise for training recipes: generated, plus recorded keyboards (``recorded_keyboards``, not shipped).

Stationary: white, pink, brown, mains hum with harmonics, spectrally shaped ("fan"/"engine") noise,
coloured noise of a random spectral slope (``sloped``), band-limited rumble below about 1 kHz
(``rumble``) and fans (broadband plus blade-pass tones, ``fan``). Non-stationary: babble from held-in
speech, drifting tones, amplitude-modulated noise, slowly swelling low-frequency traffic (``traffic``),
impulsive bursts (knocks, dishes) and clicks (typing, tapping, switches), howling air whose narrow bands
wander (``howl``) and air buffeting a microphone (``buffeting``). Every generator returns
unit-RMS float32 and is deterministic for a generator.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_sdk.audio.mix import babble, colored_noise, pink_noise, rms_normalize, white_noise
from edge_sdk.errors import BadInputError

SAMPLE_RATE = 16000


def hum(n: int, rng: np.random.Generator) -> np.ndarray:
    """Mains hum: 50 or 60 Hz and up to 15 harmonics with random levels and phases, plus a little hiss."""
    f0 = float(rng.choice([50.0, 60.0])) * (1 + rng.normal(0, 0.002))
    t = np.arange(n) / SAMPLE_RATE
    x = np.zeros(n)
    for k in range(1, int(rng.integers(4, 16))):
        level = rng.random() / k ** rng.uniform(0.3, 1.5)
        x += level * np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 2 * np.pi))
    x = rms_normalize(x) + 10 ** (-rng.uniform(1.5, 3)) * white_noise(n, rng)
    return rms_normalize(x)


def shaped_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise with a random smooth spectral envelope (a few random resonances on a tilt): fans,
    engines, air conditioning, road noise."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.linspace(0, SAMPLE_RATE / 2, len(spec))
    env = (1 + f / 100.0) ** (-rng.uniform(0, 1.5))
    for _ in range(int(rng.integers(1, 5))):
        centre, width = rng.uniform(50, 6000), rng.uniform(30, 1500)
        env = env + rng.uniform(0.5, 6) * env.mean() * np.exp(-0.5 * ((f - centre) / width) ** 2)
    return rms_normalize(np.fft.irfft(spec * env, n=n))


def tones(n: int, rng: np.random.Generator) -> np.ndarray:
    """A few sinusoids whose frequencies drift slowly (whine, alarms, music-like tones), with hiss."""
    x = np.zeros(n)
    for _ in range(int(rng.integers(1, 4))):
        f = rng.uniform(100, 4000) * np.exp(np.cumsum(rng.normal(0, 2e-5, n)))
        x += rng.uniform(0.3, 1) * np.sin(2 * np.pi * np.cumsum(f) / SAMPLE_RATE)
    gate = np.repeat(rng.random(-(-n // 4000)) < 0.7, 4000)[:n] if rng.random() < 0.5 else 1.0
    return rms_normalize(rms_normalize(x * gate) + 0.05 * white_noise(n, rng))


def modulated_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Coloured noise whose level swells and fades at 0.2-4 Hz (passing traffic, wind, crowd)."""
    base = colored_noise(n, rng, rng.uniform(0, 2))
    t = np.arange(n) / SAMPLE_RATE
    env = 1 + rng.uniform(0.3, 0.95) * np.sin(2 * np.pi * rng.uniform(0.2, 4) * t + rng.uniform(0, 6.3))
    return rms_normalize(base * env)


def bursts(n: int, rng: np.random.Generator) -> np.ndarray:
    """Impulsive noise: decaying filtered bursts (knocks, clicks, dishes, keyboard) over a low floor."""
    x = 0.02 * white_noise(n, rng)
    for _ in range(int(rng.integers(2, 6) * n / SAMPLE_RATE)):
        length = int(rng.uniform(0.005, 0.25) * SAMPLE_RATE)
        start = int(rng.integers(max(1, n - length)))
        burst = colored_noise(length, rng, rng.uniform(-1, 2)) * np.exp(-np.arange(length) / (length / 5))
        x[start : start + length] += rng.uniform(0.2, 3) * burst[: n - start]
    return rms_normalize(x)


def _click(rng: np.random.Generator) -> np.ndarray:
    """One mechanical click: a sharp noise burst (0.3-5 ms decay) plus 1-4 decaying resonances."""
    length = int(rng.uniform(0.01, 0.06) * SAMPLE_RATE)
    t = np.arange(length) / SAMPLE_RATE
    x = colored_noise(length, rng, rng.uniform(-1.5, 1.0)) * np.exp(-t / rng.uniform(3e-4, 5e-3))
    for _ in range(int(rng.integers(1, 5))):
        f, tau = rng.uniform(300, 7500), rng.uniform(2e-3, 3e-2)
        x += rng.uniform(0.1, 1.0) * np.sin(2 * np.pi * f * t + rng.uniform(0, 6.3)) * np.exp(-t / tau)
    return x / (np.max(np.abs(x)) + 1e-9)


def clicks(n: int, rng: np.random.Generator) -> np.ndarray:
    """Typing, tapping, mouse and switch clicks: a set of 4-16 click sounds (``_click``) played at 2-10
    a second with gamma-distributed gaps, most followed 40-160 ms later by a softer release click,
    levels varying by ±4 dB, over a faint noise floor."""
    sounds = [_click(rng) for _ in range(int(rng.integers(4, 17)))]
    out = np.zeros(n + SAMPLE_RATE) + 10 ** (-rng.uniform(2, 3.5)) * colored_noise(n + SAMPLE_RATE, rng, 1.0)
    rate, t = rng.uniform(2, 10), int(rng.integers(SAMPLE_RATE // 4))
    while t < n:
        hits = [(0.0, 0.0), (rng.uniform(0.04, 0.16), -rng.uniform(0, 8))][: 1 + int(rng.random() < 0.8)]
        for delay, level in hits:
            c = sounds[int(rng.integers(len(sounds)))] * 10 ** ((level + rng.uniform(-4, 4)) / 20)
            s = t + int(delay * SAMPLE_RATE)
            out[s : s + len(c)] += c[: max(0, len(out) - s)]
        t += int(rng.gamma(3.0, 1 / (3 * rate)) * SAMPLE_RATE) + 1
    return rms_normalize(out[:n])


def _click_wide(rng: np.random.Generator) -> np.ndarray:
    """A click from a wider family than ``_click``: sharper or duller attacks (0.1-10 ms), resonances
    from 150 Hz to 7.8 kHz decaying in 1-100 ms (a spring's ping), sometimes a low thump (a key bottoming
    out) or a second attack a few ms later (a rattling key cap)."""
    length = int(rng.uniform(0.01, 0.15) * SAMPLE_RATE)
    t = np.arange(length) / SAMPLE_RATE
    x = colored_noise(length, rng, rng.uniform(-2.0, 1.5)) * np.exp(-t / rng.uniform(1e-4, 1e-2))
    for _ in range(int(rng.integers(0, 6))):
        f, tau = rng.uniform(150, 7800), rng.uniform(1e-3, 0.1)
        x += rng.uniform(0.05, 1.0) * np.sin(2 * np.pi * f * t + rng.uniform(0, 6.3)) * np.exp(-t / tau)
    if rng.random() < 0.4:
        f, tau = rng.uniform(60, 250), rng.uniform(5e-3, 3e-2)
        x += rng.uniform(0.2, 1.5) * np.sin(2 * np.pi * f * t) * np.exp(-t / tau)
    if rng.random() < 0.3:
        d = int(rng.uniform(0.002, 0.015) * SAMPLE_RATE)
        x[d:] += rng.uniform(0.2, 0.8) * x[: length - d]
    return x / (np.max(np.abs(x)) + 1e-9)


@dataclass(frozen=True)
class Keyboard:
    """Recorded sounds of one keyboard at 16 kHz: key presses and key releases."""

    name: str
    presses: tuple[np.ndarray, ...]
    releases: tuple[np.ndarray, ...]


#: The keyboardsounds wheel's profiles recorded by kbsim (Thomas Lai, MIT): 7 mechanical keyboards.
KBSIM_PROFILES = (
    "alpaca",
    "gateron-black-ink",
    "gateron-red-ink",
    "holy-panda",
    "mx-black",
    "mx-blue",
    "mx-brown",
)


def recorded_keyboards(wheel: Path | None = None) -> list[Keyboard]:
    """The kbsim recordings of ``KBSIM_PROFILES``, read from the pinned keyboardsounds wheel (the zoo's
    ``keyboard-sounds`` entry, fetched once; ``wheel`` to use another copy) and resampled to 16 kHz.
    Each profile's own LICENSE is checked to be kbsim's MIT licence before its sounds are used."""
    from edge_sdk import zoo
    from edge_sdk.train.speech_data import decode_audio, resample

    path = Path(wheel) if wheel else zoo.pull("keyboard-sounds")
    keyboards = []
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        for profile in KBSIM_PROFILES:
            folder = f"keyboardsounds/profiles/{profile}/"
            licence = (
                zf.read(folder + "LICENSE").decode("utf-8", "replace") if folder + "LICENSE" in names else ""
            )
            if "kbsim" not in licence or "Permission is hereby granted" not in licence:
                raise BadInputError(f"{path}: {folder} does not carry kbsim's MIT licence; not using it")
            sounds: dict[str, list[np.ndarray]] = {"press": [], "release": []}
            for name in sorted(n for n in names if n.startswith(folder) and n.endswith(".mp3")):
                kind = "release" if Path(name).name.startswith("release") else "press"
                x, rate = decode_audio(io.BytesIO(zf.read(name)))
                sounds[kind].append(resample(x, rate, SAMPLE_RATE))
            keyboards.append(Keyboard(profile, tuple(sounds["press"]), tuple(sounds["release"])))
    return keyboards


def _stretch(x: np.ndarray, factor: float) -> np.ndarray:
    """``x`` played ``factor`` times slower (longer, lower), by linear interpolation."""
    return np.interp(np.arange(int(len(x) * factor)) / factor, np.arange(len(x)), x)


def typing_floor(n: int, rng: np.random.Generator, keyboards: list[Keyboard] | None = None) -> np.ndarray:
    """Transient click trains (typing, mouse, tapping; 1-14 hits a second, bursts and pauses, ±6 dB per
    hit, most with a release click; mostly with a room's reverberant tail and a random microphone tilt)
    over a stationary floor (white, pink, brown or shaped noise) from 40 dB below to about as loud as the
    clicks, so a model learns to remove the clicks and the floor together. The clicks are generated
    (``_click``/``_click_wide``), or with ``keyboards`` the recordings of one of them. For fine-tuning on
    transients; not in ``GENERATORS``."""
    if keyboards:
        kb = keyboards[int(rng.integers(len(keyboards)))]
        # a few recordings per keyboard: each draw detunes them (±15 % in time and pitch) for variety
        factor = rng.uniform(0.85, 1.15)
        presses = [_stretch(c, factor) for c in kb.presses]
        releases = [_stretch(c, factor) for c in kb.releases] or presses
    else:
        presses = [
            (_click_wide if rng.random() < 0.6 else _click)(rng) for _ in range(int(rng.integers(6, 25)))
        ]
        releases = presses
    out = np.zeros(n + SAMPLE_RATE)
    rate, t = rng.uniform(1, 14), int(rng.integers(SAMPLE_RATE // 4))
    release_p, shape = rng.uniform(0.3, 1.0), rng.uniform(1.0, 5.0)
    peak = max(float(np.max(np.abs(c))) for c in presses) + 1e-9  # recorded levels stay relative
    while t < n:
        hits = [(0.0, 0.0, presses), (rng.uniform(0.03, 0.2), -rng.uniform(0, 10), releases)][
            : 1 + int(rng.random() < release_p)
        ]
        for delay, level, pool in hits:
            c = pool[int(rng.integers(len(pool)))] / peak * 10 ** ((level + rng.uniform(-6, 6)) / 20)
            s = t + int(delay * SAMPLE_RATE)
            out[s : s + len(c)] += c[: max(0, len(out) - s)]
        gap = rng.gamma(shape, 1 / (shape * rate))
        if rng.random() < 0.05:  # a pause in the typing
            gap += rng.uniform(0.3, 1.5)
        t += int(gap * SAMPLE_RATE) + 1
    x = out[:n]
    if rng.random() < 0.7:  # heard in a room: a random exponentially decaying noise tail (RT60 0.1-0.7 s)
        rt60 = rng.uniform(0.1, 0.7)
        h = rng.standard_normal(int(rt60 * SAMPLE_RATE)) * np.exp(
            -6.9 * np.arange(int(rt60 * SAMPLE_RATE)) / (rt60 * SAMPLE_RATE)
        )
        h *= 10 ** (-rng.uniform(0, 15) / 20) / (np.sqrt(np.sum(h**2)) + 1e-9)
        h[0] += 1.0
        m = len(x) + len(h) - 1
        x = np.fft.irfft(np.fft.rfft(x, m) * np.fft.rfft(h, m), m)[:n]
    if rng.random() < 0.5:  # the microphone's colour: a random spectral tilt
        spec = np.fft.rfft(x)
        x = np.fft.irfft(spec * (1 + np.linspace(0, 1, len(spec)) * 40) ** rng.uniform(-0.6, 0.3), n=n)
    x = rms_normalize(x)
    floor_kind = int(rng.integers(4))
    if floor_kind == 0:
        floor = white_noise(n, rng)
    elif floor_kind == 1:
        floor = pink_noise(n, rng)
    elif floor_kind == 2:
        floor = colored_noise(n, rng, rng.uniform(1.5, 2.0))
    else:
        floor = shaped_noise(n, rng)
    return rms_normalize(x + 10 ** (-rng.uniform(0, 40) / 20) * rms_normalize(floor))


#: Spectral slopes (dB per octave of power) that ``sloped`` draws from: from steep rumble to a rising hiss.
SLOPE_RANGE = (-18.0, 3.0)


def slope_spectrum(f: np.ndarray, slope_db_oct: float, knee: float) -> np.ndarray:
    """Amplitude envelope over frequencies ``f`` (Hz): flat below ``knee``, then power falling (or rising)
    by ``slope_db_oct`` dB per octave."""
    return (np.maximum(f, knee) / knee) ** (slope_db_oct / (20 * np.log10(2)))


def _shape(n: int, rng: np.random.Generator, env: np.ndarray) -> np.ndarray:
    """Gaussian noise of ``n`` samples through the amplitude envelope ``env`` (one value per rfft bin)."""
    return rms_normalize(np.fft.irfft(np.fft.rfft(rng.standard_normal(n)) * env, n=n))


def sloped_noise(
    n: int, rng: np.random.Generator, slope_db_oct: float | None = None, knee: float | None = None
) -> np.ndarray:
    """Coloured noise of a random spectral slope: flat below a knee (30-400 Hz), then power changing by
    ``slope_db_oct`` dB per octave, drawn from ``SLOPE_RANGE`` (two thirds of draws -6 dB/octave or
    steeper: fans, engines, road and room rumble) when not given."""
    if slope_db_oct is None:
        lo, hi = SLOPE_RANGE
        slope_db_oct = rng.uniform(lo, -6.0) if rng.random() < 2 / 3 else rng.uniform(-6.0, hi)
    if knee is None:
        knee = float(np.exp(rng.uniform(np.log(30), np.log(400))))
    f = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    return _shape(n, rng, slope_spectrum(f, slope_db_oct, knee))


def lowpass_envelope(f: np.ndarray, cutoff: float, order: int) -> np.ndarray:
    """Magnitude of a Butterworth low-pass of ``order`` at ``cutoff`` Hz (falls 6 × order dB/octave)."""
    return 1 / np.sqrt(1 + (f / cutoff) ** (2 * order))


def rumble(n: int, rng: np.random.Generator) -> np.ndarray:
    """Band-limited rumble: noise low-passed at 60-900 Hz (3rd to 6th order, so 18-36 dB/octave above
    the cut-off), gently sloped below it and high-passed at 15-40 Hz, over a broadband floor 35-60 dB
    down (the microphone's own hiss): ventilation ducts, engines heard through walls, distant traffic."""
    f = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    cutoff = float(np.exp(rng.uniform(np.log(60), np.log(900))))
    hp = float(rng.uniform(15, 40))
    env = lowpass_envelope(f, cutoff, int(rng.integers(3, 7))) * slope_spectrum(f, rng.uniform(-6, 0), 20.0)
    env *= (f / hp) ** 2 / np.sqrt(1 + (f / hp) ** 4)  # 2nd-order high-pass: no DC drift
    x = _shape(n, rng, env)
    return rms_normalize(x + 10 ** (-rng.uniform(35, 60) / 20) * white_noise(n, rng))


def fan(n: int, rng: np.random.Generator) -> np.ndarray:
    """A fan: broadband noise falling 3-12 dB/octave above a 50-500 Hz knee, plus the blade-pass tone
    (3-9 blades at 600-3600 rpm: 30-540 Hz) and 1-5 harmonics whose pitch wobbles by under 1 %, the
    broadband part modulated at the blade rate (0-30 % depth); tones 15 dB below to 10 dB above it."""
    t = np.arange(n) / SAMPLE_RATE
    f = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    broad = _shape(n, rng, slope_spectrum(f, -rng.uniform(3, 12), rng.uniform(50, 500)))
    f_bp = int(rng.integers(3, 10)) * rng.uniform(600, 3600) / 60
    wobble = 1 + rng.uniform(0, 0.01) * np.sin(2 * np.pi * rng.uniform(0.05, 0.5) * t + rng.uniform(0, 6.3))
    phase = 2 * np.pi * np.cumsum(f_bp * wobble) / SAMPLE_RATE
    tones = sum(
        rng.uniform(0.2, 1) / k ** rng.uniform(0.5, 1.5) * np.sin(k * phase + rng.uniform(0, 6.3))
        for k in range(1, int(rng.integers(2, 7)))
        if k * f_bp < SAMPLE_RATE / 2
    )
    broad *= 1 + rng.uniform(0, 0.3) * np.sin(phase)
    return rms_normalize(broad + 10 ** (rng.uniform(-15, 10) / 20) * rms_normalize(tones))


def traffic(n: int, rng: np.random.Generator) -> np.ndarray:
    """Traffic heard from a roadside or through a window: low-frequency-heavy noise (knee 40-200 Hz, then
    -6 to -15 dB/octave, low-passed at 400-3000 Hz) whose level swells and fades slowly (vehicles passing
    every 2-10 s, each a 1-6 s bump, 6-20 dB over a steady hum of distant traffic), and whose upper band
    rises as a vehicle comes near."""
    f = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    knee, slope = rng.uniform(40, 200), -rng.uniform(6, 15)
    env = slope_spectrum(f, slope, knee) * lowpass_envelope(f, rng.uniform(400, 3000), 2)
    low = _shape(n, rng, env)
    high = _shape(n, rng, slope_spectrum(f, slope + 6, knee) * lowpass_envelope(f, 4000, 2))
    t = np.arange(n) / SAMPLE_RATE
    swell = np.full(n, 10 ** (-rng.uniform(6, 20) / 20))
    at = rng.uniform(-3, 2)
    while at < n / SAMPLE_RATE + 3:
        width = rng.uniform(1, 6) / 4
        swell += rng.uniform(0.3, 1) * np.exp(-0.5 * ((t - at) / width) ** 2)
        at += rng.uniform(2, 10)
    near = swell / swell.max()
    return rms_normalize(swell * (low + rng.uniform(0.1, 0.5) * near * high))


#: Frame and hop of the short-time shaping that ``howl`` uses (sqrt-Hann windows at 50 % overlap sum to 1).
_FRAME, _HOP = 512, 256


def _wander(
    count: int, rng: np.random.Generator, per_second: float, spread: float, rate: float
) -> np.ndarray:
    """A smooth random curve of ``count`` points sampled ``per_second`` times a second: Gaussian knots of
    standard deviation ``spread`` every ``1 / rate`` seconds, joined by cosine interpolation."""
    step = max(per_second / rate, 1.0)
    knots = rng.normal(0, spread, int(count / step) + 3)
    pos = np.arange(count) / step + rng.random()
    i = pos.astype(int)
    w = (1 - np.cos(np.pi * (pos - i))) / 2
    return knots[i] * (1 - w) + knots[i + 1] * w


def _shape_frames(n: int, rng: np.random.Generator, env: np.ndarray) -> np.ndarray:
    """Gaussian noise of ``n`` samples whose amplitude spectrum follows ``env`` (``frames × _FRAME // 2 + 1``,
    one row every ``_HOP`` samples): a spectrum that changes over time, joined by overlap-add."""
    window = np.sqrt(np.hanning(_FRAME + 1)[:-1])
    spectra = np.fft.rfft(rng.standard_normal((len(env), _FRAME)) * window) * env
    frames = np.fft.irfft(spectra, _FRAME) * window
    out = np.zeros((len(env) + 1) * _HOP)
    for half in (0, 1):  # even frames, then odd ones: neither set overlaps itself
        rows = frames[half::2].reshape(-1)
        out[half * _HOP : half * _HOP + len(rows)] += rows
    return rms_normalize(out[_HOP : _HOP + n])


def howl(n: int, rng: np.random.Generator) -> np.ndarray:
    """Air howling or whistling (through a gap, around a building or a microphone grille, in a vent):
    1-3 narrow bands of noise (3-20 % wide) whose centres wander slowly between 150 Hz and 2.5 kHz (by up
    to about half an octave), each band's level gusting by 5-20 dB at 0.2-2 Hz, over a low rumble 5-30 dB
    down. Unlike ``tones`` it is noise, not a sinusoid; unlike ``shaped`` its spectrum moves."""
    count = n // _HOP + 3
    f = np.fft.rfftfreq(_FRAME, 1 / SAMPLE_RATE)
    env = np.zeros((count, len(f)))
    per_second = SAMPLE_RATE / _HOP
    for _ in range(int(rng.integers(1, 4))):
        start = rng.uniform(np.log(150), np.log(2500))
        centre = start + _wander(count, rng, per_second, 0.2, rng.uniform(0.1, 1))
        hz = np.exp(centre)[:, None]
        width = np.maximum(hz * rng.uniform(0.03, 0.2), 25.0)  # no narrower than a bin
        level_db = _wander(count, rng, per_second, rng.uniform(5, 20) / 2, rng.uniform(0.2, 2))
        env += (10 ** (level_db / 20))[:, None] * np.exp(-0.5 * ((f[None] - hz) / width) ** 2)
    floor = rumble(n, rng)
    return rms_normalize(_shape_frames(n, rng, env) + 10 ** (-rng.uniform(5, 30) / 20) * floor)


def buffeting(n: int, rng: np.random.Generator) -> np.ndarray:
    """Moving air on a microphone: noise low-passed at 80-800 Hz (2nd to 4th order) whose level jumps
    irregularly by 10-30 dB at 0.3-3 Hz, down to near-silent lulls, over a faint broadband hiss."""
    f = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    cutoff = float(np.exp(rng.uniform(np.log(80), np.log(800))))
    base = _shape(n, rng, lowpass_envelope(f, cutoff, int(rng.integers(2, 5))))
    level_db = _wander(n, rng, SAMPLE_RATE, rng.uniform(10, 30) / 2, rng.uniform(0.3, 3))
    x = rms_normalize(base * 10 ** (level_db / 20))
    return rms_normalize(x + 10 ** (-rng.uniform(30, 50) / 20) * white_noise(n, rng))


def brown_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """1/f² noise, unit RMS."""
    return colored_noise(n, rng, 2.0)


#: Generators that need nothing but a length and a random generator, by name.
GENERATORS: dict[str, Callable[[int, np.random.Generator], np.ndarray]] = {
    "white": white_noise,
    "pink": pink_noise,
    "brown": brown_noise,
    "hum": hum,
    "shaped": shaped_noise,
    "tones": tones,
    "modulated": modulated_noise,
    "bursts": bursts,
    "clicks": clicks,
    "sloped": sloped_noise,
    "rumble": rumble,
    "fan": fan,
    "traffic": traffic,
    "howl": howl,
    "buffeting": buffeting,
}
#: The kinds added for low-frequency-heavy and moving-air noise (``--broad`` draws the first noise of a clip
#: from these).
BROAD_KINDS = ("brown", "hum", "sloped", "rumble", "fan", "traffic", "howl", "buffeting")


def noise_bank(
    seconds_each: float, rng: np.random.Generator, voices: list[np.ndarray] | None = None, pieces: int = 4
) -> dict[str, np.ndarray]:
    """A long recording of each noise kind, made of ``pieces`` independent draws of ``seconds_each /
    pieces`` seconds (so shaped/tonal kinds vary); ``"babble"`` is added when ``voices`` are given."""
    n = int(seconds_each * SAMPLE_RATE) // pieces
    bank = {name: np.concatenate([gen(n, rng) for _ in range(pieces)]) for name, gen in GENERATORS.items()}
    if voices:
        bank["babble"] = np.concatenate(
            [babble(voices, n, rng, talkers=int(rng.integers(3, 10))) for _ in range(pieces)]
        )
    return {k: v.astype(np.float32) for k, v in bank.items()}
