"""Speech denoiser stages: ``denoise.nsnet2`` (Microsoft's NSNet2) and ``denoise.tiny`` (our own model).

Both are spectral-gain models: log10 power frames ``[batch, frames, 161]`` in, a suppression gain per
bin out, recurrent state carried between runs (``state_in_*`` → ``state_out_*``, the names
:func:`edge_sdk.converters.make_streaming` gives). :class:`Denoiser` serves any such model: every 10 ms
hop of the stream is analysed with NSNet2's framing (``edge_sdk.audio.features``), the model gains the
spectrum, and the hop is overlap-added back, so the audio comes out as it went in, ``latency`` samples
later.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx

from edge_sdk import integrity
from edge_sdk.audio.features import HOP, N_FFT, StreamingSTFT, istft, log_power, stft
from edge_sdk.errors import BadInputError
from edge_sdk.manifest import sha256_file
from edge_sdk.stages import stages
from edge_sdk.stages.base import Block, Stage

if TYPE_CHECKING:
    from edge_sdk.runtimes.session import Session

__all__ = ["SAMPLE_RATE", "TINY_MODEL", "Denoiser", "denoise_array", "nsnet2", "streaming_model", "tiny"]

log = logging.getLogger("edge_sdk.stages.denoise")

SAMPLE_RATE = 16000
BINS = N_FFT // 2 + 1
TINY_MODEL = Path(__file__).resolve().parents[1] / "zoo" / "tiny-denoiser" / "model.onnx"
"""Where the tiny denoiser ships: ``input`` [batch, frames, 161] log10 power and ``state_in_0``
[layers, batch, hidden] in; ``output`` gain and ``state_out_0`` out."""

_STATE_IN = re.compile(r"^(state|cell)_in_(\d+)$")
# Bump when make_streaming changes what it writes, so cached streaming copies are made again.
_STREAMING_VERSION = 1


class Denoiser(Stage):
    """A spectral-gain speech denoiser over any block size, on a loaded model ``session``.

    Each block's complete 160-sample hops go through the model in one run (input ``[1, hops, 161]``);
    what is left of a hop waits for the next block. The gain is clipped to ``[10**(min_gain_db/20), 1]``.
    The output block has the input's size and lags it by ``latency`` samples: the STFT's 160 plus the
    buffering that lets any block size come out whole (159 when ``block_size`` is not given; none when
    it is a multiple of 160). State inputs ``state_in_N``/``cell_in_N`` are fed from the outputs
    ``state_out_N``/``cell_out_N`` of the previous run; a model without them is run stateless.
    """

    name = "denoise"

    def __init__(
        self,
        session: Session,
        *,
        min_gain_db: float = -80.0,
        block_size: int | None = None,
        name: str = "denoise",
        attribution: str | None = None,
    ) -> None:
        if min_gain_db > 0:
            raise BadInputError(
                f"min_gain_db is a floor on a suppression gain; it must be <= 0, not {min_gain_db}"
            )
        if block_size is not None and block_size <= 0:
            raise BadInputError(f"block_size must be a positive number of samples, not {block_size}")
        self.session = session
        self.name = name
        self.attribution = attribution
        self.block_size = block_size
        self.min_gain = float(10 ** (min_gain_db / 20))
        self._feature, self._gain, self._states = _discover(session)
        self._stft = StreamingSTFT()
        # Samples short of a whole hop wait for the next block; the output queue starts this far ahead so
        # every block still comes out whole. With blocks of size b the leftover is a multiple of gcd(b, hop).
        self._buffering = HOP - 1 if block_size is None else HOP - math.gcd(block_size, HOP)
        self.latency = self._stft.latency + self._buffering
        self.reset()

    def reset(self) -> None:
        """Zero the recurrent state and the STFT history: a new stream."""
        self._stft.reset()
        self._carried = {n: np.zeros(shape, dtype) for n, (_, shape, dtype) in self._states.items()}
        self._pending = np.zeros(0, np.float32)
        self._ready = np.zeros(self._buffering, np.float32)

    def process(self, block: Block) -> Block:
        """Denoise one block; returns a block of the same size, ``latency`` samples behind."""
        if block.sample_rate != SAMPLE_RATE:
            raise BadInputError(
                f"stage {self.name} takes {SAMPLE_RATE} Hz audio, got {block.sample_rate} Hz; "
                "resample the source (or the loop) to 16 kHz"
            )
        x = np.asarray(block.samples, np.float32).reshape(-1)
        buf = np.concatenate([self._pending, x])
        hops = len(buf) // HOP
        self._pending = buf[hops * HOP :].copy()
        if hops:
            specs = np.stack([self._stft.analyze(h) for h in buf[: hops * HOP].reshape(hops, HOP)])
            gains = self._run(log_power(specs))
            out = [self._stft.synthesize(s * g) for s, g in zip(specs, gains, strict=True)]
            self._ready = np.concatenate([self._ready, *out])
        if len(self._ready) < len(x):
            raise BadInputError(
                f"stage {self.name} was built for blocks of {self.block_size} samples and got one of "
                f"{len(x)}; build it with block_size=None to take any size (at {HOP - 1} samples of "
                "extra latency)"
            )
        y, self._ready = self._ready[: len(x)], self._ready[len(x) :]
        return block.with_samples(y)

    def _run(self, features: np.ndarray) -> np.ndarray:
        feeds: dict[str, np.ndarray] = {self._feature: features[None]}
        feeds.update(self._carried)
        res = self.session.run(feeds)
        self._carried = {n: res[out] for n, (out, _, _) in self._states.items()}
        return np.clip(res[self._gain][0], self.min_gain, 1.0).astype(np.float32)

    def process_batch(self, audio: np.ndarray) -> np.ndarray:
        """Denoise ``[clips, samples]`` of 16 kHz audio offline, each clip from a fresh stream, in one model
        run (recipes use it to put denoised speech in their training data, as the live loop hears it).
        Aligned with the input: no latency. The stage's own stream is left as it was."""
        x = np.asarray(audio, np.float32)
        if x.ndim != 2:
            raise BadInputError(f"process_batch takes [clips, samples] audio, got shape {x.shape}")
        specs = np.stack([stft(clip) for clip in x])
        feeds: dict[str, np.ndarray] = {self._feature: log_power(specs)}
        for spec in self.session.inputs:
            if spec.name in self._states:
                # the batch is every dim that is not a fixed size, as in _discover
                shape = tuple(d if isinstance(d, int) and d > 0 else len(x) for d in spec.shape)
                feeds[spec.name] = np.zeros(shape, self._states[spec.name][2])
        gains = np.clip(self.session.run(feeds)[self._gain], self.min_gain, 1.0)
        return np.stack([istft(s * g)[: x.shape[1]] for s, g in zip(specs, gains, strict=True)])

    def close(self) -> None:
        """Drop the model session."""
        self.session = None  # type: ignore[assignment]


