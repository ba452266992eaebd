"""Robust two-view geometry (model/geometry.py) and the app's verification of a frame's matches (app/verify.py)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from app.verify import CameraIntrinsics, available_modes, next_mode, verify_matches
from model.camera import Camera, intrinsic_matrix
from model.geometry import MIN_MATCHES, STILL, RelativePose, fit_geometry, project_outline
from model.matcher import MatchResult, image_px_per_network_px

HOMOGRAPHY = np.array([[1.05, 0.04, 12.0], [-0.03, 0.97, -7.0], [2e-4, -1e-4, 1.0]])


def _apply(homography: np.ndarray, points: np.ndarray) -> np.ndarray:
    mapped = np.c_[points, np.ones(len(points))] @ homography.T
    return mapped[:, :2] / mapped[:, 2:]


def _homography_matches(count: int = 200, outliers: int = 40) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Matches of a plane under HOMOGRAPHY with 0.3 px noise, the last ``outliers`` of them moved far away."""
    rng = np.random.default_rng(0)
    points0 = rng.uniform([0, 0], [640, 480], size=(count, 2))
    points1 = _apply(HOMOGRAPHY, points0) + rng.normal(0, 0.3, size=(count, 2))
    points1[count - outliers:] += rng.uniform(40, 120, size=(outliers, 2)) * rng.choice([-1, 1], size=(outliers, 2))
    truth = np.arange(count) < count - outliers
    return points0, points1, truth


INTRINSICS = intrinsic_matrix(500.0, 500.0, 320.0, 240.0)
ANGLE = 0.12  # the second camera turns about its y axis by this many radians
ROTATION = np.array([[np.cos(ANGLE), 0, np.sin(ANGLE)], [0, 1, 0], [-np.sin(ANGLE), 0, np.cos(ANGLE)]])
TRANSLATION = np.array([-0.6, 0.1, 0.2])


