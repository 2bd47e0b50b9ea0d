"""The denoiser stages: NSNet2 streaming equals the offline NSNet2 pipeline and cleans real noisy speech;
any block size gives the same audio; the latency is what the stage says; the tiny model's I/O contract
works as soon as its file exists."""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import edge_sdk
from edge_sdk.audio.features import istft, log_power, stft
from edge_sdk.audio.mix import mix_at_snr, si_sdr, white_noise
from edge_sdk.demo.formats import read_wav
from edge_sdk.errors import BadInputError
from edge_sdk.stages import Block, make, names_of
from edge_sdk.stages.denoise import TINY_MODEL, Denoiser, denoise_array, streaming_model

CACHE = Path(__file__).resolve().parents[2] / ".cache" / "test-models"
BLOCK_SIZES = (160, 320, 512, 1000)


@pytest.fixture(scope="module")
def noisy_speech() -> tuple[np.ndarray, np.ndarray]:
    """The bundled LibriVox clip in white noise at 5 dB SNR: (noisy, clean)."""
    with resources.as_file(
        resources.files("edge_sdk") / "samples" / "librivox-sense-and-sensibility.wav"
    ) as p:
        speech = read_wav(p)
    noisy, clean, _ = mix_at_snr(speech, white_noise(len(speech), np.random.default_rng(0)), 5.0)
    return noisy, clean


def _offline(session: edge_sdk.Session, x: np.ndarray, input_name: str = "input") -> np.ndarray:
    """The offline pipeline NSNet2's own package runs: STFT of the whole signal, the model over all
    frames at once, gain clipped to [-80 dB, 1], overlap-add. One hop of zeros is appended so the last
    samples have the frame after them, as the stream's flush gives them."""
    spec = stft(np.concatenate([x, np.zeros(160, np.float32)]))
    feeds = {input_name: log_power(spec)[None]}
    for s in session.inputs:
        if s.name != input_name:  # a streaming model's state: start from zeros
            feeds[s.name] = np.zeros([d if isinstance(d, int) else 1 for d in s.shape], np.float32)
    gain = session.run(feeds)[session.output_names[0]][0]
    return istft(spec * np.clip(gain, 10 ** (-80 / 20), 1.0))[: len(x)]


# -- NSNet2 ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nsnet2() -> Denoiser:
    stage = make("denoise", "nsnet2", cache_dir=CACHE)
    assert isinstance(stage, Denoiser)
    return stage


@pytest.mark.network
def test_nsnet2_streaming_matches_the_offline_pipeline_and_improves_si_sdr(
    nsnet2: Denoiser, noisy_speech: tuple[np.ndarray, np.ndarray]
) -> None:
    noisy, clean = noisy_speech
    out = denoise_array(nsnet2, noisy)
    assert out.shape == noisy.shape and out.dtype == np.float32
    original = edge_sdk.load(CACHE / "models" / "nsnet2-16k" / "nsnet2-20ms-baseline.onnx", threads=1)
    np.testing.assert_allclose(out, _offline(original, noisy), rtol=0, atol=1e-5)
    gain_db = si_sdr(out, clean) - si_sdr(noisy, clean)
    assert gain_db > 4.0, f"NSNet2 improved SI-SDR by only {gain_db:.2f} dB"


@pytest.mark.network
def test_nsnet2_gives_the_same_audio_for_every_block_size(
    nsnet2: Denoiser, noisy_speech: tuple[np.ndarray, np.ndarray]
) -> None:
    x = noisy_speech[0][: 3 * 16000]
    outs = {b: denoise_array(nsnet2, x, block_size=b) for b in BLOCK_SIZES}
    for b in BLOCK_SIZES[1:]:
        assert np.array_equal(outs[b], outs[160]), f"block {b}: {np.abs(outs[b] - outs[160]).max()}"