def _discover(session: Session) -> tuple[str, str, dict[str, tuple[str, tuple[int, ...], str]]]:
    """The feature input, the gain output, and state input → (output, shape for batch 1, dtype)."""
    outputs = set(session.output_names)
    states: dict[str, tuple[str, tuple[int, ...], str]] = {}
    for spec in session.inputs:
        m = _STATE_IN.match(spec.name)
        if not m:
            continue
        out = f"{m.group(1)}_out_{m.group(2)}"
        if out not in outputs:
            raise BadInputError(
                f"the denoiser model has state input '{spec.name}' but no output '{out}' to carry it from; "
                "make the model with edge_sdk.converters.make_streaming"
            )
        # every dim that is not a fixed size is the batch: one stream, so 1
        shape = tuple(d if isinstance(d, int) and d > 0 else 1 for d in spec.shape)
        states[spec.name] = (out, shape, spec.dtype)
    features = [s for s in session.inputs if s.name not in states]
    gains = [n for n in session.output_names if n not in {o for o, _, _ in states.values()}]
    if len(features) != 1 or len(gains) != 1:
        raise BadInputError(
            "a denoiser model takes one feature input and gives one gain output besides its state_in_*/"
            f"state_out_* pairs; this one has inputs {session.input_names} and outputs {session.output_names}"
        )
    spec = features[0]
    if len(spec.shape) != 3 or (isinstance(spec.shape[-1], int) and spec.shape[-1] != BINS):
        raise BadInputError(
            f"the denoiser model's input '{spec.name}' is {spec.describe()}; it must be "
            f"[batch, frames, {BINS}] log10 power frames (320-point FFT, 16 kHz)"
        )
    if spec.dtype != "float32":
        raise BadInputError(f"the denoiser model's input '{spec.name}' is {spec.dtype}; it must be float32")
    if not states:
        log.warning("denoiser model has no state_in_*/state_out_* pairs: each block is run without memory")
    return spec.name, gains[0], states


