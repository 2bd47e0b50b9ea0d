"""The demo's keyword-spotting part: the bundled commands clip through denoiser → VAD → keyword spotter,
as on a device, with every detection scored against where the keywords really are.

The clip (``samples/commands-demo.wav``, made by ``python -m tools.kws_demo_clip``) is a
dozen short commands by two synthetic voices the keyword model never trained on, in pink noise and
babble at 10 dB SNR; ``samples/commands-demo.json`` holds each keyword's start and end. A detection is a
hit when it names a spoken keyword whose time it overlaps and comes at most 1.5 s after the word ended
(``stages.kws.detection_latency``); any other detection is a false alarm; a keyword nothing detected is a
miss. Keywords the model does not know are listed, not scored.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path
from typing import Any

from edge_sdk.devices.sources.wav_file import WavFile
from edge_sdk.errors import EdgeSDKError
from edge_sdk.live.audio import AudioLoop, LoopSummary
from edge_sdk.stages.base import Event, KeywordDetected
from edge_sdk.stages.chain import audio_stages
from edge_sdk.stages.kws import KeywordSpotter, detection_latency

CLIP = "commands-demo.wav"
TRUTH = "commands-demo.json"
MODEL = "zoo:commands"
COLUMNS = ["time", "word", "score", "window", "verdict"]


def _sample(name: str) -> Path:
    with resources.as_file(resources.files("edge_sdk") / "samples" / name) as p:
        return Path(p)


def truth() -> dict[str, Any]:
    """The clip's truth: ``keywords`` (word, start, end in seconds, in order), utterances, voices."""
    return json.loads(_sample(TRUTH).read_text(encoding="utf-8"))


def model_missing(model: str | os.PathLike[str]) -> str | None:
    """Why ``model`` cannot be used here (a zoo model that is not bundled, a path that does not exist),
    or None. Only bundled zoo models are looked for: the demo never pulls a keyword model."""
    from edge_sdk import zoo

    text = os.fspath(model)
    if text.startswith("zoo:"):
        if zoo.bundled(text) is None:
            return (
                f"the keyword model {text} is not bundled in this build (edge_sdk/zoo/{text[4:]}/model.onnx)"
            )
        return None
    return None if Path(text).exists() else f"the keyword model {text} does not exist"


def run(
    model: str | os.PathLike[str] = MODEL,
    *,
    denoise: str = "tiny",
    vad: str = "silero",
    clip: str | os.PathLike[str] | None = None,
    truth_data: dict[str, Any] | None = None,
    verify: str | os.PathLike[str] | None = None,
) -> tuple[dict[str, Any], LoopSummary | None]:
    """Replay the commands clip (or ``clip`` with ``truth_data``) through ``denoise`` + ``vad`` + the
    keyword spotter ``model`` (with ``verify``, proposing for that recogniser: ``kws.verify``) as fast as
    possible. Returns a JSON-ready result (``skipped`` says why when the model is not there) and the
    loop's summary (None when skipped)."""
    spoken = truth_data if truth_data is not None else truth()
    clip_path = Path(clip) if clip is not None else _sample(CLIP)
    result: dict[str, Any] = {
        "clip": clip_path.name,
        "seconds": spoken.get("seconds"),
        "model": os.fspath(model),
        "denoise": denoise,
        "vad": vad,
        "verify": None if verify is None else os.fspath(verify),
        "snr_db": spoken.get("snr_db"),
        "notes": [],
    }
    why = model_missing(model)
    if why is not None:
        result["skipped"] = why
        return result, None
    try:
        stages, notes = audio_stages(denoise=denoise, vad=vad, kws=model, kws_verify=verify, threads=1)
    except EdgeSDKError as e:
        result["skipped"] = f"the chain could not be built: {str(e).splitlines()[0]}"
        return result, None
    # with a verifier, the stage in the chain holds the spotter that proposes
    index = next(i for i, s in enumerate(stages) if isinstance(getattr(s, "spotter", s), KeywordSpotter))
    spotter = getattr(stages[index], "spotter", stages[index])
    # the stages before the spotter delay what it hears; event times are aligned with the source
    before = stages[:index]
    delay = sum(int(getattr(s, "latency", 0) or 0) for s in before) / spotter.sample_rate
    events: list[Event] = []
    with WavFile(clip_path) as source:
        summary = AudioLoop(
            source, stages, notes=notes, on_event=lambda e: events.append(e) if e.kind == "keyword" else None
        ).run()
    vocabulary = set(spotter.info.keywords)
    scored = [k for k in spoken["keywords"] if k["word"] in vocabulary]
    report = detection_latency(events, scored, delay=delay)
    matched = _match(events, scored, report.latencies, delay)
    rows = []
    for e in sorted(events, key=lambda e: e.time):
        assert isinstance(e, KeywordDetected)
        k = matched.get(id(e))
        verdict = f"hit ({k['word']} {k['start']:.2f}-{k['end']:.2f} s)" if k else "false alarm"
        rows.append(
            {
                "time": e.time,
                "word": e.word,
                "score": e.score,
                "start": e.start,
                "end": e.end,
                "verdict": verdict,
            }
        )
    hit_keys = {(k["word"], k["start"]) for k in matched.values()}
    misses = [k for k in scored if (k["word"], k["start"]) not in hit_keys]
    result.update(
        {
            "model_path": str(spotter.path),
            "keywords": list(spotter.info.keywords),
            "delay_s": delay,
            "detections": rows,
            "misses": misses,
            "not_in_model": [k for k in spoken["keywords"] if k["word"] not in vocabulary],
            "latency": report.to_dict(),
            "rtf": summary.total.rtf,
            "summary": summary.to_dict(),
        }
    )
    result["notes"] = list(summary.notes)
    return result, summary


