"""Homography metrics on synthetic matches with known error."""

from __future__ import annotations

import numpy as np

from model.evaluate import corner_error, error_auc, estimate_homography, reprojection_errors


def test_corner_error_of_a_known_shift() -> None:
    truth = np.eye(3)
    shifted = np.array([[1, 0, 3.0], [0, 1, 4.0], [0, 0, 1]])
    assert corner_error(shifted, truth, 640, 480) == 5.0
    assert corner_error(None, truth, 640, 480) == float("inf")


def test_auc_of_known_errors() -> None:
    assert error_auc([0.0, 0.0], (3.0,)) == [1.0]
    assert error_auc([float("inf")] * 3, (3.0,)) == [0.0]
    # half the pairs exact, half failed -> the recall curve is 0.5 throughout
    assert np.isclose(error_auc([0.0, float("inf")], (5.0,))[0], 0.5)
    # errors uniform on [0, 10]: area up to 10 px is about one half
    assert np.isclose(error_auc(np.linspace(0, 10, 1001), (10.0,))[0], 0.5, atol=0.01)


def test_ransac_recovers_a_homography_from_noisy_matches() -> None:
    rng = np.random.default_rng(0)
    truth = np.array([[1.1, 0.05, 12.0], [-0.03, 0.95, -7.0], [1e-4, -5e-5, 1.0]])
    points0 = rng.uniform(0, 640, (200, 2))
    projected = (truth @ np.c_[points0, np.ones(200)].T).T
    points1 = projected[:, :2] / projected[:, 2:] + rng.normal(0, 0.3, (200, 2))
    points1[:40] = rng.uniform(0, 640, (40, 2))  # 20% outliers
    estimate, inliers = estimate_homography(points0, points1)
    assert corner_error(estimate, truth, 640, 480) < 1.0
    assert inliers[40:].mean() > 0.95 and inliers[:40].mean() < 0.1
    assert np.all(reprojection_errors(points0[40:], points1[40:], truth) < 2.0)