def denoise_array(stage: Stage, audio: np.ndarray, *, block_size: int | None = None) -> np.ndarray:
    """Run a whole 16 kHz signal through ``stage`` block by block, as a loop would, from a fresh stream;
    returns audio of the same length aligned with the input (the stage's latency taken out, the tail
    flushed with zeros). ``block_size`` defaults to the stage's own, else one hop (160)."""
    x = np.asarray(audio, np.float32).reshape(-1)
    block = block_size or getattr(stage, "block_size", None) or HOP
    stage.reset()
    lat = stage.latency
    padded = np.zeros(-(-(len(x) + lat) // block) * block, np.float32)
    padded[: len(x)] = x
    out = [
        stage.process(Block(padded[k : k + block], SAMPLE_RATE, k / SAMPLE_RATE, i)).samples
        for i, k in enumerate(range(0, len(padded), block))
    ]
    return np.concatenate(out)[lat : lat + len(x)]


def streaming_model(path: str | os.PathLike[str], cache: str | os.PathLike[str]) -> Path:
    """``path`` itself when it is not an ONNX file or already carries its state; else its streaming form
    (make_streaming), written once into ``cache`` under a name keyed by the source's sha256, with its own
    sha256 beside it: a copy that no longer matches is made again, with a warning, instead of run."""
    from edge_sdk.converters.graph.onnx_model import load_onnx
    from edge_sdk.converters.graph.streaming import make_streaming

    src = Path(path)
    if src.suffix != ".onnx":  # an artifact or another format: taken as made, states found by name
        return src
    dest = Path(cache) / f"{src.stem}.streaming-v{_STREAMING_VERSION}-{sha256_file(src)[:16]}.onnx"
    if integrity.reusable(dest, "streaming model"):
        return dest
    model = load_onnx(src)
    if any(_STATE_IN.match(i.name) for i in model.graph.input):
        return src
    streaming = make_streaming(model)
    integrity.write_checked(dest, lambda tmp: onnx.save(streaming, str(tmp)))
    log.info("streaming form of %s written to %s", src, dest)
    return dest


ModelSource = Callable[[Any, Any], tuple[Path, str | None]]


def _factory(name: str, resolve: ModelSource, doc: str) -> Callable[..., Denoiser]:
    """A registry factory for the denoiser ``name``: ``resolve(model, cache_dir)`` gives the streaming
    model file and its attribution; the options are the same for every denoiser."""

    def build(
        *,
        model: str | os.PathLike[str] | None = None,
        threads: int | None = 1,
        min_gain_db: float = -80.0,
        block_size: int | None = None,
        backend: str = "auto",
        device: Any = "auto",
        accelerator: str = "auto",
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> Denoiser:
        from edge_sdk.runtimes import load

        path, credit = resolve(model, cache_dir)
        session = load(path, threads=threads, backend=backend, device=device, accelerator=accelerator)
        return Denoiser(
            session, min_gain_db=min_gain_db, block_size=block_size, name=name, attribution=credit
        )

    build.__doc__ = doc
    build.__name__ = build.__qualname__ = name.split(".")[1]
    return build


def _nsnet2_model(model: Any, cache_dir: Any) -> tuple[Path, str | None]:
    from edge_sdk import zoo

    if model is not None:
        return streaming_model(
            _existing(model, "denoise.nsnet2"), zoo.cache_root(cache_dir) / "streaming"
        ), None
    src = zoo.pull("nsnet2-16k", cache_dir=cache_dir)
    record = zoo.license_record("nsnet2-16k", cache_dir=cache_dir) or {}
    credit = f"{record.get('attribution', '')} ({record.get('license', 'CC-BY-4.0')})".strip()
    return streaming_model(src, src.parent), credit


def _tiny_model(model: Any, cache_dir: Any) -> tuple[Path, str | None]:
    from edge_sdk import zoo

    src = _existing(model if model is not None else TINY_MODEL, "denoise.tiny")
    return streaming_model(src, zoo.cache_root(cache_dir) / "streaming"), None


nsnet2 = stages.register("denoise.nsnet2")(
    _factory(
        "denoise.nsnet2",
        _nsnet2_model,
        """NSNet2 (ICASSP 2021 DNS Challenge baseline, CC-BY-4.0) as a loop stage. The model is pulled from
    the zoo on first use (``model`` overrides it with a file or artifact), made streaming once and kept
    beside the pulled file; ``threads``, ``backend``, ``device`` and ``accelerator`` go to
    ``edge_sdk.load``.""",
    )
)
tiny = stages.register("denoise.tiny")(
    _factory(
        "denoise.tiny",
        _tiny_model,
        """edge-sdk's own small denoiser (``edge_sdk/zoo/tiny-denoiser/model.onnx``, or ``model``: a file or
    an artifact converted from it) as a loop stage; options as for ``denoise.nsnet2``.""",
    )
)


def _existing(model: str | os.PathLike[str], stage: str) -> Path:
    path = Path(model).expanduser()
    if path.exists():
        return path
    if path == TINY_MODEL:
        raise BadInputError(
            f"{stage}: the model file {path} is missing: the tiny denoiser is not in this install yet. "
            "Use denoise.nsnet2, or pass model=PATH to a trained tiny-denoiser ONNX file"
        )
    raise BadInputError(f"{stage}: the model file {path} is missing; pass model= an ONNX file or artifact")
