"""The markdown document of the audio-quality benchmark: tables from ``audio_quality.summarize`` and the
notes on data, noise, alignment and metrics that the document must carry."""

from __future__ import annotations

import os

import speech_corpus as corpus

COMMAND = "nice -n 10 .venv/bin/python bench/audio_quality.py --out docs/audio-quality.md"

HELD_OUT_NOTE = """Noise families that the tiny denoiser's recipe (`edge_sdk/train/tiny_denoiser.py`,
`edge_sdk/train/noise_data.py`) never uses, neither for training nor to choose a checkpoint: **real
recordings from Debian's `openttd-opensfx`** (`apt-get install openttd-opensfx`; OpenSFX 1.0.3, the
sound set of OpenTTD, 44.1 kHz, resampled to 16 kHz; its readme credits each sound):

* engines: "Propeller plane start" (Cheeseheadburger, CC-BY-3.0), "Mining machinery" (a lift, Aldor,
  public domain, edited by Janis Lukss, CC-BY-3.0), "Helicopter" (lorenzosu, CC-BY-SA-3.0), "Modern bus
  start" (icmusic, CC-BY-3.0), "Old bus start" (roscoetoon, CC-BY-3.0). Each has over 90 % of its energy
  below 1 kHz, most of it below 250 Hz, its spectral density falling about 4-8 dB per octave: the kind
  of noise the tiny denoiser was first weak on.
* wind: "Wind" (Anton, CC-BY-3.0), 97 % of its energy below 1 kHz, about three quarters of it between
  500 Hz and 1 kHz: a gusting howl inside the band of voiced speech.
* machinery: "Sawmill" (a circular saw crosscutting, Benboncan), "Jackhammer" (an air hammer,
  Bluesy1905), "Lumber mill: Chainsaw" (JFBSAUVE), "Early jet take off" (a passenger jet departing,
  digifishmusic.com); all CC-BY-3.0, edited by Wuzzy or Janis Lukss. Broadband and partly impulsive: 11 to
  77 % of their energy below 1 kHz. This family joined the table after the recipe gained its moving-air
  kinds (`howl`, `buffeting`, written once the wind column had shown the gap) and before any model
  trained with them was scored, so it is the one family no decision of the recipe has seen even as a
  result.

Each is trimmed to where it is within 20 dB of its loudest 50 ms, started at a random point and looped
(50 ms cross-fades) to the utterance's length. Why they are unseen: no file of that package is read by
anything under `edge_sdk/train` (a test, `tests/edge_sdk/test_noise_held_out.py`, fails if the recipe
reads it or names these families), and the recipe keeps the checkpoint with the best score on its own
validation split of its own generated noise and kbsim keyboards. What training did have is generated
noise of the same broad classes (sloped and band-limited rumble, fans, traffic, modulated noise, howling
and buffeting air): this table measures whether those generators carry over to real recordings."""

