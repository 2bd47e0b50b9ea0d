"""Speech-recognition benchmark → ``docs/asr-quality.md``: word error rate on real speech (clean, and in real
recorded noise at 10 and 5 dB with and without the tiny denoiser in front), CPU real-time factor, final and
first-partial latency, size and memory, for Whisper run by edge-sdk (each converted format and precision)
beside the anchors pocketsphinx and faster-whisper (CTranslate2) in the same run.

Every system runs in a process of its own, one thread, so its memory is its own; the parent gathers the
results and writes the page. ``--quick`` runs two utterances per set (a smoke test, not figures).

    python bench/asr_quality.py --out docs/asr-quality.md
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "CT2_INTER_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import asr_anchors  # noqa: E402
import asr_data  # noqa: E402
import asr_paired  # noqa: E402

from edge_sdk.asr import text as asr_text  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CLEAN_SETS = asr_data.SETS
NOISY_SETS = ("librivox", "cards", "tidigits", "asterisk-wav")
SNRS = (10.0, 5.0)
NOISE_KINDS = asr_data.NOISES  # alternated by utterance: keyboard, engines, keyboard, ...
PARTIAL_EVERY = 1.0  # seconds of audio between partial transcripts (the asr stage's default)
TARGETS = ("onnx:fp32", "onnx:int8-dynamic", "openvino:fp32")
"""What the Whisper models are built to, once, before any system is timed (``whisper_model`` caches it)."""


@dataclass(frozen=True)
class System:
    """A recogniser under test: its name, whether it also runs the noisy conditions, and how to load it."""

    name: str
    noisy: bool
    load: Callable[[], Callable[[np.ndarray], str]]
    info: Callable[[], dict[str, Any]]


def _ours(
    model: str, target: str, beam: int = 1, window: str = "audio"
) -> tuple[Callable[[], Any], Callable[[], dict[str, Any]]]:
    state: dict[str, Any] = {}

    def load() -> Callable[[np.ndarray], str]:
        from edge_sdk.asr import Recognizer
        from edge_sdk.asr.whisper_build import whisper_model

        folder = whisper_model(model, TARGETS)
        state["r"] = r = Recognizer.from_whisper(folder, target=target, beam=beam, window=window, threads=1)
        return lambda audio: r.transcribe(audio).text

    def info() -> dict[str, Any]:
        r = state["r"]
        folder = r.engine.folder
        record = json.loads((folder / "whisper.json").read_text())
        parts = record["artifacts"][target]
        size = sum(
            f.stat().st_size
            for p in parts.values()
            for f in (folder / p).iterdir()
            if f.suffix in (".onnx", ".xml", ".bin", ".data", ".tflite")
        )
        chosen = r.engine.decoder.selection.to_dict()
        backend = f"{chosen['backend']}/{chosen['accelerator']}"
        return {
            "model": model,
            "target": target,
            "beam": beam,
            "window": window,
            "size_bytes": size,
            "backend": backend,
        }

    return load, info


def _anchor(
    loader: Callable[[], asr_anchors.Anchor],
) -> tuple[Callable[[], Any], Callable[[], dict[str, Any]]]:
    state: dict[str, Any] = {}

    def load() -> Callable[[np.ndarray], str]:
        state["a"] = a = loader()
        return a.transcribe

    return load, lambda: dict(state["a"].info)


def systems() -> dict[str, System]:
    """Every system the benchmark knows, by name."""
    out = {}
    for name, noisy, (load, info) in (
        ("edge-sdk tiny.en onnx int8-dynamic", True, _ours("zoo:whisper-tiny.en", "onnx:int8-dynamic")),
        (
            "edge-sdk tiny.en onnx int8-dynamic, 30 s window",
            True,
            _ours("zoo:whisper-tiny.en", "onnx:int8-dynamic", window="full"),
        ),
        (
            "edge-sdk tiny.en onnx int8-dynamic beam 5",
            True,
            _ours("zoo:whisper-tiny.en", "onnx:int8-dynamic", 5),
        ),
        ("edge-sdk tiny.en onnx fp32", True, _ours("zoo:whisper-tiny.en", "onnx:fp32")),
        ("edge-sdk tiny.en openvino fp32", True, _ours("zoo:whisper-tiny.en", "openvino:fp32")),
        ("edge-sdk base onnx int8-dynamic", True, _ours("zoo:whisper-base", "onnx:int8-dynamic")),
        ("faster-whisper tiny.en int8", True, _anchor(lambda: asr_anchors.load_whisper(1))),
        ("faster-whisper tiny.en int8 beam 5", False, _anchor(lambda: asr_anchors.load_whisper(5))),
        ("pocketsphinx", True, _anchor(asr_anchors.load_pocketsphinx)),
    ):
        out[name] = System(name, noisy, load, info)
    return out


def _denoise(audio: np.ndarray) -> np.ndarray:
    """``audio`` through the tiny denoiser stage, block by block as the live loop runs it, its delay taken
    out so the result lines up with the input."""
    from edge_sdk.stages import make
    from edge_sdk.stages.base import Block

    stage = make("denoise", "tiny")
    block = 320
    padded = np.concatenate([audio, np.zeros(stage.latency + block, np.float32)])
    out = [
        stage.process(Block(padded[i : i + block], 16000, i / 16000, i // block)).samples
        for i in range(0, len(padded) - block + 1, block)
    ]
    return np.concatenate(out)[stage.latency : stage.latency + len(audio)].astype(np.float32)


def conditions(noisy: bool) -> list[tuple[str, float | None, bool]]:
    """(label, SNR or None for clean, denoised) of each condition a system runs."""
    out: list[tuple[str, float | None, bool]] = [("clean", None, False)]
    if noisy:
        for snr in SNRS:
            out += [(f"{snr:g} dB", snr, False), (f"{snr:g} dB + tiny denoiser", snr, True)]
    return out


def _status_mb(field: str) -> float:
    """A memory figure of this process from /proc/self/status (VmRSS now, VmHWM its peak), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _reset_peak() -> None:
    """Start the peak (VmHWM) again from the present size: writing 5 to clear_refs does that on Linux."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def child(name: str, quick: bool) -> dict[str, Any]:
    """Run one system over every set and condition it takes; what the parent writes up."""
    system = systems()[name]
    sets = {s: asr_data.load(s)[: 2 if quick else None] for s in CLEAN_SETS}
    _reset_peak()
    base_rss = _status_mb("VmRSS")
    t0 = time.perf_counter()
    transcribe = system.load()
    load_s = time.perf_counter() - t0
    transcribe(np.zeros(16000, np.float32))  # first run (graph optimisation, allocations) off the clock
    rows = []
    finals: list[float] = []
    for label, snr, denoised in conditions(system.noisy):
        for set_name, utts in sets.items():
            if snr is not None and set_name not in NOISY_SETS:
                continue
            hyps, cpu, wall = [], 0.0, []
            for i, u in enumerate(utts):
                audio = u.audio
                if snr is not None:
                    audio = asr_data.noisy(u, snr, kind=NOISE_KINDS[i % len(NOISE_KINDS)])
                if denoised:
                    audio = _denoise(audio)
                c0, w0 = time.process_time(), time.perf_counter()
                hyps.append(transcribe(audio))
                cpu += time.process_time() - c0
                wall.append(time.perf_counter() - w0)
            w = asr_data.score(utts, hyps)
            seconds = sum(u.seconds for u in utts)
            rows.append(
                {
                    "condition": label,
                    "set": set_name,
                    "utterances": w.utterances,
                    "words": w.ref_words,
                    "errors": w.errors,
                    "wer": w.wer,
                    "rtf": cpu / seconds if seconds else None,
                    "hyps": hyps,
                }
            )
            if label == "clean" and set_name in ("librivox", "asterisk-wav"):
                finals += [t for t, u in zip(wall, utts, strict=True) if 2.0 <= u.seconds <= 10.0]
    first = []
    if name.startswith("edge-sdk") or name.startswith("faster-whisper"):
        for u in sets["librivox"] + sets["asterisk-wav"]:
            if 2.0 <= u.seconds <= 10.0:
                w0 = time.perf_counter()
                transcribe(u.audio[: int(PARTIAL_EVERY * 16000)])
                first.append(PARTIAL_EVERY + time.perf_counter() - w0)
    return {
        "system": name,
        "info": system.info(),
        "load_seconds": load_s,
        "rss_mb": _status_mb("VmHWM") - base_rss,
        "rows": rows,
        "final_latency": finals,
        "first_partial": first,
    }


def _pct(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def _pooled(rows: list[dict[str, Any]], condition: str, sets: Sequence[str]) -> tuple[float, float]:
    sel = [r for r in rows if r["condition"] == condition and r["set"] in sets]
    words = sum(r["words"] for r in sel)
    return (sum(r["errors"] for r in sel) / words if words else float("nan")), words


def _normalisation_rules() -> str:
    doc = asr_text.__doc__ or ""
    return doc.split("``wer(refs, hyps)``")[0].strip()


ANCHOR = "faster-whisper tiny.en int8"


def _paired_lines(results: list[dict[str, Any]]) -> list[str]:
    """Each edge-sdk system's clean WER minus the anchor's, with the 95 % interval of resampling whole
    recordings (``bench/asr_paired.py``): whether a difference of a few words is one at all."""
    anchor = next((r for r in results if r["system"] == ANCHOR), None)
    ours = [r for r in results if r["system"].startswith("edge-sdk")]
    if anchor is None or not ours:
        return []
    lines = [
        "",
        f"Clean WER minus {ANCHOR}'s, paired on the same utterances, with the 95 % interval of "
        "resampling whole recordings (2000 draws; both Asterisk codings of a prompt drawn together; "
        "`bench/asr_paired.py`). An interval that holds 0 is no measurable difference on these sets.",
        "",
        "| system | difference (points) | 95 % interval | utterances better / worse |",
        "|---|---:|---|---:|",
    ]
    for r in ours:
        c = asr_paired.compare(r, anchor)
        if c is not None:
            lines.append(
                f"| {r['system']} | {100 * c['difference']:+.2f} | [{100 * c['low']:+.2f}, "
                f"{100 * c['high']:+.2f}] | {c['fewer']} / {c['more']} |"
            )
    return lines


def report(results: list[dict[str, Any]], command: str, cpu_flags: str) -> str:
    """The Markdown page."""
    sets = list(CLEAN_SETS)
    lines = [
        "# Speech recognition quality and speed",
        "",
        f"Generated by `{command}` (`--system NAME --merge docs/asr-quality.json` runs one system again). "
        f"CPU: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores; `grep -o -E 'avx512_vnni|avx_vnni|avx2' /proc/cpuinfo | sort -u` prints "
        f"{cpu_flags}. Every system runs alone in its own process on one thread; RTF is process CPU time "
        "over audio seconds (below 1 keeps up; 0.15 leaves 85 % of a core idle).",
        "",
        "Test sets are real recordings only (`bench/asr_data.py`): LibriVox read speech and the `cards` and "
        "TIDIGITS recordings from `pocketsphinx-testdata`, and Asterisk's prompts (Allison Smith) as 8 kHz "
        "WAV and as G.722, both resampled to 16 kHz. Noise is real and recorded: a keyboard "
        "(`bucklespring-data`) and engines (OpenSFX), alternating by utterance, mixed at the SNR over the "
        "whole utterance. Nothing here was used to train or tune any system.",
        "",
        "## Word error rate on clean speech (%)",
        "",
        "| system | " + " | ".join(sets) + " | all | RTF |",
        "|---|" + "---|" * (len(sets) + 2),
    ]
    for r in results:
        cells = []
        for s in sets:
            row = next((x for x in r["rows"] if x["condition"] == "clean" and x["set"] == s), None)
            cells.append(f"{100 * row['wer']:.1f}" if row else "–")
        pooled, _ = _pooled(r["rows"], "clean", sets)
        clean = [x for x in r["rows"] if x["condition"] == "clean"]
        rtf = sum(x["rtf"] * 1 for x in clean) / len(clean) if clean else float("nan")
        lines.append(f"| {r['system']} | " + " | ".join(cells) + f" | **{100 * pooled:.1f}** | {rtf:.3f} |")
    lines += [
        "",
        "Static int8 (`onnx:int8`, `openvino:int8`, activations calibrated ahead) is not in the table: the "
        "Whisper build refuses a converted half whose outputs on its parity speech fall below a cosine "
        "similarity of `MIN_COSINE` to fp32 (`edge_sdk/asr/whisper_build.py`), and static int8 does.",
    ]
    lines += _paired_lines(results)
    words = {s: next((x["words"] for r in results for x in r["rows"] if x["set"] == s), 0) for s in sets}
    lines += [
        "",
        "Reference words per set: " + ", ".join(f"{s} {n}" for s, n in words.items()) + ". `all` pools "
        "every set's errors over every set's words; RTF is the mean over sets.",
        "",
        "## In real noise, with and without the tiny denoiser in front (WER %, pooled over "
        + ", ".join(NOISY_SETS)
        + ")",
        "",
    ]
    conds = [c[0] for c in conditions(True)]
    lines += ["| system | " + " | ".join(conds) + " |", "|---|" + "---|" * len(conds)]
    for r in results:
        if not any(x["condition"] != "clean" for x in r["rows"]):
            continue
        cells = [f"{100 * _pooled(r['rows'], c, NOISY_SETS)[0]:.1f}" for c in conds]
        lines.append(f"| {r['system']} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Latency, size and memory",
        "",
        "Final latency is the time to transcribe a whole utterance of 2 to 10 s (LibriVox and the Asterisk "
        "sentences), the work left when the VAD closes a segment; the first partial comes after "
        f"{PARTIAL_EVERY:g} s of speech plus the time to transcribe that second (the `asr.whisper` stage "
        "re-decodes the open segment every second). Wall-clock seconds, one thread; memory is the peak "
        "resident size the process grew by loading and running the system.",
        "",
        "| system | final p50 s | final p90 s | first partial p90 s | load s | model MB | memory MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        size = r["info"].get("size_bytes")
        p50, p90 = _pct(r["final_latency"], 50), _pct(r["final_latency"], 90)
        first = _pct(r["first_partial"], 90)

        def f(v: float | None) -> str:
            return "–" if v is None else f"{v:.2f}"

        lines.append(
            f"| {r['system']} | {f(p50)} | {f(p90)} | {f(first)} | {r['load_seconds']:.1f} | "
            f"{'–' if size is None else f'{size / 1e6:.1f}'} | {r['rss_mb']:.0f} |"
        )
    lines += ["", "## Systems", ""]
    for r in results:
        info = ", ".join(f"{k} {v}" for k, v in r["info"].items() if k != "size_bytes")
        lines.append(f"- **{r['system']}**: {info}")
    lines += [
        "",
        "## Text normalisation",
        "",
        "References and every system's output pass through the same `edge_sdk.asr.text.normalize` before "
        "scoring; digit strings (TIDIGITS) take the digit options on both sides.",
        "",
        _normalisation_rules(),
        "",
    ]
    return "\n".join(lines)


def cpu_flags() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "nothing (no /proc/cpuinfo)"
    found = sorted(set(re.findall(r"\b(avx512_vnni|avx_vnni|avx2)\b", text)))
    return ", ".join(f"`{x}`" for x in found) or "none of them"


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, help="write the Markdown report here")
    p.add_argument("--json", type=Path, help="write the raw results (hypotheses included) here")
    p.add_argument("--system", action="append", help="run only these systems (default: all)")
    p.add_argument("--quick", action="store_true", help="two utterances per set: a smoke test")
    p.add_argument(
        "--merge",
        type=Path,
        help="results of an earlier run (its --json): systems run now (--system) replace or join them; "
        "alone, the page is written from them without running anything",
    )
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        sys.stdout.write(json.dumps(child(args.child, args.quick)) + "\n")
        return
    # With --merge alone, nothing is run: the page is written again from the earlier results.
    names = args.system or ([] if args.merge else list(systems()))
    unknown = sorted(set(names) - set(systems()))
    if unknown:
        raise SystemExit(f"asr_quality: unknown systems {unknown}; known: {list(systems())}")
    from edge_sdk.asr.whisper_build import whisper_model

    for model in sorted({"zoo:whisper-tiny.en", "zoo:whisper-base"}):
        if any(m in n for n in names for m in (model.split("-")[-1],)):
            print(f"asr_quality: building {model} for {', '.join(TARGETS)} (once; cached)", file=sys.stderr)
            whisper_model(model, TARGETS)
    results = []
    for name in names:
        print(f"asr_quality: {name} ...", file=sys.stderr, flush=True)
        cmd = [sys.executable, __file__, "--child", name] + (["--quick"] if args.quick else [])
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if done.returncode != 0:
            print(f"asr_quality: {name} failed:\n{done.stderr[-3000:]}", file=sys.stderr)
            continue
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    if args.merge:
        ran = {r["system"] for r in results}
        earlier = [r for r in json.loads(args.merge.read_text(encoding="utf-8")) if r["system"] not in ran]
        order = list(systems())
        results = sorted(
            earlier + results, key=lambda r: order.index(r["system"]) if r["system"] in order else 99
        )
    # The command that makes the whole page again (a --merge run only rewrote part of it).
    command = "python bench/asr_quality.py --out docs/asr-quality.md --json docs/asr-quality.json"
    command += " --quick" if args.quick else ""
    page = report(results, command, cpu_flags())
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    if args.out:
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(page, encoding="utf-8")
        tmp.replace(args.out)
    print(page)


if __name__ == "__main__":
    main()
