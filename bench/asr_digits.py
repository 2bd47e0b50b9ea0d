"""Word error rate of the shipped small recogniser (``edge_sdk/zoo/digits-asr``) on real recordings.

    python bench/asr_digits.py [--model edge_sdk/zoo/digits-asr] [--doc docs/asr-digits.md]

The model knows 21 words (the digits, "oh", and yes no up down left right on off stop go), so the main
figure is on real connected and isolated digits (``bench/asr_data.py``): the TIDIGITS recording
installed by pocketsphinx-testdata (its other TIDIGITS files are cepstra, not audio) and Asterisk's
digit prompts ``digits/0``-``digits/9`` in both codings (8 kHz WAV resampled to 16 kHz, and G.722).
Digit strings are normalised with ``oh`` as ``zero``. The secondary figure is the card recordings,
whose words are mostly outside the vocabulary: their out-of-vocabulary rate is stated beside it (every
such word is an error for this model). Four decoders over the same model outputs: CTC greedy, CTC
prefix beam search (beam 8), transducer greedy and modified beam search (beam 4).
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import subprocess
import sys
import time
from pathlib import Path

import asr_data

from edge_sdk.asr import Recognizer
from edge_sdk.train.asr_data import VOCAB

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "edge_sdk" / "zoo" / "digits-asr"
DECODERS = ("ctc-greedy", "ctc-beam", "transducer-greedy", "transducer-beam")
COMMAND = "python bench/asr_digits.py"


def digit_sets() -> dict[str, list[asr_data.Utterance]]:
    """The main sets: TIDIGITS digit strings and Asterisk digits/0-9 in both codings."""
    tid = [u for u in asr_data.load("tidigits") if u.digit_string]
    # a single numeral is scored as a digit string too ("0" is read "zero", "oh" counts as it)
    ast = [
        dataclasses.replace(u, digit_string=True)
        for u in asr_data.load("asterisk", asterisk_sentences=0)
        if re.search(r"/digits/\d$", u.id)
    ]
    return {
        "tidigits": tid,
        "asterisk-wav digits 0-9": [u for u in ast if u.set == "asterisk-wav"],
        "asterisk-g722 digits 0-9": [u for u in ast if u.set == "asterisk-g722"],
    }


def oov_rate(utts: list[asr_data.Utterance]) -> float:
    """Share of reference words (normalised) outside the vocabulary."""
    words = [w for u in utts for w in u.words()]
    vocab = set(VOCAB) | {"zero"}
    return sum(w not in vocab for w in words) / max(1, len(words))


def recognizers(folder: Path) -> dict[str, Recognizer]:
    """The four decoders over the shipped models, each as a user builds it."""
    return {
        "ctc-greedy": Recognizer.from_ctc(folder / "model.onnx"),
        "ctc-beam": Recognizer.from_ctc(folder / "model.onnx", beam=8),
        "transducer-greedy": Recognizer.from_transducer(folder),
        "transducer-beam": Recognizer.from_transducer(folder, method="modified_beam_search", beam=4),
    }


def transcribe(folder: Path, utts: list[asr_data.Utterance]) -> tuple[dict[str, list[str]], float]:
    """Hypotheses of every decoder per utterance, and the CPU seconds per audio second of the greedy CTC
    and transducer recognisers together (front end, model and decoding)."""
    hyps: dict[str, list[str]] = {d: [] for d in DECODERS}
    cpu = 0.0
    for name, recognizer in recognizers(folder).items():
        for u in utts:
            t0 = time.process_time()
            hyps[name].append(recognizer.transcribe(u.audio).text)
            if name.endswith("greedy"):
                cpu += time.process_time() - t0
    return hyps, cpu / max(1e-9, sum(u.seconds for u in utts))


def cpu_flags() -> str:
    """The CPU's vector extensions that matter to onnxruntime (the line the other benchmarks print)."""
    out = subprocess.run(
        "grep -o -E 'avx512_vnni|avx_vnni|avx2' /proc/cpuinfo | sort -u",
        shell=True,
        capture_output=True,
        text=True,
        check=False,
    )
    return " ".join(out.stdout.split()) or "none of avx2, avx_vnni, avx512_vnni"


