"""The main job on bundled data: pull Silero VAD, convert it to every installed format × precision, and
compare them on a real speech clip (size, parity, latency, speech decisions against the original)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.converters import ConversionFailed, all_targets, convert, unavailable_formats
from edge_sdk.converters.targets import Progress
from edge_sdk.errors import BadInputError
from edge_sdk.runtimes import load
from edge_sdk.stages.vad import SILERO_CHUNK, SILERO_CONTEXT, stream_vad

MODEL = "silero-vad-op18"
CLIP = "librivox-sense-and-sensibility.wav"
RATE = 16000
CHUNK = SILERO_CHUNK[RATE]  # samples per step (32 ms), as Silero VAD v5+ expects
CONTEXT = SILERO_CONTEXT[RATE]  # trailing samples of the previous chunk the model sees in front of it
THRESHOLD = 0.5
COLUMNS = ["target", "backend", "size", "prob max err", "cosine", "mean latency", "speech", "agree"]


def read_wav(path: Path) -> np.ndarray:
    """A 16 kHz WAV → float32 mono in [-1, 1] (the devices' WAV reader, held to the models' rate)."""
    from edge_sdk.devices.sources.wav_file import read_wav as read_any

    audio, rate, _ = read_any(path)
    if rate != RATE:
        raise BadInputError(f"{path}: need {RATE} Hz audio, the file is {rate} Hz")
    return audio


def run(out: Path, progress: Progress | None = None) -> dict[str, Any]:
    """Pull, convert to every installed format × precision, and compare; returns the table rows and
    notes (the CLI renders them). Formats whose extra is not installed are skipped, and said so."""
    from edge_sdk import zoo

    clip = resources.files("edge_sdk") / "samples" / CLIP
    with resources.as_file(clip) as clip_path:
        audio = read_wav(clip_path)
    source = zoo.resolve(MODEL)
    reference_probs, steps, _ = stream_vad(load(source, threads=1), audio)
    reference = reference_probs > THRESHOLD
    skipped = unavailable_formats()
    notes = [f"{fmt}: skipped, {why}" for fmt, why in skipped.items()]
    notes.append(
        "int4-weights: not tried; it compresses MatMul/Gemm weights, and Silero VAD's work is convolutions "
        "and an LSTM (see docs/compression.md for a transformer)"
    )
    try:
        artifacts = convert(
            f"zoo:{MODEL}",
            [t for t in all_targets() if t.split(":")[0] not in skipped and not t.endswith(":int4-weights")],
            out=out,
            name=MODEL,
            calibration=steps[::2],
            parity_data=steps,
            parity_samples=len(steps),
            fixed_inputs={"sr": RATE},
            # One stream, fixed chunks: static shapes let the simplifier fold the shape-driven If nodes
            # that OpenVINO's and onnx2tf's importers cannot take.
            input_shapes={"input": [1, CONTEXT + CHUNK], "state": [2, 1, 128]},
            progress=progress,
        )
    except ConversionFailed as e:
        artifacts = e.artifacts
        # The first line says what failed and what to do; converter logs follow it.
        notes += [f"{t} failed: {msg.splitlines()[0][:400]}" for t, msg in e.failures.items()]
    rows = []
    for art in artifacts:
        session = load(art.path, threads=1)
        probs, _, latency = stream_vad(session, audio)
        speech = probs > THRESHOLD
        p = art.parity or {}
        prob_error = p["outputs"]["output"]["max_abs_error"] if p else None
        target = art.recipe["target"]
        backend = f"{session.selection.backend}/{session.selection.accelerator}"
        rows.append(
            {
                "target": target,
                "backend": backend,
                "path": str(art.path),
                "size": art.size,
                "max_abs_error": p.get("max_abs_error"),
                "probability_max_abs_error": prob_error,
                "cosine_similarity": p.get("cosine_similarity"),
                "mean_latency_ms": latency * 1e3,
                "speech_fraction": float(speech.mean()),
                "agreement_vs_fp32": float((speech == reference).mean()),
                "cells": [
                    target,
                    backend,
                    f"{art.size / 1024:.0f} KiB",
                    f"{prob_error:.2e}" if prob_error is not None else "",
                    f"{p.get('cosine_similarity', 0):.5f}",
                    f"{latency * 1e3:.3f} ms",
                    f"{speech.mean():.0%}",
                    f"{(speech == reference).mean():.1%}",
                ],
            }
        )
    for row in rows:
        if row["agreement_vs_fp32"] < 0.95:
            notes.append(
                f"{row['target']} changes {1 - row['agreement_vs_fp32']:.0%} of the speech decisions: "
                f"quantising every layer of this model is too coarse; some layers must stay in float (see "
                f"'--option exclude_nodes=...'; accuracy-aware quantisation that finds them is planned)"
            )
    notes.append(
        "parity: 'prob max err' is the speech probability's max abs error vs the original model, 'cosine' "
        "the lowest over both outputs (probability and LSTM state), "
        f"on all {len(steps)} steps of the clip streamed through the original model; 'speech' is the "
        f"share of chunks with probability > {THRESHOLD}; 'agree' compares with the original model"
    )
    return {
        "model": MODEL,
        "clip": CLIP,
        "seconds": len(audio) / RATE,
        "chunks": len(steps),
        "chunk_ms": CHUNK * 1000 // RATE,
        "rows": rows,
        "notes": notes,
    }
