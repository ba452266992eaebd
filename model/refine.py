"""Sub-pixel refinement of LoFTR's matches on the images themselves (Lucas-Kanade optical flow, OpenCV's).

LoFTR places each match inside its fine window on the network's input, and the live setting shrinks the frames for
the network (640x480 frames seen at 320x240), so one network pixel spans two of the caller's. ``refine_keypoints``
moves each keypoint in image 1 to where image 1 best matches image 0's window around the keypoint in image 0, on
the images at up to twice the network's resolution (``detail_image``). With ``corners`` it first moves the keypoint
in image 0 to the most corner-like pixel of the coarse cell the network matched (the flow is most precise where the
window has gradients in two directions), and the keypoint in image 1 along with it. It keeps the network's positions
where the flow fails, moves farther than the fine stage's own error allows, or does not lead back to the keypoint in
image 0 (a forward-backward check: turned or scaled content, occlusion, no texture). ``affine`` takes up the matches
whose content turned or scaled with affine windows (``model.affine_flow``). weights/README.md (Refinement on
the images) has what it gains on real scenes: ``python -m model eval --compare W --compare_refinement none``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .affine_flow import affine_lucas_kanade, local_similarity, turn_and_log_scale, window_offsets
from .loftr import COARSE_STRIDE

#: ``Matcher.refinement``'s choices besides auto: none (the network's positions), flow (keypoint 1 refined on the
#: images from the network's keypoint 0), corners (keypoint 0 moved to its cell's most corner-like pixel first) or
#: affine (corners, and where the neighbouring matches show the content turned or scaled, affine windows).
REFINEMENTS = ("none", "flow", "corners", "affine")
REFINED = REFINEMENTS[1:]
#: ``Matcher.unverified``: what becomes of the matches whose refinement did not hold (``FlowRefinement.kept``).
UNVERIFIED = ("auto", "drop", "keep")
#: The side of the window over which the corner measure (the gradients' smaller eigenvalue) sums, in detail pixels.
CORNER_BLOCK = 7


@dataclass(frozen=True)
class FlowRefinement:
    """How keypoints are refined.

    window: the side of the square window compared between the images, in detail pixels.
    max_detail: the detail images have at most this many pixels per network pixel (larger frames are shrunk to it,
        which bounds the cost and keeps the window's reach the same for every frame size).
    max_shift_network_px: a refined keypoint further than this from the network's (in network pixels) is dropped.
    backward_px: the flow from the refined keypoint back into image 0 must end this close to the keypoint in image
        0 (detail pixels).
    auto_min_shrink: ``Matcher.refinement = "auto"`` refines a frame's matches when the network sees the frame
        shrunk by at least this factor (at the network's own size the fine stage is about as precise, and the
        refinement's host time grows with the matches, which a GPU does not cap).
    affine_min_turn_deg, affine_min_log_scale: ``affine`` warps the windows of matches whose neighbours show the
        content turned by at least this many degrees or scaled by at least this log factor (elsewhere the square
        windows agree, and OpenCV's flow is faster).
    affine_neighbours: how many neighbouring matches give each match its rotation and scale.
    affine_iterations: the most Lucas-Kanade steps per window on every ``affine_stride``-th pixel.
    affine_min_correlation: an affine window is kept where it correlates (zero-mean normalised) with image 0's
        better than this (0: positively, and not a window without texture; 0.9 lost on the homography benchmark
        and gained nothing on the pose scenes).
    affine_max_windows: at most this many matches of a pair get affine windows, the first ones passed (``Matcher``
        passes the most confident first), as many as the CPU's match cap: their host time grows with them.
    affine_stride: the affine windows compare every this-many-th pixel of the window in both directions (a quarter
        of the work at 2; every pixel with 12 steps and no smoothing was about as precise on the benchmarks as the
        defaults, at twice the host time).
    affine_smoothing: the affine windows see both images smoothed by a Gaussian of this many detail pixels: on a
        camera's noisy images the fit then settles in fewer steps, so more windows settle within
        ``affine_iterations`` (0: not smoothed).
    unverified: what becomes of the matches whose refinement did not hold (they stay at the network's positions):
        drop or keep them; auto drops them where the network sees the frame shrunk by ``auto_min_shrink`` or more,
        where such a match is imprecise or wrong more often than the check's loss of matches costs, and keeps them
        at the network's own size, where the fine stage is precise and most matches do not verify
        (weights/README.md, Verified matches).
    min_verified: with fewer verified matches than this a frame keeps all its matches (a homography needs 4, an
        essential matrix 5): where the view changed so much that the check holds almost nowhere, the network's
        matches are often still right (the real TUM sequence, weights/README.md).
    """

    window: int = 21
    max_detail: float = 2.0
    max_shift_network_px: float = 2.0
    backward_px: float = 0.5
    auto_min_shrink: float = 1.5
    affine_min_turn_deg: float = 5.0
    affine_min_log_scale: float = 0.1
    affine_neighbours: int = 10
    affine_iterations: int = 8
    affine_min_correlation: float = 0.0
    affine_stride: int = 2
    affine_max_windows: int = 300
    affine_smoothing: float = 1.0
    unverified: str = "auto"
    min_verified: int = 8

    def __post_init__(self) -> None:
        if self.unverified not in UNVERIFIED:
            raise ValueError(f"unverified must be one of {', '.join(UNVERIFIED)}, got {self.unverified!r}")

    def kept(self, verified: np.ndarray, shrink: float) -> np.ndarray:
        """The indices of the matches to keep, given which were verified [N] bool (``RefinedMatches``) and how
        much the network saw the frame shrunk."""
        drop = self.unverified == "drop" or (self.unverified == "auto" and shrink >= self.auto_min_shrink)
        if drop and int(verified.sum()) >= self.min_verified:
            return np.flatnonzero(verified)
        return np.arange(len(verified))


class RefinedMatches(NamedTuple):
    """``refine_keypoints``' result: float32 keypoints [N, 2] of both images (caller's pixels, corner convention),
    the network's where the refinement did not hold, and which held: verified [N] bool."""

    keypoints0: np.ndarray
    keypoints1: np.ndarray
    verified: np.ndarray


@dataclass(frozen=True)
class DetailImage:
    """An image as the refinement sees it: gray uint8 [h, w], and the caller's pixels per detail pixel (x, y)."""

    gray: np.ndarray
    scale_xy: tuple[float, float]
    _smoothed: dict[float, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict, init=False,
                                                                            repr=False, compare=False)

    @cached_property
    def corner_response(self) -> np.ndarray:
        """float32 [h, w]: how corner-like each pixel is (OpenCV's minimum eigenvalue of the gradients over
        CORNER_BLOCK pixels); computed once per image (an anchor's serves every frame matched against it)."""
        return cv2.cornerMinEigenVal(self.gray, CORNER_BLOCK, 3)

    def smoothed(self, sigma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """float32 (gray, d/dx, d/dy) [h, w] of the image smoothed by a Gaussian of ``sigma`` pixels (0: not
        smoothed; gradients by Scharr's kernel): what the affine windows sample and are fitted with; computed once
        per image and ``sigma``, like ``corner_response``."""
        if sigma not in self._smoothed:
            gray = self.gray.astype(np.float32)
            if sigma > 0:
                gray = cv2.GaussianBlur(gray, (0, 0), sigma)
            grad_x, grad_y = (cv2.Scharr(gray, cv2.CV_32F, dx, 1 - dx) / 32.0 for dx in (1, 0))
            self._smoothed[sigma] = (gray, grad_x, grad_y)
        return self._smoothed[sigma]


def _gray_uint8(image: np.ndarray | torch.Tensor) -> np.ndarray:
    """Any image ``Matcher`` accepts -> gray uint8 [H, W] on the host, at its own size."""
    from .matcher import gray_array, to_gray_float  # late import: the matcher imports this module

    if isinstance(image, torch.Tensor):
        return (to_gray_float(image)[0, 0] * 255.0).round().clamp(0, 255).byte().cpu().numpy()
    array = gray_array(image)
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    scale = 255.0 / 65535.0 if array.dtype == np.uint16 else 255.0
    return np.clip(np.round(array.astype(np.float32) * scale), 0, 255).astype(np.uint8)


def detail_image(image: np.ndarray | torch.Tensor, network_hw: tuple[int, int],
                 refinement: FlowRefinement) -> DetailImage:
    """``image`` in gray at its own size, or shrunk (area-averaged) to ``refinement.max_detail`` times the network's
    (height, width) when larger."""
    gray = _gray_uint8(image)
    height, width = gray.shape
    target_h = min(height, round(network_hw[0] * refinement.max_detail))
    target_w = min(width, round(network_hw[1] * refinement.max_detail))
    if (target_h, target_w) != (height, width):
        if isinstance(image, torch.Tensor):  # the same shrinking as the network input's, on the host copy
            tensor = torch.from_numpy(gray)[None, None].float()
            gray = F.interpolate(tensor, size=(target_h, target_w), mode="area")[0, 0].round().byte().numpy()
        else:
            gray = cv2.resize(gray, (target_w, target_h), interpolation=cv2.INTER_AREA)
    return DetailImage(np.ascontiguousarray(gray), (width / target_w, height / target_h))


def _flow(source: np.ndarray, target: np.ndarray, points: np.ndarray, start: np.ndarray,
          window: int) -> tuple[np.ndarray, np.ndarray]:
    """Lucas-Kanade from ``points`` in ``source`` into ``target``, starting at ``start`` ([N, 2] float32, pixel
    centres at integers): (end points [N, 2], found [N] bool)."""
    if len(points) == 0:  # OpenCV refuses an empty list of points
        return points.reshape(0, 2), np.zeros(0, bool)
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 30, 0.01)
    end, found, _ = cv2.calcOpticalFlowPyrLK(source, target, points.reshape(-1, 1, 2), start.reshape(-1, 1, 2).copy(),
                                             winSize=(window, window), maxLevel=0, criteria=criteria,
                                             flags=cv2.OPTFLOW_USE_INITIAL_FLOW)
    return end.reshape(-1, 2), found.reshape(-1).astype(bool)


def _same_size(gray0: np.ndarray, gray1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both images padded on the bottom and right to the larger height and width (OpenCV's flow wants one size;
    pixel coordinates stay as they are, and a window that reaches into the padding fails the backward check)."""
    height, width = max(gray0.shape[0], gray1.shape[0]), max(gray0.shape[1], gray1.shape[1])
    return tuple(gray if gray.shape == (height, width) else cv2.copyMakeBorder(  # type: ignore[return-value]
        gray, 0, height - gray.shape[0], 0, width - gray.shape[1], cv2.BORDER_REPLICATE) for gray in (gray0, gray1))


def snap_to_corners(detail: DetailImage, points: np.ndarray, half_cell: int) -> np.ndarray:
    """Points [N, 2] (detail pixels, centres at integers) moved to the most corner-like pixel of the square of side
    2 * half_cell + 1 centred on each: the coarse cell the network matched, its edges included (a little ahead of
    the cell without them on the held-out pose scenes)."""
    height, width = detail.gray.shape
    reach = np.arange(-half_cell, half_cell + 1)
    columns = np.clip(np.round(points[:, 0]).astype(np.int64)[:, None] + reach, 0, width - 1)  # [N, S]
    rows = np.clip(np.round(points[:, 1]).astype(np.int64)[:, None] + reach, 0, height - 1)
    patches = detail.corner_response[rows[:, :, None], columns[:, None, :]].reshape(len(points), -1)  # [N, S * S]
    best = patches.argmax(axis=1)
    return np.stack([np.take_along_axis(columns, best[:, None] % len(reach), 1)[:, 0],
                     np.take_along_axis(rows, best[:, None] // len(reach), 1)[:, 0]], axis=1).astype(np.float32)


def refine_keypoints(detail0: DetailImage, detail1: DetailImage, keypoints0: np.ndarray, keypoints1: np.ndarray,
                     network_px: tuple[float, float], refinement: FlowRefinement,
                     mode: str = "flow") -> RefinedMatches:
    """Keypoints [N, 2] of both images (caller's pixels, corner convention like ``MatchResult``) refined;
    ``network_px``: the caller's pixels per network pixel in image 0 and image 1; ``mode``: one of ``REFINED``.
    A match is verified where its refinement held: the flow (or affine window) stayed near the network's position
    and led back to the keypoint in image 0."""
    if mode not in REFINED:
        raise ValueError(f"mode must be one of {', '.join(REFINED)}, got {mode!r}")
    keypoints0, keypoints1 = keypoints0.astype(np.float32), keypoints1.astype(np.float32)
    if len(keypoints0) == 0:
        return RefinedMatches(keypoints0, keypoints1, np.zeros(0, bool))
    scale0, scale1 = np.asarray(detail0.scale_xy, np.float32), np.asarray(detail1.scale_xy, np.float32)
    # Corner convention (a pixel spans [i, i+1)) -> OpenCV's centres at integers, in detail pixels.
    network0, network1 = keypoints0 / scale0 - 0.5, keypoints1 / scale1 - 0.5
    points0, points1 = network0, network1
    half_cell = max(1, round(COARSE_STRIDE / 2 * network_px[0] / float(scale0.max())))
    if mode != "flow":
        points0 = snap_to_corners(detail0, network0, half_cell)
        points1 = network1 + (points0 - network0) * scale0 / scale1  # the content moves alike in both images
    max_shift = refinement.max_shift_network_px * network_px[1] / float(scale1.max())
    moved, found = points1.copy(), np.zeros(len(points0), bool)
    if mode == "affine":  # first: the square windows' flow then only runs where no affine window held
        _affine_windows(detail0, detail1, (network0, network1), (points0, moved, found),
                        (2 * half_cell, max_shift), refinement)
    rest = np.flatnonzero(~found)
    moved[rest], found[rest] = _checked_flow(_same_size(detail0.gray, detail1.gray), points0[rest], points1[rest],
                                             max_shift, refinement)
    return RefinedMatches(np.where(found[:, None], (points0 + 0.5) * scale0, keypoints0).astype(np.float32),
                          np.where(found[:, None], (moved + 0.5) * scale1, keypoints1).astype(np.float32), found)


def _checked_flow(grays: tuple[np.ndarray, np.ndarray], points0: np.ndarray, points1: np.ndarray, max_shift: float,
                  refinement: FlowRefinement) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV's flow from ``points0`` in image 0 into image 1 starting at ``points1`` (detail pixels), kept where it
    moved less than ``max_shift`` and leads back to the point in image 0: (end points [N, 2], kept [N])."""
    moved, found = _flow(grays[0], grays[1], points0, points1, refinement.window)
    found &= np.linalg.norm(moved - points1, axis=1) < max_shift
    # Back only from the points still kept: each point's flow is its own, so the others' would be thrown away.
    kept = np.flatnonzero(found)
    back, found_back = _flow(grays[1], grays[0], moved[kept], points0[kept], refinement.window)
    found[kept] = found_back & (np.linalg.norm(back - points0[kept], axis=1) < refinement.backward_px)
    return moved, found


def _affine_windows(detail0: DetailImage, detail1: DetailImage, network: tuple[np.ndarray, np.ndarray],
                    refined: tuple[np.ndarray, np.ndarray, np.ndarray], reach: tuple[float, float],
                    refinement: FlowRefinement) -> None:
    """Where the neighbours show the content turned or scaled, the matches' windows fitted as affine warps
    (``model.affine_flow``); sets ``refined`` = (points0 at their corners, points1, found) in place where they held.

    network: the network's points (detail pixels) of both images; reach: (a coarse cell's side, the largest shift
    from the network's point in image 1), in detail pixels.
    """
    network0, network1 = network
    points0, points1, found = refined
    ratio = np.asarray(detail1.scale_xy, np.float32) / np.asarray(detail0.scale_xy, np.float32)
    # Neighbours closer than 1.5 cells turn too much with the network's own errors of a pixel or two.
    similarity, valid = local_similarity(network0, network1 * ratio, refinement.affine_neighbours, 1.5 * reach[0])
    turn, log_scale = turn_and_log_scale(similarity)
    chosen = np.flatnonzero(valid & ((turn >= refinement.affine_min_turn_deg)
                                     | (log_scale >= refinement.affine_min_log_scale)))
    chosen = chosen[:refinement.affine_max_windows]  # the most confident (Matcher passes them in that order)
    if len(chosen) == 0:
        return
    warps = similarity[chosen] / ratio[:, None]  # image 0's detail pixels -> image 1's
    starts = network1[chosen] + (warps @ (points0[chosen] - network0[chosen])[..., None])[..., 0]
    image0, image1 = detail0.smoothed(refinement.affine_smoothing), detail1.smoothed(refinement.affine_smoothing)
    sparse = window_offsets(refinement.window, refinement.affine_stride)
    positions, fitted, correlation = affine_lucas_kanade(image0, image1[0], points0[chosen], starts, warps, sparse,
                                                         refinement.affine_iterations)
    height, width = detail1.gray.shape
    with np.errstate(over="ignore"):  # a warp that grew without bounds: its determinant fails the check
        good = np.flatnonzero((correlation > refinement.affine_min_correlation)
                              & (np.linalg.norm(positions - starts, axis=1) < reach[1])
                              & (positions >= 0).all(axis=1) & (positions[:, 0] <= width - 1)
                              & (positions[:, 1] <= height - 1) & (np.abs(np.linalg.det(fitted)) > 1e-3))
    if len(good) == 0:
        return
    # Backward, from the windows still kept: image 1's window, unwarped, must lead back to the keypoint in image 0
    # (a window along an edge correlates well wherever it slides; this check does not let it).
    back, _, _ = affine_lucas_kanade(image1, image0[0], positions[good], points0[chosen[good]],
                                     np.linalg.inv(fitted[good]), sparse, refinement.affine_iterations,
                                     translation_only=True)
    good = good[np.linalg.norm(back - points0[chosen[good]], axis=1) < refinement.backward_px]
    points1[chosen[good]] = positions[good]
    found[chosen[good]] = True
