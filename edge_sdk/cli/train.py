"""``edge-sdk train``: the training recipes from the command line (need the ``train`` extra).

``edge-sdk train kws --words yes,no,up --out DIR [--data DIR] [--epochs N] [--per-word N]`` trains a
keyword spotter (``edge_sdk.train.kws``) and writes model.onnx, MODEL_CARD.md, eval.json and eval.md.

``edge-sdk train asr --out DIR [--head ctc|transducer|both] [--steps N] [--sentences N]`` trains a small
recogniser of connected digits and command words (``edge_sdk.train.asr``): ONNX files, tokens.txt,
MODEL_CARD.md, eval.json.
"""

from __future__ import annotations

import argparse
import json
import sys

from edge_sdk.cli import console


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Register ``train`` and its recipes."""
    t = subparsers.add_parser("train", help="train a model with a bundled recipe (needs the 'train' extra)")
    tsub = t.add_subparsers(dest="recipe", required=True)
    k = tsub.add_parser(
        "kws",
        parents=[common],
        help="a keyword spotter from synthesised speech (or a Speech Commands folder)",
        description="Train a DS-CNN keyword spotter; writes model.onnx, MODEL_CARD.md, eval.json, eval.md.",
    )
    from edge_sdk.train.kws import build_arg_parser

    build_arg_parser(k)
    k.set_defaults(func=cmd_train_kws)
    a = tsub.add_parser(
        "asr",
        parents=[common],
        help="a small recogniser of connected digits and command words from synthesised speech",
        description="Train a CTC model and/or a transducer on a frozen front end; writes the ONNX files, "
        "tokens.txt, MODEL_CARD.md and eval.json.",
    )
    from edge_sdk.train.asr import build_arg_parser as asr_arg_parser

    asr_arg_parser(a)
    a.set_defaults(func=cmd_train_asr)


def cmd_train_kws(args: argparse.Namespace) -> int:
    """Run the KWS recipe and print the accuracy per evaluation set."""
    from edge_sdk.train.kws import train

    args.argv = sys.argv[1:]
    report = train(args)
    acc = {name: m["accuracy"] for name, m in report["eval"].items()}
    if getattr(args, "json", False):
        console.emit_json(report)
    else:
        console.out.print(f"wrote {args.out}/model.onnx; accuracy {json.dumps(acc)}")
    return 0


def cmd_train_asr(args: argparse.Namespace) -> int:
    """Run the ASR recipe and print each model's word error rates on synthetic speech."""
    from edge_sdk.train.asr import train

    args.argv = sys.argv[1:]
    report = train(args)
    figures = {k: {"dev_wer": m["dev_wer"], **m["eval"]} for k, m in report["models"].items()}
    if getattr(args, "json", False):
        console.emit_json(report)
    else:
        console.out.print(f"wrote {args.out}; word error rates {json.dumps(figures)}")
    return 0
