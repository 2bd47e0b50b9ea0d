"""A Whisper model folder the recogniser runs: a CTranslate2 Whisper rebuilt as ONNX (an encoder that
encodes only the audio there is, and a decoder with a KV cache), converted by the SDK's own targets, with
the tokenizer and the decoding settings beside the artifacts.

Layout of the folder (``whisper.json`` is written last, so a folder that has it is complete)::

    whisper.json          kind, source, special tokens, suppressed tokens, languages, artifacts by target
    vocabulary.txt        one token per line
    encoder/<artifact>/   one artifact per target (artifact.json, model file, parity, reference set)
    decoder/<artifact>/

``build_whisper`` converts once; ``whisper_model("zoo:whisper-tiny.en")`` pulls the model and keeps the
built folder in the cache under ``asr/``, keyed by the model's sha256, the targets and ``BUILD``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.errors import BadInputError

log = logging.getLogger("edge_sdk.asr.whisper_build")

MODEL_FILE = "whisper.json"
VOCABULARY = "vocabulary.txt"
KIND = "whisper"
DEFAULT_TARGETS = ("onnx:fp32", "onnx:int8-dynamic")
BUILD = 5
"""Bumped whenever the graphs or the folder layout change, so a cached folder of an older build is rebuilt."""
PARITY_CLIP = "librivox-sense-and-sensibility.wav"
PARITY_CLIPS = ((4.0, "audio"), (12.0, "audio"), (4.0, "full"))  # lengths and windows the encoder sees
PARITY_STEPS = 6  # decoder calls recorded per clip: the prompt, then single tokens with a growing cache
MIN_COSINE = 0.95
"""A converted half whose outputs' cosine similarity to fp32 on the parity speech is below this is not
offered: dynamic int8 keeps 0.98-0.998 on tiny.en and base, static int8 fell to 0.3-0.8 and lost most
words (bench/asr_quality.py)."""


def _sample_audio() -> np.ndarray:
    from edge_sdk.devices.sources.wav_file import read_wav

    with resources.as_file(resources.files("edge_sdk") / "samples" / PARITY_CLIP) as p:
        return read_wav(Path(p))[0]


def _parity_data(
    encoder: Path, decoder: Path, prompt: list[int], eot: int
) -> tuple[list[dict[str, np.ndarray]], list[dict[str, np.ndarray]]]:
    """Real inputs for both graphs: the bundled speech clip's encoder inputs at two lengths and in both
    windows, and the decoder calls a greedy transcription of each makes (so parity is measured on the
    cache sizes decoding produces)."""
    import onnxruntime as ort

    from edge_sdk.asr.whisper import encoder_inputs

    audio = _sample_audio()
    enc = ort.InferenceSession(str(encoder), providers=["CPUExecutionProvider"])
    dec = ort.InferenceSession(str(decoder), providers=["CPUExecutionProvider"])
    enc_feeds, dec_feeds = [], []
    for seconds, window in PARITY_CLIPS:
        feed = encoder_inputs(audio[: int(seconds * 16000)], window)
        enc_feeds.append(feed)
        cross_k, cross_v = enc.run(None, feed)
        past = np.zeros((*cross_k.shape[:3], 0, cross_k.shape[4]), np.float32)
        feed = {"tokens": np.array([prompt], np.int64), "past_k": past, "past_v": past}
        for _ in range(PARITY_STEPS):
            feed = {**feed, "cross_k": cross_k, "cross_v": cross_v}
            dec_feeds.append(feed)
            logits, present_k, present_v = dec.run(None, feed)
            token = int(np.argmax(logits[0, :eot]))
            feed = {"tokens": np.array([[token]], np.int64), "past_k": present_k, "past_v": present_v}
    return enc_feeds, dec_feeds


def _settings(source: Path, tokenizer: Any) -> dict[str, Any]:
    """Special tokens and suppression lists: CTranslate2's config.json when the folder has one, else
    Whisper's own defaults (no non-speech list, blank and end-of-text held back at the first step)."""
    config: dict[str, Any] = {}
    cfg = source / "config.json"
    if cfg.is_file():
        config = json.loads(cfg.read_text(encoding="utf-8"))
    blank = tokenizer.id("Ġ")
    return {
        "eot": tokenizer.eot,
        "sot": tokenizer.sot,
        "no_timestamps": tokenizer.no_timestamps,
        "transcribe": tokenizer.id("<|transcribe|>"),
        "multilingual": tokenizer.multilingual,
        "languages": tokenizer.languages,
        "suppress": sorted(int(t) for t in config.get("suppress_ids", [])),
        "suppress_begin": sorted(int(t) for t in config.get("suppress_ids_begin", [blank, tokenizer.eot])),
    }


