"""Synthetic training pairs from natural photos: random homographies plus independent photometric changes.

Coordinates: homographies returned here map image-0 pixels to image-1 pixels in the *corner* convention
(pixel (i, j) covers [i, i+1) x [j, j+1)), the convention of LoFTR's keypoints, so keypoints scale exactly
under resizing.
"""

from __future__ import annotations

import fnmatch
import hashlib
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from ..images import decode_file

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp"}


def list_images(root: str | os.PathLike[str], include: Sequence[str] = ()) -> list[Path]:
    """All image files below ``root``, sorted, so a split is reproducible.

    ``include``: shell patterns on the path relative to ``root`` (e.g. ``scene15/*kitchen*``); a file is kept
    when it matches any of them. Used to train and evaluate on a domain (indoor, outdoor) of a photo folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"image folder not found: {root}")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if include:
        files = [p for p in files if any(fnmatch.fnmatch(p.relative_to(root).as_posix(), pattern)
                                         for pattern in include)]
        if not files:
            raise ValueError(f"no images below {root} match {' or '.join(include)}")
    if not files:
        raise ValueError(f"no images found below {root}")
    return files


def split_images(files: list[Path], root: Path, holdout_percent: float = 5.0) -> tuple[list[Path], list[Path]]:
    """(train, held-out) by a hash of each path relative to ``root``: stable when files are added."""
    train, held = [], []
    for path in files:
        digest = hashlib.sha1(str(path.relative_to(root)).encode()).digest()
        (held if int.from_bytes(digest[:4], "little") % 10000 < holdout_percent * 100 else train).append(path)
    return train, held


@dataclass(frozen=True)
class WarpRanges:
    """Ranges of the random homography between the two views (relative to the image size)."""

    max_rotation_deg: float = 45.0
    max_scale: float = 2.0  # scale drawn log-uniformly in [1/max_scale, max_scale]
    max_perspective: float = 0.2  # corner jitter, fraction of the image size
    max_translation: float = 0.2  # fraction of the image size


@dataclass(frozen=True)
class PhotometricRanges:
    """Per-image photometric augmentation; each image of a pair gets its own draw."""

    brightness: float = 0.25
    contrast: tuple[float, float] = (0.6, 1.5)
    gamma: tuple[float, float] = (0.6, 1.7)
    max_noise: float = 0.03
    blur_probability: float = 0.3
    max_blur_sigma: float = 1.6
    motion_blur_probability: float = 0.15


def _rect(width: float, height: float) -> np.ndarray:
    return np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float64)


def sample_quads(rng: np.random.Generator, source_hw: tuple[int, int], out_hw: tuple[int, int],
                 warp: WarpRanges, tries: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Two quadrilaterals in the source photo: an axis-aligned crop (view 0) and a warped one (view 1)."""
    src_h, src_w = source_hw
    out_h, out_w = out_hw
    fit = min(src_w / out_w, src_h / out_h)
    best: tuple[float, np.ndarray, np.ndarray] | None = None
    for _ in range(tries):
        scale0 = fit * rng.uniform(0.45, 0.9)
        w0, h0 = out_w * scale0, out_h * scale0
        x0, y0 = rng.uniform(0, src_w - w0), rng.uniform(0, src_h - h0)
        quad0 = _rect(w0, h0) + [x0, y0]
        center = quad0.mean(0)
        angle = math.radians(rng.uniform(-warp.max_rotation_deg, warp.max_rotation_deg))
        scale = math.exp(rng.uniform(-math.log(warp.max_scale), math.log(warp.max_scale)))
        rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        corners = (quad0 - center) / scale
        corners = corners + rng.uniform(-warp.max_perspective, warp.max_perspective, (4, 2)) * [w0, h0] / scale
        shift = rng.uniform(-warp.max_translation, warp.max_translation, 2) * [w0, h0]
        quad1 = corners @ rotation.T + center + shift
        # Prefer views that stay inside the photo: black borders teach nothing about real cameras.
        outside = np.maximum(0, -quad1).sum() + np.maximum(0, quad1 - [src_w, src_h]).sum()
        if best is None or outside < best[0]:
            best = (outside, quad0, quad1)
        if outside == 0:
            break
    assert best is not None
    return best[1], best[2]


def _to_corner_convention(homography: np.ndarray) -> np.ndarray:
    """OpenCV maps pixel centres at integer coordinates; shift in and out by half a pixel."""
    shift_in = np.array([[1, 0, -0.5], [0, 1, -0.5], [0, 0, 1]])
    shift_out = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]])
    return shift_out @ homography @ shift_in


