"""Geometric verification of a frame's matches against the anchor: which of them one homography or one
fundamental matrix explains (MAGSAC++), for the view to dim the rest and, for a homography, to outline where
the anchor lies in the live frame."""

from __future__ import annotations

import numpy as np

from model.geometry import TwoViewGeometry, fit_geometry
from model.matcher import MatchResult, Resize, network_size

GEOMETRY_MODES = ("none", "homography", "fundamental")
#: Inlier thresholds in network pixels: matches are as precise as the grid the network saw, so the same
#: threshold in frame pixels would be too tight for a small network input and too loose for a large one.
NETWORK_THRESHOLD_PX = {"homography": 3.0, "fundamental": 1.0}


def next_mode(mode: str) -> str:
    """The mode after ``mode`` in GEOMETRY_MODES, wrapping around (the window's key cycles through them)."""
    return GEOMETRY_MODES[(GEOMETRY_MODES.index(mode) + 1) % len(GEOMETRY_MODES)]


def frame_px_per_network_px(shape: tuple[int, ...], resize: Resize) -> float:
    """How many pixels of a (height, width, ...) frame one network pixel spans (the larger of x and y)."""
    height, width = shape[:2]
    network_height, network_width = network_size(height, width, resize)
    return max(width / network_width, height / network_height)


def verify_matches(result: MatchResult, mode: str, frame_shape: tuple[int, ...],
                   resize: Resize) -> TwoViewGeometry | None:
    """Fit the mode's model to the result's matches (in frame pixels); None for mode 'none'."""
    if mode == "none":
        return None
    if mode not in GEOMETRY_MODES:
        raise ValueError(f"unknown geometry mode {mode!r}; choose one of {', '.join(GEOMETRY_MODES)}")
    threshold = NETWORK_THRESHOLD_PX[mode] * frame_px_per_network_px(frame_shape, resize)
    return fit_geometry(np.asarray(result.keypoints0), np.asarray(result.keypoints1), mode, threshold)
