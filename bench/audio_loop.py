"""The live audio loop's cost: real speech in noise through denoiser + VAD on one thread.

1. ``--minutes`` of audio replayed as fast as possible: the real-time factor (seconds of compute per
   second of audio) of each stage and of the whole chain. Target: total RTF <= 0.05 with the tiny
   denoiser, i.e. 95 % of one core left for the rest of the device's work.
2. ``--paced-seconds`` of it replayed in real time (a WavFile paced like a microphone): overruns, the
   blocks a source would have had to drop because the loop fell behind. Target: 0.

Speech: the LibriVox utterances of Debian's pocketsphinx-testdata (the bundled clip if absent), with
0.5-1.5 s pauses between them, repeated to length, mixed with pink noise at ``--snr`` dB. Sessions run
with threads=1. Run:

    python bench/audio_loop.py --denoise tiny --vad silero --minutes 10 --paced-seconds 60
"""

from __future__ import annotations

import argparse
import tempfile
import wave
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk import console
from edge_sdk.audio_loop import AudioLoop, LoopSummary
from edge_sdk.audio_mix import mix_at_snr, pink_noise
from edge_sdk.demo import read_wav
from edge_sdk.devices.wav_file import WavFile
from edge_sdk.stages import names_of
from edge_sdk.stages.chain import audio_stages

RATE = 16000
LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
TARGET_RTF = 0.05


def speech(seconds: float, snr: float, seed: int = 0) -> tuple[np.ndarray, str]:
    """``seconds`` of real speech with pauses, in pink noise at ``snr`` dB; and where the speech came from."""
    rng = np.random.default_rng(seed)
    files = sorted(LIBRIVOX.glob("*.wav"))
    if files:
        clips, origin = [read_wav(f) for f in files], f"{len(files)} LibriVox utterances from {LIBRIVOX}"
    else:
        sample = resources.files("edge_sdk") / "samples" / "librivox-sense-and-sensibility.wav"
        with resources.as_file(sample) as p:
            clips, origin = [read_wav(p)], "the bundled LibriVox clip"
    n = int(seconds * RATE)
    parts, total = [], 0
    while total < n:
        for clip in clips:
            pause = np.zeros(int(rng.uniform(0.5, 1.5) * RATE), np.float32)
            parts += [clip, pause]
            total += len(clip) + len(pause)
    clean = np.concatenate(parts)[:n]
    return mix_at_snr(clean, pink_noise(n, rng), snr)[0], f"{origin}, pink noise at {snr:g} dB SNR"


def write_wav(path: Path, x: np.ndarray) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes((np.clip(x, -1, 1) * 32767).round().astype("<i2").tobytes())


def run_once(
    path: Path, args: argparse.Namespace, *, realtime: bool, seconds: float | None = None
) -> LoopSummary:
    """One pass of the loop over the file with a fresh chain of stages."""
    stages, notes = audio_stages(denoise=args.denoise, vad=args.vad, sample_rate=RATE, threads=1)
    source = WavFile(path, sample_rate=RATE, block_size=args.block_size, realtime=realtime)
    return AudioLoop(source, stages, notes=notes).run(max_seconds=seconds)


def main(argv: list[str] | None = None) -> int:
    denoisers = names_of("denoise")
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--denoise", default="tiny" if "tiny" in denoisers else "none", choices=[*denoisers, "none"]
    )
    p.add_argument("--vad", default="silero", choices=[*names_of("vad"), "none"])
    p.add_argument("--minutes", type=float, default=10.0, help="audio for the as-fast-as-possible pass")
    p.add_argument("--paced-seconds", type=float, default=60.0, help="audio for the real-time pass (0: skip)")
    p.add_argument("--snr", type=float, default=10.0)
    p.add_argument("--block-size", type=int, default=320)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    console.setup_logging(verbose=False, quiet=args.json)

    audio, origin = speech(args.minutes * 60, args.snr)
    result: dict[str, Any] = {"speech": origin, "denoise": args.denoise, "vad": args.vad, "threads": 1}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "speech.wav"
        write_wav(path, audio)
        fast = run_once(path, args, realtime=False)
        result["fast"] = fast.to_dict()
        result["total_rtf"] = fast.total.rtf
        result["meets_rtf_target"] = fast.total.rtf <= TARGET_RTF
        if args.paced_seconds > 0:
            paced = run_once(path, args, realtime=True, seconds=args.paced_seconds)
            result["paced"] = paced.to_dict()
            result["paced_overruns"] = paced.overruns
    if args.json:
        console.emit_json(result)
        return 0
    console.out.print(f"speech: {origin}; denoise {args.denoise}, vad {args.vad}, threads 1")
    console.out.print(fast.headline(), markup=False)
    console.table(f"as fast as possible, {args.minutes:g} min", LoopSummary.COLUMNS, fast.rows())
    verdict = "meets" if result["meets_rtf_target"] else "MISSES"
    console.out.print(f"total RTF {fast.total.rtf:.4f}: {verdict} the target <= {TARGET_RTF}")
    for note in fast.notes:
        console.out.print(f"note: {note}")
    if "paced" in result:
        console.out.print(paced.headline(), markup=False)
        console.table(f"paced in real time, {args.paced_seconds:g} s", LoopSummary.COLUMNS, paced.rows())
        console.out.print(f"overruns in real time: {paced.overruns} (target 0)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
