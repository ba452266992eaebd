"""Pure drawing of the demo view, shared by the GUI and the headless writer: arrays in, a BGR canvas out.

Layout: anchor (left) and live frame (right) side by side, match lines coloured by confidence on a fixed
scale (so colours mean the same thing from frame to frame), a colour-bar legend, and a text overlay.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from model.geometry import Box, TwoViewGeometry, project_outline
from model.visualize import confidence_colors, draw_match_lines, draw_match_points, position_colors

from .actions import help_lines

GAP = 10
DISPLAY_HEIGHT = 480  # small frames are drawn enlarged to about this height, so lines and text stay readable
DISPLAY_MAX_WIDTH = 1920  # ...but no wider: a 3000x200 panorama strip (960x64 as kept) was drawn 7680 pixels wide
OUTLINE_COLOR = (90, 255, 90)  # the anchor's border mapped into the live frame by the homography
MIN_OUTLINE_INLIERS = 20  # a homography with fewer inliers is too unreliable to outline the anchor with
MIN_POSE_INLIERS = 20  # an essential matrix with fewer inliers is too unreliable to say how the camera moved
REGION_COLOR = (0, 215, 255)  # BGR: the region of the anchor the matches are restricted to
ESTIMATOR_NAME = "MAGSAC++"
#: How matches are drawn: lines coloured by confidence, or dots at both ends coloured by their position in the
#: anchor (the correspondence field: smooth where matches agree, speckled where they do not; no lines to clutter
#: thousands of matches).
VIEWS = ("lines", "points")
RANGE_STEP = 200  # d/f shift the window of shown matches by this many ranks (as the original demo)
SIZE_STEP = 50  # c/v shrink/grow it by this many


@dataclass(frozen=True)
class MatchWindow:
    """Which matches to draw, by confidence rank: ranks [start, stop)."""

    start: int = 0
    stop: int = 2000

    def shifted(self, ranks: int) -> MatchWindow:
        ranks = max(ranks, -self.start)
        return MatchWindow(self.start + ranks, self.stop + ranks)

    def resized(self, ranks: int) -> MatchWindow:
        return MatchWindow(self.start, max(self.start + 1, self.stop + ranks))


@dataclass(frozen=True)
class ViewSettings:
    """How views are drawn, as a user changes it at run time (one frozen value, replaced whole).

    shown: which ranked matches (d/f, c/v). view: one of VIEWS (l). blend_anchor: the anchor warped over the frame
    through the homography (w). show_help: the key overlay (h). help_hint: "h: help" in the corner (not on a
    comparison's view). text_scale: text and legends this many times their size (a window showing the view shrunk).
    """

    shown: MatchWindow = MatchWindow()
    view: str = "lines"
    blend_anchor: bool = False
    show_help: bool = False
    help_hint: bool = True
    text_scale: float = 1.0


@dataclass(frozen=True)
class Drawing:
    """What one view shows: the anchor and the frame with their drawing factors (``view_scales``; the anchor's
    None: the frame's), the matches in the images' pixels sorted by confidence (descending, as matchers return
    them), the fit to them and the box of the anchor they were restricted to."""

    anchor: np.ndarray
    frame: np.ndarray
    keypoints0: np.ndarray
    keypoints1: np.ndarray
    confidence: np.ndarray
    frame_scale: int = 1
    anchor_scale: float | None = None
    geometry: TwoViewGeometry | None = None
    region: Box | None = None


@dataclass(frozen=True)
class Overlay:
    """Text shown on the view."""

    model: str = ""
    device: str = ""
    fps: float = 0.0
    latency_ms: float = 0.0  # matching this frame
    frame_age_ms: float = 0.0  # reading the frame to its result
    size: tuple[int, int] | None = None  # (width, height) the frame was matched at
    threshold: float | None = None  # the coarse confidence threshold the matches passed
    ratio_test: bool = False  # the threshold is 1 - Lowe's ratio (SIFT, ORB): shown as the ratio
    anchor: str = "#0"  # the anchor's frame number, or the name of the image file it came from
    frame_index: int = 0
    status: str = ""  # e.g. "loading outdoor model..." or "paused"


HELP_LINES = help_lines()  # the help overlay (h), from the key table


def _stroke(text_scale: float) -> int:
    """Pixels of a letter's stroke (and of its outline) for text drawn ``text_scale`` times its size."""
    return max(1, round(text_scale))


def _text_width(text: str, size: float, text_scale: float) -> int:
    return cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, size * text_scale, _stroke(text_scale))[0][0]


def _put_text(canvas: np.ndarray, text: str, origin: tuple[int, int], size: float = 0.5,
              color: tuple[int, int, int] = (255, 255, 255), text_scale: float = 1.0) -> None:
    """Text with a dark outline, readable on any image (``size``: OpenCV's font scale at ``text_scale`` 1)."""
    sprite = _text_sprite(text, size * text_scale, _stroke(text_scale), color)
    x, y = origin
    left, top = x - sprite.origin[0], y - sprite.origin[1]
    height, width = sprite.keep.shape[:2]
    # The part of the sprite inside the canvas (text near an edge is cut, as OpenCV cuts it).
    x0, y0 = max(-left, 0), max(-top, 0)
    x1, y1 = min(width, canvas.shape[1] - left), min(height, canvas.shape[0] - top)
    if x1 <= x0 or y1 <= y0:
        return
    region = canvas[top + y0:top + y1, left + x0:left + x1]
    region[:] = cv2.add(cv2.multiply(region, sprite.keep[y0:y1, x0:x1], scale=1 / 255), sprite.ink[y0:y1, x0:x1])


@dataclass(frozen=True)
class TextSprite:
    """A text drawn once, to blend into a canvas: ``keep`` scales what is under it (dark under the outline), ``ink``
    is then added; ``origin``: the text's baseline origin within the sprite (x, y)."""

    keep: np.ndarray
    ink: np.ndarray
    origin: tuple[int, int]


@functools.lru_cache(maxsize=256)
def _text_sprite(text: str, font_scale: float, stroke: int, color: tuple[int, int, int]) -> TextSprite:
    """The text drawn once as a coverage mask of its own box, with an outline that is the mask grown by a stroke (not
    a thicker stroke: OpenCV 5 renders one with a wider advance, which misaligned the shadow). Kept: most of a
    view's texts (title, legend, hints) are the same frame after frame, and blending a kept sprite is two
    operations."""
    (width, height), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, stroke)
    pad = 2 * stroke
    mask = np.zeros((height + baseline + 2 * pad, width + 2 * pad), np.uint8)
    origin = (pad, height + pad)
    cv2.putText(mask, text, origin, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 255, stroke, cv2.LINE_AA)
    outline = cv2.dilate(mask, _outline_kernel(stroke))
    keep = cv2.cvtColor(cv2.bitwise_not(outline), cv2.COLOR_GRAY2BGR)  # the outline darkens what is under it
    ink = cv2.multiply(np.full((*mask.shape, 3), color, np.uint8), cv2.cvtColor(mask, cv2.COLOR_GRAY2BGR),
                       scale=1 / 255)
    keep.flags.writeable = ink.flags.writeable = False
    return TextSprite(keep, ink, origin)


