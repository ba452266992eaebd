"""A calibrated camera: its intrinsic matrix and lens distortion, read from the calibration files people have,
and matched points freed of that distortion before an essential matrix is fitted to them.

Files read (``read_calibration``): OpenCV's FileStorage YAML, XML or JSON as ``cv2.calibrateCamera``'s samples
write them (``camera_matrix``, ``distortion_coefficients``, ``image_width``, ``image_height``), ROS
``camera_info`` YAML (the same keys with ``rows``/``cols``/``data``, and ``distortion_model``), or a plain
JSON such as ``{"K": [[fx, 0, cx], [0, fy, cy], [0, 0, 1]], "dist": [k1, k2, p1, p2, k3]}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

MATRIX_KEYS = ("camera_matrix", "cameraMatrix", "K", "intrinsics", "mtx")
DISTORTION_KEYS = ("distortion_coefficients", "dist_coeffs", "distCoeffs", "distortion", "dist", "D")
WIDTH_KEYS, HEIGHT_KEYS = ("image_width", "width"), ("image_height", "height")
SIZE_KEYS = ("image_size", "imageSize")  # [width, height]
#: ``distortion_model`` values (ROS, Kalibr) of the fisheye (equidistant) model; others are OpenCV's standard one.
FISHEYE_MODELS = ("equidistant", "fisheye", "kannala_brandt")
#: How many coefficients each model takes: OpenCV's k1 k2 p1 p2 [k3 [k4 k5 k6 [s1 s2 s3 s4 [tx ty]]]]; fisheye k1-k4.
STANDARD_COUNTS, FISHEYE_COUNTS = (4, 5, 8, 12, 14), (4,)
#: When OpenCV's iterative inversion of the standard model stops (0.1 ms for 300 points).
UNDISTORT_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-10)
#: Frames whose width / height differs more than this from the calibration's are another crop of the sensor.
ASPECT_TOLERANCE = 0.02


def intrinsic_matrix(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """[3, 3] camera matrix from focal lengths and principal point (pixels); ValueError for a focal length <= 0."""
    if min(fx, fy) <= 0:
        raise ValueError("the focal lengths FX and FY must be positive (pixels)")
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def camera_from_flags(intrinsics: Sequence[float] | None, calibration_file: str | None) -> Camera | None:
    """The camera of the command lines' --intrinsics FX FY CX CY or --calibration FILE (the caller refuses both);
    None without either; ValueError with one line that names the flag."""
    if calibration_file is not None:
        try:
            return read_calibration(calibration_file)
        except ValueError as error:
            raise ValueError(f"--calibration: {error}") from None
    try:
        return None if intrinsics is None else Camera(intrinsic_matrix(*intrinsics))
    except ValueError as error:
        raise ValueError(f"--intrinsics FX FY CX CY: {error}") from None


@dataclass(frozen=True)
class Camera:
    """A pinhole camera with lens distortion, in the pixels of its images.

    matrix: [3, 3] intrinsic matrix (focal lengths and principal point, pixels).
    distortion: OpenCV's coefficients (k1 k2 p1 p2 [k3 ...]), or the fisheye model's k1-k4; empty: none.
    fisheye: the coefficients are the fisheye (equidistant) model's.
    image_size: (width, height) of the images ``matrix`` is for; None: whatever images it is given with.
    """

    matrix: np.ndarray
    distortion: np.ndarray = field(default_factory=lambda: np.zeros(0))
    fisheye: bool = False
    image_size: tuple[int, int] | None = None

    @property
    def distorted(self) -> bool:
        return bool(np.any(self.distortion))

    def for_size(self, width: int, height: int, assumed_size: tuple[int, int] | None = None) -> Camera:
        """This camera for its images resized to ``width`` x ``height``: from ``image_size``, or, when the
        calibration does not say, from ``assumed_size`` (None: the images already are that size). Distortion
        acts on normalised coordinates, so its coefficients stay. ValueError when the calibration's images have
        another shape (a crop of the sensor, with another principal point: no scaling makes it right)."""
        from_width, from_height = self.image_size or assumed_size or (width, height)
        if abs(width / height - from_width / from_height) > ASPECT_TOLERANCE * from_width / from_height:
            raise ValueError(f"the calibration is for {from_width}x{from_height} images and these are "
                             f"{width}x{height}, another shape: calibrate the camera at the size it delivers")
        scale = np.diag([width / from_width, height / from_height, 1.0])
        return Camera(scale @ self.matrix, self.distortion, self.fisheye, (width, height))

    def undistort(self, points: np.ndarray) -> np.ndarray:
        """[N, 2] pixels -> [N, 2] pixels of the same camera without lens distortion (``matrix`` unchanged)."""
        if not self.distorted or not len(points):
            return points
        points = np.asarray(points, dtype=np.float64).reshape(-1, 1, 2)
        if self.fisheye:
            undistorted = cv2.fisheye.undistortPoints(points, self.matrix, self.distortion, P=self.matrix)
        else:
            # OpenCV's default of 5 iterations leaves up to 0.01 px near the corners of a strong lens; 4.x takes
            # the stopping criteria only through undistortPointsIter, 5.x also through undistortPoints.
            if hasattr(cv2, "undistortPointsIter"):
                undistorted = cv2.undistortPointsIter(points, self.matrix, self.distortion, np.eye(3), self.matrix,
                                                      UNDISTORT_CRITERIA)
            else:
                undistorted = cv2.undistortPoints(points, self.matrix, self.distortion, R=None, P=self.matrix,
                                                  criteria=UNDISTORT_CRITERIA)
        return undistorted.reshape(-1, 2)


def read_calibration(path: str | Path) -> Camera:
    """A camera calibration file (see the module's docstring) -> ``Camera``; ValueError with one line that says
    what is wrong with the file."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no calibration file {path}")
    unreadable = f"{path} is not a calibration file OpenCV can read (YAML, XML or JSON with a camera matrix)"
    storage = _open_storage(path)
    if storage is None:
        raise ValueError(unreadable)
    try:
        if not storage.isOpened() or not storage.root().isMap():
            raise ValueError(unreadable)
        return _camera_from(storage.root(), path)
    finally:
        storage.release()


