"""Recipe: train, export and score the zoo's ``video`` denoiser, a small blind CNN for live video.

The speed target (≥ 30 fps at 640×480 on 2 CPU cores in int8, ≥ 10× OpenCV's non-local means) sets the
shape: two stride-2 convolutions (each a pixel-unshuffle and a 1×1 convolution in one op, FFDNet style)
take the image to quarter resolution, where a few 3×3 convolutions see a wide context cheaply; a stride-2
transposed convolution (1×1 convolution + pixel-shuffle) comes back to half resolution, adds the skip
from the way down, and one 3×3 convolution there restores fine detail before the last transposed
convolution gives the noise at full size. The output is the input minus that noise, clipped to [0, 1].
Only Conv, ConvTranspose, ReLU, Add, Sub and Clip: every converter and quantiser takes them, and height
and width stay dynamic (any multiple of 4). A single quarter-resolution stage (stride-4 in and out) ran
faster but its 48 channels had to carry all 48 noise values of a 4×4 block, and it learned slowly.

That first layout (``--arch quarter``, 77k parameters) stopped improving near 28 dB held-out at σ 25,
below a tuned bilateral filter: too little capacity, above all at half resolution, where its skip came
straight from a 2×2 conv and one 24-channel 3×3 conv had to restore all the detail. ``--arch unet`` adds a
3×3 conv at half resolution before the way down (the skip carries features), ``--fine-depth`` 3×3 convs
after it, and takes ``--width``/``--depth``/``--fine`` wider and deeper; the compute per pixel is dominated
by the half-resolution convs (``fine``² × 9 / 4 per pixel each) and the quarter ones (``width``² × 9 / 16).
``--init CKPT`` warm-starts a wider/deeper model from a trained smaller one (``warm_start``): the CPU
training budget is short, and starting from a function-preserving copy spends none of it relearning.

``--arch linskip`` is ``unet`` plus a linear path: a stride-2 2×2 conv and a 3×3 conv, no ReLU, give
``--lin`` half-resolution channels concatenated to the last transposed conv's input. In ``unet`` every
route from the input to the predicted noise crosses four ReLU convs, so to output ``x - noise`` ≈ a smooth
image it must copy the per-pixel noise through them, and the copy's error grows with σ: at σ 50 a Gaussian
blur (σ 1.5) beat it by 1.3 dB on vtest, and the model run on a blurred input by 2.7 dB. The linear path
carries a high-pass of the input (a linear filter of about 6×6 support) straight to the noise; warm-started
from the unet, the held-out PSNR at σ 50 rose 2 dB within 500 steps, and 0.5-1.3 dB at σ 15-25. It is 3 %
of the multiply-adds but 12-17 % of the int8 frame rate (onnxruntime runs few-channel convs and the
concat slowly), so ``--fine-depth 1`` pays for part of it; a second fine conv that ``warm_start`` had
begun as the identity also lost 1 dB at σ 15 in int8 (kept float, it did not). A full-resolution head
that saw the input (concat, then 1×1 or 3×3 convs) cost 25-50 % of the int8 frame rate instead: every
full-resolution tensor is quantised and dequantised. Only Concat joins the op list.
``--max-sigma`` widens the Gaussian σ range of training (the σ 50 test point sat at the edge of [0, 55])
and ``--val-sigmas`` picks the checkpoint on the mean held-out PSNR over several σ, not σ 25 alone.

I/O: ``input`` float32 [1, 3, H, W] RGB in [0, 1] → ``output`` the same shape, denoised.

Data (``image_data``): scikit-image and opencv-doc sample images minus the held-out set, random crops
with flips and rotations; noise is Gaussian with σ uniform in [0, 55] (0-255 scale) for 70 % of crops
and Poisson-Gaussian (a small sensor) for the rest. Loss: MSE (what PSNR scores).

    python -m edge_sdk.train.video_denoiser --out /work/runs/video --minutes 25

writes ``best.pt``, ``train_log.jsonl``, ``model.onnx`` and ``MODEL_CARD.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.stages.video_measure import psnr
from edge_sdk.train import image_data

log = logging.getLogger("edge_sdk.train.video_denoiser")

DEFAULTS = {"scale": 4, "width": 48, "depth": 3, "fine": 24, "fine_depth": 1, "lin": 12}
ARCHS = ("quarter", "unet", "linskip")
EVAL_SIGMAS = (15, 25, 50)


def make_model(
    scale: int = 4,
    width: int = 48,
    depth: int = 3,
    channels: int = 3,
    fine: int = 24,
    arch: str = "quarter",
    fine_depth: int = 1,
    lin: int = 12,
) -> Any:
    """The denoiser: two stride-2 convs take the image to 1/``scale`` (4), ``depth`` 3×3 convs of ``width``
    work there, a stride-2 transposed conv comes back to half size where a skip from the way down and
    ``fine_depth`` 3×3 convs of ``fine`` channels restore fine detail, and a last stride-2 transposed conv
    gives the noise. ``arch="quarter"`` (the first shipped model) has one fine conv and a skip straight
    from the first stride-2 conv; ``arch="unet"`` adds a 3×3 conv at half size before the way down, so the
    skip carries features that saw a 3×3 neighbourhood, and takes ``fine_depth`` fine convs after it;
    ``arch="linskip"`` is ``unet`` plus ``lin`` channels of a linear (no ReLU) stride-2 2×2 conv and 3×3
    conv of the input, concatenated to the last transposed conv's input."""
    import torch
    from torch import nn

    if scale != 4:
        raise ValueError("this architecture works at quarter resolution: scale must be 4")
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {ARCHS}, not {arch!r}")
    if arch == "quarter" and fine_depth != 1:
        raise ValueError("arch 'quarter' has exactly one fine conv (fine_depth 1)")

    def convs(n: int, c: int) -> list[nn.Module]:
        return [m for _ in range(n) for m in (nn.Conv2d(c, c, 3, padding=1), nn.ReLU())]

    class VideoDenoiser(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.hp = {"scale": scale, "width": width, "depth": depth, "channels": channels, "fine": fine}
            if arch != "quarter":
                self.hp.update(arch=arch, fine_depth=fine_depth)
            if arch == "linskip":
                self.hp.update(lin=lin)
            self.down1 = nn.Conv2d(channels, fine, 2, stride=2)
            self.pre = nn.Sequential(*convs(0 if arch == "quarter" else 1, fine))
            self.down2 = nn.Conv2d(fine, width, 2, stride=2)
            self.body = nn.Sequential(*convs(depth, width))
            self.up1 = nn.ConvTranspose2d(width, fine, 2, stride=2)
            if arch == "quarter":  # the first model's layout (and state-dict names): one conv, no ReLU after
                self.fine = nn.Conv2d(fine, fine, 3, padding=1)
            else:
                self.fine = nn.Sequential(*convs(fine_depth, fine))
            self.linear = arch == "linskip"
            if self.linear:
                self.lin_down = nn.Conv2d(channels, lin, 2, stride=2)
                self.lin_mid = nn.Conv2d(lin, lin, 3, padding=1)
            self.up2 = nn.ConvTranspose2d(fine + (lin if self.linear else 0), channels, 2, stride=2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            half = self.pre(torch.relu(self.down1(x)))
            low = self.body(torch.relu(self.down2(half)))
            half = torch.relu(self.fine(torch.relu(self.up1(low) + half)))
            if self.linear:
                half = torch.cat([half, self.lin_mid(self.lin_down(x))], 1)
            return torch.clamp(x - self.up2(half), 0.0, 1.0)

    return VideoDenoiser()


def warm_start(model: Any, ckpt_path: Path | str, seed: int = 0) -> Any:
    """Load a smaller or older checkpoint into ``model`` so that it computes (nearly) the same function:
    every tensor the checkpoint has is copied into the matching corner, extra channels start at 5 % of
    their random init, and each 3×3 conv the checkpoint lacks starts as the identity (plus 1e-3 noise),
    which after a ReLU on a ReLU output changes nothing; a ``linskip`` path the checkpoint lacks starts from
    a random stride-2 conv (its 3×3 conv is square: the identity) that the last transposed conv reads with
    zero weights, so it adds nothing yet. Checkpoint tensors the model has no place for are ignored: a
    model one layer shallower starts near, not at, the checkpoint's function. Returns ``model``."""
    import torch

    old = dict(torch.load(ckpt_path, weights_only=False)["model"])
    for k in ("weight", "bias"):  # arch "quarter" kept its one fine conv as ``fine``
        if f"fine.{k}" in old:
            old[f"fine.0.{k}"] = old.pop(f"fine.{k}")
    gen = torch.Generator().manual_seed(seed)
    state = model.state_dict()
    with torch.no_grad():
        for k, t in state.items():
            if k in old:
                src = old[k]
                if src.dim() != t.dim() or any(a > b for a, b in zip(src.shape, t.shape, strict=True)):
                    raise ValueError(f"{k}: checkpoint {tuple(src.shape)} does not fit {tuple(t.shape)}")
                t.mul_(0.05)
                t[tuple(slice(0, n) for n in src.shape)] = src
            elif k.startswith("lin_down."):
                pass  # random init: the last transposed conv reads this path with zero weights (below)
            elif t.dim() == 4 and t.shape[0] == t.shape[1] and t.shape[2:] == (3, 3):
                t.copy_(1e-3 * torch.randn(t.shape, generator=gen))
                idx = torch.arange(t.shape[0])
                t[idx, idx, 1, 1] += 1.0
            elif k.endswith("bias"):
                t.zero_()
            else:
                raise ValueError(f"{k}: not in the checkpoint and not a square 3×3 conv")
        if "lin_down.weight" in state and "lin_down.weight" not in old:
            state["up2.weight"][old["up2.weight"].shape[0] :] = 0.0
    model.load_state_dict(state)
    return model


def n_params(model: Any) -> int:
    """Trainable parameters of ``model``."""
    return sum(p.numel() for p in model.parameters())


def make_batch(
    images: list[np.ndarray], batch: int, crop: int, rng: np.random.Generator, max_sigma: float = 55.0
) -> tuple[np.ndarray, np.ndarray]:
    """(noisy, clean) NCHW float32 crops, flipped/rotated at random, noise as the module docstring says
    (Gaussian σ uniform in [0, ``max_sigma``])."""
    clean = np.empty((batch, crop, crop, 3), np.float32)
    noisy = np.empty_like(clean)
    for b in range(batch):
        img = images[rng.integers(len(images))]
        y = rng.integers(img.shape[0] - crop + 1)
        x = rng.integers(img.shape[1] - crop + 1)
        c = np.rot90(img[y : y + crop, x : x + crop], rng.integers(4))
        c = c[:, ::-1] if rng.random() < 0.5 else c
        clean[b] = c
        if rng.random() < 0.7:
            noisy[b] = image_data.gaussian(c, rng.uniform(0, max_sigma), rng)
        else:
            photons = float(np.exp(rng.uniform(np.log(20), np.log(1000))))
            noisy[b] = image_data.poisson_gaussian(c, photons, rng.uniform(0, 10), rng)
    return noisy.transpose(0, 3, 1, 2).copy(), clean.transpose(0, 3, 1, 2).copy()


def _crop_to(img: np.ndarray, multiple: int) -> np.ndarray:
    h, w = (s - s % multiple for s in img.shape[:2])
    return img[:h, :w]


def train(args: argparse.Namespace) -> Path:
    """Train until ``--steps`` or ``--minutes`` run out, keeping the best held-out PSNR in ``best.pt``."""
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train_imgs, held = image_data.split()
    if args.max_images:
        train_imgs = train_imgs[: args.max_images]
    pixels = [i.pixels for i in train_imgs if min(i.pixels.shape[:2]) >= args.crop]
    hp = {k: getattr(args, k) for k in DEFAULTS}
    if args.arch != "linskip":
        hp.pop("lin")
    if args.arch == "quarter":
        hp.pop("fine_depth")
    else:
        hp["arch"] = args.arch
    model = make_model(**hp)
    if args.init:
        warm_start(model, args.init, args.seed)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    # a held-out crop per image keeps evaluation a second or two; the card scores whole images
    val_rng = np.random.default_rng(1234)
    sigmas = [float(s) for s in str(args.val_sigmas).split(",")]
    vals = {s: [] for s in sigmas}
    for img in held[: args.val_images]:
        c = _crop_to(img.pixels[: args.val_size, : args.val_size], hp["scale"])
        for s in sigmas:
            vals[s].append((image_data.gaussian(c, s, val_rng), c))
    log.info("%d training images, %d parameters, hp %s", len(pixels), n_params(model), hp)
    deadline = time.monotonic() + args.minutes * 60 if args.minutes else float("inf")
    best, t0, step = -1.0, time.monotonic(), 0
    with open(out / "train_log.jsonl", "a", encoding="utf-8") as logf:
        while step < args.steps and time.monotonic() < deadline:
            # cosine decay over whichever budget ends first, judged by elapsed share of each
            done = max(step / args.steps, (time.monotonic() - t0) / (deadline - t0) if args.minutes else 0)
            for g in opt.param_groups:
                g["lr"] = args.lr * (0.02 + 0.98 * 0.5 * (1 + np.cos(np.pi * min(done, 1.0))))
            noisy, clean = make_batch(pixels, args.batch, args.crop, rng, args.max_sigma)
            loss = torch.mean((model(torch.from_numpy(noisy)) - torch.from_numpy(clean)) ** 2)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            last = step >= args.steps or time.monotonic() >= deadline
            if step % args.eval_every == 0 or last:
                per = {f"val_psnr_s{s:g}": validate(model, v) for s, v in vals.items()}
                score = float(np.mean(list(per.values())))
                rec = {"step": step, "loss": loss.item(), **per, "s": time.monotonic() - t0}
                if len(per) > 1:
                    rec["val_psnr"] = score
                logf.write(json.dumps(rec) + "\n")
                logf.flush()
                log.info("%s", rec)
                if score > best:
                    best = score
                    save = {"model": model.state_dict(), "hp": hp, "step": step, **per}
                    torch.save(save, out / ".best.pt")
                    os.replace(out / ".best.pt", out / "best.pt")
    minutes = (time.monotonic() - t0) / 60
    (out / "train_summary.json").write_text(
        json.dumps({"steps": step, "minutes": minutes, "best": best, "init": args.init})
    )
    return export_checkpoint(out / "best.pt", out / "model.onnx")


def validate(model: Any, val: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Mean PSNR (dB) of the model's output on (noisy, clean) HWC images."""
    import torch

    scores = []
    with torch.no_grad():
        for noisy, clean in val:
            y = model(torch.from_numpy(noisy.transpose(2, 0, 1)[None].copy()))[0].numpy().transpose(1, 2, 0)
            scores.append(psnr(y, clean, peak=1.0))
    return float(np.mean(scores)) if scores else float("nan")


def export_checkpoint(ckpt_path: Path, onnx_path: Path, opset: int = 17) -> Path:
    """Export ``ckpt_path`` to ONNX (``input``/``output`` [1, 3, H, W], H and W dynamic), written atomically
    and checked against torch at two sizes."""
    import onnx
    import onnxruntime as ort
    import torch

    ckpt = torch.load(ckpt_path, weights_only=False)
    hp = dict(ckpt["hp"])
    model = make_model(**hp)
    model.load_state_dict(ckpt["model"])
    model.eval()
    x = torch.rand(1, hp.get("channels", 3), 64, 96)
    fd, tmp = tempfile.mkstemp(prefix=".export-", suffix=".onnx", dir=onnx_path.parent)
    os.close(fd)
    try:
        torch.onnx.export(
            model,
            (x,),
            tmp,
            input_names=["input"],
            output_names=["output"],
            dynamic_axes={"input": {2: "height", 3: "width"}, "output": {2: "height", 3: "width"}},
            opset_version=opset,
            dynamo=False,
        )
        m = onnx.load(tmp)
        m.doc_string = f"edge-sdk video denoiser: {n_params(model)} parameters, {json.dumps(hp)}"
        meta = {"edge_sdk.color": "rgb", "edge_sdk.range": "0..1", "edge_sdk.multiple": str(hp["scale"])}
        for k, v in meta.items():
            m.metadata_props.add(key=k, value=v)
        onnx.checker.check_model(m)
        onnx.save(m, tmp)
        sess = ort.InferenceSession(tmp, providers=["CPUExecutionProvider"])
        for shape in ((1, x.shape[1], 64, 96), (1, x.shape[1], 120, 80)):
            t = torch.rand(*shape)
            with torch.no_grad():
                ref = model(t).numpy()
            got = sess.run(None, {"input": t.numpy()})[0]
            if not np.allclose(got, ref, atol=1e-5):
                raise RuntimeError(f"ONNX differs from torch at {shape}: {np.abs(got - ref).max():.2e}")
        os.replace(tmp, onnx_path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return onnx_path


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m edge_sdk.train.video_denoiser --out DIR [--minutes M] [--steps N]``."""
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--out", required=True, help="run folder (best.pt, train_log.jsonl, model.onnx, card)")
    p.add_argument("--steps", type=int, default=100000)
    p.add_argument("--minutes", type=float, default=25.0, help="wall-clock training budget (0: steps only)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--crop", type=int, default=96)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--eval-every", dest="eval_every", type=int, default=500)
    p.add_argument("--val-images", dest="val_images", type=int, default=5)
    p.add_argument("--val-size", dest="val_size", type=int, default=256)
    p.add_argument("--max-images", dest="max_images", type=int, default=0, help="0: all training images")
    p.add_argument("--init", default="", help="warm start from this checkpoint (warm_start's docstring)")
    p.add_argument("--no-card", dest="card", action="store_false", help="skip scoring and the model card")
    p.add_argument("--arch", choices=ARCHS, default="quarter", help="layout (make_model's docstring)")
    p.add_argument("--max-sigma", dest="max_sigma", type=float, default=55.0, help="Gaussian σ in [0, this]")
    p.add_argument("--val-sigmas", dest="val_sigmas", default="25", help="comma-separated; best: their mean")
    for k, v in DEFAULTS.items():
        p.add_argument(f"--{k.replace('_', '-')}", dest=k, type=int, default=v)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    path = train(args)
    if args.card:
        from edge_sdk.train.video_card import write_card

        command = "python -m edge_sdk.train.video_denoiser " + shlex.join(
            sys.argv[1:] if argv is None else argv
        )
        write_card(Path(args.out), command, max_sigma=args.max_sigma, val_sigmas=args.val_sigmas)
    print(path)


if __name__ == "__main__":
    main()
