"""Speech denoiser quality on real speech: SI-SDR, PESQ (wideband), STOI, and the gain over the noisy input.

    nice -n 10 .venv/bin/python bench/audio_quality.py [--limit N] [--asterisk 40] [--json]
        [--out docs/audio-quality.md] [--methods noisy rnnoise ...]

Real speech (pocketsphinx-testdata, held-out Asterisk prompts; see ``speech_corpus.py``) is mixed with
white, pink, babble and recorded keyboard noise, and with the held-out recorded noises (engines, wind,
machinery; never used by the tiny denoiser's recipe, scored apart), at 0, 5 and 10 dB SNR, seeded, and
every method denoises every mixture. Each output is aligned the same way, by the lag within ±50 ms that
maximises its cross-correlation with the noisy input, then scored against the clean speech. Timing is
processing time / audio duration on one thread (BLAS, torch and onnxruntime limited to one thread).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soxr
import speech_corpus as corpus
from audio_quality_report import to_markdown
from scipy.signal import correlate

from edge_sdk.audio.mix import si_sdr

RATE = corpus.RATE
MAX_LAG = RATE * 50 // 1000


@dataclass
class Method:
    """A denoiser under test: ``run`` maps 16 kHz float32 audio to audio of about the same length."""

    name: str
    run: Callable[[np.ndarray], np.ndarray]
    params: int | None
    note: str = ""
    seconds: float = 0.0
    audio_seconds: float = 0.0

    @property
    def rtf(self) -> float:
        """Real-time factor: processing time over audio duration (below 1 is faster than real time)."""
        return self.seconds / self.audio_seconds if self.audio_seconds else float("nan")


@dataclass
class Score:
    """One method's scores on one mixture; ``pesq`` is None where PESQ refused the pair."""

    clip: str
    corpus: str
    noise: str
    snr: int
    method: str
    lag: int
    si_sdr: float
    stoi: float
    pesq: float | None = None
    pesq_error: str = field(default="", repr=False)


def _rnnoise() -> Method:
    from pyrnnoise import rnnoise

    lib, frame = rnnoise.lib, rnnoise.FRAME_SIZE

    def run(x: np.ndarray) -> np.ndarray:
        # RNNoise is a 48 kHz model fed int16-scaled floats in 10 ms frames; a fresh state per utterance.
        up = soxr.resample(x, RATE, 48000).astype(np.float32) * 32768.0
        up = np.concatenate([up, np.zeros(-len(up) % frame, np.float32)])
        out = np.empty_like(up)
        buf = np.empty(frame, np.float32)
        ptr = buf.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        state = lib.rnnoise_create(None)
        try:
            for i in range(0, len(up), frame):
                buf[:] = up[i : i + frame]
                lib.rnnoise_process_frame(state, ptr, ptr)
                out[i : i + frame] = buf
        finally:
            lib.rnnoise_destroy(state)
        return soxr.resample(out / 32768.0, 48000, RATE).astype(np.float32)

    return Method("RNNoise 0.2 (pyrnnoise)", run, rnnoise_params(lib), "48 kHz; 16k→48k→16k with soxr")


def rnnoise_params(lib: ctypes.CDLL) -> int:
    """Weights and biases of the RNNoise model compiled into ``lib``, read from its ``rnnoise_arrays``
    table (float copies only: the int8 copies, scales and sparse indices are the same weights again)."""

    class WeightArray(ctypes.Structure):
        _fields_ = [
            ("name", ctypes.c_char_p),
            ("type", ctypes.c_int),
            ("size", ctypes.c_int),
            ("data", ctypes.c_void_p),
        ]

    total = 0
    for arr in (WeightArray * 1000).in_dll(lib, "rnnoise_arrays"):
        if arr.name is None:
            break
        name = arr.name.decode()
        if name.endswith("_weights_float") or (name.endswith("_bias") and not name.endswith("_subias")):
            total += arr.size // 4
    return total


def _noisereduce(stationary: bool) -> Method:
    import noisereduce

    def run(x: np.ndarray) -> np.ndarray:
        return np.asarray(noisereduce.reduce_noise(y=x, sr=RATE, stationary=stationary, n_jobs=1), np.float32)

    mode = "stationary" if stationary else "non-stationary"
    return Method(f"noisereduce ({mode})", run, 0, "spectral gating, noise estimated from the input")


def onnx_params(path: Path) -> int:
    """Number of floating-point values in an ONNX model's initializers (integer shape constants left out)."""
    import onnx

    floats = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16}
    model = onnx.load(str(path))
    return int(sum(np.prod(t.dims, dtype=np.int64) for t in model.graph.initializer if t.data_type in floats))


