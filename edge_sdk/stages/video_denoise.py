"""Video denoiser stage ``video.denoise``: any image-to-image model over live BGR frames.

The model is read, not assumed: one input and one output of the same shape, rank 4, NCHW or NHWC, 1
channel (luma: the frame's Y goes through the model and its chroma through a cheap blur) or 3 channels
(RGB), float in [0, 1]. Height and width may be dynamic (the frame is padded to a multiple of 8, or cut
into ``tile``-sized tiles) or fixed (the frame is tiled with overlap, or resized with ``resize=True``).
So the zoo's ``video`` denoiser, a converted artifact of it, or a style-transfer model plug in the same.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_sdk.errors import BadInputError
from edge_sdk.stages import stages
from edge_sdk.stages.base import Frame, Stage

if TYPE_CHECKING:
    from edge_sdk.runtimes.session import Session

__all__ = ["ImageModel", "VideoDenoiser", "video_denoise"]

_PAD_MULTIPLE = 8  # a dynamic model's strides divide this (the zoo's video model needs 4)
_EXPECTED = (
    "one input and one output of the same shape [1, C, H, W] (NCHW) or [1, H, W, C] (NHWC) with "
    "C = 1 (luma) or 3 (RGB), float in [0, 1]"
)


class ImageModel:
    """The image I/O of a loaded ``session``: input/output names, layout, channels, fixed size or None."""

    def __init__(self, session: Session) -> None:
        ins, outs = session.inputs, session.outputs
        if len(ins) != 1 or len(outs) != 1:
            raise BadInputError(self._bad(session, "it must have exactly one input and one output"))
        spec, out = ins[0], outs[0]
        shape = [d if isinstance(d, int) and d > 0 else None for d in spec.shape]
        oshape = [d if isinstance(d, int) and d > 0 else None for d in out.shape]
        if len(shape) != 4 or len(oshape) != 4:
            raise BadInputError(self._bad(session, "it must take and give rank-4 images"))
        layout = spec.layout if spec.layout in ("NCHW", "NHWC") else None
        if layout is None:
            layout = "NCHW" if shape[1] in (1, 3) else "NHWC" if shape[3] in (1, 3) else None
        c_axis = 1 if layout == "NCHW" else 3
        if layout is None or shape[c_axis] not in (1, 3):
            raise BadInputError(self._bad(session, "its input has no channel axis of 1 or 3"))
        if oshape[c_axis] != shape[c_axis] or any(
            a is not None and b is not None and a != b for a, b in zip(shape, oshape, strict=True)
        ):
            raise BadInputError(self._bad(session, "its output is not the shape of its input"))
        if "float" not in spec.dtype:
            raise BadInputError(self._bad(session, f"its input is {spec.dtype}, not float"))
        self.session, self.input, self.output, self.layout = session, spec.name, out.name, layout
        self.channels = int(shape[c_axis])  # type: ignore[arg-type]
        hw = (shape[2], shape[3]) if layout == "NCHW" else (shape[1], shape[2])
        self.size: tuple[int, int] | None = (hw[0], hw[1]) if None not in hw else None  # type: ignore[assignment]

    @staticmethod
    def _bad(session: Session, why: str) -> str:
        has = ", ".join(s.describe() for s in session.inputs) or "no inputs"
        gives = ", ".join(s.describe() for s in session.outputs) or "no outputs"
        return (
            f"video.denoise needs an image-to-image model: {_EXPECTED}; {why} "
            f"(it has inputs {has}; outputs {gives})"
        )

    def __call__(self, img: np.ndarray) -> np.ndarray:
        """Run on one H×W×C float32 image (C = channels; H, W as the model takes them) → H×W×C."""
        x = img.transpose(2, 0, 1)[None] if self.layout == "NCHW" else img[None]
        y = self.session.run({self.input: np.ascontiguousarray(x, np.float32)})[self.output][0]
        return y.transpose(1, 2, 0) if self.layout == "NCHW" else y


def tiled(run: Any, img: np.ndarray, tile: tuple[int, int], overlap: int, multiple: int = 1) -> np.ndarray:
    """``run`` over ``img`` (H×W×C, at least ``tile``) in ``tile``-sized windows that overlap by ``overlap``
    each side; each window keeps only its centre (its own border where it touches the frame's), so seams
    fall where every window saw ``overlap`` pixels of context. Window starts are multiples of ``multiple``
    where they can be (a strided model then sees the same pixel grid as on the whole frame)."""
    out = np.empty(img.shape[:2] + (img.shape[2],), np.float32)
    starts = [_starts(n, t, overlap, multiple) for n, t in zip(img.shape[:2], tile, strict=True)]
    th, tw = tile
    for y in starts[0]:
        for x in starts[1]:
            res = run(img[y : y + th, x : x + tw])
            y0 = 0 if y == 0 else y + overlap
            x0 = 0 if x == 0 else x + overlap
            y1 = img.shape[0] if y + th >= img.shape[0] else y + th - overlap
            x1 = img.shape[1] if x + tw >= img.shape[1] else x + tw - overlap
            out[y0:y1, x0:x1] = res[y0 - y : y1 - y, x0 - x : x1 - x]
    return out


def _starts(n: int, t: int, overlap: int, multiple: int) -> list[int]:
    step = (t - 2 * overlap) // multiple * multiple
    if step <= 0:
        raise BadInputError(f"tile {t} leaves nothing between overlaps of {overlap}; use a larger tile")
    starts = list(range(0, max(n - t, 0), step)) + [max(n - t, 0)]
    return sorted(set(starts))


class VideoDenoiser(Stage):
    """Denoise BGR uint8 frames with an image-to-image ``model``: an ONNX file, a converted artifact
    directory, or ``zoo:NAME`` (``zoo:video``, the bundled one), opened with ``edge_sdk.load``.

    ``color``: ``"auto"`` (by the model's channels), ``"rgb"``/``"bgr"`` (3-channel models, the channel order
    they take) or ``"y"`` (1-channel: luma through the model, chroma blurred). ``tile``: run in windows of
    ``tile``×``tile`` (a fixed-size model is always tiled at its own size unless ``resize``) overlapping by
    ``overlap``. ``temporal``: blend ``temporal`` of the previous output into each new one (0 = off),
    forgotten on ``reset``.
    """

    name = "video.denoise"

    def __init__(
        self,
        model: str | os.PathLike[str] | Session,
        *,
        threads: int | None = 1,
        color: str = "auto",
        tile: int | None = None,
        overlap: int = 32,
        resize: bool = False,
        temporal: float = 0.0,
        backend: str = "auto",
        device: Any = "auto",
        accelerator: str = "auto",
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if not 0.0 <= temporal < 1.0:
            raise BadInputError(f"temporal is the previous output's share, in [0, 1); got {temporal}")
        if color not in ("auto", "rgb", "bgr", "y"):
            raise BadInputError(f"color must be auto, rgb, bgr or y; got {color!r}")
        if tile is not None and tile <= 2 * overlap:
            raise BadInputError(f"tile {tile} must be larger than twice the overlap {overlap}")
        session = (
            model if hasattr(model, "run") else _open(model, threads, backend, device, accelerator, cache_dir)
        )
        self.model = ImageModel(session)  # type: ignore[arg-type]
        want = {1: "y", 3: "rgb"}[self.model.channels]
        if color == "auto":
            color = want
        if (color == "y") != (want == "y"):
            raise BadInputError(f"color={color!r} does not fit a {self.model.channels}-channel model")
        self.color, self.tile, self.overlap, self.resize, self.temporal = (
            color,
            tile,
            overlap,
            resize,
            temporal,
        )
        self._previous: np.ndarray | None = None

    def reset(self) -> None:
        """Forget the previous output (temporal smoothing starts again)."""
        self._previous = None

    def process(self, frame: Frame) -> Frame:  # type: ignore[override]
        """Denoise ``frame.image`` (BGR uint8 H×W×3); returns the frame carrying the denoised image."""
        img = np.asarray(frame.image)
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise BadInputError(
                f"video.denoise takes BGR uint8 H×W×3 frames, got {img.dtype}{list(img.shape)}"
            )
        out = self.denoise(img)
        return frame.with_image(out)

    def denoise(self, bgr: np.ndarray) -> np.ndarray:
        """BGR uint8 H×W×3 in → denoised BGR uint8 H×W×3 out (temporal state included)."""
        import cv2

        f = bgr.astype(np.float32) / 255.0
        if self.color == "y":
            ycc = cv2.cvtColor(f, cv2.COLOR_BGR2YCrCb)
            y = self._run(ycc[:, :, :1])[:, :, 0]
            chroma = _smooth_chroma(ycc[:, :, 1:])
            res = cv2.cvtColor(np.dstack([y, chroma]).astype(np.float32), cv2.COLOR_YCrCb2BGR)
        elif self.color == "rgb":
            res = self._run(np.ascontiguousarray(f[:, :, ::-1]))[:, :, ::-1]
        else:
            res = self._run(f)
        if self.temporal and self._previous is not None and self._previous.shape == res.shape:
            res = (1.0 - self.temporal) * res + self.temporal * self._previous
        self._previous = res
        return np.clip(res * 255.0 + 0.5, 0, 255).astype(np.uint8)

    def _run(self, img: np.ndarray) -> np.ndarray:
        import cv2

        h, w = img.shape[:2]
        fixed = self.model.size
        if fixed is not None and self.resize:
            small = cv2.resize(img, (fixed[1], fixed[0]), interpolation=cv2.INTER_AREA)
            out = self.model(small.reshape(*fixed, -1))
            return cv2.resize(out, (w, h), interpolation=cv2.INTER_LINEAR).reshape(h, w, -1)
        window = fixed or ((self.tile, self.tile) if self.tile else None)
        multiple = _PAD_MULTIPLE if fixed is None else 1
        if window is None:
            window = (-(-h // multiple) * multiple, -(-w // multiple) * multiple)
        ph, pw = max(window[0], -(-h // multiple) * multiple), max(window[1], -(-w // multiple) * multiple)
        padded = (
            np.pad(img, ((0, ph - h), (0, pw - w), (0, 0)), mode="reflect") if (ph, pw) != (h, w) else img
        )
        if (ph, pw) == window:
            out = self.model(padded)
        else:
            out = tiled(self.model, padded, window, self.overlap, multiple)
        return out[:h, :w]

    def close(self) -> None:
        """Drop the model session."""
        self.model = None  # type: ignore[assignment]


def _smooth_chroma(chroma: np.ndarray) -> np.ndarray:
    """Chroma carries little detail: a quarter-size average, a blur, and back up is cheap and removes
    most of its noise."""
    import cv2

    h, w = chroma.shape[:2]
    small = cv2.resize(chroma, (max(w // 4, 1), max(h // 4, 1)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (3, 3), 0)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _open(
    model: str | os.PathLike[str],
    threads: int | None,
    backend: str,
    device: Any,
    accelerator: str,
    cache_dir: Any,
) -> Session:
    from edge_sdk import zoo
    from edge_sdk.runtimes import load

    text = os.fspath(model)
    path = zoo.resolve(text, cache_dir=cache_dir) if text.startswith("zoo:") else Path(text).expanduser()
    if not path.exists():
        raise BadInputError(
            f"video.denoise: the model {path} is missing; pass an ONNX file, an artifact or zoo:video"
        )
    return load(path, threads=threads, backend=backend, device=device, accelerator=accelerator)


@stages.register("video.denoise")
def video_denoise(*, model: str | os.PathLike[str] = "zoo:video", **options: Any) -> VideoDenoiser:
    """The video denoiser stage on ``model`` (default the bundled ``zoo:video``); options as
    :class:`VideoDenoiser` takes them."""
    return VideoDenoiser(model, **options)