def _open_storage(path: Path) -> cv2.FileStorage | None:
    """OpenCV's reader on the file, or None. OpenCV 4 reads YAML only after a ``%YAML`` directive, which ROS
    camera_info files lack, so those are read again from memory with one put in front."""
    try:
        return cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
    except (cv2.error, SystemError):  # OpenCV's parser raises SystemError around its own error at times
        pass
    if path.suffix.lower() not in (".yaml", ".yml"):
        return None
    try:
        text = path.read_text(encoding="utf-8")
        return cv2.FileStorage("%YAML:1.0\n---\n" + text, cv2.FILE_STORAGE_READ | cv2.FILE_STORAGE_MEMORY)
    except (cv2.error, SystemError, UnicodeDecodeError):
        return None


def _camera_from(root: cv2.FileNode, path: Path) -> Camera:
    matrix_node = _first(root, MATRIX_KEYS)
    if matrix_node is None:
        raise ValueError(f"{path} has no camera matrix (one of the keys {', '.join(MATRIX_KEYS)})")
    matrix = _numbers(matrix_node, path, "camera matrix")
    if matrix.size != 9:
        raise ValueError(f"{path}: the camera matrix has {matrix.size} numbers, not 3 x 3")
    matrix = matrix.reshape(3, 3)
    if min(matrix[0, 0], matrix[1, 1]) <= 0 or not np.allclose(matrix[2], [0, 0, 1]):
        raise ValueError(f"{path}: not a camera matrix (positive focal lengths, last row 0 0 1): "
                         f"{' '.join(f'{value:g}' for value in matrix.ravel())}")
    distortion_node = _first(root, DISTORTION_KEYS)
    distortion = np.zeros(0) if distortion_node is None else _numbers(distortion_node, path, "distortion")
    model = root.getNode("distortion_model")
    fisheye = model.isString() and model.string().lower() in FISHEYE_MODELS
    counts = FISHEYE_COUNTS if fisheye else STANDARD_COUNTS
    if distortion.size and distortion.size not in counts:
        raise ValueError(f"{path}: {distortion.size} distortion coefficients; the "
                         f"{'fisheye' if fisheye else 'standard'} model takes {' or '.join(map(str, counts))}")
    return Camera(matrix, distortion, fisheye, _image_size(root, path))


def _image_size(root: cv2.FileNode, path: Path) -> tuple[int, int] | None:
    width, height, size = _first(root, WIDTH_KEYS), _first(root, HEIGHT_KEYS), _first(root, SIZE_KEYS)
    if width is not None and height is not None:
        values = np.array([width.real(), height.real()])
    elif size is not None:
        values = _numbers(size, path, "image size")
    else:
        return None
    if values.size != 2 or min(values) < 1:
        raise ValueError(f"{path}: the image size should be a width and a height in pixels, not {values.tolist()}")
    return int(values[0]), int(values[1])


def _first(root: cv2.FileNode, keys: tuple[str, ...]) -> cv2.FileNode | None:
    for key in keys:
        node = root.getNode(key)
        if not node.isNone():
            return node
    return None


def _numbers(node: cv2.FileNode, path: Path, what: str) -> np.ndarray:
    """The numbers of an OpenCV matrix, of a ROS-style map with ``data``, of a (nested) list, or a number."""
    if node.isMap() and not node.getNode("dt").isNone():
        return np.asarray(node.mat(), dtype=np.float64).ravel()
    if node.isMap() and not node.getNode("data").isNone():
        return _numbers(node.getNode("data"), path, what)
    if node.isSeq():
        parts = [_numbers(node.at(index), path, what) for index in range(node.size())]
        return np.concatenate(parts) if parts else np.zeros(0)
    if node.isReal() or node.isInt():
        return np.array([node.real()])
    raise ValueError(f"{path}: the {what} should be numbers")
