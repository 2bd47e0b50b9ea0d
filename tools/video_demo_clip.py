"""Make the bundled video demo clip ``samples/chelsea-pan-3s.avi``: a slow camera pan and zoom over
scikit-image's ``chelsea`` photograph (CC0, Stefan van der Walt; a cat, 451×300).

The image is one the video denoiser recipe holds out (``image_data.HELD_OUT``), so the demo's PSNR gain is
measured on a scene the model never trained on. Each of the ``FRAMES`` frames is a crop that drifts
across the photo and tightens a little, resampled to ``SIZE`` with cubic interpolation: camera-like motion
with sub-pixel shifts, so consecutive frames differ as a real pan's do. Written as Motion-JPEG at quality
``QUALITY`` by OpenCV's built-in writer (no FFmpeg needed, so any OpenCV build reads it back). The demo
adds its noise to the frames as decoded from this file and scores the denoisers against those same
decoded frames, so the JPEG step is part of the clean reference. Run::

    python -m tools.video_demo_clip [--out edge_sdk/samples]

The same OpenCV and scikit-image versions write the same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np

from edge_sdk.errors import MissingExtraError

CLIP = "chelsea-pan-3s.avi"
FRAMES = 30
FPS = 10.0
SIZE = (320, 240)
QUALITY = 95


def _imports() -> tuple:
    try:
        import cv2
    except ImportError as e:
        raise MissingExtraError("opencv-python-headless", "camera", "Making the video demo clip") from e
    try:
        from skimage import data
    except ImportError as e:
        raise MissingExtraError("scikit-image", "train", "Making the video demo clip") from e
    return cv2, data


def frames() -> list[np.ndarray]:
    """The clip's frames, BGR uint8, before JPEG coding."""
    cv2, data = _imports()
    image = cv2.cvtColor(data.chelsea(), cv2.COLOR_RGB2BGR)
    h, w = image.shape[:2]
    out = []
    for i in range(FRAMES):
        t = i / (FRAMES - 1)
        # the crop keeps the output's 4:3 aspect, shrinks from 95% to 80% of the height, drifts right
        ch = h * (0.95 - 0.15 * t)
        cw = ch * SIZE[0] / SIZE[1]
        x0 = (w - cw) * (0.1 + 0.8 * t)
        y0 = (h - ch) * (0.5 - 0.3 * np.sin(np.pi * t))
        sx, sy = cw / SIZE[0], ch / SIZE[1]
        affine = np.array([[sx, 0.0, x0], [0.0, sy, y0]], np.float64)
        out.append(
            cv2.warpAffine(
                image,
                affine,
                SIZE,
                flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                borderMode=cv2.BORDER_REFLECT,
            )
        )
    return out


SAMPLES = Path(__file__).resolve().parents[1] / "edge_sdk" / "samples"


def make_clip(out: Path = SAMPLES) -> Path:
    """Write the clip into ``out`` and check that it reads back whole; returns its path."""
    cv2, _ = _imports()
    path = out / CLIP
    tmp = out / f".{CLIP}.partial.avi"
    writer = cv2.VideoWriter(str(tmp), cv2.CAP_OPENCV_MJPEG, cv2.VideoWriter_fourcc(*"MJPG"), FPS, SIZE)
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV could not open an MJPEG writer for {tmp}")
    writer.set(cv2.VIDEOWRITER_PROP_QUALITY, QUALITY)
    for frame in frames():
        writer.write(frame)
    writer.release()
    back = cv2.VideoCapture(str(tmp))
    n = 0
    while True:
        ok, frame = back.read()
        if not ok:
            break
        if frame.shape[1::-1] != SIZE:
            raise RuntimeError(f"{tmp} reads back as {frame.shape[1]}x{frame.shape[0]}, not {SIZE}")
        n += 1
    back.release()
    if n != FRAMES:
        raise RuntimeError(f"{tmp} reads back {n} frames, not {FRAMES}")
    tmp.replace(path)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=SAMPLES)
    args = parser.parse_args(argv)
    path = make_clip(args.out)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    print(f"wrote {path}: {path.stat().st_size} bytes, sha256 {digest}")


if __name__ == "__main__":
    main()
