"""Evaluation: homography benchmark on held-out photos (vs SIFT) and statistics on real sequences.

Protocol of the homography benchmark: held-out photos, synthetic pairs with shorter side 480 (640x480),
the training warp ranges and photometric changes, a fixed seed; matches -> OpenCV RANSAC homography
(3 px) -> mean error of the four image corners -> AUC of that error at 3, 5 and 10 px.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

AUC_THRESHOLDS = (3.0, 5.0, 10.0)


def corner_error(estimate: np.ndarray | None, truth: np.ndarray, width: int, height: int) -> float:
    """Mean distance (px) between the image corners mapped by the estimated and the true homography.

    A failed estimate (None) counts as infinitely wrong.
    """
    if estimate is None:
        return float("inf")
    corners = np.array([[0, 0, 1], [width, 0, 1], [width, height, 1], [0, height, 1]], dtype=np.float64).T
    mapped = []
    for homography in (estimate, truth):
        points = homography @ corners
        mapped.append(points[:2] / points[2:])
    return float(np.linalg.norm(mapped[0] - mapped[1], axis=0).mean())


def error_auc(errors: list[float] | np.ndarray, thresholds: tuple[float, ...] = AUC_THRESHOLDS) -> list[float]:
    """Area under the cumulative error curve up to each threshold, normalised to [0, 1].

    The curve is the fraction of pairs with error <= e, for e from 0 to the threshold; failures count as
    errors beyond every threshold.
    """
    errors = np.sort(np.asarray(errors, dtype=np.float64))
    count = len(errors)
    if count == 0:
        return [0.0 for _ in thresholds]
    recall = np.arange(1, count + 1) / count
    errors = np.concatenate([[0.0], errors])
    recall = np.concatenate([[0.0], recall])
    aucs = []
    for threshold in thresholds:
        end = np.searchsorted(errors, threshold)
        xs = np.concatenate([errors[:end], [threshold]])
        ys = np.concatenate([recall[:end], [recall[end - 1]]])
        aucs.append(float(np.trapezoid(ys, xs) / threshold))
    return aucs


def estimate_homography(points0: np.ndarray, points1: np.ndarray,
                        ransac_px: float = 3.0) -> tuple[np.ndarray | None, np.ndarray]:
    """RANSAC homography from matches [N, 2] -> (H or None, inlier mask [N] bool)."""
    if len(points0) < 4:
        return None, np.zeros(len(points0), dtype=bool)
    homography, inliers = cv2.findHomography(points0.astype(np.float64), points1.astype(np.float64), cv2.RANSAC,
                                             ransac_px, maxIters=2000, confidence=0.9995)
    if homography is None:
        return None, np.zeros(len(points0), dtype=bool)
    return homography, inliers.ravel().astype(bool)


def reprojection_errors(points0: np.ndarray, points1: np.ndarray, homography: np.ndarray) -> np.ndarray:
    """|H(points0) - points1| per match [N]."""
    if len(points0) == 0:
        return np.zeros(0)
    projected = cv2.perspectiveTransform(points0.reshape(-1, 1, 2).astype(np.float64), homography).reshape(-1, 2)
    return np.linalg.norm(projected - points1, axis=1)


MatchFunction = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def sift_matcher(ratio: float = 0.8, max_features: int = 4000) -> MatchFunction:
    """OpenCV SIFT with Lowe's ratio test, as the classical reference. Images: uint8 grayscale."""
    sift = cv2.SIFT_create(nfeatures=max_features)
    matcher = cv2.BFMatcher(cv2.NORM_L2)

    def match(image0: np.ndarray, image1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        kp0, desc0 = sift.detectAndCompute(image0, None)
        kp1, desc1 = sift.detectAndCompute(image1, None)
        if desc0 is None or desc1 is None or len(kp0) < 2 or len(kp1) < 2:
            return np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32)
        pairs = [m for m, n in matcher.knnMatch(desc0, desc1, k=2) if m.distance < ratio * n.distance]
        # OpenCV keypoints have pixel centres at integers; +0.5 puts them in the corner convention.
        points0 = np.array([kp0[m.queryIdx].pt for m in pairs], np.float32).reshape(-1, 2) + 0.5
        points1 = np.array([kp1[m.trainIdx].pt for m in pairs], np.float32).reshape(-1, 2) + 0.5
        return points0, points1

    return match


@dataclass
class HomographyReport:
    """Per-method results of the homography benchmark."""

    name: str
    errors: list[float]
    matches: list[int]
    seconds: float

    def summary(self) -> dict[str, float]:
        aucs = error_auc(self.errors)
        return {"auc@3": aucs[0], "auc@5": aucs[1], "auc@10": aucs[2],
                "failed": float(np.mean([not np.isfinite(e) for e in self.errors])),
                "matches": float(np.mean(self.matches)),
                "ms_per_pair": 1000.0 * self.seconds / max(len(self.errors), 1)}


def homography_benchmark(methods: dict[str, MatchFunction], pairs: list[dict[str, np.ndarray]],
                         ransac_px: float = 3.0) -> list[HomographyReport]:
    """Each method on each pair: matches -> RANSAC homography -> mean corner error."""
    reports = []
    for name, match in methods.items():
        errors, counts, seconds = [], [], 0.0
        for pair in pairs:
            image0 = np.round(pair["image0"] * 255).astype(np.uint8)
            image1 = np.round(pair["image1"] * 255).astype(np.uint8)
            start = time.perf_counter()
            points0, points1 = match(image0, image1)
            seconds += time.perf_counter() - start
            estimate, _ = estimate_homography(points0, points1, ransac_px)
            height, width = image0.shape
            errors.append(corner_error(estimate, pair["homography"], width, height))
            counts.append(len(points0))
        reports.append(HomographyReport(name, errors, counts, seconds))
    return reports


def epipolar_inlier_ratio(points0: np.ndarray, points1: np.ndarray, threshold_px: float = 1.0) -> float:
    """Share of matches consistent with one fundamental matrix (RANSAC, Sampson distance)."""
    if len(points0) < 8:
        return 0.0
    _, inliers = cv2.findFundamentalMat(points0.astype(np.float64), points1.astype(np.float64), cv2.FM_RANSAC,
                                        threshold_px, 0.999)
    return float(inliers.mean()) if inliers is not None else 0.0
