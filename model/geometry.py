"""Robust two-view geometry from matches: which matches agree with one homography, one fundamental matrix or
one essential matrix.

A homography explains a planar scene or a camera that only rotates; a fundamental matrix explains any rigid
scene (a match is an inlier when it lies near its epipolar line, so it cannot catch errors along that line); an
essential matrix is a fundamental matrix for a camera whose intrinsics are known, and gives the camera's motion
between the two views (its rotation, and the direction of its translation: two views do not tell how far).
All are fitted with OpenCV: MAGSAC++ (``USAC_MAGSAC``, weighs every match by its residual) or classic RANSAC.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from .camera import Camera
from .matcher import MatchResult, Resize, image_px_per_network_px

ESTIMATORS = {"ransac": cv2.RANSAC, "magsac": cv2.USAC_MAGSAC}
#: An axis-aligned box in image pixels: (x0, y0, x1, y1), x0 < x1, y0 < y1.
Box = tuple[float, float, float, float]
MODELS = ("homography", "fundamental", "essential")
#: Fewest matches each model can be fitted to (the minimal samples of OpenCV's estimators).
MIN_MATCHES = {"homography": 4, "fundamental": 8, "essential": 5}
#: Default inlier thresholds in network pixels (multiply by image pixels per network pixel): matches are as
#: precise as the grid the network saw, so one threshold in image pixels would be too tight for a small
#: network input and too loose for a large one.
NETWORK_THRESHOLD_PX = {"homography": 3.0, "fundamental": 1.0, "essential": 1.0}


@dataclass(frozen=True)
class RelativePose:
    """Camera 1 relative to camera 0 (OpenCV's camera axes: x right, y down, z forward).

    rotation: [3, 3], a point's coordinates in camera 1 are ``rotation @ X0 + translation``.
    translation: [3], unit length: two views give its direction only; zeros when the camera has not moved
        measurably (``STILL``).
    """

    rotation: np.ndarray
    translation: np.ndarray

    @property
    def rotation_deg(self) -> float:
        """How far the camera turned, in degrees (the angle of ``rotation`` about its axis)."""
        return float(np.degrees(np.arccos(np.clip((np.trace(self.rotation) - 1) / 2, -1.0, 1.0))))

    @property
    def motion(self) -> np.ndarray:
        """[3] unit vector: the direction camera 1's centre moved in, along camera 0's axes (zeros: not moved)."""
        return -self.rotation.T @ self.translation

    @property
    def moved(self) -> bool:
        return bool(self.translation.any())


#: The pose of a camera that has not moved measurably (the anchor matched against itself, a camera at rest).
STILL = RelativePose(np.eye(3), np.zeros(3))


@dataclass(frozen=True)
class TwoViewGeometry:
    """A fitted model and its inliers.

    matrix: [3, 3] float64, maps image 0 to image 1 (homography: x1 ~ H x0; fundamental: x1^T F x0 = 0;
        essential: the same in normalised camera coordinates, K^-1 x), or None when the fit failed or there were
        too few matches.
    inliers: [N] bool, aligned with the matches it was fitted to.
    pose: the camera's motion, for an essential matrix (``STILL``, with no matrix and the matches that did not
        move as inliers, when the views do not differ).
    failure: why there is no matrix, when there is a reason to give beyond "no fit".
    """

    model: str
    matrix: np.ndarray | None
    inliers: np.ndarray
    threshold_px: float
    pose: RelativePose | None = None
    failure: str = ""

    @property
    def num_inliers(self) -> int:
        return int(self.inliers.sum())

    @property
    def inlier_ratio(self) -> float:
        return float(self.inliers.mean()) if len(self.inliers) else 0.0


def fit_geometry(points0: np.ndarray, points1: np.ndarray, model: str = "homography", threshold_px: float = 3.0,
                 estimator: str = "magsac", confidence: float = 0.999, max_iters: int = 1000,
                 seed: int | None = 0, camera: Camera | np.ndarray | None = None) -> TwoViewGeometry:
    """Fit ``model`` to matches ([N, 2] each, pixels) -> :class:`TwoViewGeometry`. Too few matches or a failed
    fit gives ``matrix=None`` and no inliers, never an exception.

    threshold_px: inlier distance (homography: reprojection error in image 1; fundamental and essential: distance
        to the epipolar line). seed: classic RANSAC draws from OpenCV's global generator; seeding it makes a fit
        depend on its matches alone (MAGSAC++ seeds its own generator). None leaves the generator alone.
    camera: the camera that took both images (a ``Camera``, or its [3, 3] intrinsic matrix), which an essential
        matrix needs (without it, it is a failed fit that says so); its lens distortion, if any, is taken out of
        the points first. Homographies and fundamental matrices are fitted to the points as they are.
    """
    if model not in MODELS:
        raise ValueError(f"unknown geometry model {model!r}; choose one of {', '.join(MODELS)}")
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; choose one of {', '.join(ESTIMATORS)}")
    count = len(points0)
    failed = TwoViewGeometry(model, None, np.zeros(count, dtype=bool), threshold_px)
    if model == "essential" and camera is None:
        return replace(failed, failure="needs the camera's intrinsics")
    if count < MIN_MATCHES[model]:
        return failed
    if seed is not None:
        cv2.setRNGSeed(seed)
    points0, points1 = points0.astype(np.float64), points1.astype(np.float64)
    if model in ("homography", "fundamental"):
        try:
            matrix, inliers = _fit_planar_or_epipolar(points0, points1, model, ESTIMATORS[estimator], threshold_px,
                                                      confidence, max_iters)
        except cv2.error:  # degenerate point sets can trip OpenCV's assertions instead of failing the fit
            return failed
    else:
        assert camera is not None
        camera = camera if isinstance(camera, Camera) else Camera(np.asarray(camera, dtype=np.float64))
        return _fit_essential(camera.undistort(points0), camera.undistort(points1), camera.matrix,
                              ESTIMATORS[estimator], threshold_px, confidence, max_iters, failed)
    if matrix is None or inliers is None:
        return failed
    return TwoViewGeometry(model, matrix, inliers.ravel().astype(bool), threshold_px)


def _fit_planar_or_epipolar(points0: np.ndarray, points1: np.ndarray, model: str, method: int, threshold_px: float,
                            confidence: float, max_iters: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """OpenCV's homography or fundamental matrix fit: (matrix, inlier mask) or Nones."""
    if model == "homography":
        return cv2.findHomography(points0, points1, method, threshold_px, maxIters=max_iters, confidence=confidence)
    return cv2.findFundamentalMat(points0, points1, method, threshold_px, confidence, max_iters)