@pytest.mark.network
def test_nsnet2_is_made_streaming_once_beside_the_pulled_file(nsnet2: Denoiser) -> None:
    from edge_sdk import zoo

    pulled = zoo.cached("nsnet2-16k", cache_dir=CACHE)
    assert pulled is not None
    made = streaming_model(pulled, pulled.parent)
    assert made.parent == pulled.parent and made.name.startswith("nsnet2-20ms-baseline.streaming-")
    before = made.stat().st_mtime_ns
    assert streaming_model(pulled, pulled.parent) == made and made.stat().st_mtime_ns == before
    assert [s.name for s in nsnet2.session.inputs] == ["input", "state_in_0", "state_in_1"]
    assert "CC-BY-4.0" in (nsnet2.attribution or "")


def test_the_stages_are_registered() -> None:
    assert {"nsnet2", "tiny"} <= set(names_of("denoise"))


# -- the stage's mechanics, on small models built here ----------------------------------------------


def _save(nodes: list, inputs: list, outputs: list, inits: list, path: Path) -> Path:
    graph = helper.make_graph(nodes, "g", inputs, outputs, inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    return path


def _unity_gain(path: Path) -> Path:
    """Gain 1 everywhere, and a state that counts the runs (state_out_0 = state_in_0 + 1)."""
    f = helper.make_tensor_value_info
    return _save(
        [
            helper.make_node("Shape", ["input"], ["shape"]),
            helper.make_node(
                "ConstantOfShape",
                ["shape"],
                ["output"],
                value=numpy_helper.from_array(np.ones(1, np.float32)),
            ),
            helper.make_node("Add", ["state_in_0", "one"], ["state_out_0"]),
        ],
        [
            f("input", TensorProto.FLOAT, ["batch", "frames", 161]),
            f("state_in_0", TensorProto.FLOAT, [1, "batch", 1]),
        ],
        [
            f("output", TensorProto.FLOAT, ["batch", "frames", 161]),
            f("state_out_0", TensorProto.FLOAT, [1, "batch", 1]),
        ],
        [numpy_helper.from_array(np.ones(1, np.float32), "one")],
        path,
    )


@pytest.mark.parametrize("block_size", [None, 160, 512, 1000])
def test_the_output_is_the_input_delayed_by_the_stated_latency(
    tmp_path: Path, block_size: int | None
) -> None:
    stage = Denoiser(edge_sdk.load(_unity_gain(tmp_path / "unity.onnx"), threads=1), block_size=block_size)
    expected_extra = {None: 159, 160: 0, 512: 128, 1000: 120}[block_size]
    assert stage.latency == 160 + expected_extra
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(8000) * 0.1).astype(np.float32)
    sizes = [block_size] * (len(x) // block_size) if block_size else list(rng.integers(1, 700, 40))
    out, k = [], 0
    for i, n in enumerate(sizes):
        b = stage.process(Block(x[k : k + n], 16000, k / 16000, i))
        assert len(b.samples) == len(x[k : k + n]) and b.index == i
        out.append(b.samples)
        k += n
    y = np.concatenate(out)
    lat = stage.latency
    np.testing.assert_allclose(y[lat:], x[: len(y) - lat], atol=1e-6)
    assert np.abs(y[:lat]).max() < 1e-6  # before the input arrives: silence (FFT rounding aside)
    assert stage._carried["state_in_0"].item() > 0  # the state went round


def test_a_block_of_another_size_than_the_stage_was_built_for_is_refused(tmp_path: Path) -> None:
    stage = Denoiser(edge_sdk.load(_unity_gain(tmp_path / "unity.onnx"), threads=1), block_size=320)
    stage.process(Block(np.zeros(320, np.float32), 16000, 0.0, 0))
    with pytest.raises(BadInputError, match="built for blocks of 320 samples and got one of 100"):
        stage.process(Block(np.zeros(100, np.float32), 16000, 0.02, 1))


def test_other_sample_rates_and_bad_options_are_refused(tmp_path: Path) -> None:
    session = edge_sdk.load(_unity_gain(tmp_path / "unity.onnx"), threads=1)
    with pytest.raises(BadInputError, match="takes 16000 Hz audio, got 8000 Hz"):
        Denoiser(session).process(Block(np.zeros(160, np.float32), 8000, 0.0, 0))
    with pytest.raises(BadInputError, match="min_gain_db"):
        Denoiser(session, min_gain_db=6.0)


def test_a_model_that_is_not_a_gain_model_is_refused(tmp_path: Path) -> None:
    f = helper.make_tensor_value_info
    path = _save(
        [helper.make_node("Relu", ["x"], ["y"])],
        [f("x", TensorProto.FLOAT, [1, "frames", 80])],
        [f("y", TensorProto.FLOAT, [1, "frames", 80])],
        [],
        tmp_path / "mel.onnx",
    )
    with pytest.raises(BadInputError, match=r"input 'x' is .*it must be \[batch, frames, 161\]"):
        Denoiser(edge_sdk.load(path, threads=1))


# -- the tiny model's contract -----------------------------------------------------------------------

HIDDEN, LAYERS = 8, 2


def _tiny_standin(path: Path, *, streaming: bool = True) -> Path:
    """A 2-layer GRU gain model with the tiny denoiser's I/O: ``input`` [batch, frames, 161] and
    ``state_in_0`` [2, batch, 8] in, ``output`` and ``state_out_0`` out. With ``streaming=False`` the
    state starts from zeros made inside the graph, as an export without state I/O would."""
    rng = np.random.default_rng(7)
    f = helper.make_tensor_value_info

    def w(name: str, *shape: int) -> onnx.TensorProto:
        return numpy_helper.from_array((rng.standard_normal(shape) * 0.2).astype(np.float32), name)

    inits = [w("W1", 1, 3 * HIDDEN, 161), w("R1", 1, 3 * HIDDEN, HIDDEN), w("W2", 1, 3 * HIDDEN, HIDDEN)]
    inits += [w("R2", 1, 3 * HIDDEN, HIDDEN), w("head", HIDDEN, 161)]
    inits.append(numpy_helper.from_array(np.array([1, 1], np.int64), "split"))
    nodes = [
        helper.make_node("Transpose", ["input"], ["x_tbf"], perm=[1, 0, 2]),
        helper.make_node("Split", ["state_in_0", "split"], ["h0a", "h0b"], axis=0),
        helper.make_node("GRU", ["x_tbf", "W1", "R1", "", "", "h0a"], ["y1", "h1"], hidden_size=HIDDEN),
        helper.make_node("Squeeze", ["y1", "axis1"], ["y1s"]),
        helper.make_node("GRU", ["y1s", "W2", "R2", "", "", "h0b"], ["y2", "h2"], hidden_size=HIDDEN),
        helper.make_node("Squeeze", ["y2", "axis1"], ["y2s"]),
        helper.make_node("Transpose", ["y2s"], ["y_btf"], perm=[1, 0, 2]),
        helper.make_node("MatMul", ["y_btf", "head"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["output"]),
    ]
    inits.append(numpy_helper.from_array(np.array([1], np.int64), "axis1"))
    inputs = [f("input", TensorProto.FLOAT, ["batch", "frames", 161])]
    outputs = [f("output", TensorProto.FLOAT, ["batch", "frames", 161])]
    if streaming:
        nodes.append(helper.make_node("Concat", ["h1", "h2"], ["state_out_0"], axis=0))
        inputs.append(f("state_in_0", TensorProto.FLOAT, [LAYERS, "batch", HIDDEN]))
        outputs.append(f("state_out_0", TensorProto.FLOAT, [LAYERS, "batch", HIDDEN]))
    else:
        nodes[1:2] = []  # no Split: each layer gets zeros of its own
        nodes[1].input[5] = nodes[3].input[5] = "zeros"
        inits.append(numpy_helper.from_array(np.zeros((1, 1, HIDDEN), np.float32), "zeros"))
    return _save(nodes, inputs, outputs, inits, path)


def test_tiny_takes_a_model_with_its_contract_and_finds_the_state_shape(
    tmp_path: Path, noisy_speech: tuple[np.ndarray, np.ndarray]
) -> None:
    path = _tiny_standin(tmp_path / "tiny.onnx")
    stage = make("denoise", "tiny", model=path, cache_dir=tmp_path / "cache")
    assert isinstance(stage, Denoiser)
    assert stage._carried["state_in_0"].shape == (LAYERS, 1, HIDDEN)
    x = noisy_speech[0][16000:32000]
    outs = {b: denoise_array(stage, x, block_size=b) for b in BLOCK_SIZES}
    for b in BLOCK_SIZES[1:]:
        assert np.array_equal(outs[b], outs[160])
    np.testing.assert_allclose(outs[160], _offline(edge_sdk.load(path, threads=1), x), atol=1e-5)
    assert not (tmp_path / "cache").exists()  # it already carries its state: nothing to make


def test_a_model_without_state_io_is_made_streaming_once(tmp_path: Path) -> None:
    path = _tiny_standin(tmp_path / "plain.onnx", streaming=False)
    stage = make("denoise", "tiny", model=path, cache_dir=tmp_path / "cache")
    assert sorted(stage._carried) == ["state_in_0", "state_in_1"]
    (made,) = (tmp_path / "cache" / "streaming").glob("plain.streaming-*.onnx")
    before = made.stat().st_mtime_ns
    make("denoise", "tiny", model=path, cache_dir=tmp_path / "cache")
    assert made.stat().st_mtime_ns == before


def test_a_scrambled_streaming_model_is_made_again_with_a_warning(
    tmp_path: Path, noisy_speech: tuple[np.ndarray, np.ndarray], caplog: pytest.LogCaptureFixture
) -> None:
    """The streaming copy is kept by name; one whose weights changed since it was written would run with
    no error and other audio, so its sha256 is checked at every load and a mismatch makes it again."""
    path = _tiny_standin(tmp_path / "plain.onnx", streaming=False)
    cache = tmp_path / "cache"
    x = noisy_speech[0][16000:24000]
    clean = denoise_array(make("denoise", "tiny", model=path, cache_dir=cache), x)
    (made,) = (cache / "streaming").glob("plain.streaming-*.onnx")
    good = made.read_bytes()
    model = onnx.load(str(made))
    head = next(t for t in model.graph.initializer if t.name == "head")
    head.CopyFrom(numpy_helper.from_array(-numpy_helper.to_array(head)[::-1], "head"))
    onnx.save(model, str(made))
    scrambled = denoise_array(Denoiser(edge_sdk.load(made, threads=1)), x)
    assert not np.allclose(scrambled, clean, atol=1e-3)  # what ran, unwarned, before the check
    with caplog.at_level(logging.WARNING, logger="edge_sdk"):
        again = denoise_array(make("denoise", "tiny", model=path, cache_dir=cache), x)
    (warned,) = [r.getMessage() for r in caplog.records if "damaged" in r.getMessage()]
    assert str(made) in warned and "making it again" in warned
    assert made.read_bytes() == good
    assert np.array_equal(again, clean)


def test_tiny_runs_its_shipped_model_or_says_the_file_is_missing() -> None:
    if TINY_MODEL.exists():
        stage = make("denoise", "tiny")
        x = white_noise(16000, np.random.default_rng(2)) * 0.1
        out = denoise_array(stage, x)
        assert out.shape == x.shape and np.all(np.isfinite(out))
    else:
        with pytest.raises(BadInputError, match=r"tiny-denoiser/model.onnx is missing"):
            make("denoise", "tiny")


def test_a_missing_model_override_is_reported(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match=r"nope.onnx is missing"):
        make("denoise", "nsnet2", model=tmp_path / "nope.onnx")