NOTES = """## How it was made

**Speech** (real, recorded by others; nothing synthesised is ever scored):

* Debian `pocketsphinx-testdata` (`/usr/share/pocketsphinx/test/data`), 16 kHz, full band: the 5
  LibriVox clips (*Sense and Sensibility*, one reader, from 64 kb/s MP3 originals, so already slightly
  coded), and the short clips pocketsphinx's own tests decode, labelled `sphinx-tests` below
  (`cards/*.wav`, spoken playing cards; `goforward.raw`, `numbers.raw`, `something.raw`;
  `tidigits/dhd.2934z.raw`, a TIDIGITS digit string).
* Debian `asterisk-core-sounds-en-wav`: Allison Smith's prompts (CC-BY-SA-3.0), 8 kHz, resampled to 16 kHz
  with soxr, so **their speech stops at 4 kHz** while the noise fills the band to 8 kHz: removing the upper
  band is easy there, which inflates every denoiser's gain on this corpus (see the per-corpus table). Only
  prompts that `edge_sdk.train.speech_data.asterisk_prompts("test")` holds out of the tiny denoiser's
  training are used (at least 1 s long; a seeded choice of `--asterisk` of them).

**Noise**, each mixed with `edge_sdk.audio.mix.mix_at_snr` at 0, 5 and 10 dB (speech RMS over noise RMS
over the whole clip), one seeded generator per (clip, noise, SNR):

* white and pink: `audio.mix.white_noise` / `pink_noise`.
* babble: `audio.mix.babble`, 6 talkers drawn from 40 training-split Asterisk prompts and 20 espeak-ng/flite
  sentences (`speech_data.synthetic_corpus(20, seed=2027)`). No evaluated utterance is in it, but it
  favours the tiny denoiser: those Asterisk prompts are files it trained on, and its training noise
  includes babble made from its training speech. The Asterisk babble is also the voice of the Asterisk
  test prompts (one speaker), a hard case for every method.
* keyboard: **real recordings** of an IBM Model M keyboard, every key's press and release, from Debian's
  `bucklespring-data` 1.4.0 (`/usr/share/buckle/wav`, 44.1 kHz, © 2016 Ico Doornekamp, GPL-2+; upstream
  says each key's sound "has carefully been sampled"). The recordings are real; their arrangement into
  typing (about 5.5 keys/s, gamma-distributed gaps, occasional pauses, ±3 dB per key) is ours. A
  transient, non-stationary noise. The tiny denoiser's last fine-tune heard recorded typing too, on 7
  other keyboards (kbsim's Cherry MX, Gateron and others; see its model card), never this one.
  (`/usr/share/sounds/alsa/Noise.wav` from alsa-utils was considered and not used: 1.4 s of unattributed,
  apparently generated noise.)

**Alignment.** Every output, the noisy baseline's included, is shifted by the lag within ±50 ms that
maximises its cross-correlation with the noisy input (not the clean speech, which a deployed system
never has), then cut or zero-padded to the input's length. The lags found are in the alignment table,
beside each method's SI-SDR when it is fed the clean utterances alone: the distortion a method adds by
itself (RNNoise's input high-pass and band-wise gains cost it SI-SDR even on clean speech).

**Methods.** RNNoise is the `pyrnnoise` wheel's library, which is **RNNoise 0.2** (2024 model: two conv
layers and three 384-unit GRUs): its parameter count is read from the library's own weight table
(float weights and biases). The "about 88k" often quoted belongs to the first RNNoise (Valin, MMSP 2018:
215 units in 4 hidden layers; 87,503 weights and biases counted from its layer sizes), not to this one.
It runs at 48 kHz: input resampled 16→48 kHz and back with soxr, 10 ms frames, a fresh state per
utterance. noisereduce 3.0 is spectral gating with its defaults
(noise estimated from the clip itself), in both its stationary and non-stationary modes, on numpy. The
tiny denoiser and NSNet2 run through `edge_sdk.stages.denoise.denoise_array`, the same streaming stage
the capture loop uses, with onnxruntime on one thread.

**Parameters** are the floating-point values stored in the model: ONNX float initializers for the tiny
denoiser and NSNet2 (the tiny model's input normalisation is folded into its first layer), the float
weight table for RNNoise, none for the noisy input and spectral gating.

**Metrics.** SI-SDR: `edge_sdk.audio.mix.si_sdr` (dB). PESQ: ITU-T P.862.2 wideband (`pesq` package,
mode `wb`, 16 kHz); a mixture where PESQ refuses any method's output is left out of every method's PESQ
mean, and counted above. STOI: `pystoi`, classic (not extended). Δ is the mean of the per-mixture
difference to the noisy input. RTF: summed processing time over summed audio duration, one thread,
measured inside this run (resampling included for RNNoise)."""


def _f(x: float | None, digits: int = 2, sign: bool = False) -> str:
    if x is None or x != x:
        return "–"
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def _params(n: int | None) -> str:
    if n is None:
        return "?"
    return "0" if n == 0 else f"{n / 1e6:.2f} M" if n >= 1e6 else f"{n / 1e3:.1f} k"


def held_out_table(summary: dict) -> list[str]:
    """The held-out noises' section: each family's gains and their mean, per method."""
    ms, held = summary["methods"], summary.get("held_out_noises", [])
    if not held:
        return []
    lines = ["", "## Held-out noises", "", HELD_OUT_NOTE, ""]
    lines += [
        "| method | "
        + " | ".join(f"{n} ΔSI-SDR / ΔPESQ / ΔSTOI" for n in held)
        + " | mean ΔSI-SDR / ΔPESQ / ΔSTOI |"
    ]
    lines += ["|---|" + "---:|" * (len(held) + 1)]
    for name, m in ms.items():
        if name != "noisy input":
            parts = [m["noise"][n] for n in held] + [m["held_out"]]
            lines.append(
                f"| {name} | "
                + " | ".join(
                    f"{_f(p['d_si_sdr'], 2, True)} / {_f(p['d_pesq'], 2, True)} / {_f(p['d_stoi'], 3, True)}"
                    for p in parts
                )
                + " |"
            )
    base = ms.get("noisy input", {}).get("held_out")
    if base:
        lines += [
            "",
            f"Noisy input on these mixtures: SI-SDR {_f(base['si_sdr'])} dB, PESQ {_f(base['pesq'])}, "
            f"STOI {_f(base['stoi'], 3)}.",
        ]
    return lines