def _fit_essential(points0: np.ndarray, points1: np.ndarray, camera: np.ndarray, method: int, threshold_px: float,
                   confidence: float, max_iters: int, failed: TwoViewGeometry) -> TwoViewGeometry:
    """An essential matrix and the pose it holds (of the four an essential matrix allows, the one that puts the
    most inliers in front of both cameras). Fitted in pixels with the camera matrix: in normalised coordinates,
    MAGSAC++ got a synthetic scene's rotation 1.2 degrees wrong instead of 0.02.

    The inliers are those near their epipolar lines, as for a fundamental matrix: when the camera barely moved,
    OpenCV's check that a point lies in front of both cameras drops most correct matches (124 of 277 in a real
    frame), since points triangulated from a tiny baseline count as infinitely far."""
    # When most matches moved less than the inlier threshold, the views do not differ enough for an essential
    # matrix: every one fits them, and the pose it holds is noise (the anchor against itself: 180 degrees).
    still = np.linalg.norm(points1 - points0, axis=1) < threshold_px
    if still.mean() > 0.5:
        return replace(failed, inliers=still, pose=STILL)
    try:
        matrix, inliers = cv2.findEssentialMat(points0, points1, camera, method, confidence, threshold_px, max_iters)
    except cv2.error:  # degenerate samples: OpenCV's five-point solver asserts on a vanishing polynomial
        return failed
    if matrix is None or inliers is None or matrix.shape != (3, 3):
        return failed
    _, rotation, translation, _ = cv2.recoverPose(matrix, points0, points1, camera, mask=inliers.copy())
    pose = RelativePose(rotation, translation.ravel() / max(float(np.linalg.norm(translation)), 1e-12))
    return replace(failed, matrix=matrix, inliers=inliers.ravel().astype(bool), pose=pose)


def fit_to_result(result: MatchResult, model: str, image1_shape: tuple[int, ...], resize: Resize,
                  threshold_px: float | None = None, camera: Camera | np.ndarray | None = None) -> TwoViewGeometry:
    """``fit_geometry`` (MAGSAC++) on a Matcher's result; the threshold defaults to NETWORK_THRESHOLD_PX
    scaled to image 1's pixels (``resize`` is the Matcher's); ``camera``: see ``fit_geometry``."""
    if threshold_px is None:
        threshold_px = NETWORK_THRESHOLD_PX[model] * image_px_per_network_px(image1_shape, resize)
    return fit_geometry(np.asarray(result.keypoints0), np.asarray(result.keypoints1), model, threshold_px,
                        camera=camera)


def project_outline(homography: np.ndarray, box: Box) -> np.ndarray | None:
    """A box of image 0 (e.g. its whole border, (0, 0, width, height)) mapped by a homography into image 1:
    [4, 2] corners, clockwise from the top left, or None when there is no sensible outline (the box crosses
    the horizon, or collapses onto a line)."""
    x0, y0, x1, y1 = box
    corners = np.array([[x0, y0, 1], [x1, y0, 1], [x1, y1, 1], [x0, y1, 1]], dtype=np.float64)
    mapped = corners @ homography.T
    if np.any(mapped[:, 2] * np.sign(mapped[0, 2]) <= 1e-9):  # corners on both sides of the horizon
        return None
    outline = mapped[:, :2] / mapped[:, 2:]
    edges = np.roll(outline, -1, axis=0) - outline
    turns = edges[:, 0] * np.roll(edges, -1, axis=0)[:, 1] - edges[:, 1] * np.roll(edges, -1, axis=0)[:, 0]
    if not (np.all(turns > 1e-9) or np.all(turns < -1e-9)):  # a proper quadrilateral turns one way at each corner
        return None
    return outline
