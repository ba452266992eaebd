"""Relative-pose benchmark on real scenes with ground truth (the protocol of SuperGlue and LoFTR on ScanNet).

Each method matches each pair of held-out views; an essential matrix is fitted to the matches with the
cameras' intrinsics (0.5 px at the stored image size, confidence 0.99999, classic RANSAC and MAGSAC++ on the same
matches); the pose it holds is compared with the true one. A pair's error is the larger of the rotation's angle
error and the translation direction's angle error (translation known up to sign and scale: the smaller of the
two angles), in degrees; a failed fit counts as infinitely wrong. AUC of that error at 5, 10 and 20 degrees.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import ClassVar

import cv2
import numpy as np

from .evaluate import HomographyReport, MatchFunction
from .geometry import ESTIMATORS, fit_geometry
from .images import decode_file
from .scenes import ScenePair, rotation_angle_deg

POSE_THRESHOLDS = (5.0, 10.0, 20.0)
#: The essential matrix's inlier threshold at the stored image size (LoFTR's RANSAC_PIXEL_THR).
POSE_THRESHOLD_PX = 0.5


def angle_between_deg(vector0: np.ndarray, vector1: np.ndarray) -> float:
    """Angle between two 3-vectors in degrees (NaN when either has no length)."""
    norms = float(np.linalg.norm(vector0) * np.linalg.norm(vector1))
    if norms < 1e-12:
        return float("nan")
    return float(np.degrees(np.arccos(np.clip(float(vector0 @ vector1) / norms, -1.0, 1.0))))


def pose_error_deg(rotation: np.ndarray, translation: np.ndarray, true_rotation: np.ndarray,
                   true_translation: np.ndarray) -> float:
    """max(rotation error, translation direction error) in degrees; the translation's sign is not observable from
    an essential matrix alone, so t and -t count alike."""
    rotation_error = rotation_angle_deg(rotation.T @ true_rotation)
    translation_error = angle_between_deg(translation, true_translation)
    if not np.isfinite(translation_error):
        return float("inf")
    return max(rotation_error, min(translation_error, 180.0 - translation_error))


def to_camera0_pixels(points1: np.ndarray, intrinsics0: np.ndarray, intrinsics1: np.ndarray) -> np.ndarray:
    """Image-1 pixels (centre convention) as camera 0 would have seen the same rays: one camera matrix for both."""
    if np.allclose(intrinsics0, intrinsics1):
        return points1
    homogeneous = np.concatenate([points1, np.ones((len(points1), 1))], 1) @ (intrinsics0 @ np.linalg.inv(
        intrinsics1)).T
    return homogeneous[:, :2] / homogeneous[:, 2:]


def estimate_pose_error(points0: np.ndarray, points1: np.ndarray, pair: ScenePair, estimator: str,
                        threshold_px: float = POSE_THRESHOLD_PX) -> float:
    """The pose error (degrees) of the essential matrix fitted to one pair's matches (corner convention)."""
    intrinsics0, intrinsics1 = pair.view0.intrinsics, pair.view1.intrinsics
    centred0 = np.asarray(points0, np.float64).reshape(-1, 2) - 0.5
    centred1 = to_camera0_pixels(np.asarray(points1, np.float64).reshape(-1, 2) - 0.5, intrinsics0, intrinsics1)
    fit = fit_geometry(centred0, centred1, "essential", threshold_px, estimator, confidence=0.99999,
                       camera=intrinsics0)
    if fit.matrix is None or fit.pose is None or not fit.pose.moved:
        return float("inf")
    return pose_error_deg(fit.pose.rotation, fit.pose.translation, *pair.relative_pose)


@dataclass
class PoseReport(HomographyReport):
    """Results of one method with one estimator in the pose benchmark (AUC of the pose error in degrees)."""

    thresholds: ClassVar[tuple[float, ...]] = POSE_THRESHOLDS


def read_pair_images(pair: ScenePair) -> tuple[np.ndarray, np.ndarray]:
    """Both views as grayscale uint8 at their stored size."""
    images = []
    for view in (pair.view0, pair.view1):
        image = decode_file(view.image, cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise ValueError(f"cannot read image {view.image}")
        images.append(image)
    return images[0], images[1]


def pose_benchmark(methods: dict[str, MatchFunction], pairs: list[ScenePair],
                   threshold_px: float = POSE_THRESHOLD_PX,
                   estimators: tuple[str, ...] = tuple(ESTIMATORS)) -> list[PoseReport]:
    """Each method on each pair -> one report per (method, estimator), in the order of ``homography_benchmark``."""
    images = [read_pair_images(pair) for pair in pairs]
    reports = []
    for name, match in methods.items():
        errors: dict[str, list[float]] = {estimator: [] for estimator in estimators}
        counts, seconds = [], 0.0
        for pair, (image0, image1) in zip(pairs, images, strict=True):
            start = time.perf_counter()
            points0, points1 = match(image0, image1)
            seconds += time.perf_counter() - start
            for estimator in estimators:
                errors[estimator].append(estimate_pose_error(points0, points1, pair, estimator, threshold_px))
            counts.append(len(points0))
        reports.extend(PoseReport(name, estimator, errors[estimator], counts, seconds) for estimator in estimators)
    return reports
