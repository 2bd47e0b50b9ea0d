"""A real third-party model through the whole path: pulled from its PyPI wheel, converted, run."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pytest

import edge_sdk
from edge_sdk import zoo
from edge_sdk.demo.formats import CLIP, read_wav, stream_vad

pytestmark = pytest.mark.network


@pytest.fixture(scope="module")
def steps(silero_cache: Path) -> list[dict[str, np.ndarray]]:
    """Every streaming step of the bundled speech clip through the original model: real inputs and states."""
    audio = read_wav(Path(str(resources.files("edge_sdk") / "samples" / CLIP)))
    _, steps, _ = stream_vad(edge_sdk.load(zoo.resolve("silero-vad", cache_dir=silero_cache)), audio)
    return steps


@pytest.mark.parametrize(("precision", "max_prob_error"), [("fp16", 0.1), ("int8-dynamic", None)])
def test_silero_converts_with_parity_recorded(
    silero_cache: Path, steps: list, tmp_path: Path, precision: str, max_prob_error: float | None
) -> None:
    source = zoo.resolve("silero-vad", cache_dir=silero_cache)
    (art,) = edge_sdk.convert(
        str(source),
        [f"onnx:{precision}"],
        parity_data=steps,
        parity_samples=len(steps),
        fixed_inputs={"sr": 16000},
        out=tmp_path,
        name="silero-vad",
    )
    p = edge_sdk.load_artifact(art.path).parity
    assert p["samples"] == len(steps) and p["inputs"] == "parity data"
    assert set(p["outputs"]) == {"output", "stateN"}
    assert art.source["sha256"] == zoo.catalog()["silero-vad"].sha256
    assert art.recipe["simplify"]["fixed_inputs"] == {"sr": 16000}
    assert art.recipe["onnx_checker"] == "passed"  # the quantiser leaves an If ahead of what it reads
    session = edge_sdk.load(art.path)
    assert session.input_names == ["input", "state"]  # sr became a constant
    if max_prob_error is not None:
        assert p["outputs"]["output"]["max_abs_error"] < max_prob_error
    else:
        # int8-dynamic is recorded honestly, whatever it costs: here it must have quantised something.
        assert art.recipe["quantized_weights"] > 0
        assert art.size < 0.5 * source.stat().st_size


def test_unquantisable_graph_is_refused(silero_cache: Path, tmp_path: Path) -> None:
    """Without fixing `sr`, Silero's compute stays inside If branches the quantiser does not enter."""
    source = zoo.resolve("silero-vad", cache_dir=silero_cache)
    with pytest.raises(edge_sdk.ConversionError, match="If subgraphs"):
        edge_sdk.convert(
            str(source),
            ["onnx:int8-dynamic"],
            parity_data=[
                {
                    "input": np.zeros((1, 576), np.float32),
                    "state": np.zeros((2, 1, 128), np.float32),
                    "sr": np.array(16000, np.int64),
                }
            ],
            out=tmp_path,
        )
    assert list(tmp_path.iterdir()) == []


def test_quantising_writes_nothing_into_the_working_directory(
    silero_cache: Path, steps: list, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """onnxruntime's symbolic shape inference dumps files into the cwd when it gives up on a graph."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    source = zoo.resolve("silero-vad", cache_dir=silero_cache)
    edge_sdk.convert(
        str(source),
        ["onnx:int8", "onnx:int8-dynamic"],
        calibration=steps[:8],
        fixed_inputs={"sr": 16000},
        out=tmp_path / "out",
    )
    assert list(cwd.iterdir()) == []
