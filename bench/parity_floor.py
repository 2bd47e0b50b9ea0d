"""How far legitimate conversions stay from what the parity check calls collapsed
(``converters/parity.py``): every installed target × precision of the local zoo and test models, with
each output's cosine similarity and the spread of its values against the source's.

    .venv/bin/python bench/parity_floor.py [--targets onnx:fp32,...] [--models nsnet2-16k,...]

Prints one line per conversion: the lowest cosine over its outputs, the lowest ratio of an output's
spread (max - min) to the source's, the range of the ratios of their root mean squares, and whether the
check called it collapsed. Converts with a fresh
conversion cache, so every line is a real conversion.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _matrix() -> Any:
    spec = importlib.util.spec_from_file_location(
        "conversion_matrix", ROOT / "bench" / "conversion_matrix.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _bundled(name: str, rng: np.random.Generator) -> Any:
    """A model shipped in edge_sdk/zoo, with random inputs (batch 1, other free dims 16)."""
    from edge_sdk.converters.graph.onnx_model import load_onnx, tensor_specs

    path = ROOT / "edge_sdk" / "zoo" / name / "model.onnx"
    inputs, _ = tensor_specs(load_onnx(path))
    shapes = {
        s.name: [d if isinstance(d, int) and d > 0 else (1 if d == "batch" else 16) for d in s.shape]
        for s in inputs
    }
    samples = [{k: rng.standard_normal(v).astype(np.float32) for k, v in shapes.items()} for _ in range(8)]
    return _matrix().MatrixModel(name, str(path), samples, "8 random normal", {"input_shapes": shapes})


def _transformer(rng: np.random.Generator) -> Any:
    """docs/compression.md's int4 model: two encoder layers (d_model 128) and a linear head."""
    import torch

    torch.manual_seed(0)

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            layer = torch.nn.TransformerEncoderLayer(128, 4, 512, batch_first=True)
            self.enc = torch.nn.TransformerEncoder(layer, 2)
            self.head = torch.nn.Linear(128, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.enc(x))

    xs = [{"x": rng.standard_normal((1, 16, 128)).astype(np.float32)} for _ in range(4)]
    return _matrix().MatrixModel(
        "transformer-test",
        Net().eval(),
        xs,
        "4 random normal",
        {"example_inputs": {"x": torch.from_numpy(xs[0]["x"])}, "options": {"group_size": 32}},
    )


def models(rng: np.random.Generator) -> list[Any]:
    m = _matrix()
    from edge_sdk import zoo

    audio = m.speech()
    found = []
    nsnet = zoo.cached("nsnet2-16k")
    if nsnet is not None:
        found.append(
            m.MatrixModel(
                "nsnet2-16k",
                str(nsnet),
                m.log_power_frames(audio),
                "log-power spectra",
                {"input_shapes": {"input": [1, 100, 161]}},
            )
        )
    silero = zoo.cached("silero-vad-op18")
    if silero is not None:
        from edge_sdk.demo.formats import stream_vad
        from edge_sdk.runtimes import load

        _, steps, _ = stream_vad(load(silero), audio)
        found.append(
            m.MatrixModel(
                "silero-vad-op18",
                str(silero),
                steps[::12],
                "streamed clip",
                {"fixed_inputs": {"sr": 16000}, "input_shapes": {"input": [1, 576], "state": [2, 1, 128]}},
            )
        )
    found += [_bundled(n, rng) for n in ("tiny-denoiser", "commands-mfcc", "video")]
    found += m.torch_models(rng)
    found.append(_transformer(rng))
    return found


def _shape(art: Any) -> tuple[float, float, float]:
    """Over the outputs, on the reference set: the lowest ratio of the converted values' spread (max - min)
    to the source's, and the lowest and highest ratio of their root mean squares."""
    from edge_sdk.verification import reference_set

    _, fp32, built = reference_set.read(art)
    spreads, scales = [], []
    for name in fp32[0]:
        ref = np.concatenate([np.ravel(s[name]).astype(np.float64) for s in fp32])
        got = np.concatenate([np.ravel(s[name]).astype(np.float64) for s in built])
        if np.ptp(ref) > 0:
            spreads.append(float(np.ptp(got) / np.ptp(ref)))
        if np.any(ref):
            scales.append(float(np.sqrt(np.mean(got**2) / np.mean(ref**2))))
    nan = float("nan")
    return min(spreads, default=nan), min(scales, default=nan), max(scales, default=nan)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", help="comma-separated subset (default: every installed target)")
    ap.add_argument("--models", help="comma-separated subset of the model names")
    args = ap.parse_args()
    from edge_sdk.converters import all_targets, convert
    from edge_sdk.converters.parity import ParityCollapsed
    from edge_sdk.converters.targets import unavailable_formats
    from edge_sdk.errors import EdgeSDKError

    skipped = unavailable_formats()
    wanted = args.models.split(",") if args.models else None
    targets = args.targets.split(",") if args.targets else all_targets()
    print(f"{'model':18} {'target':24} {'cosine':>8} {'spread':>7} {'rms':>13}  verdict", flush=True)
    with tempfile.TemporaryDirectory() as out, tempfile.TemporaryDirectory() as cache:
        os.environ["EDGE_SDK_CONVERSION_CACHE"] = cache  # every line a real conversion
        for m in models(np.random.default_rng(0)):
            if wanted and m.name not in wanted:
                continue
            for target in targets:
                if target.split(":")[0] in skipped:
                    continue
                kw = dict(m.convert_options)
                if not target.endswith("int4-weights"):  # group_size is the int4 formats' option only
                    kw.pop("options", None)
                try:
                    (art,) = convert(m.source, [target], out=out, name=m.name, calibration=m.samples, **kw)
                except ParityCollapsed as e:
                    print(f"{m.name:18} {target:24} {'':>30}  COLLAPSED: {e}", flush=True)
                    continue
                except EdgeSDKError as e:
                    print(f"{m.name:18} {target:24} {'':>30}  not converted: {str(e)[:80]}", flush=True)
                    continue
                cosine = min(o["cosine_similarity"] for o in art.parity["outputs"].values())
                spread, low, high = _shape(art)
                print(
                    f"{m.name:18} {target:24} {cosine:8.5f} {spread:7.3f} {low:6.3f}-{high:6.3f}  ok",
                    flush=True,
                )


if __name__ == "__main__":
    main()