def to_markdown(summary: dict, clips: list[corpus.Clip], elapsed: float, load: float = float("nan")) -> str:
    """The document: overall table, per-corpus and per-noise × SNR breakdowns, and how it was made."""
    ms = summary["methods"]
    by_corpus: dict[str, int] = {}
    for c in clips:
        by_corpus[c.corpus] = by_corpus.get(c.corpus, 0) + 1
    seconds = sum(len(c.audio) for c in clips) / corpus.RATE
    lines = [
        "# Speech denoiser quality",
        "",
        f"Generated by `{COMMAND}` in {elapsed / 60:.0f} min on {os.cpu_count()} CPU cores shared with other",
        f"work (load average {load:.1f} at its start); the real-time factors were measured in the same run,",
        "on that machine. Do not edit by hand.",
        "",
        f"{len(clips)} real utterances ({seconds:.0f} s: "
        + ", ".join(f"{n} {k}" for k, n in sorted(by_corpus.items()))
        + f") × {summary['noises']} noises × {len(corpus.SNRS)} SNRs = "
        f"{summary['mixtures'] - summary.get('held_out_mixtures', 0)} mixtures, "
        f"and {summary.get('held_out_mixtures', 0)} more with the held-out noises "
        f"({', '.join(summary.get('held_out_noises', [])) or 'none in this run'}). "
        f"PESQ scored every method on {summary['pesq_scored']} of them all "
        f"({summary['mixtures'] - summary['pesq_scored']} skipped, listed in `--json`).",
        "",
        "## Overall",
        "",
        "White, pink, babble and keyboard noise (the held-out noises are in their own table below).",
        "",
        "| method | params | RTF | SI-SDR dB | ΔSI-SDR | PESQ-WB | ΔPESQ | STOI | ΔSTOI |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, m in ms.items():
        o = m["overall"]
        lines.append(
            f"| {name} | {_params(m['params'])} | {_f(m['rtf'], 3)} | {_f(o['si_sdr'])} | "
            f"{_f(o['d_si_sdr'], sign=True)} | {_f(o['pesq'])} | {_f(o['d_pesq'], sign=True)} | "
            f"{_f(o['stoi'], 3)} | {_f(o['d_stoi'], 3, sign=True)} |"
        )
    lines += ["", *(f"- {name}: {m['note']}" for name, m in ms.items() if m["note"])]
    lines += held_out_table(summary)
    cells = list(next(iter(ms.values()))["noise_snr"]) if ms else []
    for metric, title in (("d_si_sdr", "ΔSI-SDR (dB)"), ("d_pesq", "ΔPESQ-WB")):
        lines += ["", f"## {title} per noise and input SNR", ""]
        lines += ["| method | " + " | ".join(cells) + " |", "|---|" + "---:|" * len(cells)]
        for name, m in ms.items():
            if name != "noisy input":
                lines.append(
                    f"| {name} | "
                    + " | ".join(_f(m["noise_snr"][c][metric], sign=True) for c in cells)
                    + " |"
                )
    corpora = sorted({c for m in ms.values() for c in m["corpus"]})
    lines += ["", "## Per corpus, main noises (ΔSI-SDR dB / ΔPESQ / ΔSTOI)", ""]
    lines += ["| method | " + " | ".join(corpora) + " |", "|---|" + "---:|" * len(corpora)]
    for name, m in ms.items():
        if name != "noisy input":
            parts = [m["corpus"][c] for c in corpora]
            lines.append(
                f"| {name} | "
                + " | ".join(
                    f"{_f(p['d_si_sdr'], 1, True)} / {_f(p['d_pesq'], 2, True)} / {_f(p['d_stoi'], 3, True)}"
                    for p in parts
                )
                + " |"
            )
    lines += ["", "## Alignment, and SI-SDR on clean input", ""]
    lines += ["| method | median lag ms | 5–95 % lag spread ms | SI-SDR dB, clean in |"]
    lines += ["|---|---:|---:|---:|"]
    for name, m in ms.items():
        lines.append(
            f"| {name} | {_f(m['lag_median_ms'], 1)} | {_f(m['lag_spread_ms'], 1)} | "
            f"{'∞ (identity)' if (m.get('clean_si_sdr') or 0) > 100 else _f(m.get('clean_si_sdr'), 1)} |"
        )
    lines += ["", NOTES]
    return "\n".join(lines) + "\n"
