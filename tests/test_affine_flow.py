"""Affine Lucas-Kanade (model.affine_flow) and the 'affine' refinement that uses it."""

from __future__ import annotations

import cv2
import numpy as np
from textures import point_grid, texture, warped

from model.affine_flow import affine_lucas_kanade, local_similarity, turn_and_log_scale, window_offsets
from model.refine import DetailImage, FlowRefinement, refine_keypoints


def _turned(degrees: float, scale: float, centre: tuple[float, float] = (160.0, 120.0)) -> np.ndarray:
    """[2, 3] affine (OpenCV's pixel centres at integers) turning by ``degrees`` and scaling about ``centre``."""
    return cv2.getRotationMatrix2D(centre, degrees, scale).astype(np.float32)


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return (points @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)


def test_local_similarity_recovers_rotation_and_scale_despite_wrong_neighbours() -> None:
    matrix = _turned(-30.0, 1.25)
    points0 = point_grid(step=16, margin=20)
    points1 = _apply(matrix, points0) + np.random.default_rng(0).uniform(-1.0, 1.0, points0.shape).astype(np.float32)
    wrong = np.random.default_rng(1).choice(len(points0), len(points0) // 10, replace=False)
    points1[wrong] = np.random.default_rng(2).uniform(0, 320, (len(wrong), 2))  # one match in ten is wrong
    similarities, valid = local_similarity(points0, points1, neighbours=10, min_distance=24.0)
    assert similarities.shape == (len(points0), 2, 2) and similarities.dtype == np.float32 and valid.all()
    turn, log_scale = turn_and_log_scale(similarities)
    assert np.median(np.abs(turn - 30.0)) < 2.0 and np.median(np.abs(log_scale - np.log(1.25))) < 0.03
    # Across +-180 degrees: no jump in the median.
    upside_down = _apply(_turned(179.0, 1.0), points0)
    turn, _ = turn_and_log_scale(local_similarity(points0, upside_down, 10, 24.0)[0])
    np.testing.assert_allclose(turn, 179.0, atol=0.1)
    # Too few matches: the identity, not valid.
    few, few_valid = local_similarity(points0[:3], points1[:3], 10, 24.0)
    np.testing.assert_array_equal(few, np.tile(np.eye(2), (3, 1, 1))) and not few_valid.any()


def test_affine_windows_are_found_to_a_few_hundredths_of_a_pixel() -> None:
    image0 = texture().astype(np.float32)
    matrix = _turned(25.0, 0.8)
    image1 = warped(image0, matrix)
    detail0 = DetailImage(image0.astype(np.uint8), (1.0, 1.0))
    centres0 = point_grid(step=30, margin=50)
    truth = _apply(matrix, centres0)
    rng = np.random.default_rng(3)
    starts = truth + rng.uniform(-2.0, 2.0, truth.shape).astype(np.float32)
    guesses = np.tile(_turned(20.0, 0.85)[:, :2], (len(centres0), 1, 1))  # five degrees and 6% off
    positions, warps, correlation = affine_lucas_kanade(detail0.smoothed(0.0), image1, centres0,
                                                        starts, guesses, window_offsets(21), iterations=20)
    assert np.abs(positions - truth).max() < 0.05
    np.testing.assert_allclose(warps, np.tile(matrix[:, :2], (len(centres0), 1, 1)), atol=0.01)
    assert correlation.min() > 0.95
    # Nothing to fit in image 1: no window correlates.
    _, _, flat = affine_lucas_kanade(detail0.smoothed(0.0), np.full_like(image1, 128.0), centres0,
                                     starts, guesses, window_offsets(21), iterations=20)
    assert flat.max() < 0.5


def test_window_offsets_are_centred() -> None:
    offsets = window_offsets(5)
    assert offsets.shape == (25, 2) and offsets.dtype == np.float32
    np.testing.assert_array_equal(offsets.mean(axis=0), [0.0, 0.0])
    np.testing.assert_array_equal(offsets[0], [-2.0, -2.0]) and np.testing.assert_array_equal(offsets[1], [-1.0, -2.0])
    sparse = window_offsets(21, stride=2)
    assert sparse.shape == (121, 2) and sparse.min() == -10.0 and sparse.max() == 10.0


def test_affine_refines_turned_and_scaled_content_where_square_windows_fail() -> None:
    image0 = texture()
    matrix = _turned(30.0, 1.2)
    image1 = warped(image0, matrix)
    keypoints0 = point_grid(step=16, margin=56) + 0.5  # the caller's corner convention: pixel centres at +0.5
    truth_of = lambda keypoints: _apply(matrix, keypoints - 0.5) + 0.5  # noqa: E731
    # The network's positions at the live setting: within about a network pixel (two image pixels) of the truth.
    noisy = truth_of(keypoints0) + np.random.default_rng(4).uniform(-1.5, 1.5, keypoints0.shape).astype(np.float32)
    details = (DetailImage(image0, (1.0, 1.0)), DetailImage(image1, (1.0, 1.0)))
    results = {mode: refine_keypoints(*details, keypoints0, noisy, network_px=(2.0, 2.0), refinement=FlowRefinement(),
                                      mode=mode) for mode in ("corners", "affine")}
    errors = {mode: np.linalg.norm(kept1 - truth_of(kept0), axis=1) for mode, (kept0, kept1, _) in results.items()}
    assert np.median(errors["corners"]) > 0.5  # square windows: mostly the network's positions
    assert np.mean(errors["affine"] < 0.1) > 0.9, np.percentile(errors["affine"], [50, 90])
    # Keypoint 0 is the corner-snapped one of 'corners' (within its cell) wherever affine refined it.
    assert np.abs(results["affine"][0] - keypoints0).max() <= 8.5
    # Unturned content: affine leaves the matches to the square windows, exactly as 'corners'.
    shifted = warped(image0, [[1, 0, 2.3], [0, 1, -1.6]])
    same = [refine_keypoints(details[0], DetailImage(shifted, (1.0, 1.0)), keypoints0, keypoints0 + 1.0,
                             network_px=(2.0, 2.0), refinement=FlowRefinement(), mode=mode)
            for mode in ("corners", "affine")]
    np.testing.assert_array_equal(same[0][1], same[1][1])


def test_turned_matches_keep_the_network_positions_where_no_window_fits() -> None:
    image0 = texture()
    matrix = _turned(30.0, 1.2)
    keypoints0 = point_grid(step=16, margin=56) + 0.5
    network1 = _apply(matrix, keypoints0 - 0.5) + 0.5
    blank = DetailImage(np.full_like(image0, 128), (1.0, 1.0))  # the turned content is gone (e.g. covered)
    kept0, kept1, verified = refine_keypoints(DetailImage(image0, (1.0, 1.0)), blank, keypoints0, network1,
                                              network_px=(2.0, 2.0), refinement=FlowRefinement(), mode="affine")
    assert not verified.any()
    np.testing.assert_array_equal(kept0, keypoints0)
    np.testing.assert_array_equal(kept1, network1)


def test_only_the_first_matches_up_to_the_cap_get_affine_windows() -> None:
    image0 = texture()
    matrix = _turned(30.0, 1.2)
    image1 = warped(image0, matrix)
    keypoints0 = point_grid(step=16, margin=56) + 0.5
    network1 = _apply(matrix, keypoints0 - 0.5) + 0.5 + 0.7
    details = (DetailImage(image0, (1.0, 1.0)), DetailImage(image1, (1.0, 1.0)))
    square, capped = (refine_keypoints(*details, keypoints0, network1, network_px=(2.0, 2.0),
                                       refinement=FlowRefinement(affine_max_windows=5), mode=mode)[1]
                      for mode in ("corners", "affine"))
    affine = np.flatnonzero(np.any(capped != square, axis=1))
    assert 0 < len(affine) <= 5 and affine.max() < 5


def test_smoothing_lets_more_windows_settle_on_a_noisy_turned_photo(photo_pair: tuple[np.ndarray, np.ndarray]) -> None:
    photo = cv2.cvtColor(photo_pair[0], cv2.COLOR_BGR2GRAY)
    matrix = _turned(30.0, 1.2, centre=(320.0, 240.0))
    rng = np.random.default_rng(9)
    noisy = [np.clip(image + rng.normal(0.0, 4.0, image.shape), 0, 255).astype(np.uint8)  # a camera's noise
             for image in (photo, cv2.warpAffine(photo, matrix, (640, 480), borderMode=cv2.BORDER_REFLECT))]
    keypoints0 = point_grid(step=16, margin=60, height=480, width=640) + 0.5
    truth_of = lambda keypoints: _apply(matrix, keypoints - 0.5) + 0.5  # noqa: E731
    network1 = truth_of(keypoints0) + rng.uniform(-2.0, 2.0, keypoints0.shape).astype(np.float32)
    settled, default = {}, FlowRefinement().affine_smoothing
    assert default > 0
    for sigma in (0.0, default):
        details = (DetailImage(noisy[0], (1.0, 1.0)), DetailImage(noisy[1], (1.0, 1.0)))
        refined0, refined1, _ = refine_keypoints(*details, keypoints0, network1, network_px=(2.0, 2.0),
                                                 refinement=FlowRefinement(affine_smoothing=sigma,
                                                                           affine_max_windows=len(keypoints0)),
                                                 mode="affine")
        settled[sigma] = np.mean(np.linalg.norm(refined1 - truth_of(refined0), axis=1) < 0.2)
    assert settled[default] > settled[0.0] + 0.1, settled


def test_smoothed_images_are_made_once_per_sigma() -> None:
    detail = DetailImage(texture(), (1.0, 1.0))
    assert detail.smoothed(1.0) is detail.smoothed(1.0)
    plain, grad_x, _ = detail.smoothed(0.0)
    np.testing.assert_array_equal(plain, detail.gray.astype(np.float32))
    assert grad_x.dtype == np.float32 and grad_x.shape == detail.gray.shape
    smooth = detail.smoothed(1.0)[0]
    assert np.abs(np.diff(smooth, axis=1)).mean() < np.abs(np.diff(plain, axis=1)).mean()
