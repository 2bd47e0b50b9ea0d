"""The video.denoise stage on real models: the bundled zoo:video on held-out images, small ONNX image
models made here (a box blur, 1 or 3 channels, dynamic or fixed size), and the shipped model converted
to every format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import edge_sdk
from edge_sdk import zoo
from edge_sdk.errors import BadInputError
from edge_sdk.stages import make, names_of
from edge_sdk.stages.base import Frame
from edge_sdk.stages.video_denoise import VideoDenoiser
from edge_sdk.stages.video_measure import psnr
from edge_sdk.train import image_data


@pytest.fixture(scope="module")
def clean() -> np.ndarray:
    """A held-out image (never trained on), BGR uint8 240×320."""
    img = image_data.load("opencv:fruits.jpg").pixels[:240, :320, ::-1]
    return (img * 255 + 0.5).astype(np.uint8)


@pytest.fixture(scope="module")
def noisy(clean: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.clip(clean + rng.normal(0, 25, clean.shape), 0, 255).astype(np.uint8)


def box_blur(path: Path, channels: int, size: tuple[int, int] | None = None, nhwc: bool = False) -> Path:
    """A 5×5 box blur per channel as an ONNX image model ([1, C, H, W], or NHWC through transposes)."""
    h, w = size or ("height", "width")
    shape = [1, h, w, channels] if nhwc else [1, channels, h, w]
    kernel = numpy_helper.from_array(np.full((channels, 1, 5, 5), 1 / 25, np.float32), "k")
    nodes = [helper.make_node("Conv", ["x", "k"], ["y"], group=channels, pads=[2, 2, 2, 2])]
    if nhwc:
        nodes = [
            helper.make_node("Transpose", ["input"], ["x"], perm=[0, 3, 1, 2]),
            *nodes,
            helper.make_node("Transpose", ["y"], ["output"], perm=[0, 2, 3, 1]),
        ]
    else:
        nodes[0].input[0], nodes[0].output[0] = "input", "output"
    graph = helper.make_graph(
        nodes,
        "blur",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, shape)],
        [kernel],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_zoo_video_denoises_a_held_out_image(clean: np.ndarray, noisy: np.ndarray) -> None:
    assert zoo.resolve("zoo:video").parent.name == "video"
    stage = make("video", "denoise")  # model defaults to zoo:video
    assert "denoise" in names_of("video")
    frame = Frame(noisy, time=0.0, index=3, raw=noisy)
    out = stage.process(frame)
    assert (
        out.index == 3 and out.raw is noisy and out.image.shape == noisy.shape and out.image.dtype == np.uint8
    )
    gain = psnr(out.image, clean) - psnr(noisy, clean)
    assert gain > 5.0, f"PSNR gain {gain:.2f} dB"


def test_tiles_equal_the_whole_frame_for_a_fully_convolutional_model(noisy: np.ndarray) -> None:
    whole = VideoDenoiser("zoo:video").denoise(noisy)
    tiles = VideoDenoiser("zoo:video", tile=96, overlap=32).denoise(noisy)
    assert np.abs(whole.astype(int) - tiles.astype(int)).max() <= 1


def test_fixed_size_model_is_tiled_or_resized(tmp_path: Path, noisy: np.ndarray) -> None:
    dynamic = VideoDenoiser(box_blur(tmp_path / "d.onnx", 3)).denoise(noisy)
    fixed = VideoDenoiser(box_blur(tmp_path / "f.onnx", 3, (64, 64)), overlap=8)
    assert fixed.model.size == (64, 64)
    assert np.array_equal(fixed.denoise(noisy), dynamic)  # 8 px of context is more than the blur's 2
    resized = VideoDenoiser(box_blur(tmp_path / "f.onnx", 3, (64, 64)), resize=True).denoise(noisy)
    assert resized.shape == noisy.shape


def test_luma_model_and_nhwc_layout(tmp_path: Path, clean: np.ndarray, noisy: np.ndarray) -> None:
    luma = VideoDenoiser(box_blur(tmp_path / "y.onnx", 1))
    assert luma.color == "y" and luma.model.channels == 1
    assert psnr(luma.denoise(noisy), clean) > psnr(noisy, clean) + 3
    nhwc = VideoDenoiser(box_blur(tmp_path / "nhwc.onnx", 3, nhwc=True))
    assert nhwc.model.layout == "NHWC"
    nchw = VideoDenoiser(box_blur(tmp_path / "nchw.onnx", 3))
    assert np.array_equal(nhwc.denoise(noisy), nchw.denoise(noisy))
    with pytest.raises(BadInputError, match="does not fit a 1-channel"):
        VideoDenoiser(tmp_path / "y.onnx", color="rgb")


def test_a_model_that_is_not_image_to_image_is_refused(tmp_path: Path) -> None:
    w = numpy_helper.from_array(np.ones((10, 5), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "fc",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 10])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])],
        [w],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "fc.onnx")
    with pytest.raises(BadInputError, match=r"\[1, C, H, W\].*x: float32\[1, 10\]"):
        VideoDenoiser(tmp_path / "fc.onnx")


def test_temporal_smoothing_blends_and_resets(tmp_path: Path, clean: np.ndarray, noisy: np.ndarray) -> None:
    stage = VideoDenoiser(box_blur(tmp_path / "b.onnx", 3), temporal=0.5)
    alone = VideoDenoiser(tmp_path / "b.onnx").denoise(noisy)
    stage.denoise(clean)
    assert not np.array_equal(stage.denoise(noisy), alone)  # half of the previous frame is in it
    stage.reset()
    assert np.array_equal(stage.denoise(noisy), alone)


def test_shipped_model_converts_to_every_format_with_parity(tmp_path: Path) -> None:
    """ONNX int8, OpenVINO fp32/int8 and TFLite fp32/int8, each within a PSNR tolerance of fp32 on held-out
    images (the frame is tiled at the 128×128 the converted models are fixed to)."""
    pytest.importorskip("openvino")
    pytest.importorskip("onnx2tf")
    train, held = image_data.split()
    rng = np.random.default_rng(1)

    def feeds(imgs: list[image_data.Image]) -> list[dict[str, np.ndarray]]:
        return [
            {"input": image_data.gaussian(i.pixels[:128, :128], 25, rng).transpose(2, 0, 1)[None].copy()}
            for i in imgs
        ]

    arts = edge_sdk.convert(
        str(zoo.resolve("zoo:video")),
        ["onnx:int8", "openvino:fp32", "openvino:int8", "tflite:fp32", "tflite:int8"],
        calibration=feeds(train[:8]),
        parity_data=feeds(held[:2]),
        out=tmp_path,
        name="video",
        input_shapes={"input": [1, 3, 128, 128]},
    )
    clean = (image_data.load("opencv:fruits.jpg").pixels[:192, :256, ::-1] * 255 + 0.5).astype(np.uint8)
    noisy = np.clip(clean + np.random.default_rng(2).normal(0, 25, clean.shape), 0, 255).astype(np.uint8)
    ref = VideoDenoiser("zoo:video").denoise(noisy)
    # fp32 variants match to float error; int8 ones lose a little, never most of the gain
    tolerance = {"fp32": 45.0, "int8": 30.0}
    for art in arts:
        out = VideoDenoiser(art.path, overlap=24).denoise(noisy)
        agreement = psnr(out, ref)
        assert agreement > tolerance[art.precision], f"{art.path.name}: {agreement:.1f} dB against fp32"
        assert psnr(out, clean) > psnr(noisy, clean) + 3, art.path.name
