"""Synthetic images shared by the refinement tests."""

from __future__ import annotations

import cv2
import numpy as np


def texture(height: int = 240, width: int = 320, seed: int = 0) -> np.ndarray:
    """Blurred noise, gray uint8 [height, width] over the full range: texture everywhere, for flows to follow."""
    noise = np.random.default_rng(seed).random((height, width)).astype(np.float32)
    return cv2.normalize(cv2.GaussianBlur(noise, (0, 0), 2.0), None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
