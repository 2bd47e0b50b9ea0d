"""Make the bundled video demo clip ``samples/opencv-vtest-3s.avi`` from OpenCV's sample ``vtest.avi``.

The first ``FRAMES`` frames of ``vtest.avi`` (768×576, 10 fps; Debian ships it in ``opencv-doc`` under
``/usr/share/doc/opencv-doc/examples/data/``), scaled to ``SIZE`` with area averaging (which also takes
out some of the source's own compression noise), written as Motion-JPEG at JPEG quality ``QUALITY`` by
OpenCV's built-in MJPEG writer. That writer needs no FFmpeg, so every OpenCV build (a Pi's included)
reads the clip back; a lossless FFV1 clip of the same frames would be 2.8 MB instead of about 1.1 MB. The
demo adds its noise to the frames as decoded from this file and scores the denoisers against those same
decoded frames, so the JPEG step is part of the clean reference, not an error in it. Run::

    python -m edge_sdk.recipes.vtest_demo_clip [--source .../vtest.avi] [--out edge_sdk/samples]

The same OpenCV version writes the same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

from edge_sdk.errors import BadInputError, MissingExtraError

SOURCE = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
CLIP = "opencv-vtest-3s.avi"
FRAMES = 30  # 3 s at the source's 10 fps
FPS = 10.0
SIZE = (320, 240)
QUALITY = 95


def make_clip(source: Path = SOURCE, out: Path = Path(__file__).parents[1] / "samples") -> Path:
    """Write the clip into ``out`` and check that it reads back whole; returns its path."""
    try:
        import cv2
    except ImportError as e:
        raise MissingExtraError("opencv-python-headless", "camera", "Making the video demo clip") from e
    if not source.exists():
        raise BadInputError(f"{source} not found: install the Debian package opencv-doc, or pass --source")
    cap = cv2.VideoCapture(str(source))
    frames = []
    while len(frames) < FRAMES:
        ok, frame = cap.read()
        if not ok:
            raise BadInputError(f"{source} has fewer than {FRAMES} readable frames")
        frames.append(cv2.resize(frame, SIZE, interpolation=cv2.INTER_AREA))
    cap.release()

    path = out / CLIP
    # The built-in writer (not FFmpeg's): it honours the quality setting and any OpenCV can read its files.
    writer = cv2.VideoWriter(str(path), cv2.CAP_OPENCV_MJPEG, cv2.VideoWriter_fourcc(*"MJPG"), FPS, SIZE)
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV could not open an MJPEG writer for {path}")
    writer.set(cv2.VIDEOWRITER_PROP_QUALITY, QUALITY)
    for frame in frames:
        writer.write(frame)
    writer.release()

    back = cv2.VideoCapture(str(path))
    n = 0
    while True:
        ok, frame = back.read()
        if not ok:
            break
        if frame.shape[1::-1] != SIZE:
            raise RuntimeError(f"{path} reads back as {frame.shape[1]}x{frame.shape[0]}, not {SIZE}")
        n += 1
    back.release()
    if n != FRAMES:
        raise RuntimeError(f"{path} reads back {n} frames, not {FRAMES}")
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=SOURCE, help="OpenCV's vtest.avi")
    parser.add_argument("--out", type=Path, default=Path(__file__).parents[1] / "samples")
    args = parser.parse_args(argv)
    path = make_clip(args.source, args.out)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    shape = f"{FRAMES} frames {SIZE[0]}x{SIZE[1]} at {FPS:g} fps"
    print(f"{path}: {path.stat().st_size} bytes, {shape}, sha256 {digest}")


if __name__ == "__main__":
    main()