def run(folder: Path) -> tuple[list[dict[str, object]], list[str]]:
    """Rows (one per set and decoder) and per-utterance lines for the digit sets."""
    sets = digit_sets()
    sets["cards (secondary)"] = asr_data.load("cards")
    rows: list[dict[str, object]] = []
    lines: list[str] = []
    for name, utts in sets.items():
        hyps, rtf = transcribe(folder, utts)
        oov = oov_rate(utts)
        for d in DECODERS:
            r = asr_data.score(utts, hyps[d])
            rows.append(
                {"set": name, "decoder": d, "utts": len(utts), "words": r.ref_words, "wer": r.wer,
                 "sub": r.substitutions, "del": r.deletions, "ins": r.insertions, "oov": oov, "rtf": rtf}
            )  # fmt: skip
        if "cards" not in name:
            for u, h in zip(utts, hyps["ctc-greedy"], strict=True):
                lines.append(f"| {u.id} | {u.normalize(u.text)} | {u.normalize(h)} | "
                             f"{u.normalize(hyps['transducer-beam'][utts.index(u)])} |")  # fmt: skip
    return rows, lines


def pooled(rows: list[dict[str, object]], decoder: str) -> tuple[float, int]:
    """WER over all digit sets together for one decoder, and their reference words."""
    mine = [r for r in rows if r["decoder"] == decoder and "cards" not in str(r["set"])]
    errors = sum(int(r["sub"]) + int(r["del"]) + int(r["ins"]) for r in mine)  # type: ignore[call-overload]
    words = sum(int(r["words"]) for r in mine)  # type: ignore[call-overload]
    return errors / max(1, words), words


def table(rows: list[dict[str, object]]) -> list[str]:
    """The Markdown table: WER per set and decoder, then the digit sets pooled."""
    out = [
        "| set | utterances | words | OOV | " + " | ".join(DECODERS) + " |",
        "|---|---:|---:|---:|" + "---:|" * 4,
    ]
    for name in dict.fromkeys(str(r["set"]) for r in rows):
        mine = {str(r["decoder"]): r for r in rows if r["set"] == name}
        first = next(iter(mine.values()))
        cells = " | ".join(f"{100 * float(mine[d]['wer']):.1f} %" for d in DECODERS)  # type: ignore[arg-type]
        out.append(
            f"| {name} | {first['utts']} | {first['words']} | {100 * float(first['oov']):.0f} % | {cells} |"
        )  # type: ignore[arg-type]
    words = pooled(rows, DECODERS[0])[1]
    cells = " | ".join(f"**{100 * pooled(rows, d)[0]:.1f} %**" for d in DECODERS)
    out.append(f"| **all digit sets** | | {words} | 0 % | {cells} |")
    return out


def write_doc(path: Path, rows: list[dict[str, object]], lines: list[str], folder: Path) -> None:
    """docs/asr-digits.md: the table, per-utterance transcripts, how it was made."""
    rtf = float(rows[0]["rtf"])  # type: ignore[arg-type]
    rel = folder.resolve().relative_to(ROOT) if folder.resolve().is_relative_to(ROOT) else folder.name
    text = [
        "# Small digit and command recogniser on real speech",
        "",
        f"The shipped `{rel}` models (CTC and transducer over the frozen speech-embedding front end, trained "
        "only on synthesised speech by `edge-sdk train asr`; see its MODEL_CARD.md) scored on real "
        "recordings with `bench/asr_data.py`'s sets. Word error rate, pooled over utterances; digit strings "
        'normalised with "oh" as "zero". The model knows only its 21 words: OOV is the share of '
        "reference words outside them (each one an unavoidable error).",
        "",
        *table(rows),
        "",
        "The digit sets are small: TIDIGITS here is the one recording pocketsphinx-testdata ships as audio "
        "(its other TIDIGITS files are cepstra), Asterisk's digits are one speaker (Allison Smith) saying "
        "each digit alone, the same recordings in two codings. Treat the figures as a check that the "
        "model carries from synthetic to real speech, not as a corpus-level figure.",
        "",
        "CTC greedy and transducer greedy together (front end computed by each, models, decoding): "
        f"{rtf:.3f} CPU seconds per audio second on one thread.",
        "",
        "## Transcripts (digit sets)",
        "",
        "| utterance | reference | CTC greedy | transducer beam |",
        "|---|---|---|---|",
        *lines,
        "",
        f"Regenerate: `{COMMAND}` (one thread; about a minute).",
        "",
        f"CPU flags (`grep -o -E 'avx512_vnni|avx_vnni|avx2' /proc/cpuinfo | sort -u`): {cpu_flags()}",
        "",
    ]
    path.write_text("\n".join(text))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--model", type=Path, default=MODEL, help="folder with model.onnx, the transducer, tokens.txt"
    )
    p.add_argument(
        "--doc", type=Path, default=ROOT / "docs" / "asr-digits.md", help="Markdown report to write"
    )
    p.add_argument("--no-doc", dest="doc", action="store_const", const=None)
    args = p.parse_args(argv)
    rows, lines = run(args.model)
    print("\n".join(table(rows)))
    if args.doc is not None:
        write_doc(args.doc, rows, lines, args.model)
        print(f"wrote {args.doc}", file=sys.stderr)


if __name__ == "__main__":
    main()
