"""Drawing matches: two images side by side, lines coloured by confidence on a fixed scale."""

from __future__ import annotations

import functools

import cv2
import numpy as np

OUTLIER_COLOR = (110, 110, 110)  # BGR: matches a fitted geometry rejects, drawn thin and grey beneath the rest


def confidence_colors(confidence: np.ndarray) -> np.ndarray:
    """[N] confidences in [0, 1] -> [N, 3] uint8 BGR on a fixed turbo scale (blue low, red high)."""
    levels = np.clip(np.asarray(confidence, dtype=np.float32) * 255, 0, 255).astype(np.uint8)
    return _turbo()[levels.reshape(-1)]


@functools.cache
def _turbo() -> np.ndarray:
    """OpenCV's turbo colour map as a [256, 3] BGR table: looked up, not asked of OpenCV for every view (each
    ``applyColorMap`` builds its table again, a fifth of a millisecond)."""
    table = cv2.applyColorMap(np.arange(256, dtype=np.uint8).reshape(-1, 1), cv2.COLORMAP_TURBO).reshape(256, 3)
    table.flags.writeable = False  # shared by every caller
    return table


def position_colors(points: np.ndarray, width: int, height: int) -> np.ndarray:
    """[N, 2] (x, y) pixels of a width x height image -> [N, 3] uint8 BGR, a smooth map of the position:
    left blue, right red, top dark, bottom green (top left blue, bottom right yellow). Drawn at both ends of
    each match, it shows the correspondence field: smooth colours where matches are consistent."""
    x = np.clip(np.asarray(points[:, 0], np.float32) / max(width, 1), 0.0, 1.0)
    y = np.clip(np.asarray(points[:, 1], np.float32) / max(height, 1), 0.0, 1.0)
    return np.round(np.stack([255 * (1 - x), 255 * y, 255 * x], axis=1)).astype(np.uint8)


def _bgr(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return image[:, :, :3].copy()


def draw_matches(image0: np.ndarray, image1: np.ndarray, keypoints0: np.ndarray, keypoints1: np.ndarray,
                 confidence: np.ndarray, gap: int = 10, inliers: np.ndarray | None = None) -> np.ndarray:
    """A BGR canvas with image0 left, image1 right and one anti-aliased line per match.

    Keypoints are (x, y) in each image's pixels, corner convention (pixel centres at +0.5). With ``inliers``
    ([N] bool, e.g. from ``model.geometry.fit_geometry``) the other matches are drawn thin and grey.
    """
    left, right = _bgr(image0), _bgr(image1)
    height = max(left.shape[0], right.shape[0])
    canvas = np.full((height, left.shape[1] + gap + right.shape[1], 3), 255, np.uint8)
    canvas[: left.shape[0], : left.shape[1]] = left
    offset = left.shape[1] + gap
    canvas[: right.shape[0], offset:] = right
    draw_match_lines(canvas, keypoints0, keypoints1, confidence, offset, inliers)
    return canvas


def draw_match_lines(canvas: np.ndarray, keypoints0: np.ndarray, keypoints1: np.ndarray, confidence: np.ndarray,
                     offset: int, inliers: np.ndarray | None = None) -> None:
    """Anti-aliased, sub-pixel lines and end dots, coloured by confidence, in place; image 1 starts ``offset``
    pixels to the right. The most confident matches are drawn last, on top.

    With ``inliers`` ([N] bool), the other matches are drawn first, as thin grey lines without dots.
    """
    if inliers is None:
        _draw_lines(canvas, keypoints0, keypoints1, confidence, confidence_colors(confidence), offset, dots=True)
        return
    outliers = ~inliers
    grey = np.tile(np.array(OUTLIER_COLOR, np.uint8), (int(outliers.sum()), 1))
    _draw_lines(canvas, keypoints0[outliers], keypoints1[outliers], confidence[outliers], grey, offset, dots=False)
    _draw_lines(canvas, keypoints0[inliers], keypoints1[inliers], confidence[inliers],
                confidence_colors(confidence[inliers]), offset, dots=True)


def draw_match_points(canvas: np.ndarray, keypoints0: np.ndarray, keypoints1: np.ndarray, colors: np.ndarray,
                      offset: int, inliers: np.ndarray | None = None, radius: float = 3.0) -> None:
    """Both ends of each match as a dot of its colour (e.g. ``position_colors`` of keypoints0), no lines, in
    place; image 1 starts ``offset`` pixels to the right. With ``inliers``, the other matches are small grey
    dots beneath."""
    if inliers is not None:
        outliers = ~inliers
        grey = np.tile(np.array(OUTLIER_COLOR, np.uint8), (int(outliers.sum()), 1))
        _draw_dots(canvas, keypoints0[outliers], keypoints1[outliers], grey, offset, radius / 2)
        keypoints0, keypoints1, colors = keypoints0[inliers], keypoints1[inliers], colors[inliers]
    _draw_dots(canvas, keypoints0, keypoints1, colors, offset, radius)


def _fixed_point(keypoints: np.ndarray, offset: int, scale: int) -> list[list[int]]:
    """Keypoints (corner convention) as OpenCV's sub-pixel integer coordinates, as Python ints: converting
    them match by match cost more than OpenCV's drawing (a live view draws hundreds to thousands a frame)."""
    return np.round((keypoints - 0.5 + [offset, 0]) * scale).astype(np.int64).tolist()


def _draw_dots(canvas: np.ndarray, keypoints0: np.ndarray, keypoints1: np.ndarray, colors: np.ndarray, offset: int,
               radius: float) -> None:
    shift = 4
    scale = 1 << shift
    size = round(radius * scale)
    for start, end, color in zip(_fixed_point(keypoints0, 0, scale), _fixed_point(keypoints1, offset, scale),
                                 colors.tolist(), strict=True):
        cv2.circle(canvas, start, size, color, -1, cv2.LINE_AA, shift)
        cv2.circle(canvas, end, size, color, -1, cv2.LINE_AA, shift)


def _draw_lines(canvas: np.ndarray, keypoints0: np.ndarray, keypoints1: np.ndarray, confidence: np.ndarray,
                colors: np.ndarray, offset: int, dots: bool) -> None:
    shift = 4  # sub-pixel drawing precision: 1/16 px
    scale = 1 << shift
    order = np.argsort(confidence, kind="stable")
    starts, ends = _fixed_point(keypoints0[order], 0, scale), _fixed_point(keypoints1[order], offset, scale)
    radius = 2 * scale
    for start, end, color in zip(starts, ends, colors[order].tolist(), strict=True):
        cv2.line(canvas, start, end, color, 1, cv2.LINE_AA, shift)
        if dots:
            cv2.circle(canvas, start, radius, color, -1, cv2.LINE_AA, shift)
            cv2.circle(canvas, end, radius, color, -1, cv2.LINE_AA, shift)
