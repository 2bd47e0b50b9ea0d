"""The video denoiser recipe: its data split holds out what the card says, a few steps on tiny crops train
and export a valid ONNX with dynamic height and width, and the model card is written from measurements."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from edge_sdk.errors import BadInputError
from edge_sdk.train import image_data

pytest.importorskip("torch")


def test_held_out_images_are_never_in_training() -> None:
    train, held = image_data.split()
    assert sorted(i.name for i in held) == sorted(image_data.HELD_OUT)
    assert not {i.name for i in train} & set(image_data.HELD_OUT)
    assert len(train) >= 20 and all(i.licence for i in train + held)
    assert all(i.pixels.dtype == np.float32 and i.pixels.shape[2] == 3 for i in held)
    frames = image_data.vtest_frames(3, size=(64, 48))
    assert len(frames) == 3 and frames[0].shape == (48, 64, 3)


def test_noise_models() -> None:
    rng = np.random.default_rng(0)
    flat = np.full((200, 200, 3), 0.5, np.float32)
    assert abs(np.std(image_data.gaussian(flat, 25, rng)) * 255 - 25) < 1
    dark, bright = (image_data.poisson_gaussian(np.full_like(flat, v), 100, 0, rng) for v in (0.1, 0.8))
    assert np.std(bright) > np.std(dark)  # shot noise grows with the signal


def test_recipe_trains_a_few_steps_and_exports_onnx(tmp_path: Path) -> None:
    from edge_sdk.train import video_card, video_denoiser

    out = tmp_path / "run"
    args = ["--out", str(out), "--steps", "6", "--minutes", "0", "--batch", "2", "--crop", "32"]
    args += ["--eval-every", "3", "--val-images", "1", "--val-size", "64", "--max-images", "3", "--no-card"]
    args += ["--width", "8", "--depth", "1", "--fine", "4"]
    video_denoiser.main(args)
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [3, 6]
    model = onnx.load(out / "model.onnx")
    onnx.checker.check_model(model)
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, "height", "width"]
    sess = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    y = sess.run(None, {"input": np.random.default_rng(0).random((1, 3, 40, 56), np.float32)})[0]
    assert y.shape == (1, 3, 40, 56) and 0 <= y.min() and y.max() <= 1
    assert not list(out.glob(".*"))  # atomic writes leave no temp files
    card = video_card.write_card(out, "python -m edge_sdk.train.video_denoiser --out X")
    text = card.read_text()
    assert "| 25 |" in text and "opencv:baboon.jpg" in text and "vtest.avi" in text


def test_unet_arch_warm_starts_from_a_quarter_checkpoint_and_exports(tmp_path: Path) -> None:
    """``--arch unet --init CKPT`` widens a trained ``quarter`` model without changing what it computes (up
    to the 1e-3 noise on the new identity convs), trains on from there and exports with its hp."""
    import torch

    from edge_sdk.train import video_card, video_denoiser

    torch.manual_seed(0)
    small = video_denoiser.make_model(width=8, depth=1, fine=4)
    assert "fine_depth" not in small.hp and "arch" not in small.hp  # the shipped hp stay as they were
    torch.save({"model": small.state_dict(), "hp": small.hp}, tmp_path / "small.pt")
    big = video_denoiser.make_model(arch="unet", width=12, depth=3, fine=6, fine_depth=2)
    video_denoiser.warm_start(big, tmp_path / "small.pt")
    x = torch.rand(1, 3, 32, 48)
    with torch.no_grad():
        assert torch.allclose(big(x), small(x), atol=2e-2)
    with pytest.raises(ValueError, match="does not fit"):
        video_denoiser.warm_start(
            video_denoiser.make_model(arch="unet", width=4, fine=4), tmp_path / "small.pt"
        )
    with pytest.raises(ValueError, match="arch"):
        video_denoiser.make_model(arch="half")

    out = tmp_path / "run"
    args = ["--out", str(out), "--steps", "3", "--minutes", "0", "--batch", "2", "--crop", "32"]
    args += ["--eval-every", "3", "--val-images", "1", "--val-size", "64", "--max-images", "3", "--no-card"]
    args += ["--arch", "unet", "--width", "12", "--depth", "3", "--fine", "6", "--fine-depth", "2"]
    video_denoiser.main([*args, "--init", str(tmp_path / "small.pt")])
    hp = torch.load(out / "best.pt", weights_only=False)["hp"]
    assert hp["arch"] == "unet" and hp["fine_depth"] == 2
    assert json.loads((out / "train_summary.json").read_text())["init"] == str(tmp_path / "small.pt")
    sess = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    y = sess.run(None, {"input": np.random.default_rng(0).random((1, 3, 40, 56), np.float32)})[0]
    assert y.shape == (1, 3, 40, 56)
    text = video_card.write_card(
        out, "python -m edge_sdk.train.video_denoiser X", init_command=["W", "Y"], max_sigma=75,
        val_sigmas="15,50",
    ).read_text()  # fmt: skip
    assert "Warm-started" in text and "\nW\nY\n" in text
    assert "σ uniform in [0, 75]" in text and "at σ 15 and σ 50 is exported" in text
    with pytest.raises(BadInputError, match="absolute paths"):
        video_card.write_card(out, "python -m edge_sdk.train.video_denoiser --out /home/me/runs/v")


def test_linskip_warm_starts_exactly_from_unet_and_trains_with_wider_noise(tmp_path: Path) -> None:
    """``--arch linskip --init UNET`` starts from exactly the unet's function (the linear path is read with
    zero weights), trains with ``--max-sigma`` noise, keeps the checkpoint with the best mean PSNR over
    ``--val-sigmas`` (each logged) and exports an ONNX that matches torch (``export_checkpoint`` checks)."""
    import torch

    from edge_sdk.train import video_denoiser

    rng = np.random.default_rng(0)
    flat = [np.full((40, 40, 3), 0.5, np.float32)]
    std = {s: [] for s in (0, 75)}
    for s in std:
        for _ in range(40):
            noisy, clean = video_denoiser.make_batch(flat, 1, 32, rng, max_sigma=s)
            std[s].append(np.std(noisy - clean) * 255)
    assert np.median(std[0]) < 1 and np.median(std[75]) > 10  # the rest is Poisson-Gaussian

    torch.manual_seed(0)
    hp = {"arch": "unet", "width": 8, "depth": 1, "fine": 4, "fine_depth": 1}
    unet = video_denoiser.make_model(**hp)
    torch.save({"model": unet.state_dict(), "hp": unet.hp}, tmp_path / "unet.pt")
    lin = video_denoiser.make_model(**{**hp, "arch": "linskip", "lin": 6})
    assert lin.hp["lin"] == 6 and "lin" not in unet.hp
    video_denoiser.warm_start(lin, tmp_path / "unet.pt")
    x = torch.rand(1, 3, 32, 48)
    with torch.no_grad():
        assert torch.equal(lin(x), unet(x))

    out = tmp_path / "run"
    args = ["--out", str(out), "--steps", "2", "--minutes", "0", "--batch", "2", "--crop", "32"]
    args += ["--eval-every", "1", "--val-images", "1", "--val-size", "64", "--max-images", "3", "--no-card"]
    args += ["--arch", "linskip", "--lin", "6", "--width", "8", "--depth", "1", "--fine", "4"]
    args += [
        "--fine-depth",
        "1",
        "--max-sigma",
        "75",
        "--val-sigmas",
        "15,50",
        "--init",
        str(tmp_path / "unet.pt"),
    ]
    video_denoiser.main(args)
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert {"val_psnr_s15", "val_psnr_s50", "val_psnr"} <= set(log[0]) and "val_psnr_s25" not in log[0]
    assert all(r["val_psnr"] == pytest.approx((r["val_psnr_s15"] + r["val_psnr_s50"]) / 2) for r in log)
    best = torch.load(out / "best.pt", weights_only=False)
    assert best["hp"]["arch"] == "linskip" and best["hp"]["lin"] == 6
    assert best["val_psnr_s15"] == max(log, key=lambda r: r["val_psnr"])["val_psnr_s15"]
    sess = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    y = sess.run(None, {"input": np.random.default_rng(0).random((1, 3, 40, 56), np.float32)})[0]
    assert y.shape == (1, 3, 40, 56) and 0 <= y.min() and y.max() <= 1