def _match(
    events: list[Event], scored: list[dict[str, Any]], latencies: list[float | None], delay: float
) -> dict[int, dict[str, Any]]:
    """Which event hit which true keyword, the way ``detection_latency`` matched them (the first unused
    event of the word that overlaps it and whose latency is the one it reported)."""
    kws = sorted((e for e in events if isinstance(e, KeywordDetected)), key=lambda e: e.time)
    used: dict[int, dict[str, Any]] = {}
    for k, lat in zip(scored, latencies, strict=True):
        if lat is None:
            continue
        for e in kws:
            if (
                id(e) not in used
                and e.word == k["word"]
                and e.start < k["end"]
                and e.end > k["start"]
                and abs(e.time + delay - k["end"] - lat) < 1e-5
            ):
                used[id(e)] = k
                break
    return used


def lines(result: dict[str, Any]) -> list[str]:
    """The result as plain text lines (what ``edge-sdk demo`` prints after the table)."""
    if "skipped" in result:
        return [f"keyword spotting skipped: {result['skipped']}"]
    lat = result["latency"]
    out = [
        f"{lat['hits']} of {lat['keywords']} keywords heard, {lat['misses']} missed, "
        f"{lat['false_alarms']} false alarms; RTF {result['rtf']:.4f}"
    ]
    if lat["hits"]:
        out.append(
            f"detection latency after the word ends: p50 {lat['latency_p50']:.2f} s, "
            f"p90 {lat['latency_p90']:.2f} s, max {lat['latency_max']:.2f} s"
            + (
                f" (including {result['delay_s'] * 1000:.0f} ms of denoiser delay)"
                if result["delay_s"]
                else ""
            )
        )
    for k in result["misses"]:
        out.append(f"missed: {k['word']} at {k['start']:.2f}-{k['end']:.2f} s")
    if result["not_in_model"]:
        words = sorted({k["word"] for k in result["not_in_model"]})
        out.append(f"not scored (not words of this model): {', '.join(words)}")
    return out


def table_rows(result: dict[str, Any]) -> list[list[str]]:
    """One row per detection for ``console.table`` with ``COLUMNS``."""
    return [
        [
            f"{d['time']:.2f} s",
            d["word"],
            f"{d['score']:.2f}",
            f"{d['start']:.2f}-{d['end']:.2f} s",
            d["verdict"],
        ]
        for d in result.get("detections", [])
    ]
