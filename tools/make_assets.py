"""Build assets/sample.mp4: a virtual hand-held camera moving over a wall of public-domain/CC0 photos.

The photos come from the scikit-image wheel (``skimage/data``; see assets/README.md for their licences).
Usage (once; the result is committed):  .venv/bin/pip install scikit-image && .venv/bin/python tools/make_assets.py
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg")
FRAME_SIZE = (640, 480)  # width, height
FPS = 15
SECONDS = 8


def photo_wall() -> np.ndarray:
    """A 2x2 wall of the photos, each resized to 800x600, on a light grey background (BGR)."""
    import skimage

    data = Path(skimage.__file__).parent / "data"
    tiles = []
    for name in PHOTOS:
        image = cv2.imread(str(data / name), cv2.IMREAD_COLOR)
        if image is None:
            raise SystemExit(f"cannot read {data / name}; is scikit-image installed?")
        tiles.append(cv2.resize(image, (800, 600), interpolation=cv2.INTER_AREA))
    gap = 40
    wall = np.full((2 * 600 + 3 * gap, 2 * 800 + 3 * gap, 3), 200, np.uint8)
    for index, tile in enumerate(tiles):
        row, col = divmod(index, 2)
        y, x = gap + row * (600 + gap), gap + col * (800 + gap)
        wall[y:y + 600, x:x + 800] = tile
    return wall


def camera(t: float, wall_hw: tuple[int, int]) -> np.ndarray:
    """Homography from frame pixels to wall pixels at time t in [0, 1]: pan, zoom, roll and a little tilt."""
    wall_h, wall_w = wall_hw
    width, height = FRAME_SIZE
    center = np.array([wall_w * (0.35 + 0.3 * t), wall_h * (0.45 + 0.1 * math.sin(2 * math.pi * t))])
    zoom = 1.6 + 0.5 * math.sin(math.pi * t)  # wall pixels per frame pixel
    roll = math.radians(12 * math.sin(2 * math.pi * t))
    tilt = 0.15 * math.sin(3 * math.pi * t)
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64) * [width / 2, height / 2]
    corners[:, 0] *= 1 + tilt * np.sign(corners[:, 1]) / 2  # keystone, as when the camera pitches
    rotation = np.array([[math.cos(roll), -math.sin(roll)], [math.sin(roll), math.cos(roll)]])
    quad = corners @ rotation.T * zoom + center
    target = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float32)
    return cv2.getPerspectiveTransform(target, quad.astype(np.float32))


def main() -> None:
    wall = photo_wall()
    blurred = cv2.GaussianBlur(wall, (0, 0), 0.8)  # the optics' low-pass, so the warp does not alias
    out = ROOT / "assets" / "sample.mp4"
    writer = imageio_ffmpeg.write_frames(str(out), FRAME_SIZE, fps=FPS, codec="libx264", quality=7,
                                         pix_fmt_out="yuv420p", macro_block_size=16)
    writer.send(None)
    frames = FPS * SECONDS
    rng = np.random.default_rng(0)
    for index in range(frames):
        to_wall = camera(index / (frames - 1), wall.shape[:2])
        frame = cv2.warpPerspective(blurred, to_wall, FRAME_SIZE, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                    borderMode=cv2.BORDER_REFLECT)
        noise = rng.normal(0, 2.0, frame.shape)  # sensor noise
        frame = np.clip(frame + noise, 0, 255).astype(np.uint8)
        writer.send(np.ascontiguousarray(frame[:, :, ::-1]))  # imageio wants RGB
    writer.close()
    print(f"wrote {out} ({frames} frames, {FRAME_SIZE[0]}x{FRAME_SIZE[1]}, {FPS} fps)")


if __name__ == "__main__":
    main()
