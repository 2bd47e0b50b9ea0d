"""Stages that let a video loop measure a denoiser on clean footage: ``AddNoise`` corrupts each frame
(Gaussian, seeded) and ``PsnrMeter`` scores the frame as it stands against the clean capture
(``frame.raw``). ``[AddNoise(25), PsnrMeter("noisy"), denoiser, PsnrMeter("denoised")]`` gives the
denoiser's PSNR gain on any clean source, live or replayed."""

from __future__ import annotations

import math

import numpy as np

from edge_sdk.errors import BadInputError
from edge_sdk.stages import stages
from edge_sdk.stages.base import Frame, Stage


@stages.register("video.noise")
class AddNoise(Stage):
    """Additive white Gaussian noise of ``sigma`` (0-255 scale) on every frame, clipped to uint8; seeded,
    so a replay gets the same noise."""

    name = "noise"

    def __init__(self, sigma: float = 25.0, *, seed: int = 0) -> None:
        if sigma < 0:
            raise BadInputError(f"sigma is a standard deviation on the 0-255 scale; got {sigma}")
        self.sigma, self.seed = float(sigma), seed
        self.reset()

    def reset(self) -> None:
        """Restart the noise sequence."""
        self._rng = np.random.default_rng(self.seed)

    def process(self, frame: Frame) -> Frame:
        noise = self._rng.normal(0.0, self.sigma, frame.image.shape)
        noisy = np.clip(frame.image.astype(np.float32) + noise, 0, 255)
        return frame.with_image(np.rint(noisy).astype(np.uint8))


def psnr(image: np.ndarray, reference: np.ndarray, peak: float = 255.0) -> float:
    """PSNR in dB of ``image`` against ``reference`` (uint8 frames: peak 255; float images in [0, 1]: peak
    1); inf when they are equal."""
    if image.shape != reference.shape:
        raise BadInputError(f"PSNR of a {image.shape} image against a {reference.shape} reference")
    mse = float(np.mean((image.astype(np.float64) - reference.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(peak**2 / mse)


@stages.register("video.psnr")
class PsnrMeter(Stage):
    """Scores each frame against the clean capture ``frame.raw`` and keeps the running figures; the image
    passes unchanged. ``mean_db`` is the mean of per-frame PSNRs (what image-denoising papers report)."""

    def __init__(self, name: str = "psnr") -> None:
        self.name = name
        self.reset()

    def reset(self) -> None:
        """Forget the scores."""
        self.scores: list[float] = []

    def process(self, frame: Frame) -> Frame:
        if frame.raw is None:
            raise BadInputError(
                f"stage {self.name} needs the clean capture (frame.raw); the source gave none"
            )
        self.scores.append(psnr(frame.image, frame.raw))
        return frame

    @property
    def mean_db(self) -> float:
        """Mean PSNR over the frames so far (nan before the first)."""
        finite = [s for s in self.scores if math.isfinite(s)]
        return float(np.mean(finite)) if finite else math.nan
