"""The live audio loop's cost: real speech in noise through denoiser + VAD + keyword spotter on one thread.

1. ``--minutes`` of audio replayed as fast as possible: the real-time factor (seconds of compute per
   second of audio) of each stage and of the whole chain. Target: total RTF <= 0.05 with the tiny
   denoiser, i.e. 95 % of one core left for the rest of the device's work.
2. ``--paced-seconds`` of it replayed in real time (a WavFile paced like a microphone): overruns, the
   blocks a source would have had to drop because the loop fell behind. Target: 0.

Speech: the LibriVox utterances of Debian's pocketsphinx-testdata (the bundled clip if absent), with
0.5-1.5 s pauses between them, repeated to length, mixed with pink noise at ``--snr`` dB. Sessions run
with threads=1. The keyword spotter (``--kws``, by default ``zoo:commands`` when the package bundles it,
else left out with a note; ``--kws none`` drops it) classifies a 1 s window every 100 ms whatever it
hears; ``--kws-model`` runs another file for it, e.g. an int8 conversion of the same model (its labels and
front end are taken from the ``--kws`` model when the file has none). Run:

    python bench/audio_loop.py --denoise tiny --vad silero --minutes 10 --paced-seconds 60
    python bench/audio_loop.py --kws zoo:commands --kws-model artifacts/commands-onnx-int8/model.onnx
"""

from __future__ import annotations

import argparse
import tempfile
import wave
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk import zoo
from edge_sdk.audio.mix import mix_at_snr, pink_noise
from edge_sdk.cli import console
from edge_sdk.demo.formats import read_wav
from edge_sdk.devices.sources.wav_file import WavFile
from edge_sdk.live.audio import AudioLoop, LoopSummary
from edge_sdk.stages import names_of
from edge_sdk.stages.chain import audio_stages

RATE = 16000
LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
TARGET_RTF = 0.05
DEFAULT_KWS = "zoo:commands"


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


def kws_model(kws: str | None, model: str | None, tmp: Path) -> tuple[str, list[str]]:
    """The model file the spotter runs ("none" to leave it out) and notes: ``kws`` (None: ``zoo:commands``
    when bundled), or ``model`` with the ``kws`` model's metadata copied in when it has none."""
    notes: list[str] = []
    if kws is None:
        kws = DEFAULT_KWS if zoo.bundled(DEFAULT_KWS) else "none"
        if kws == "none" and model is None:
            notes.append(
                f"{DEFAULT_KWS} is not bundled here: the keyword spotter is left out (--kws PATH adds one)"
            )
    if model is None:
        return kws, notes
    import onnx

    from edge_sdk.stages.kws import META_LABELS

    path = Path(model)
    path = path / "model.onnx" if path.is_dir() else path
    m = onnx.load(str(path))
    if any(p.key == META_LABELS for p in m.metadata_props):
        return str(path), notes
    if kws == "none":
        raise SystemExit(f"--kws-model {model} has no KWS metadata; name the model it came from with --kws")
    source = zoo.resolve(kws) if kws.startswith("zoo:") else Path(kws)
    source = source / "model.onnx" if source.is_dir() else source
    meta = {p.key: p.value for p in onnx.load(str(source)).metadata_props}
    for key, value in meta.items():
        if key.startswith("edge_sdk.kws."):
            m.metadata_props.add(key=key, value=value)
    copy = tmp / "kws-model.onnx"
    onnx.save(m, str(copy))
    notes.append(f"--kws-model {model}: labels and front end taken from {kws}")
    return str(copy), notes


def run_once(
    path: Path, args: argparse.Namespace, *, realtime: bool, seconds: float | None = None
) -> LoopSummary:
    """One pass of the loop over the file with a fresh chain of stages."""
    stages, notes = audio_stages(
        denoise=args.denoise, vad=args.vad, kws=args.kws_path, sample_rate=RATE, threads=1
    )
    notes = [*args.kws_notes, *notes]
    source = WavFile(path, sample_rate=RATE, block_size=args.block_size, realtime=realtime)
    return AudioLoop(source, stages, notes=notes).run(max_seconds=seconds)


def main(argv: list[str] | None = None) -> int:
    denoisers = names_of("denoise")
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--denoise", default="tiny" if "tiny" in denoisers else "none", choices=[*denoisers, "none"]
    )
    p.add_argument("--vad", default="silero", choices=[*names_of("vad"), "none"])
    p.add_argument(
        "--kws",
        default=None,
        help=f"keyword model: zoo:NAME, an .onnx path or none (default {DEFAULT_KWS} if bundled, else none)",
    )
    p.add_argument("--kws-model", default=None, help="the ONNX the spotter runs instead (e.g. int8)")
    p.add_argument("--minutes", type=float, default=10.0, help="audio for the as-fast-as-possible pass")
    p.add_argument("--paced-seconds", type=float, default=60.0, help="audio for the real-time pass (0: skip)")
    p.add_argument("--snr", type=float, default=10.0)
    p.add_argument("--block-size", type=int, default=320)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    console.setup_logging(verbose=False, quiet=args.json)

    audio, origin = speech(args.minutes * 60, args.snr)
    with tempfile.TemporaryDirectory() as tmp:
        args.kws_path, args.kws_notes = kws_model(args.kws, args.kws_model, Path(tmp))
        result: dict[str, Any] = {
            "speech": origin,
            "denoise": args.denoise,
            "vad": args.vad,
            "kws": args.kws_path if args.kws_model is None else args.kws_model,
            "threads": 1,
        }
        path = Path(tmp) / "speech.wav"
        write_wav(path, audio)
        fast = run_once(path, args, realtime=False)
        result["fast"] = fast.to_dict()
        result["total_rtf"] = fast.total.rtf
        result["stage_rtf"] = {st.name: st.rtf for st in fast.stages}
        result["meets_rtf_target"] = fast.total.rtf <= TARGET_RTF
        if args.paced_seconds > 0:
            paced = run_once(path, args, realtime=True, seconds=args.paced_seconds)
            result["paced"] = paced.to_dict()
            result["paced_overruns"] = paced.overruns
    if args.json:
        console.emit_json(result)
        return 0
    console.out.print(
        f"speech: {origin}; denoise {args.denoise}, vad {args.vad}, kws {result['kws']}, threads 1"
    )
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
