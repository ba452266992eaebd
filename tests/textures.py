"""Synthetic images shared by the refinement tests."""

from __future__ import annotations

import cv2
import numpy as np


def texture(height: int = 240, width: int = 320, seed: int = 0) -> np.ndarray:
    """Blurred noise, gray uint8 [height, width] over the full range: texture everywhere, for flows to follow."""
    noise = np.random.default_rng(seed).random((height, width)).astype(np.float32)
    return cv2.normalize(cv2.GaussianBlur(noise, (0, 0), 2.0), None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)


def warped(image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``image`` moved by the [2, 3] affine ``matrix`` (OpenCV's pixel centres at integers), bicubic, edges
    reflected, at its own size."""
    return cv2.warpAffine(image, np.float32(matrix), image.shape[::-1], flags=cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_REFLECT)


def point_grid(step: int = 40, margin: int = 40, height: int = 240, width: int = 320) -> np.ndarray:
    """float32 [N, 2] (x, y) points every ``step`` pixels, ``margin`` pixels or more inside a height x width image."""
    xs, ys = np.meshgrid(np.arange(margin, width - margin, step), np.arange(margin, height - margin, step))
    return np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float32)
