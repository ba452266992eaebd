"""Matching at any in-plane rotation by turning one image in quarter turns.

LoFTR's features are not rotation invariant: the bundled weights, trained with rotations up to 45 degrees, find
their matches up to about 45 degrees and lose them from about 60 (a TUM frame turned 90 degrees: 134 matches of
confidence 0.37 on average, most of them wrong, against 300 of 0.9 up to 30 degrees). Every rotation lies within
45 degrees of one of the four quarter turns, so matching against the image turned by each and keeping the best
covers them all.

Points use the matcher's convention: an image spans [0, width) x [0, height), pixel (i, j) covering
[i, i + 1) x [j, j + 1).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .geometry import Box
from .matcher import EncodedImage, Matcher, MatchResult

#: Quarter turns clockwise: 0, 90, 180 and 270 degrees.
QUARTER_TURNS = (0, 1, 2, 3)


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


def match_score(confidence: np.ndarray) -> float:
    """How well two images matched, to compare turns: the summed confidence of the matches. Many confident
    matches beat a few; the ~130 weak matches of a pair turned too far sum to ~50, a good pair's 300 to 250+."""
    return float(np.sum(confidence, dtype=np.float64))


class TurnedAnchor:
    """An image to match others against at any quarter turn: its encodings turned by 0, 90, 180 and 270 degrees
    (each made when first needed), matches always in the pixels of the image as it is.

    Args:
        matcher: the LoFTR ``Matcher`` that encodes and matches.
        image: the image as the caller has it (its pixels are the matches' keypoints0).
        encoded: ``matcher.encode(image, keep_aspect)`` when the caller has it already (the unturned one).
        keep_aspect: how the unturned image is encoded (see ``Matcher.preprocess``); the quarter and three-quarter
            turns keep their aspect, whatever the frames' size.
    """

    def __init__(self, matcher: Matcher, image: np.ndarray, encoded: EncodedImage | None = None,
                 keep_aspect: bool = False) -> None:
        self.matcher, self.image, self.keep_aspect = matcher, image, keep_aspect
        self.size = (image.shape[1], image.shape[0])
        self._encoded: dict[int, EncodedImage] = {} if encoded is None else {0: encoded}

    def encoded(self, quarter_turns: int) -> EncodedImage:
        if quarter_turns not in self._encoded:
            self._encoded[quarter_turns] = self.matcher.encode(
                turn_image(self.image, quarter_turns), keep_aspect=self.keep_aspect or quarter_turns % 2 == 1)
        return self._encoded[quarter_turns]

    def match(self, quarter_turns: int, other: np.ndarray | EncodedImage, region: Box | None = None) -> MatchResult:
        """``other`` matched against this image turned clockwise by ``quarter_turns`` x 90 degrees; ``region``
        (this image's pixels) as in ``Matcher.match``. keypoints0 are in this image's pixels, as it is."""
        turned_region = None if region is None else turn_box(region, quarter_turns, self.size)
        result = self.matcher.match(self.encoded(quarter_turns), other, region0=turned_region)
        if quarter_turns % 4 == 0:
            return result
        return replace(result, keypoints0=unturn_points(result.keypoints0, quarter_turns, self.size))

    def match_turns(self, other: np.ndarray, region: Box | None = None,
                  quarter_turns: tuple[int, ...] = QUARTER_TURNS) -> dict[int, MatchResult]:
        """``other`` matched against each of these turns (its backbone run once) -> the results by turn; the
        best is the one of the highest ``match_score``."""
        encoded = self.matcher.encode(other)
        return {turn: self.match(turn, encoded, region) for turn in quarter_turns}
