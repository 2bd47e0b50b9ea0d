"""The video denoiser's model card: held-out PSNR/SSIM measured on the exported ONNX, data and licences.

    python -m edge_sdk.train.video_card RUN_DIR --command "python -m edge_sdk.train.video_denoiser ..." \
        [--dest edge_sdk/zoo/video]

scores ``RUN_DIR/model.onnx`` on every held-out image at σ 15/25/50 (seed 0) and writes
``MODEL_CARD.md`` into ``--dest`` (default ``RUN_DIR``), atomically.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
from pathlib import Path

import numpy as np

from edge_sdk.errors import BadInputError
from edge_sdk.train import image_data

SIGMAS = (15, 25, 50)


def score_held_out(model: Path, seed: int = 0) -> dict[int, dict[str, float]]:
    """Mean PSNR/SSIM of the noisy input and of the model's output over the held-out images, per σ."""
    import onnxruntime as ort
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    _, held = image_data.split()
    res: dict[int, dict[str, float]] = {}
    for sigma in SIGMAS:
        rng = np.random.default_rng(seed)
        rows = []
        for img in held:
            h, w = (s - s % 8 for s in img.pixels.shape[:2])
            clean = img.pixels[:h, :w]
            noisy = image_data.gaussian(clean, sigma, rng)
            out = sess.run(None, {"input": noisy.transpose(2, 0, 1)[None].copy()})[0][0].transpose(1, 2, 0)
            rows.append(
                [
                    peak_signal_noise_ratio(clean, noisy, data_range=1.0),
                    peak_signal_noise_ratio(clean, out, data_range=1.0),
                    structural_similarity(clean, noisy, data_range=1.0, channel_axis=2),
                    structural_similarity(clean, out, data_range=1.0, channel_axis=2),
                ]
            )
        m = np.mean(rows, axis=0)
        res[sigma] = {"psnr_noisy": m[0], "psnr": m[1], "ssim_noisy": m[2], "ssim": m[3]}
    return res


def _check_relative(command: str) -> None:
    """A card ships in the package: the commands it records name paths relative to the repository, never
    the training machine's own."""
    absolute = [w for w in shlex.split(command, comments=True) if w.startswith("/")]
    if absolute:
        raise BadInputError(
            f"the recorded command names absolute paths ({', '.join(absolute)}); "
            "give it as run from the repository root, with relative paths"
        )