def photometric(rng: np.random.Generator, image: np.ndarray, ranges: PhotometricRanges) -> np.ndarray:
    """float32 image in [0, 1] -> augmented float32 image in [0, 1]."""
    if rng.random() < ranges.blur_probability:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.3, ranges.max_blur_sigma))
    if rng.random() < ranges.motion_blur_probability:
        length = int(rng.integers(3, 8))
        kernel = np.zeros((length, length), np.float32)
        kernel[length // 2] = 1.0 / length
        rotation = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), rng.uniform(0, 180), 1.0)
        kernel = cv2.warpAffine(kernel, rotation, (length, length))
        image = cv2.filter2D(image, -1, kernel / max(kernel.sum(), 1e-6))
    image = np.clip(image, 0, 1) ** rng.uniform(*ranges.gamma)
    mean = float(image.mean())
    image = (image - mean) * rng.uniform(*ranges.contrast) + mean + rng.uniform(-ranges.brightness, ranges.brightness)
    image = image + rng.normal(0, rng.uniform(0, ranges.max_noise), image.shape)
    return np.clip(image, 0, 1).astype(np.float32)


def augmented_tensors(rng: np.random.Generator, item: dict[str, np.ndarray],
                      ranges: PhotometricRanges) -> dict[str, torch.Tensor]:
    """A training item with its own photometric change on each image, as tensors."""
    item = {**item, "image0": photometric(rng, item["image0"], ranges),
            "image1": photometric(rng, item["image1"], ranges)}
    return {key: torch.from_numpy(np.ascontiguousarray(value)) for key, value in item.items()}


def make_pair(rng: np.random.Generator, photo: np.ndarray, out_hw: tuple[int, int], warp: WarpRanges,
              photometric_ranges: PhotometricRanges | None) -> dict[str, np.ndarray]:
    """One training pair from a grayscale uint8 photo.

    Returns image0/image1 [H, W] float32, valid0/valid1 [H, W] (pixels that come from the photo) and
    homography [3, 3] mapping image-0 to image-1 pixels (corner convention).
    """
    out_h, out_w = out_hw
    quad0, quad1 = sample_quads(rng, photo.shape[:2], out_hw, warp)
    target = _rect(out_w - 1, out_h - 1).astype(np.float32)
    to_view0 = cv2.getPerspectiveTransform(quad0.astype(np.float32), target)
    to_view1 = cv2.getPerspectiveTransform(quad1.astype(np.float32), target)
    source = photo.astype(np.float32) / 255.0
    ones = np.ones_like(source)
    images, valids = [], []
    for transform in (to_view0, to_view1):
        # Bilinear warping aliases when it shrinks; blur the photo first, as a camera's optics would.
        shrink = 1.0 / math.sqrt(abs(np.linalg.det(transform[:2, :2])) + 1e-12)
        blurred = cv2.GaussianBlur(source, (0, 0), 0.5 * shrink) if shrink > 1.3 else source
        images.append(cv2.warpPerspective(blurred, transform, (out_w, out_h), flags=cv2.INTER_LINEAR))
        valids.append(cv2.warpPerspective(ones, transform, (out_w, out_h), flags=cv2.INTER_NEAREST) > 0.5)
    if photometric_ranges is not None:
        images = [photometric(rng, image, photometric_ranges) for image in images]
    homography = _to_corner_convention(to_view1 @ np.linalg.inv(to_view0))
    return {"image0": images[0], "image1": images[1], "valid0": valids[0], "valid1": valids[1],
            "homography": (homography / homography[2, 2]).astype(np.float64)}


def read_gray(path: Path) -> np.ndarray:
    """A photo as grayscale uint8; unreadable files raise ValueError."""
    image = decode_file(path, cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise ValueError(f"cannot read image {path}")
    return image


class HomographyPairs(IterableDataset):
    """Endless stream of synthetic pairs from a list of photos; each worker has its own random stream."""

    def __init__(self, files: list[Path], out_hw: tuple[int, int], warp: WarpRanges,
                 photometric_ranges: PhotometricRanges, seed: int) -> None:
        super().__init__()
        self.files, self.out_hw, self.warp, self.photometric_ranges, self.seed = (
            files, out_hw, warp, photometric_ranges, seed)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = get_worker_info()
        cv2.setNumThreads(1)
        rng = np.random.default_rng([self.seed, info.id if info else 0])
        while True:
            photo = read_gray(self.files[int(rng.integers(len(self.files)))])
            if min(photo.shape) < 64:
                continue
            pair = make_pair(rng, photo, self.out_hw, self.warp, self.photometric_ranges)
            yield {key: torch.from_numpy(np.ascontiguousarray(value)) for key, value in pair.items()}


def fixed_pairs(files: list[Path], count: int, out_hw: tuple[int, int], warp: WarpRanges,
                photometric_ranges: PhotometricRanges | None, seed: int = 1234) -> list[dict[str, np.ndarray]]:
    """A deterministic list of pairs (for validation and benchmarks): same files, seed -> same pairs."""
    rng = np.random.default_rng(seed)
    pairs = []
    for index in range(count):
        photo = read_gray(files[index % len(files)])
        pairs.append(make_pair(rng, photo, out_hw, warp, photometric_ranges))
    return pairs
