"""Matching at any in-plane rotation and over a wider range of scales, through views of one image: turned by
quarter turns, and seen by the network smaller.

LoFTR's features are not rotation invariant: the bundled weights, trained with rotations up to 45 degrees, find
their matches up to about 45 degrees and lose them from about 60 (a TUM frame turned 90 degrees: ~130 matches of
confidence ~0.4, most of them wrong, against 300 of 0.9 up to 30 degrees; ``tools/rotation_sweep.py``). Every
rotation lies within 45 degrees of one of the four quarter turns, so matching against the image turned by each
and keeping the best covers them all. They were trained with scale changes up to 2x as well: an object that
appears a third as large in the frames as in the anchor is lost, and found again by an anchor the network sees
at half its size (``tools/scale_sweep.py``).

Points use the matcher's convention: an image spans [0, width) x [0, height), pixel (i, j) covering
[i, i + 1) x [j, j + 1).
"""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple

import numpy as np

from .geometry import Box
from .matcher import EncodedImage, Matcher, MatchResult

#: Quarter turns clockwise: 0, 90, 180 and 270 degrees.
QUARTER_TURNS = (0, 1, 2, 3)
#: Sizes the network sees a view at, as fractions of the size it matches the image at (``Matcher.preprocess``).
SCALES = (1.0, 0.5)
#: A match counts as confident from this confidence on (``match_score``).
CONFIDENT = 0.7


class AnchorView(NamedTuple):
    """One view of an image: turned clockwise by ``turn`` quarter turns and seen by the network at ``scale``
    of the size it would be matched at."""

    turn: int = 0
    scale: float = 1.0

    @property
    def degrees(self) -> int:
        return 90 * self.turn

    def describe(self) -> str:
        """"turned 90 deg", "at 1/2 size", both, or "as it is"."""
        parts = ([f"turned {self.degrees} deg"] if self.turn else []) + \
            ([f"at 1/{round(1 / self.scale)} size"] if self.scale != 1.0 else [])
        return ", ".join(parts) or "as it is"


UPRIGHT = AnchorView()


def views(turns: bool, scales: bool) -> tuple[AnchorView, ...]:
    """The views to try: every quarter turn with ``turns``, every scale of ``SCALES`` with ``scales``."""
    return tuple(AnchorView(turn, scale) for turn in (QUARTER_TURNS if turns else (0,))
                 for scale in (SCALES if scales else (1.0,)))


def turn_image(image: np.ndarray, quarter_turns: int) -> np.ndarray:
    """The image ([H, W] or [H, W, C]) turned clockwise by ``quarter_turns`` x 90 degrees."""
    return np.ascontiguousarray(np.rot90(image, -quarter_turns % 4))


def turned_size(size: tuple[int, int], quarter_turns: int) -> tuple[int, int]:
    """(width, height) of an image of ``size`` (width, height) after the turn."""
    return size if quarter_turns % 2 == 0 else (size[1], size[0])


def turn_points(points: np.ndarray, quarter_turns: int, size: tuple[int, int]) -> np.ndarray:
    """[N, 2] points (x, y) of an image of ``size`` (width, height) -> where they lie once it is turned clockwise
    by ``quarter_turns`` x 90 degrees."""
    width, height = size
    x, y = points[:, 0], points[:, 1]
    turned = {0: (x, y), 1: (height - y, x), 2: (width - x, height - y), 3: (y, width - x)}[quarter_turns % 4]
    return np.stack(turned, axis=1).astype(points.dtype, copy=False)


def unturn_points(points: np.ndarray, quarter_turns: int, size: tuple[int, int]) -> np.ndarray:
    """The inverse of ``turn_points``: points of the turned image -> the image of ``size`` (width, height) before
    the turn."""
    return turn_points(points, -quarter_turns % 4, turned_size(size, quarter_turns))


def turn_box(box: Box, quarter_turns: int, size: tuple[int, int]) -> Box:
    """An axis-aligned box (x0, y0, x1, y1) of an image of ``size`` -> the same box in the turned image."""
    corners = turn_points(np.array([[box[0], box[1]], [box[2], box[3]]], dtype=np.float64), quarter_turns, size)
    (x0, y0), (x1, y1) = corners.min(axis=0), corners.max(axis=0)
    return float(x0), float(y0), float(x1), float(y1)


def match_score(confidence: np.ndarray) -> int:
    """How well two images matched, to compare views: the number of confident matches (``CONFIDENT``). A pair
    turned too far gives ~130 weak, mostly wrong matches (mean confidence ~0.4), of which a handful are
    confident; a good pair gives hundreds. A summed confidence would favour the larger of two scales: its many
    weak matches outweigh the fewer, right ones of a smaller view."""
    return int(np.count_nonzero(confidence >= CONFIDENT))


def best_view(results: dict[AnchorView, MatchResult]) -> AnchorView:
    """The view whose matches score best (``match_score``); the first of equals."""
    return max(results, key=lambda view: match_score(results[view].confidence))


class AnchorViews:
    """An image to match others against in any of its views (``AnchorView``: turned, seen smaller), each encoded
    when first needed, matches always in the pixels of the image as it is.

    Args:
        matcher: the LoFTR ``Matcher`` that encodes and matches.
        image: the image as the caller has it (its pixels are the matches' keypoints0).
        encoded: ``matcher.encode(image, keep_aspect)`` when the caller has it already (the upright view).
        keep_aspect: how the upright image is encoded (see ``Matcher.preprocess``); turned and smaller views
            keep their aspect, whatever the frames' size.
    """

    def __init__(self, matcher: Matcher, image: np.ndarray, encoded: EncodedImage | None = None,
                 keep_aspect: bool = False) -> None:
        self.matcher, self.image, self.keep_aspect = matcher, image, keep_aspect
        self.size = (image.shape[1], image.shape[0])
        self._encoded: dict[AnchorView, EncodedImage] = {} if encoded is None else {UPRIGHT: encoded}

    def encoded(self, view: AnchorView) -> EncodedImage:
        if view not in self._encoded:
            self._encoded[view] = self.matcher.encode(turn_image(self.image, view.turn),
                                                      keep_aspect=self.keep_aspect or view != UPRIGHT,
                                                      network_scale=view.scale)
        return self._encoded[view]

    def match(self, view: AnchorView, other: np.ndarray | EncodedImage, region: Box | None = None) -> MatchResult:
        """``other`` matched against this view of the image; ``region`` (this image's pixels) as in
        ``Matcher.match``. keypoints0 are in this image's pixels, as it is."""
        turned_region = None if region is None else turn_box(region, view.turn, self.size)
        result = self.matcher.match(self.encoded(view), other, region0=turned_region)
        if view.turn % 4 == 0:
            return result
        return replace(result, keypoints0=unturn_points(result.keypoints0, view.turn, self.size))

    def match_views(self, other: np.ndarray, views: tuple[AnchorView, ...],
                    region: Box | None = None) -> dict[AnchorView, MatchResult]:
        """``other`` matched against each of these views (its backbone run once) -> the results by view
        (``best_view`` picks)."""
        encoded = self.matcher.encode(other)
        return {view: self.match(view, encoded, region) for view in views}
