"""Natural images for the video denoiser, all on the machine already: scikit-image's bundled samples and
Debian's ``opencv-doc`` sample data. A fixed set is held out (never trained on), and so is every frame
of ``vtest.avi``; noise is synthesised (Gaussian at a given σ, or Poisson-Gaussian like a small sensor).

Images are RGB float32 in [0, 1], H×W×3 (grey images are repeated into three channels).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")
VTEST = OPENCV_DATA / "vtest.avi"

#: scikit-image samples used, with the licence their docstrings in ``skimage.data`` state.
SKIMAGE_LICENCES = {
    "astronaut": "public domain (NASA)",
    "camera": "CC0 (Lav Varshney)",
    "brick": "CC0 (CC0Textures)",
    "grass": "CC0 (CC0Textures)",
    "gravel": "CC0 (CC0Textures)",
    "chelsea": "CC0 (Stefan van der Walt)",
    "coffee": "CC0 (Rachel Michetti)",
    "rocket": "public domain (SpaceX)",
}
OPENCV_LICENCE = (
    "sample data of the OpenCV sources, shipped by Debian's opencv-doc under the package's licence "
    "(Apache-2.0, see /usr/share/doc/opencv-doc/copyright); upstream records no per-image origin"
)
#: Held out from training: the denoiser is scored on these (and on vtest.avi), never fitted to them.
HELD_OUT = (
    "skimage:chelsea",
    "opencv:baboon.jpg",
    "opencv:fruits.jpg",
    "opencv:building.jpg",
    "opencv:smarties.png",
)
# Synthetic drawings, logos and masks teach nothing about camera noise on natural scenes.
_SKIP = {
    "LinuxLogo.jpg", "WindowsLogo.jpg", "opencv-logo.png", "opencv-logo-white.png", "mask.png",
    "digits.png", "gradient.png", "notes.png", "pic1.png", "pic3.png", "pic5.png", "pic6.png",
    "ellipses.jpg", "detect_blob.png", "chessboard.png", "imageTextN.png", "imageTextR.png",
}  # fmt: skip


@dataclass(frozen=True)
class Image:
    """One named image (``skimage:NAME`` or ``opencv:FILE``) with its licence."""

    name: str
    licence: str
    pixels: np.ndarray


def image_names() -> list[str]:
    """Every image the recipe may use, held-out ones included, in a fixed order."""
    names = [f"skimage:{n}" for n in SKIMAGE_LICENCES]
    if OPENCV_DATA.is_dir():
        files = sorted(p.name for p in OPENCV_DATA.iterdir() if p.suffix in (".jpg", ".png"))
        names += [f"opencv:{f}" for f in files if f not in _SKIP]
    return names


def load(name: str) -> Image:
    """Load ``skimage:NAME`` or ``opencv:FILE`` as RGB float32 in [0, 1]."""
    kind, _, key = name.partition(":")
    if kind == "skimage":
        import skimage.data

        arr = getattr(skimage.data, key)()
        licence = SKIMAGE_LICENCES[key]
    elif kind == "opencv":
        import cv2

        arr = cv2.imread(str(OPENCV_DATA / key), cv2.IMREAD_COLOR)
        if arr is None:
            raise FileNotFoundError(OPENCV_DATA / key)
        arr = arr[:, :, ::-1]
        licence = OPENCV_LICENCE
    else:
        raise ValueError(f"unknown image source in {name!r}; use skimage:NAME or opencv:FILE")
    arr = np.asarray(arr)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    return Image(name, licence, np.ascontiguousarray(arr[:, :, :3], dtype=np.float32) / 255.0)


def split() -> tuple[list[Image], list[Image]]:
    """(training images, held-out images); images smaller than 64 pixels a side are left out."""
    train, held = _split()
    return list(train), list(held)


@functools.lru_cache(maxsize=1)  # decoding every image takes seconds; callers get fresh lists
def _split() -> tuple[tuple[Image, ...], tuple[Image, ...]]:
    train: list[Image] = []
    held: list[Image] = []
    for name in image_names():
        img = load(name)
        if min(img.pixels.shape[:2]) < 64:
            continue
        (held if name in HELD_OUT else train).append(img)
    return tuple(train), tuple(held)


def vtest_frames(count: int = 20, size: tuple[int, int] | None = (640, 480)) -> list[np.ndarray]:
    """``count`` frames of vtest.avi spread evenly over the clip, BGR uint8, resized to ``size`` (W, H)."""
    import cv2

    cap = cv2.VideoCapture(str(VTEST))
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    wanted = set(np.linspace(0, max(total - 1, 0), count).round().astype(int).tolist())
    frames, i = [], 0
    while len(frames) < len(wanted):
        ok, frame = cap.read()
        if not ok:
            break
        if i in wanted:
            frames.append(cv2.resize(frame, size, interpolation=cv2.INTER_AREA) if size else frame)
        i += 1
    cap.release()
    return frames


def gaussian(img: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """``img`` (float in [0, 1]) plus white Gaussian noise of ``sigma`` on the 0-255 scale, clipped."""
    return np.clip(img + rng.normal(0.0, sigma / 255.0, img.shape), 0.0, 1.0).astype(np.float32)


def poisson_gaussian(img: np.ndarray, photons: float, read: float, rng: np.random.Generator) -> np.ndarray:
    """A small sensor: shot noise of ``photons`` electrons at full scale plus read noise ``read`` (0-255)."""
    shot = rng.poisson(np.clip(img, 0, 1) * photons) / photons
    return np.clip(shot + rng.normal(0.0, read / 255.0, img.shape), 0.0, 1.0).astype(np.float32)