def write_card(
    run: Path,
    command: str,
    dest: Path | None = None,
    init_command: str | list[str] = "",
    max_sigma: float = 55.0,
    val_sigmas: str = "25",
) -> Path:
    """Write ``MODEL_CARD.md`` for ``run/model.onnx`` into ``dest`` (default ``run``), atomically.
    ``init_command``: the training command(s) of the checkpoint(s) the run was warm-started from
    (``--init``), oldest first; ``max_sigma`` and ``val_sigmas``: the run's ``--max-sigma`` and
    ``--val-sigmas``."""
    import onnx

    lineage = [init_command] if isinstance(init_command, str) else list(init_command)
    lineage = [c for c in lineage if c]
    for c in (command, *lineage):
        _check_relative(c)
    model = run / "model.onnx"
    summary = (
        json.loads((run / "train_summary.json").read_text()) if (run / "train_summary.json").exists() else {}
    )
    doc = onnx.load(str(model)).doc_string
    linear = '"linskip"' in doc
    named = [f"σ {s}" for s in val_sigmas.split(",")]
    sigmas = " and ".join([", ".join(named[:-1]), named[-1]] if len(named) > 1 else named)
    scores = score_held_out(model)
    train, held = image_data.split()
    lines = [
        "# video — edge-sdk's small live-video denoiser",
        "",
        f"{doc}. A blind Gaussian / Poisson-Gaussian denoiser for live video on a CPU: strided convolutions",
        "take the frame to quarter resolution where 3×3 convolutions see a wide context cheaply, transposed",
        "convolutions (with a half-resolution skip) bring the predicted noise back to full size; the output",
        "is the input minus that noise, clipped."
        + (
            " A linear path (a stride-2 conv and a 3×3 conv, no ReLU) carries a high-pass of the input "
            "straight to the last transposed conv, so strong noise need not be copied through ReLU layers."
            if linear
            else ""
        )
        + " Architecture and why: the recipe's docstring.",
        "",
        "| | |",
        "| --- | --- |",
        f"| Size | {model.stat().st_size / 1024:.0f} KB (float32) |",
        "| I/O | `input` float32 [1, 3, H, W] RGB in [0, 1], H and W dynamic (multiples of 4) → `output`, "
        "the same shape |",
        "| Format | ONNX, opset 17, `torch.onnx.export`; converts to ONNX int8, OpenVINO and TFLite "
        "(`tests/edge_sdk/test_video_denoise_stage.py`) |",
        "| Stage | `video.denoise` (`edge_sdk/stages/video_denoise.py`), model `zoo:video` |",
        "| Made by | `edge_sdk/train/video_denoiser.py`; this card by `edge_sdk/train/video_card.py` |",
        "| Licence | Apache-2.0 (the project's); the training data's licences are below |",
        "",
        "## Training",
        "",
        "```",
        command,
        "```",
        "",
        f"{summary.get('steps', '?')} steps in {summary.get('minutes', float('nan')):.1f} min on one CPU "
        "thread (nice 5, sharing the machine with other jobs). Crops 96×96 with flips and rotations; noise:",
        f"Gaussian with σ uniform in [0, {max_sigma:g}] (0-255 scale) for 70 % of crops, Poisson-Gaussian",
        "(20-1000 photons at full scale, read noise σ 0-10) for the rest. MSE loss, Adam, cosine schedule;",
        f"the checkpoint with the best mean PSNR on held-out crops at {sigmas} is exported, so the held-out",
        "figures below are slightly optimistic; no frame of vtest.avi played any part.",
        "",
        *(
            [
                "Warm-started (`--init`, `warm_start` in the recipe: the smaller model's weights copied in, "
                "new 3×3 convs starting as the identity, a new linear path read with zero weights) from "
                "runs made by these commands, oldest first, each warm-started from the one before:",
                "",
                "```",
                *(lineage or ["(command not recorded)"]),
                "```",
                "",
            ]
            if summary.get("init") or lineage
            else []
        ),
        "## Data and licences",
        "",
        f"Trained on {len(train)} images:",
        "",
        "- scikit-image "
        + ", ".join(
            f"`{n}` ({lic})"
            for n, lic in image_data.SKIMAGE_LICENCES.items()
            if f"skimage:{n}" not in image_data.HELD_OUT
        )
        + ".",
        f"- opencv-doc `examples/data`: {len([i for i in train if i.name.startswith('opencv:')])} photos — "
        f"{image_data.OPENCV_LICENCE}.",
        "",
        "**Held out** (never trained on): "
        + ", ".join(f"`{i.name}`" for i in held)
        + ", and every frame of `vtest.avi`.",
        "",
        "## Held-out quality (exported ONNX, fp32)",
        "",
        f"Mean over the {len(held)} held-out images (cropped to multiples of 8), Gaussian noise, seed 0;",
        "PSNR in dB and SSIM (scikit-image), images in [0, 1]. Regenerate with",
        "`python -m edge_sdk.train.video_card RUN_DIR --command ... --dest edge_sdk/zoo/video`.",
        "",
        "| σ | noisy PSNR | model PSNR | noisy SSIM | model SSIM |",
        "|---|---|---|---|---|",
    ]
    for sigma, s in scores.items():
        lines.append(
            f"| {sigma} | {s['psnr_noisy']:.2f} | {s['psnr']:.2f} | {s['ssim_noisy']:.3f} | {s['ssim']:.3f} |"
        )
    lines += [
        "",
        "Comparison with OpenCV non-local means, BM3D and a bilateral filter, on these images and on",
        "`vtest.avi`, with speed: `docs/video-quality.md`.",
        "",
    ]
    dest = dest or run
    path = dest / "MODEL_CARD.md"
    tmp = path.with_name(f".MODEL_CARD.{os.getpid()}.md")
    tmp.write_text("\n".join(lines), encoding="utf-8")
    os.replace(tmp, path)
    return path


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m edge_sdk.train.video_card RUN_DIR --command CMD``."""
    p = argparse.ArgumentParser(description="write the video denoiser's model card")
    p.add_argument("run", type=Path)
    p.add_argument("--command", required=True, help="the training command, as run")
    p.add_argument("--dest", type=Path, help="folder to write the card into (default RUN_DIR)")
    p.add_argument(
        "--init-command",
        dest="init_command",
        action="append",
        default=[],
        help="the warm start's own command; repeat for a chain, oldest first",
    )
    p.add_argument("--max-sigma", dest="max_sigma", type=float, default=55.0, help="the run's --max-sigma")
    p.add_argument("--val-sigmas", dest="val_sigmas", default="25", help="the run's --val-sigmas")
    args = p.parse_args(argv)
    print(write_card(args.run, args.command, args.dest, args.init_command, args.max_sigma, args.val_sigmas))


if __name__ == "__main__":
    main()
