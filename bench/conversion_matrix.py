"""Convert real third-party models and our test models to every installed format × precision, and
write the result to docs/conversion-matrix.md.

    .venv/bin/python bench/conversion_matrix.py [--out docs/conversion-matrix.md] [--targets onnx:fp32,...]

Models: Silero VAD (If-less op18 variant, sr fixed to 16 kHz; inputs: the bundled LibriVox clip
streamed through the model), NSNet2 16 kHz (inputs: log-power spectra of the same clip), the
DeepFilterNet3 encoder (inputs: random features, 20 frames), and a small conv classifier and GRU
made here with torch (random inputs).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from importlib import resources
from pathlib import Path

import numpy as np

from edge_sdk import zoo
from edge_sdk.bench.matrix import MatrixModel, run_matrix, to_markdown
from edge_sdk.demo.formats import CLIP, read_wav, stream_vad
from edge_sdk.runtimes import load

ROOT = Path(__file__).resolve().parents[1]


def speech() -> np.ndarray:
    with resources.as_file(resources.files("edge_sdk") / "samples" / CLIP) as p:
        return read_wav(p)


def log_power_frames(audio: np.ndarray, frames: int = 100) -> list[dict[str, np.ndarray]]:
    """NSNet2's input: log power spectrum of 20 ms Hann windows every 10 ms (161 bins at 16 kHz)."""
    win, hop = 320, 160
    window = np.hanning(win + 1)[:-1].astype(np.float32)
    starts = range(0, len(audio) - win, hop)
    spec = np.stack([np.fft.rfft(audio[s : s + win] * window) for s in starts])
    feats = np.log(np.maximum(np.abs(spec) ** 2, 1e-12)).astype(np.float32)
    return [{"input": feats[None, i : i + frames]} for i in range(0, len(feats) - frames, frames // 2)]


def torch_models(rng: np.random.Generator) -> list[MatrixModel]:
    import torch

    torch.manual_seed(0)
    conv = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1),
        torch.nn.BatchNorm2d(16),
        torch.nn.ReLU(),
        torch.nn.Conv2d(16, 32, 3, stride=2, padding=1),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(32, 10),
    ).eval()

    class Gru(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gru = torch.nn.GRU(40, 64, batch_first=True)
            self.fc = torch.nn.Linear(64, 12)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(self.gru(x)[0])

    conv_in = [{"x": rng.standard_normal((1, 3, 32, 32)).astype(np.float32)} for _ in range(16)]
    gru_in = [{"x": rng.standard_normal((1, 25, 40)).astype(np.float32)} for _ in range(16)]
    return [
        MatrixModel(
            "conv-test",
            conv,
            conv_in,
            "16 random normal images 1×3×32×32",
            {"example_inputs": {"x": torch.from_numpy(conv_in[0]["x"])}},
        ),
        MatrixModel(
            "gru-test",
            Gru().eval(),
            gru_in,
            "16 random normal sequences 1×25×40",
            {"example_inputs": {"x": torch.from_numpy(gru_in[0]["x"])}},
        ),
    ]


def models() -> list[MatrixModel]:
    rng = np.random.default_rng(0)
    audio = speech()
    silero = zoo.resolve("silero-vad-op18")
    _, steps, _ = stream_vad(load(silero), audio)
    dfn_in = [
        {
            "feat_erb": rng.standard_normal((1, 1, 20, 32)).astype(np.float32),
            "feat_spec": rng.standard_normal((1, 2, 20, 96)).astype(np.float32),
        }
        for _ in range(8)
    ]
    return [
        MatrixModel(
            "silero-vad-op18",
            str(silero),
            steps[::12],
            f"{len(steps[::12])} steps of the bundled LibriVox clip streamed through the model "
            "(real audio and states); sr fixed to 16000, shapes fixed to one stream of 576-sample chunks",
            {"fixed_inputs": {"sr": 16000}, "input_shapes": {"input": [1, 576], "state": [2, 1, 128]}},
        ),
        MatrixModel(
            "nsnet2-16k",
            str(zoo.resolve("nsnet2-16k")),
            log_power_frames(audio),
            "log-power spectra (100 frames each) of the bundled LibriVox clip; shape fixed to [1, 100, 161]",
            {"input_shapes": {"input": [1, 100, 161]}},
        ),
        MatrixModel(
            "deepfilternet3-enc",
            str(zoo.resolve("deepfilternet3-enc")),
            dfn_in,
            "8 random normal feature sets, 20 frames (real DFN features need its 48 kHz front end); "
            "shapes fixed to 20 frames",
            {"input_shapes": {"feat_erb": [1, 1, 20, 32], "feat_spec": [1, 2, 20, 96]}},
        ),
        *torch_models(rng),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "conversion-matrix.md")
    ap.add_argument("--targets", help="comma-separated subset (default: every installed target)")
    args = ap.parse_args()
    ms = models()
    with tempfile.TemporaryDirectory() as tmp:
        cells = run_matrix(
            ms,
            Path(tmp),
            targets=args.targets.split(",") if args.targets else None,
            progress=lambda s: print(s, file=sys.stderr, flush=True),
        )
    args.out.write_text(to_markdown(cells, ms, "python bench/conversion_matrix.py") + "\n")
    ok = sum(c.ok for c in cells)
    print(f"{ok} of {len(cells)} cells converted; written to {args.out}")


if __name__ == "__main__":
    main()
