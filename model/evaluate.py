"""Homography-estimation metrics: mean corner error and its AUC at pixel thresholds."""

from __future__ import annotations

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