def _two_view_matches(count: int = 200, outliers: int = 40,
                      camera: Camera | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Projections of a random 3D point cloud into two cameras (ROTATION + TRANSLATION), with outliers that
    are moved across their epipolar lines; ``camera``: a lens that distorts them (default: INTRINSICS, none)."""
    rng = np.random.default_rng(1)
    world = np.c_[rng.uniform(-2, 2, count), rng.uniform(-1.5, 1.5, count), rng.uniform(4, 9, count)]
    rotation, translation = ROTATION, TRANSLATION
    camera = camera or Camera(INTRINSICS)

    def project(points: np.ndarray) -> np.ndarray:
        project_with = cv2.fisheye.projectPoints if camera.fisheye else cv2.projectPoints
        pixels, _ = project_with(points.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), camera.matrix,
                                 camera.distortion if camera.distorted else np.zeros(4))
        return pixels.reshape(-1, 2)

    points0 = project(world) + rng.normal(0, 0.2, size=(count, 2))
    points1 = project(world @ rotation.T + translation) + rng.normal(0, 0.2, size=(count, 2))
    points1[count - outliers:, 1] += rng.uniform(30, 80, size=outliers) * rng.choice([-1, 1], size=outliers)
    truth = np.arange(count) < count - outliers
    return points0, points1, truth


@pytest.mark.parametrize("estimator", ["magsac", "ransac"])
def test_homography_is_recovered_and_outliers_rejected(estimator: str) -> None:
    points0, points1, truth = _homography_matches()
    fit = fit_geometry(points0, points1, "homography", 3.0, estimator)
    assert fit.matrix is not None
    np.testing.assert_array_equal(fit.inliers, truth)
    probe = np.array([[0.0, 0.0], [640.0, 480.0], [320.0, 100.0]])
    np.testing.assert_allclose(_apply(fit.matrix, probe), _apply(HOMOGRAPHY, probe), atol=1.0)
    assert fit.num_inliers == truth.sum() and fit.inlier_ratio == pytest.approx(truth.mean())


def test_fundamental_matrix_keeps_a_3d_scene_and_rejects_outliers() -> None:
    points0, points1, truth = _two_view_matches()
    fit = fit_geometry(points0, points1, "fundamental", 1.0)
    assert fit.matrix is not None and fit.matrix.shape == (3, 3)
    assert fit.inliers[~truth].sum() == 0
    assert fit.inliers[truth].mean() > 0.95
    # A homography cannot explain this scene: most true matches are its outliers.
    assert fit_geometry(points0, points1, "homography", 1.0).inliers[truth].mean() < 0.5


@pytest.mark.parametrize("estimator", ["magsac", "ransac"])
def test_essential_matrix_gives_the_camera_motion(estimator: str) -> None:
    points0, points1, truth = _two_view_matches()
    fit = fit_geometry(points0, points1, "essential", 1.0, estimator, camera=INTRINSICS)
    assert fit.matrix is not None and fit.pose is not None
    assert fit.inliers[~truth].sum() == 0 and fit.inliers[truth].mean() > 0.9
    assert fit.pose.rotation_deg == pytest.approx(np.degrees(ANGLE), abs=0.7)
    moved = -ROTATION.T @ TRANSLATION / np.linalg.norm(TRANSLATION)  # the second camera's centre, in the first's axes
    assert np.degrees(np.arccos(np.clip(fit.pose.motion @ moved, -1, 1))) < 2.0
    without = fit_geometry(points0, points1, "essential", 1.0, estimator)
    assert without.matrix is None and without.failure == "needs the camera's intrinsics"
    # A camera that has not moved (or the anchor against itself): any essential matrix fits, so no pose is made up.
    jitter = np.random.default_rng(2).normal(0, 0.3, points0.shape)
    still = fit_geometry(points0, points0 + jitter, "essential", 1.0, estimator, camera=INTRINSICS)
    assert still.matrix is None and still.pose is STILL and not still.pose.moved and still.inliers.mean() > 0.9


@pytest.mark.parametrize("lens", [Camera(INTRINSICS, np.array([-0.3, 0.12, 0.001, -0.002, 0.0])),
                                  Camera(INTRINSICS, np.array([0.05, -0.02, 0.01, -0.005]), fisheye=True)],
                         ids=["standard", "fisheye"])
def test_essential_matrix_takes_the_lens_distortion_out_first(lens: Camera) -> None:
    points0, points1, truth = _two_view_matches(camera=lens)
    assert np.abs(lens.undistort(points0) - points0).max() > 10  # pixels the lens moves points by, at most

    def rotation_error_deg(camera: Camera | np.ndarray) -> float:
        fit = fit_geometry(points0, points1, "essential", 1.0, camera=camera)
        assert fit.pose is not None and fit.inliers[~truth].sum() == 0 and fit.inliers[truth].mean() > 0.9
        return RelativePose(fit.pose.rotation.T @ ROTATION, np.zeros(3)).rotation_deg

    assert rotation_error_deg(lens) < 0.1
    # The same matches taken for a pinhole camera's: the epipolar constraint bends to fit them, the pose is off.
    assert rotation_error_deg(lens.matrix) > 0.25


@pytest.mark.parametrize("model", ["homography", "fundamental", "essential"])
def test_too_few_or_no_matches_are_a_failed_fit_not_an_error(model: str) -> None:
    for count in (0, MIN_MATCHES[model] - 1):
        fit = fit_geometry(np.zeros((count, 2)), np.zeros((count, 2)), model, camera=INTRINSICS)
        assert fit.matrix is None and fit.inliers.shape == (count,) and fit.num_inliers == 0
        assert fit.inlier_ratio == 0.0
    degenerate = np.zeros((20, 2))  # every match the same point: no model fits
    assert fit_geometry(degenerate, degenerate, model, camera=INTRINSICS).matrix is None


def test_unknown_model_or_estimator_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown geometry model 'affine'"):
        fit_geometry(np.zeros((10, 2)), np.zeros((10, 2)), "affine")
    with pytest.raises(ValueError, match="unknown estimator 'lmeds'"):
        fit_geometry(np.zeros((10, 2)), np.zeros((10, 2)), estimator="lmeds")


def test_outline_follows_the_homography_and_refuses_folded_borders() -> None:
    np.testing.assert_allclose(project_outline(np.eye(3), (0, 0, 64, 48)), [[0, 0], [64, 0], [64, 48], [0, 48]])
    outline = project_outline(HOMOGRAPHY, (0, 0, 640, 480))
    assert outline is not None
    np.testing.assert_allclose(outline, _apply(HOMOGRAPHY, np.array([[0, 0], [640, 0], [640, 480], [0, 480.0]])))
    mirror_x = np.diag([-1.0, 1.0, 1.0])  # a mirror is not something a camera sees: still a convex outline
    assert project_outline(mirror_x, (0, 0, 64, 48)) is not None
    horizon = np.array([[1.0, 0, 0], [0, 1.0, 0], [-1 / 32, 0, 1.0]])  # the line x = 32 goes to infinity
    assert project_outline(horizon, (0, 0, 64, 48)) is None
    collapsed = np.array([[1.0, 0, 0], [0, 0, 0], [0, 0, 1.0]])  # every point onto one line: nothing to outline
    assert project_outline(collapsed, (0, 0, 64, 48)) is None


def test_geometry_modes_cycle_and_none_does_nothing() -> None:
    without = available_modes(has_intrinsics=False)  # an essential matrix needs the camera's intrinsics
    assert [next_mode(mode, without) for mode in without] == ["homography", "fundamental", "none"]
    assert [next_mode(mode) for mode in available_modes(True)] == ["homography", "fundamental", "essential", "none"]
    empty = MatchResult(np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32), np.zeros(0, np.float32),
                        np.zeros(0, np.float32))
    assert verify_matches(empty, "none", (480, 640, 3), None) is None
    with pytest.raises(ValueError, match="unknown geometry mode"):
        verify_matches(empty, "affine", (480, 640, 3), None)


def test_thresholds_are_in_network_pixels() -> None:
    assert image_px_per_network_px((480, 640, 3), None) == 1.0
    assert image_px_per_network_px((480, 640, 3), (320, 240)) == 2.0
    points0, points1, _ = _homography_matches()
    result = MatchResult(points0.astype(np.float32), points1.astype(np.float32), np.ones(len(points0), np.float32),
                         np.zeros(len(points0), np.float32))
    native = verify_matches(result, "homography", (480, 640, 3), None)
    halved = verify_matches(result, "fundamental", (480, 640, 3), (320, 240))
    assert native is not None and native.threshold_px == 3.0
    assert halved is not None and halved.threshold_px == 2.0 and halved.model == "fundamental"


def test_intrinsics_follow_the_frames_size() -> None:
    # A 1280x720 camera's frames kept at 960x540: focal lengths and principal point scale with them.
    calibrated = CameraIntrinsics(Camera(intrinsic_matrix(1000.0, 990.0, 640.0, 360.0)))
    np.testing.assert_allclose(calibrated.for_frames((720, 1280, 3), (540, 960, 3)).matrix,
                               intrinsic_matrix(750.0, 742.5, 480.0, 270.0))
    # A 90 degree field of view: the focal length is half the width, the principal point the centre.
    np.testing.assert_allclose(CameraIntrinsics(fov_deg=90.0).for_frames((720, 1280, 3), (540, 960, 3)).matrix,
                               intrinsic_matrix(480.0, 480.0, 480.0, 270.0))
    # A calibration that says its size is scaled from that size, whatever size the frames came at.
    at_1080p = Camera(intrinsic_matrix(1500.0, 1485.0, 960.0, 540.0), np.array([0.1, -0.2, 0, 0]),
                      image_size=(1920, 1080))
    camera = CameraIntrinsics(at_1080p).for_frames((720, 1280, 3), (540, 960, 3))
    np.testing.assert_allclose(camera.matrix, intrinsic_matrix(750.0, 742.5, 480.0, 270.0))
    np.testing.assert_array_equal(camera.distortion, at_1080p.distortion)  # they act on normalised coordinates
    with pytest.raises(ValueError, match="the calibration is for 1920x1080 images and these are 640x480"):
        CameraIntrinsics(at_1080p).for_frames((480, 640, 3), (480, 640, 3))