def _stage(name: str, label: str) -> Method | None:
    """A registered denoise stage run through ``denoise_array``; None (with a note) until it exists."""
    try:
        from edge_sdk import stages
        from edge_sdk.stages.denoise import TINY_MODEL, denoise_array

        note = "denoise_array; onnxruntime threads=1"
        try:
            stage = stages.make("denoise", name, threads=1)
        except Exception:  # a stage without a threads option still runs, but the doc must say so
            stage = stages.make("denoise", name)
            note = "denoise_array; stage took no threads option (onnxruntime default)"
    except Exception as exc:  # the stage or its model may not have landed yet: say so and go on
        print(f"note: skipping {label}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return None
    from edge_sdk import zoo
    from edge_sdk.manifest import sha256_file

    path = TINY_MODEL if name == "tiny" else zoo.cached("nsnet2-16k")
    params = onnx_params(path) if path and path.exists() else None
    if path and path.exists():  # the doc names the exact model file measured: the tiny one is retrained often
        note += f"; model sha256 {sha256_file(path)[:12]}"

    def run(x: np.ndarray) -> np.ndarray:
        stage.reset()
        return np.asarray(denoise_array(stage, x), np.float32)

    return Method(label, run, params, note)


BUILDERS: dict[str, Callable[[], Method | None]] = {
    "noisy": lambda: Method("noisy input", lambda x: x, 0),
    "tiny": lambda: _stage("tiny", "edge-sdk tiny denoiser"),
    "nsnet2": lambda: _stage("nsnet2", "NSNet2 (DNS 2021 baseline)"),
    "rnnoise": _rnnoise,
    "nr-stationary": lambda: _noisereduce(True),
    "nr-nonstationary": lambda: _noisereduce(False),
}


def align(y: np.ndarray, noisy: np.ndarray, max_lag: int = MAX_LAG) -> tuple[np.ndarray, int]:
    """``y`` shifted by the lag in ±``max_lag`` samples that maximises its cross-correlation with the noisy
    input, cut or zero-padded to the input's length. The same rule for every method, the baseline included."""
    y = np.asarray(y, np.float32)
    xc = correlate(y, noisy, mode="full", method="fft")  # index k + len(noisy) - 1 holds sum y[n+k] x[n]
    zero = len(noisy) - 1
    lo, hi = max(0, zero - max_lag), min(len(xc), zero + max_lag + 1)
    lag = int(np.argmax(xc[lo:hi])) + lo - zero
    shifted = y[lag:] if lag >= 0 else np.concatenate([np.zeros(-lag, np.float32), y])
    out = np.zeros(len(noisy), np.float32)
    out[: min(len(noisy), len(shifted))] = shifted[: len(noisy)]
    return out, lag


def score(mix: corpus.Mixture, method: Method) -> Score:
    """Run ``method`` on one mixture (timed), align its output and score it."""
    from pesq import pesq
    from pystoi import stoi

    start = time.perf_counter()
    y = method.run(mix.noisy)
    method.seconds += time.perf_counter() - start
    method.audio_seconds += len(mix.noisy) / RATE
    y, lag = align(y, mix.noisy)
    s = Score(
        mix.clip.name,
        mix.clip.corpus,
        mix.noise,
        mix.snr,
        method.name,
        lag,
        si_sdr(y, mix.clean),
        float(stoi(mix.clean, y, RATE, extended=False)),
    )
    try:
        s.pesq = float(pesq(RATE, mix.clean, y, "wb"))
    except Exception as exc:  # PESQ refuses silent or too-short signals: counted and reported, not hidden
        s.pesq_error = type(exc).__name__
    return s


def clean_si_sdr(clips: list[corpus.Clip], method: Method) -> float:
    """Mean SI-SDR of ``method`` fed clean speech (no noise, untimed), aligned as usual: the distortion the
    method adds by itself, a ceiling on what it can score on noisy input."""
    return mean([si_sdr(align(method.run(c.audio), c.audio)[0], c.audio) for c in clips])


def mean(values: list[float]) -> float:
    """Mean of a list (nan when empty)."""
    return float(np.mean(values)) if values else float("nan")


def summarize(scores: list[Score], methods: list[Method]) -> dict:
    """Means per method overall (the main noises, ``corpus.NOISES``), on the held-out noises
    (``corpus.HELD_OUT_NOISES``) apart, per corpus (main noises), per noise and per noise × SNR, with gains
    paired against the noisy input on the same mixture. PESQ means use only mixtures where PESQ scored every
    method."""
    key = lambda s: (s.clip, s.noise, s.snr)  # noqa: E731
    base = {key(s): s for s in scores if s.method == "noisy input"}
    pesq_ok = {k for k in base if all(s.pesq is not None for s in scores if key(s) == k)}
    out: dict = {"mixtures": len(base), "pesq_scored": len(pesq_ok), "methods": {}}
    out["noises"] = len({s.noise for s in scores if s.noise in corpus.NOISES})
    out["held_out_noises"] = sorted({s.noise for s in scores if s.noise in corpus.HELD_OUT_NOISES})
    out["held_out_mixtures"] = sum(1 for k in base if k[1] in corpus.HELD_OUT_NOISES)
    out["pesq_skipped"] = sorted({f"{key(s)}: {s.method}: {s.pesq_error}" for s in scores if s.pesq_error})

    def cell(rows: list[Score]) -> dict[str, float]:
        p = [s for s in rows if key(s) in pesq_ok]
        return {
            "si_sdr": mean([s.si_sdr for s in rows]),
            "d_si_sdr": mean([s.si_sdr - base[key(s)].si_sdr for s in rows]),
            "pesq": mean([s.pesq for s in p if s.pesq is not None]),
            "d_pesq": mean([s.pesq - base[key(s)].pesq for s in p if s.pesq is not None]),  # type: ignore[operator]
            "stoi": mean([s.stoi for s in rows]),
            "d_stoi": mean([s.stoi - base[key(s)].stoi for s in rows]),
            "n": len(rows),
        }

    for m in methods:
        every = [s for s in scores if s.method == m.name and key(s) in base]
        rows = [s for s in every if s.noise in corpus.NOISES]
        held = [s for s in every if s.noise in corpus.HELD_OUT_NOISES]
        lags = np.array([s.lag for s in rows])
        out["methods"][m.name] = {
            "params": m.params,
            "rtf": m.rtf,
            "note": m.note,
            "lag_median_ms": float(np.median(lags)) * 1000 / RATE if len(lags) else None,
            "lag_spread_ms": float(np.percentile(lags, 95) - np.percentile(lags, 5)) * 1000 / RATE
            if len(lags)
            else None,
            "overall": cell(rows),
            "held_out": cell(held),
            "noise": {
                n: cell([s for s in every if s.noise == n])
                for n in corpus.NOISES + corpus.HELD_OUT_NOISES
                if any(s.noise == n for s in every)
            },
            "corpus": {c: cell([s for s in rows if s.corpus == c]) for c in sorted({s.corpus for s in rows})},
            "noise_snr": {
                f"{n} {snr} dB": cell([s for s in every if s.noise == n and s.snr == snr])
                for n in corpus.NOISES + corpus.HELD_OUT_NOISES
                for snr in corpus.SNRS
                if any(s.noise == n and s.snr == snr for s in every)
            },
        }
    return out


def limit_threads() -> None:
    """One thread for BLAS, torch and onnxruntime's default, so the RTF is a single core's."""
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None, help="first N utterances only (quick runs)")
    ap.add_argument("--asterisk", type=int, default=40, help="held-out Asterisk prompts in the set")
    ap.add_argument("--methods", nargs="+", default=list(BUILDERS), choices=list(BUILDERS))
    every_noise = list(corpus.NOISES + corpus.HELD_OUT_NOISES)
    ap.add_argument("--noises", nargs="+", default=every_noise, choices=every_noise)
    ap.add_argument("--json", action="store_true", help="print the summary and every score as JSON")
    ap.add_argument("--out", type=Path, help="write the markdown table here")
    args = ap.parse_args()
    limit_threads()
    load = os.getloadavg()[0]
    started = time.perf_counter()
    methods = [m for m in (BUILDERS[k]() for k in dict.fromkeys(["noisy", *args.methods])) if m is not None]
    clips = corpus.evaluation_clips(args.asterisk, args.limit)
    mixes = corpus.mixtures(clips, corpus.NoiseBank(), tuple(args.noises))
    scores: list[Score] = []
    for i, mix in enumerate(mixes):
        scores += [score(mix, m) for m in methods]
        if (i + 1) % 20 == 0 or i + 1 == len(mixes):
            print(f"{i + 1}/{len(mixes)} mixtures, {time.perf_counter() - started:.0f} s", file=sys.stderr)
    summary = summarize(scores, methods)
    for m in methods:
        summary["methods"][m.name]["clean_si_sdr"] = clean_si_sdr(clips, m)
    doc = to_markdown(summary, clips, time.perf_counter() - started, load)
    if args.out:
        args.out.write_text(doc)
    if args.json:
        print(json.dumps({"summary": summary, "scores": [s.__dict__ for s in scores]}, indent=1))
    else:
        print(doc)


if __name__ == "__main__":
    main()
