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

I/O: ``input`` float32 [1, 3, H, W] RGB in [0, 1] → ``output`` the same shape, denoised.

Data (``image_data``): scikit-image and opencv-doc sample images minus the held-out set, random crops
with flips and rotations; noise is Gaussian with σ uniform in [0, 55] (0-255 scale) for 70 % of crops
and Poisson-Gaussian (a small sensor) for the rest. Loss: MSE (what PSNR scores).

    python -m edge_sdk.recipes.video_denoiser --out /work/runs/video --minutes 25

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

from edge_sdk.recipes import image_data

log = logging.getLogger("edge_sdk.recipes.video_denoiser")

DEFAULTS = {"scale": 4, "width": 48, "depth": 3, "fine": 24}
EVAL_SIGMAS = (15, 25, 50)


def make_model(scale: int = 4, width: int = 48, depth: int = 3, channels: int = 3, fine: int = 24) -> Any:
    """The denoiser: two stride-2 convs take the image to 1/``scale`` (4), ``depth`` 3×3 convs of ``width``
    work there, a stride-2 transposed conv comes back to half size where a skip from the way down and one
    3×3 conv of ``fine`` channels restore fine detail, and a last stride-2 transposed conv gives the noise."""
    import torch
    from torch import nn

    if scale != 4:
        raise ValueError("this architecture works at quarter resolution: scale must be 4")

    class VideoDenoiser(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.hp = {"scale": scale, "width": width, "depth": depth, "channels": channels, "fine": fine}
            self.down1 = nn.Conv2d(channels, fine, 2, stride=2)
            self.down2 = nn.Conv2d(fine, width, 2, stride=2)
            self.body = nn.Sequential(
                *[m for _ in range(depth) for m in (nn.Conv2d(width, width, 3, padding=1), nn.ReLU())]
            )
            self.up1 = nn.ConvTranspose2d(width, fine, 2, stride=2)
            self.fine = nn.Conv2d(fine, fine, 3, padding=1)
            self.up2 = nn.ConvTranspose2d(fine, channels, 2, stride=2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            half = torch.relu(self.down1(x))
            low = self.body(torch.relu(self.down2(half)))
            half = torch.relu(self.fine(torch.relu(self.up1(low) + half)))
            return torch.clamp(x - self.up2(half), 0.0, 1.0)

    return VideoDenoiser()


def n_params(model: Any) -> int:
    """Trainable parameters of ``model``."""
    return sum(p.numel() for p in model.parameters())


def make_batch(
    images: list[np.ndarray], batch: int, crop: int, rng: np.random.Generator, max_sigma: float = 55.0
) -> tuple[np.ndarray, np.ndarray]:
    """(noisy, clean) NCHW float32 crops, flipped/rotated at random, noise as the module docstring says."""
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
    model = make_model(**hp)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    # a held-out crop per image keeps evaluation a second or two; the card scores whole images
    val_rng = np.random.default_rng(1234)
    val = []
    for img in held[: args.val_images]:
        c = _crop_to(img.pixels[: args.val_size, : args.val_size], hp["scale"])
        val.append((image_data.gaussian(c, 25, val_rng), c))
    log.info("%d training images, %d parameters, hp %s", len(pixels), n_params(model), hp)
    deadline = time.monotonic() + args.minutes * 60 if args.minutes else float("inf")
    best, t0, step = -1.0, time.monotonic(), 0
    with open(out / "train_log.jsonl", "a", encoding="utf-8") as logf:
        while step < args.steps and time.monotonic() < deadline:
            # cosine decay over whichever budget ends first, judged by elapsed share of each
            done = max(step / args.steps, (time.monotonic() - t0) / (deadline - t0) if args.minutes else 0)
            for g in opt.param_groups:
                g["lr"] = args.lr * (0.02 + 0.98 * 0.5 * (1 + np.cos(np.pi * min(done, 1.0))))
            noisy, clean = make_batch(pixels, args.batch, args.crop, rng)
            loss = torch.mean((model(torch.from_numpy(noisy)) - torch.from_numpy(clean)) ** 2)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            last = step >= args.steps or time.monotonic() >= deadline
            if step % args.eval_every == 0 or last:
                score = validate(model, val)
                rec = {"step": step, "loss": loss.item(), "val_psnr_s25": score, "s": time.monotonic() - t0}
                logf.write(json.dumps(rec) + "\n")
                logf.flush()
                log.info("%s", rec)
                if score > best:
                    best = score
                    save = {"model": model.state_dict(), "hp": hp, "step": step, "val_psnr_s25": score}
                    torch.save(save, out / ".best.pt")
                    os.replace(out / ".best.pt", out / "best.pt")
    minutes = (time.monotonic() - t0) / 60
    (out / "train_summary.json").write_text(json.dumps({"steps": step, "minutes": minutes, "best": best}))
    return export_checkpoint(out / "best.pt", out / "model.onnx")


def validate(model: Any, val: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Mean PSNR (dB) of the model's output on (noisy, clean) HWC images."""
    import torch

    scores = []
    with torch.no_grad():
        for noisy, clean in val:
            y = model(torch.from_numpy(noisy.transpose(2, 0, 1)[None].copy()))[0].numpy().transpose(1, 2, 0)
            scores.append(psnr(y, clean))
    return float(np.mean(scores)) if scores else float("nan")


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB of ``a`` against ``b``."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float(10 * np.log10(peak**2 / max(mse, 1e-12)))


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
    """Command line: ``python -m edge_sdk.recipes.video_denoiser --out DIR [--minutes M] [--steps N]``."""
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
    p.add_argument("--no-card", dest="card", action="store_false", help="skip scoring and the model card")
    for k, v in DEFAULTS.items():
        p.add_argument(f"--{k}", type=int, default=v)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    path = train(args)
    if args.card:
        from edge_sdk.recipes.video_card import write_card

        command = "python -m edge_sdk.recipes.video_denoiser " + shlex.join(
            sys.argv[1:] if argv is None else argv
        )
        write_card(Path(args.out), command)
    print(path)


if __name__ == "__main__":
    main()
