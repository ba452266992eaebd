"""Geometric verification of a frame's matches against the anchor: which of them one homography or one
fundamental matrix explains (MAGSAC++), for the view to dim the rest and, for a homography, to outline where
the anchor (or the region of it the matches come from) lies in the live frame."""

from __future__ import annotations

from model.geometry import TwoViewGeometry, fit_to_result
from model.matcher import MatchResult, Resize

GEOMETRY_MODES = ("none", "homography", "fundamental")


def next_mode(mode: str) -> str:
    """The mode after ``mode`` in GEOMETRY_MODES, wrapping around (the window's key cycles through them)."""
    return GEOMETRY_MODES[(GEOMETRY_MODES.index(mode) + 1) % len(GEOMETRY_MODES)]


def verify_matches(result: MatchResult, mode: str, frame_shape: tuple[int, ...],
                   resize: Resize) -> TwoViewGeometry | None:
    """Fit the mode's model to the result's matches (in frame pixels); None for mode 'none'."""
    if mode == "none":
        return None
    if mode not in GEOMETRY_MODES:
        raise ValueError(f"unknown geometry mode {mode!r}; choose one of {', '.join(GEOMETRY_MODES)}")
    return fit_to_result(result, mode, frame_shape, resize)