@functools.lru_cache(maxsize=8)
def _outline_kernel(stroke: int) -> np.ndarray:
    """The outline's reach: ``stroke`` pixels left, right, up and down, and diagonally down-right."""
    kernel = np.zeros((2 * stroke + 1, 2 * stroke + 1), np.uint8)
    kernel[stroke, :] = kernel[:, stroke] = 1
    kernel[2 * stroke, 2 * stroke] = 1
    return kernel


def _panel(canvas: np.ndarray, left: int, top: int, right: int, bottom: int, alpha: float = 0.6) -> None:
    """Darken a rectangle so text stays readable over dense match lines."""
    top, left = max(top, 0), max(left, 0)
    region = canvas[top:bottom, left:right]
    region[:] = cv2.convertScaleAbs(region, alpha=1 - alpha)


def _legend(canvas: np.ndarray, left: int, top: int, text_scale: float) -> None:
    """The confidence colour bar, 160 x 10 pixels at ``text_scale`` 1, its top left corner at (left, top)."""
    width, height, below = round(160 * text_scale), round(10 * text_scale), round(14 * text_scale)
    bar = confidence_colors(np.linspace(0, 1, width))[None].repeat(height, 0)
    canvas[top:top + height, left:left + width] = bar
    cv2.rectangle(canvas, (left - 1, top - 1), (left + width, top + height), (255, 255, 255), 1)
    for text, x in (("0", left), ("confidence", left + width // 2), ("1", left + width)):
        centred = x - _text_width(text, 0.4, text_scale) // 2
        _put_text(canvas, text, (centred, top + height + below), 0.4, text_scale=text_scale)


def _position_legend(canvas: np.ndarray, left: int, top: int, text_scale: float) -> None:
    """The colour square of points mode, 48 x 30 pixels at ``text_scale`` 1, and what it means."""
    width, height = round(48 * text_scale), round(30 * text_scale)
    xs, ys = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    square = position_colors(np.stack([xs.ravel(), ys.ravel()], axis=1), width, height).reshape(height, width, 3)
    canvas[top:top + height, left:left + width] = square
    cv2.rectangle(canvas, (left - 1, top - 1), (left + width, top + height), (255, 255, 255), 1)
    text_left = left + width + round(8 * text_scale)
    for text, y in (("colour = position", 12), ("in the anchor", 27)):
        _put_text(canvas, text, (text_left, top + round(y * text_scale)), 0.4, text_scale=text_scale)


def _as_bgr(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image


def display_scale(frame_shape: tuple[int, ...]) -> int:
    """The integer factor that brings a frame closest to DISPLAY_HEIGHT without making it wider than
    DISPLAY_MAX_WIDTH (never below 1)."""
    height, width = frame_shape[:2]
    return max(1, min(round(DISPLAY_HEIGHT / height), DISPLAY_MAX_WIDTH // width))


def view_scales(anchor_shape: tuple[int, ...], frame_shape: tuple[int, ...]) -> tuple[float, int]:
    """(anchor, frame) drawing factors: the frame's ``display_scale``, and the anchor drawn as tall as the frame
    (the same factor when it is a frame of the stream; a photo of another size is scaled to match), but no wider
    than twice the frame (a panorama would make the view a long strip)."""
    frame_scale = display_scale(frame_shape)
    if anchor_shape[:2] == frame_shape[:2]:
        return float(frame_scale), frame_scale
    as_tall = frame_shape[0] / anchor_shape[0]
    at_most_twice_as_wide = 2 * frame_shape[1] / anchor_shape[1]
    return frame_scale * min(as_tall, at_most_twice_as_wide), frame_scale


def _enlarged(image: np.ndarray, scale: float) -> np.ndarray:
    """The image drawn ``scale`` times its size (bilinear; area-averaged when brought down)."""
    if scale == 1:
        return image
    size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
    return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR if scale > 1 else cv2.INTER_AREA)


def geometry_lines(geometry: TwoViewGeometry) -> list[str]:
    """The overlay's lines for a fit: the model and its inliers; for an essential matrix, the camera's motion."""
    if geometry.pose is not None and not geometry.pose.moved:
        return [f"{geometry.model} ({ESTIMATOR_NAME}, {geometry.threshold_px:.1f} px): {geometry.num_inliers}/"
                f"{len(geometry.inliers)} matches did not move", "camera since the anchor: not moved measurably"]
    if geometry.matrix is None:
        return [f"{geometry.model}: {geometry.failure or 'no fit'}"]
    lines = [f"{geometry.model} ({ESTIMATOR_NAME}, {geometry.threshold_px:.1f} px): "
             f"{geometry.num_inliers}/{len(geometry.inliers)} inliers ({100 * geometry.inlier_ratio:.0f}%)"]
    if geometry.pose is not None and geometry.num_inliers < MIN_POSE_INLIERS:
        lines.append(f"camera since the anchor: too few inliers to tell (fewer than {MIN_POSE_INLIERS})")
    elif geometry.pose is not None:
        axes = (("right", "left"), ("down", "up"), ("forward", "back"))  # OpenCV's camera x, y, z
        motion = " ".join(f"{ahead if value >= 0 else behind} {abs(value):.2f}"
                          for value, (ahead, behind) in zip(geometry.pose.motion, axes, strict=True))
        lines.append(f"camera since the anchor: turned {geometry.pose.rotation_deg:.1f} deg, moved {motion} "
                     "(a direction)")
    return lines


def _trusted_homography(geometry: TwoViewGeometry | None) -> np.ndarray | None:
    """The fitted homography when it has enough inliers to draw the anchor through it, else None."""
    if (geometry is not None and geometry.model == "homography" and geometry.matrix is not None
            and geometry.num_inliers >= MIN_OUTLINE_INLIERS):
        return geometry.matrix
    return None


def _scaled(homography: np.ndarray, anchor_scale: float, frame_scale: float) -> np.ndarray:
    """The homography between the two images as drawn (the anchor enlarged ``anchor_scale`` times, the frame
    ``frame_scale`` times)."""
    unzoom_anchor = np.diag([1.0 / anchor_scale, 1.0 / anchor_scale, 1.0])
    return np.diag([frame_scale, frame_scale, 1.0]) @ homography @ unzoom_anchor


def _draw_outline(box: Box, homography: np.ndarray, scale: float, frame_region: np.ndarray) -> None:
    """A box of the anchor, mapped by the homography, drawn into the live frame's region of the canvas (the
    frame drawn ``scale`` times enlarged)."""
    outline = project_outline(homography, box)
    if outline is None:
        return
    shift = 4
    points = np.round(outline * scale * (1 << shift)).astype(np.int32)
    cv2.polylines(frame_region, [points], True, OUTLINE_COLOR, 2, cv2.LINE_AA, shift)


def _overlay_warped_anchor(anchor: np.ndarray, box: Box, homography: np.ndarray, scales: tuple[float, float],
                           frame_region: np.ndarray) -> None:
    """Overlay a box of the anchor as drawn (``scales``: anchor and frame drawing factors), warped by the
    homography, on the live frame's region of the canvas in false colour: the anchor in magenta, the frame in
    green. Where the homography is right the two coincide and the picture is grey; where it is wrong, edges
    show green and magenta fringes."""
    if project_outline(homography, box) is None:
        return
    warp = _scaled(homography, *scales)
    height, width = frame_region.shape[:2]
    mask = np.zeros(anchor.shape[:2], np.uint8)
    x0, y0, x1, y1 = (round(value * scales[0]) for value in box)
    mask[y0:y1, x0:x1] = 255
    inside = cv2.warpPerspective(mask, warp, (width, height), flags=cv2.INTER_NEAREST) > 0
    warped = cv2.warpPerspective(cv2.cvtColor(anchor, cv2.COLOR_BGR2GRAY), warp, (width, height),
                                 flags=cv2.INTER_LINEAR)
    frame_gray = cv2.cvtColor(frame_region, cv2.COLOR_BGR2GRAY)
    frame_region[inside] = np.stack([warped[inside], frame_gray[inside], warped[inside]], axis=-1)


def render_view(drawing: Drawing, overlay: Overlay, look: ViewSettings = ViewSettings()) -> np.ndarray:
    """The full demo view of ``drawing``, with ``overlay``'s text, drawn as ``look`` says.

    The frame (and its keypoints) is enlarged ``drawing.frame_scale`` times before drawing, so lines and text stay
    crisp when small frames are shown in a large window. The fit (in the images' pixels) greys out its outliers
    and, for a homography with at least MIN_OUTLINE_INLIERS inliers, outlines the anchor (or the region, drawn on
    the anchor) in the live frame; with ``look.blend_anchor`` that part of the anchor is also warped into the live
    frame and overlaid on it in false colour (grey where they coincide).
    """
    if look.view not in VIEWS:
        raise ValueError(f"unknown view {look.view!r}; choose one of {', '.join(VIEWS)}")
    scale = drawing.frame_scale
    anchor_scale = float(scale) if drawing.anchor_scale is None else drawing.anchor_scale
    left, right = _enlarged(_as_bgr(drawing.anchor), anchor_scale), _enlarged(_as_bgr(drawing.frame), scale)
    canvas = np.zeros((max(left.shape[0], right.shape[0]), left.shape[1] + GAP + right.shape[1], 3), np.uint8)
    canvas[: left.shape[0], : left.shape[1]] = left
    offset = left.shape[1] + GAP
    frame_region = canvas[: right.shape[0], offset:]
    frame_region[:] = right
    homography = _trusted_homography(drawing.geometry)
    height, width = drawing.anchor.shape[:2]
    box = drawing.region if drawing.region is not None else (0.0, 0.0, float(width), float(height))
    if look.blend_anchor and homography is not None:
        _overlay_warped_anchor(left, box, homography, (anchor_scale, scale), frame_region)
    shown = _draw_matches(canvas, drawing, look, (anchor_scale, scale), (left.shape[1], left.shape[0]))
    if drawing.region is not None:
        x0, y0, x1, y1 = (round(value * anchor_scale) for value in drawing.region)
        cv2.rectangle(canvas, (x0, y0), (x1 - 1, y1 - 1), REGION_COLOR, 2, cv2.LINE_AA)
    if homography is not None:
        _draw_outline(box, homography, scale, frame_region)
    _draw_text(canvas, _overlay_lines(overlay, drawing, look, shown), overlay.status, offset, look)
    return canvas


def _draw_matches(canvas: np.ndarray, drawing: Drawing, look: ViewSettings, scales: tuple[float, float],
                  anchor_wh: tuple[int, int]) -> np.ndarray:
    """The shown ranks of the matches as lines or points (``scales``: the anchor's and the frame's drawing
    factors; ``anchor_wh``: the anchor's drawn size); returns the shown confidences."""
    total = len(drawing.confidence)
    shown = slice(min(look.shown.start, total), min(look.shown.stop, total))
    kpts0, kpts1 = drawing.keypoints0[shown] * scales[0], drawing.keypoints1[shown] * scales[1]
    inliers = None if drawing.geometry is None else drawing.geometry.inliers[shown]
    offset = anchor_wh[0] + GAP
    if look.view == "points":
        draw_match_points(canvas, kpts0, kpts1, position_colors(kpts0, *anchor_wh), offset, inliers)
    else:
        draw_match_lines(canvas, kpts0, kpts1, drawing.confidence[shown], offset, inliers)
    return drawing.confidence[shown]


def _overlay_lines(overlay: Overlay, drawing: Drawing, look: ViewSettings, shown: np.ndarray) -> list[str]:
    """The text panel's lines (only the title while the help is shown: its rows need the height)."""
    window = look.shown
    lines = [f"LoFTR Live  {overlay.model}  [{overlay.device}]",
             f"matches shown/total: {len(shown)}/{len(drawing.confidence)}  (ranks {window.start}:{window.stop})"]
    if look.show_help:
        return lines[:1]
    if len(shown) or overlay.threshold is not None:
        confidence_range = f"{shown.min():.2f} - {shown.max():.2f}" if len(shown) else "-"
        if overlay.threshold is None:
            threshold = ""
        elif overlay.ratio_test:  # SIFT, ORB: the threshold 0.2 is Lowe's ratio 0.8
            threshold = f"   (ratio test {1 - overlay.threshold:.2f})"
        else:
            threshold = f"   (threshold {overlay.threshold:.2f})"
        lines.append(f"confidence range: {confidence_range}{threshold}")
    if drawing.geometry is not None:
        lines.extend(geometry_lines(drawing.geometry))
    size = f"   at {overlay.size[0]}x{overlay.size[1]}" if overlay.size else ""
    lines.append(f"{overlay.fps:.1f} FPS   match {overlay.latency_ms:.0f} ms   frame age {overlay.frame_age_ms:.0f} ms"
                 f"{size}")
    lines.append(f"anchor {overlay.anchor}   frame #{overlay.frame_index}")
    return lines


def _draw_text(canvas: np.ndarray, lines: list[str], status: str, offset: int, look: ViewSettings) -> None:
    """The text panel (top left), the status (over the live frame at ``offset``), the legend (bottom right) and
    the help or its hint (bottom left), all ``look.text_scale`` times their size."""
    text_scale = look.text_scale

    def scaled(pixels: float) -> int:
        return round(pixels * text_scale)

    height, row_height = canvas.shape[0], scaled(18)
    text_width = max(_text_width(text, 0.5, text_scale) for text in lines)
    panel_right, panel_bottom = min(text_width + scaled(40), canvas.shape[1]), scaled(14) + row_height * len(lines)
    _panel(canvas, 0, 0, panel_right, panel_bottom)
    for row, text in enumerate(lines):
        _put_text(canvas, text, (scaled(10), scaled(20) + row_height * row), 0.5 if row == 0 else 0.45,
                  text_scale=text_scale)
    if status:  # top left of the live frame, or below the text when a narrow anchor leaves no room
        status_y = scaled(24) if panel_right < offset else panel_bottom + scaled(24)
        _put_text(canvas, status, (offset + scaled(10), status_y), 0.6, (80, 220, 255), text_scale)
    _panel(canvas, canvas.shape[1] - scaled(196), height - scaled(46), canvas.shape[1], height)
    if look.view == "points":
        _position_legend(canvas, canvas.shape[1] - scaled(180), height - scaled(38), text_scale)
    else:
        _legend(canvas, canvas.shape[1] - scaled(180), height - scaled(34), text_scale)
    help_lines = HELP_LINES if look.show_help else ("h: help",) if look.help_hint else ()
    if not help_lines:
        return
    help_width = max(_text_width(text, 0.45, text_scale) for text in help_lines)
    _panel(canvas, 0, height - scaled(26) - row_height * len(help_lines), help_width + scaled(30), height)
    for row, text in enumerate(help_lines):
        _put_text(canvas, text, (scaled(10), height - scaled(12) - row_height * (len(help_lines) - 1 - row)), 0.45,
                  (220, 220, 220), text_scale)
