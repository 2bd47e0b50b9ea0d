"""Make the bundled keyword-spotting demo clip ``samples/commands-demo.wav`` and its truth
``samples/commands-demo.json``.

A dozen short commands ("yes", "turn left", "set a timer for seven minutes", ...) and a sentence with no
keyword at all, spoken by two HELD-OUT synthetic voices (``kws_data.voice_split(v) == "test"``: the
training recipe never hears them), alternating per utterance, with pauses between. Every word or phrase
is synthesised on its own, trimmed to its speech (``kws_data.trim_speech``) and concatenated, so each
keyword's start and end are known exactly before any noise is added. The noise is pink noise plus babble
(talkers made of ``_unknown_`` words by TRAINING voices, so the babble holds no keyword), seeded, at
``SNR_DB`` dB below the speech, the speech level measured over the spoken parts only. Run::

    python -m tools.kws_demo_clip [--out edge_sdk/samples]

The same espeak-ng / flite versions give the same file (the synthesis and the noise are deterministic).
"""

from __future__ import annotations

import argparse
import json
import wave
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.audio.mix import rms, rms_normalize
from edge_sdk.train import kws_data, speech_data

SR = kws_data.SR
SEED = 2026
SNR_DB = 10.0
WAV = "commands-demo.wav"
TRUTH = "commands-demo.json"
#: Two held-out voices (checked against ``kws_data.voice_split`` when the clip is made).
VOICES = (
    kws_data.Voice("espeak-ng", "en-029+m3", speed=150, pitch=45),
    kws_data.Voice("flite", "rms", speed=160, pitch=50),
)
#: The script: one utterance per entry, pieces in order; a piece in ``[brackets]`` is a keyword. Between
#: pieces of an utterance ``GAP`` seconds, after an utterance its pause.
GAP = 0.12
SCRIPT: tuple[tuple[str, float], ...] = (
    ("[yes]", 1.0),
    ("turn | [left]", 1.0),
    ("[stop]", 1.0),
    ("okay | [go]", 1.0),
    ("set a timer for | [seven] | minutes", 1.0),
    ("what a lovely morning it is", 1.0),
    ("[three]", 1.0),
    ("[no]", 1.0),
    ("volume | [up]", 1.0),
    ("scroll | [down]", 1.0),
    ("lights | [off]", 1.0),
    ("[seven]", 1.0),
)
LEAD_IN = 0.8


def _pieces(utterance: str) -> list[tuple[str, bool]]:
    out = []
    for piece in utterance.split("|"):
        piece = piece.strip()
        keyword = piece.startswith("[") and piece.endswith("]")
        out.append((piece.strip("[]"), keyword))
    return out


def _babble_talkers(seed: int, n: int = 40) -> list[kws_data.Clip]:
    """``n`` unknown words by training voices, for babble (no keyword, no demo voice in it)."""
    rng = np.random.default_rng([seed, 3])
    words = kws_data.unknown_words(kws_data.DEFAULT_WORDS)
    voices = kws_data.draw_voices(n, "train", rng)
    return [
        kws_data.synthesize_clip(words[int(rng.integers(len(words)))], v, kws_data.UNKNOWN) for v in voices
    ]


def make_clip(seed: int = SEED, snr_db: float = SNR_DB) -> tuple[np.ndarray, dict[str, Any]]:
    """The noisy clip (float32, 16 kHz) and its truth (JSON-ready)."""
    for v in VOICES:
        if kws_data.voice_split(v) != "test":
            raise AssertionError(f"demo voice {v.desc()} is a training voice")
    parts: list[np.ndarray] = [np.zeros(int(LEAD_IN * SR), np.float32)]
    t = len(parts[0])
    keywords: list[dict[str, Any]] = []
    utterances: list[dict[str, Any]] = []
    spans: list[tuple[int, int]] = []
    for i, (utterance, pause) in enumerate(SCRIPT):
        voice = VOICES[i % len(VOICES)]
        u0 = t
        pieces = _pieces(utterance)
        for j, (text, is_keyword) in enumerate(pieces):
            audio = kws_data.trim_speech(speech_data.synthesize(text, **voice.kwargs()))
            if not len(audio):
                raise RuntimeError(f"{voice.desc()} said nothing for {text!r}")
            if is_keyword:
                keywords.append(
                    {"word": text, "start": round(t / SR, 4), "end": round((t + len(audio)) / SR, 4)}
                )
            parts.append(audio.astype(np.float32))
            spans.append((t, t + len(audio)))
            t += len(audio)
            if j < len(pieces) - 1:
                parts.append(np.zeros(int(GAP * SR), np.float32))
                t += int(GAP * SR)
        utterances.append(
            {
                "text": " ".join(p for p, _ in pieces),
                "voice": voice.desc(),
                "start": round(u0 / SR, 4),
                "end": round(t / SR, 4),
            }
        )
        parts.append(np.zeros(int(pause * SR), np.float32))
        t += int(pause * SR)
    clean = np.concatenate(parts)
    active = np.zeros(len(clean), bool)
    for a, b in spans:
        active[a:b] = True

    bank = kws_data.make_noise(len(clean) / SR + 1.0, seed, talkers=_babble_talkers(seed))
    n = len(clean)
    noise = 0.7 * rms_normalize(bank["pink"][:n]) + 0.7 * rms_normalize(bank["babble"][:n])
    noise = rms_normalize(noise)
    speech_level = rms(clean[active])
    noisy = clean + noise * (speech_level / 10 ** (snr_db / 20))
    gain = min(1.0, 0.9 / float(np.max(np.abs(noisy))))
    # level to about -20 dBFS speech, never clipping
    gain = min(gain, 0.1 / speech_level)
    noisy = (noisy * gain).astype(np.float32)
    truth = {
        "clip": WAV,
        "sample_rate": SR,
        "seconds": round(n / SR, 4),
        "snr_db": snr_db,
        "snr_measured_over": "the spoken parts (speech RMS where a word is being said)",
        "noise": "pink noise + babble of unknown words by training voices, equal RMS, seeded",
        "seed": seed,
        "voices": [{"voice": v.desc(), "split": kws_data.voice_split(v)} for v in VOICES],
        "keywords": keywords,
        "utterances": utterances,
        "made_by": "python -m tools.kws_demo_clip",
    }
    return noisy, truth


def write(out: Path, seed: int = SEED, snr_db: float = SNR_DB) -> tuple[Path, Path]:
    """Write the clip (16 kHz mono int16) and its truth into ``out``."""
    noisy, truth = make_clip(seed, snr_db)
    out.mkdir(parents=True, exist_ok=True)
    wav, js = out / WAV, out / TRUTH
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes(np.clip(np.round(noisy * 32768), -32768, 32767).astype("<i2").tobytes())
    js.write_text(json.dumps(truth, indent=1) + "\n")
    return wav, js


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "edge_sdk" / "samples"))
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--snr", type=float, default=SNR_DB)
    args = p.parse_args(argv)
    wav, js = write(Path(args.out), args.seed, args.snr)
    truth = json.loads(js.read_text())
    print(f"{wav}: {truth['seconds']:.1f} s, {len(truth['keywords'])} keywords, {wav.stat().st_size} bytes")
    print(f"{js}: " + ", ".join(f"{k['word']} {k['start']:.2f}-{k['end']:.2f}" for k in truth["keywords"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
