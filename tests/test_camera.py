"""Calibrated cameras (model/camera.py): the calibration files people have, sizes, taking the distortion out."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from model.camera import Camera, read_calibration

MATRIX = np.array([[535.4, 0.0, 320.1], [0.0, 539.2, 247.6], [0.0, 0.0, 1.0]])
DISTORTION = np.array([0.1, -0.2, 0.001, -0.002, 0.05])


def _opencv_file(path: Path) -> Path:
    """What cv2.calibrateCamera's samples write: OpenCV's own FileStorage format."""
    storage = cv2.FileStorage(str(path), cv2.FILE_STORAGE_WRITE)
    storage.write("image_width", 640)
    storage.write("image_height", 480)
    storage.write("camera_matrix", MATRIX)
    storage.write("distortion_coefficients", DISTORTION.reshape(5, 1))
    storage.release()
    return path


def _ros_file(path: Path) -> Path:
    """ROS camera_info YAML (camera_calibration's output): rows/cols/data maps, no OpenCV type tags."""
    path.write_text(
        "image_width: 640\nimage_height: 480\ncamera_name: webcam\n"
        f"camera_matrix:\n  rows: 3\n  cols: 3\n  data: {MATRIX.ravel().tolist()}\n"
        "distortion_model: plumb_bob\n"
        f"distortion_coefficients:\n  rows: 1\n  cols: 5\n  data: {DISTORTION.tolist()}\n")
    return path


def _json_file(path: Path) -> Path:
    path.write_text(json.dumps({"K": MATRIX.tolist(), "dist": DISTORTION.tolist(), "image_size": [640, 480]}))
    return path


@pytest.mark.parametrize(("write", "suffix"), [(_opencv_file, ".yml"), (_opencv_file, ".xml"), (_opencv_file, ".json"),
                                               (_ros_file, ".yaml"), (_json_file, ".json")],
                         ids=["opencv-yml", "opencv-xml", "opencv-json", "ros", "json"])
def test_every_calibration_format_reads_the_same_camera(tmp_path: Path, write, suffix: str) -> None:  # type: ignore[no-untyped-def]
    camera = read_calibration(write(tmp_path / f"camera{suffix}"))
    np.testing.assert_allclose(camera.matrix, MATRIX)
    np.testing.assert_allclose(camera.distortion, DISTORTION)
    assert camera.image_size == (640, 480) and not camera.fisheye and camera.distorted


def test_a_fisheye_calibration_and_one_without_distortion(tmp_path: Path) -> None:
    fisheye = tmp_path / "fisheye.yaml"  # ROS / Kalibr name the fisheye model "equidistant"
    fisheye.write_text(f"camera_matrix:\n  data: {MATRIX.ravel().tolist()}\ndistortion_model: equidistant\n"
                       "distortion_coefficients:\n  data: [0.05, -0.02, 0.01, -0.005]\n")
    camera = read_calibration(fisheye)
    assert camera.fisheye and camera.distortion.shape == (4,) and camera.image_size is None
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({"camera_matrix": MATRIX.tolist()}))
    camera = read_calibration(plain)
    assert not camera.distorted and camera.distortion.size == 0
    points = np.array([[10.0, 20.0], [600.0, 400.0]])
    assert camera.undistort(points) is points  # nothing to take out


@pytest.mark.parametrize(("content", "message"), [
    (None, "no calibration file"),
    ("not: [a calibration", "is not a calibration file OpenCV can read"),
    ("", "is not a calibration file OpenCV can read"),
    ('{"dist": [0, 0, 0, 0]}', "has no camera matrix (one of the keys camera_matrix, "),
    ('{"K": [1, 2, 3, 4]}', "the camera matrix has 4 numbers, not 3 x 3"),
    ('{"K": [[-500, 0, 320], [0, 500, 240], [0, 0, 1]]}', "not a camera matrix (positive focal lengths"),
    ('{"K": [[500, 0, 320], [0, 500, 240], [0, 0, 1]], "dist": [0.1, 0.2, 0.3]}',
     "3 distortion coefficients; the standard model takes 4 or 5 or 8 or 12 or 14"),
    ('{"K": [[500, 0, 320], [0, 500, 240], [0, 0, 1]], "dist": [0.1, 0.2, 0, 0, 0], "distortion_model": "fisheye"}',
     "5 distortion coefficients; the fisheye model takes 4"),
    ('{"K": [[500, 0, 320], [0, 500, 240], [0, 0, 1]], "dist": "none"}', "the distortion should be numbers"),
    ('{"K": [[500, 0, 320], [0, 500, 240], [0, 0, 1]], "image_size": [640]}', "the image size should be a width"),
])
def test_a_file_that_is_not_a_calibration_says_what_is_wrong(tmp_path: Path, content: str | None,
                                                             message: str) -> None:
    path = tmp_path / "camera.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ValueError) as error:
        read_calibration(path)
    assert str(path) in str(error.value) and message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("fisheye", [False, True])
def test_undistort_gives_the_pixels_of_an_ideal_pinhole_camera(fisheye: bool) -> None:
    distortion = np.array([0.05, -0.02, 0.01, -0.005]) if fisheye else np.array([-0.3, 0.12, 0.001, -0.002, 0.0])
    camera = Camera(MATRIX, distortion, fisheye)
    rng = np.random.default_rng(0)
    rays = np.c_[rng.uniform(-0.5, 0.5, (50, 2)), np.ones(50)]  # directions in front of the camera
    project = cv2.fisheye.projectPoints if fisheye else cv2.projectPoints
    distorted, _ = project(rays.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), MATRIX, distortion)
    ideal = rays @ MATRIX.T
    ideal = ideal[:, :2] / ideal[:, 2:]
    distorted = distorted.reshape(-1, 2)
    assert np.abs(distorted - ideal).max() > 5  # the lens moves points by pixels
    np.testing.assert_allclose(camera.undistort(distorted), ideal, atol=1e-4)


def test_for_size_scales_the_matrix_and_refuses_another_shape() -> None:
    camera = Camera(MATRIX, DISTORTION, image_size=(640, 480))
    half = camera.for_size(320, 240)
    np.testing.assert_allclose(half.matrix, np.diag([0.5, 0.5, 1.0]) @ MATRIX)
    assert half.image_size == (320, 240) and half.distortion is camera.distortion
    np.testing.assert_allclose(half.for_size(320, 240).matrix, half.matrix)  # sized once, not twice
    unsized = Camera(MATRIX)  # --intrinsics: in the pixels of the frames as they come
    np.testing.assert_allclose(unsized.for_size(960, 720, assumed_size=(640, 480)).matrix,
                               np.diag([1.5, 1.5, 1.0]) @ MATRIX)
    np.testing.assert_allclose(unsized.for_size(640, 480).matrix, MATRIX)
    with pytest.raises(ValueError, match="the calibration is for 640x480 images and these are 1280x720"):
        camera.for_size(1280, 720)