def build_whisper(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    targets: Iterable[str] = DEFAULT_TARGETS,
    *,
    name: str | None = None,
    cache: bool = True,
) -> Path:
    """Rebuild the CTranslate2 Whisper at ``source`` (its folder, holding ``model.bin`` and a vocabulary)
    as ONNX and convert it to each of ``targets``; write the model folder ``out`` and return it.

    Every target's parity against the fp32 graphs is measured on real speech (the bundled LibriVox clip).
    A target that fails to convert, or whose outputs land further from fp32 than ``MIN_COSINE``, is left
    out of the folder and named with the reason in ``whisper.json``'s ``failed``; when none is left,
    ConversionFailed is raised and nothing is written.
    """
    import onnx

    from edge_sdk.asr.tokenizer import WhisperTokenizer
    from edge_sdk.audio.whisper_onnx import EMBEDDING, build_asr
    from edge_sdk.converters import convert
    from edge_sdk.converters.make import ConversionFailed
    from edge_sdk.converters.sources.ctranslate2 import read_ct2
    from edge_sdk.manifest import staging_dir

    folder = Path(source)
    folder = folder.parent if folder.is_file() else folder
    targets = list(targets)
    if not targets:
        raise BadInputError("build_whisper needs at least one target, e.g. onnx:fp32")
    tokenizer = WhisperTokenizer.from_folder(folder)
    ct2 = read_ct2(folder)
    settings = _settings(folder, tokenizer)
    prompt = [tokenizer.sot, tokenizer.no_timestamps]
    if tokenizer.multilingual:
        prompt = [tokenizer.sot, tokenizer.id("<|en|>"), settings["transcribe"], tokenizer.no_timestamps]
    final = Path(out)
    with staging_dir(final) as tmp, tempfile.TemporaryDirectory(prefix="whisper-onnx-") as work:
        graphs = {}
        for part, model in zip(("encoder", "decoder"), build_asr(folder), strict=True):
            graphs[part] = Path(work) / f"{part}.onnx"
            onnx.save(model, graphs[part])
        enc_feeds, dec_feeds = _parity_data(graphs["encoder"], graphs["decoder"], prompt, tokenizer.eot)
        artifacts: dict[str, dict[str, str]] = {}
        failed: dict[str, str] = {}
        # Static int8 keeps the decoder's token embedding in float: a lookup table, not a product, whose
        # per-channel quantisation onnxruntime cannot run on a gathered row. Dynamic int8 quantises it well.
        static = [t for t in targets if t.split(":")[-1] == "int8"]
        groups = [(static, {"exclude_nodes": [EMBEDDING]}), ([t for t in targets if t not in static], None)]
        for part, feeds in (("encoder", enc_feeds), ("decoder", dec_feeds)):
            for group, options in groups:
                if not group:
                    continue
                try:
                    made = convert(
                        graphs[part],
                        group,
                        out=tmp / part,
                        name=part,
                        parity_data=feeds,
                        calibration=feeds,  # for the targets that calibrate (static int8): real speech
                        options=options if part == "decoder" else None,
                        cache=cache,
                    )
                except ConversionFailed as e:
                    made = list(e.artifacts)
                    failed.update({f"{part} {t}": str(err).splitlines()[0] for t, err in e.failures.items()})
                for target, art in zip(_targets_of(made), made, strict=True):
                    cosine = float((art.parity or {}).get("cosine_similarity") or 0.0)
                    if cosine < MIN_COSINE:
                        failed[f"{part} {target}"] = (
                            f"outputs too far from fp32 on real speech (cosine {cosine:.3f} < {MIN_COSINE}): "
                            "this quantisation loses Whisper's words; use onnx:int8-dynamic"
                        )
                        shutil.rmtree(art.path, ignore_errors=True)
                        continue
                    artifacts.setdefault(target, {})[part] = f"{part}/{Path(art.path).name}"
        complete = {t: parts for t, parts in artifacts.items() if set(parts) == {"encoder", "decoder"}}
        if not complete:
            raise ConversionFailed([], failed)
        (tmp / VOCABULARY).write_text("\n".join(tokenizer.tokens) + "\n", encoding="utf-8")
        record = {
            "kind": KIND,
            "build": BUILD,
            "name": name or folder.name,
            "source": {"path": folder.name, "model_sha256": ct2.sha256, "spec": ct2.spec},
            "n_mels": int(ct2.variables["encoder/conv1/weight"].shape[1]),
            "max_positions": int(ct2.variables["encoder/position_encodings/encodings"].shape[0]),
            "max_tokens": int(ct2.variables["decoder/position_encodings/encodings"].shape[0]),
            **settings,
            "artifacts": complete,
            "failed": failed,
        }
        (tmp / MODEL_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    log.info("Whisper model %s built into %s: %s", folder.name, final, ", ".join(complete))
    return final


def _targets_of(artifacts: Sequence[Any]) -> list[str]:
    return [art.recipe.get("target", f"{art.format}:{art.precision}") for art in artifacts]


def whisper_model(
    model: str | os.PathLike[str],
    targets: Iterable[str] = DEFAULT_TARGETS,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """The model folder of ``model``: a built folder (has ``whisper.json``) as it is; a CTranslate2
    Whisper folder or ``zoo:NAME`` built once into the cache and reused while the model, the targets
    and ``BUILD`` are the same."""
    from edge_sdk import zoo

    text = os.fspath(model)
    if text.startswith("zoo:"):
        source = zoo.pull(text.removeprefix("zoo:"), cache_dir=cache_dir).parent
    else:
        source = Path(text)
        if (source / MODEL_FILE).is_file():
            return source
        if source.is_file():
            source = source.parent
        if not (source / "model.bin").is_file():
            raise BadInputError(
                f"{model}: not a Whisper model: expected a folder with {MODEL_FILE} (built by edge-sdk) or a "
                "CTranslate2 Whisper folder (model.bin and vocabulary.txt/vocabulary.json/tokenizer.json), "
                "or zoo:whisper-tiny.en"
            )
    from edge_sdk.manifest import sha256_file

    targets = sorted(targets)
    # One folder per model and build; another folder only for targets no built folder has yet (or tried).
    model_key = hashlib.sha256(json.dumps([sha256_file(source / "model.bin"), BUILD]).encode()).hexdigest()
    root = zoo.cache_root(cache_dir) / "asr"
    for folder in sorted(root.glob(f"{source.name}-{model_key[:12]}-*")):
        record = folder / MODEL_FILE
        if record.is_file():
            built = json.loads(record.read_text(encoding="utf-8"))
            tried = set(built.get("artifacts", {})) | {k.split(" ", 1)[-1] for k in built.get("failed", {})}
            if set(targets) <= tried:
                return folder
    key = hashlib.sha256(json.dumps(targets).encode()).hexdigest()[:8]
    built = root / f"{source.name}-{model_key[:12]}-{key}"
    log.info("building %s for %s (once; kept in %s)", model, ", ".join(targets), built)
    return build_whisper(source, built, targets, name=text.removeprefix("zoo:"))
