"""Real multi-view scenes with ground truth: camera poses, intrinsics and (where there is one) a depth map per image.

A scene is a folder laid out as ``../shared/data/multiview`` documents it:

- ``images/<name>``: the photos;
- ``poses.txt``: ``<name>`` and the 16 numbers of its camera-to-world matrix (row-major, OpenCV's camera axes:
  x right, y down, z forward);
- ``intrinsics.txt``: ``<name>`` and the 9 numbers of its 3x3 camera matrix, for the stored image, with pixel
  centres at integer coordinates;
- ``depth/<stem>.png`` (optional): uint16 z-depth in millimetres, 0 where unknown, the image's size.

Points handed to and returned by this module use the *corner* convention of LoFTR's keypoints (pixel (i, j)
covers [i, i+1) x [j, j+1)); intrinsics are converted where they meet.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .images import decode_file

#: A point's depth seen from the other camera must agree with that camera's depth map within this share, or the
#: point is hidden there (LoFTR's ScanNet supervision uses 0.2; the sensors here are as noisy).
DEPTH_TOLERANCE = 0.1


@dataclass(frozen=True)
class SceneView:
    """One image of a scene and its ground truth."""

    image: Path
    camera_to_world: np.ndarray  # [4, 4]
    intrinsics: np.ndarray  # [3, 3], pixel centres at integers, for the stored image
    depth: Path | None = None


@dataclass(frozen=True)
class ScenePair:
    """Two views of one scene and how much of each the other sees (``overlap``: NaN without depth)."""

    scene: str
    view0: SceneView
    view1: SceneView
    overlap: float = math.nan

    @property
    def relative_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """(R [3, 3], t [3]) with X1 = R @ X0 + t for a point's coordinates in camera 0 and camera 1."""
        transform = np.linalg.inv(self.view1.camera_to_world) @ self.view0.camera_to_world
        return transform[:3, :3], transform[:3, 3]


def _read_table(path: Path, numbers: int) -> dict[str, np.ndarray]:
    table = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        if len(parts) != numbers + 1:
            raise ValueError(f"{path}:{number}: expected a name and {numbers} numbers, got {len(parts) - 1} values")
        table[parts[0]] = np.array([float(value) for value in parts[1:]])
    return table


def has_poses(folder: str | Path) -> bool:
    """Whether a folder is a scene with ground-truth poses and intrinsics."""
    folder = Path(folder)
    return (folder / "poses.txt").is_file() and (folder / "intrinsics.txt").is_file()


def read_scene(folder: str | Path) -> list[SceneView]:
    """The views of a scene folder, sorted by name; ValueError when it has no poses or they do not fit its files."""
    folder = Path(folder)
    if not has_poses(folder):
        raise ValueError(f"{folder} is not a scene with ground truth: it needs poses.txt and intrinsics.txt")
    poses, intrinsics = _read_table(folder / "poses.txt", 16), _read_table(folder / "intrinsics.txt", 9)
    views = []
    for name in sorted(poses):
        if name not in intrinsics:
            raise ValueError(f"{folder}: {name} has a pose but no intrinsics")
        depth = folder / "depth" / (Path(name).stem + ".png")
        views.append(SceneView(folder / "images" / name, poses[name].reshape(4, 4), intrinsics[name].reshape(3, 3),
                               depth if depth.is_file() else None))
    if not views:
        raise ValueError(f"{folder}: poses.txt lists no image")
    return views


def read_depth(path: Path) -> np.ndarray:
    """A depth map in metres (float32, 0 where unknown)."""
    depth = decode_file(path, cv2.IMREAD_UNCHANGED)
    if depth is None or depth.dtype != np.uint16:
        raise ValueError(f"cannot read {path} as a 16-bit depth map in millimetres")
    return depth.astype(np.float32) / 1000.0


def scaled_intrinsics(intrinsics: np.ndarray, scale_x: float, scale_y: float) -> np.ndarray:
    """The camera matrix of an image resized by (scale_x, scale_y), pixel centres staying at integers."""
    scaled = intrinsics.astype(np.float64).copy()
    scaled[0, 0], scaled[0, 1], scaled[1, 1] = intrinsics[0, 0] * scale_x, intrinsics[0, 1] * scale_x, \
        intrinsics[1, 1] * scale_y
    scaled[0, 2] = (intrinsics[0, 2] + 0.5) * scale_x - 0.5
    scaled[1, 2] = (intrinsics[1, 2] + 0.5) * scale_y - 0.5
    return scaled


def _depth_at(depth: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Depth [N] at points [N, 2] (corner convention, nearest pixel); 0 outside the map or where not finite."""
    height, width = depth.shape
    finite = np.isfinite(points).all(1)
    x = np.floor(np.where(finite, points[:, 0], -1)).astype(np.int64)
    y = np.floor(np.where(finite, points[:, 1], -1)).astype(np.int64)
    inside = finite & (x >= 0) & (y >= 0) & (x < width) & (y < height)
    values = np.zeros(len(points), np.float32)
    values[inside] = depth[y[inside], x[inside]]
    return values


def warp_with_depth(points: np.ndarray, depth0: np.ndarray, intrinsics0: np.ndarray, pose: tuple[np.ndarray,
                    np.ndarray], depth1: np.ndarray, intrinsics1: np.ndarray) -> np.ndarray:
    """Where points of image 0 [N, 2] land in image 1 [N, 2] (corner convention), inf where they have no true
    position there: no depth in image 0, behind camera 1, outside image 1, or hidden there (camera 1's depth map
    disagrees by more than ``DEPTH_TOLERANCE``, or has no depth at that pixel).

    pose: (R, t) with X1 = R @ X0 + t (``ScenePair.relative_pose``); depths in the same unit as t.
    """
    points = np.asarray(points, np.float64)
    z0 = _depth_at(depth0, points).astype(np.float64)
    centred = np.concatenate([points - 0.5, np.ones((len(points), 1))], 1)
    rotation, translation = pose
    in_camera1 = (centred @ np.linalg.inv(intrinsics0).T) * z0[:, None] @ rotation.T + translation
    z1 = in_camera1[:, 2]
    projected = in_camera1 @ intrinsics1.T
    with np.errstate(divide="ignore", invalid="ignore"):
        warped = projected[:, :2] / projected[:, 2:] + 0.5
    seen = _depth_at(depth1, np.where(np.isfinite(warped), warped, -1.0)).astype(np.float64)
    with np.errstate(invalid="ignore"):
        visible = (z0 > 0) & (z1 > 1e-6) & (seen > 0) & (np.abs(z1 - seen) <= DEPTH_TOLERANCE * seen)
    return np.where(visible[:, None], warped, np.inf)


@dataclass
class DepthView:
    """A view's image, depth map and camera matrix at one size (a training pair's cached form)."""

    gray: np.ndarray  # uint8 [H, W]
    depth: np.ndarray  # float32 metres [H, W]
    intrinsics: np.ndarray  # [3, 3] for this size


def load_view(view: SceneView, size: tuple[int, int] | None = None) -> DepthView:
    """The view's grayscale image and depth map, resized to ``size`` (width, height) when given."""
    if view.depth is None:
        raise ValueError(f"{view.image} has no depth map")
    gray = decode_file(view.image, cv2.IMREAD_GRAYSCALE)
    if gray is None:
        raise ValueError(f"cannot read image {view.image}")
    depth = read_depth(view.depth)
    if depth.shape != gray.shape:
        raise ValueError(f"{view.depth} is {depth.shape[1]}x{depth.shape[0]}, "
                         f"its image {gray.shape[1]}x{gray.shape[0]}")
    intrinsics = view.intrinsics
    if size is not None and size != (gray.shape[1], gray.shape[0]):
        scale_x, scale_y = size[0] / gray.shape[1], size[1] / gray.shape[0]
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        depth = cv2.resize(depth, size, interpolation=cv2.INTER_NEAREST)  # never blend across depth edges
        intrinsics = scaled_intrinsics(intrinsics, scale_x, scale_y)
    return DepthView(gray, depth, intrinsics)


def grid_points(width: int, height: int, step: int) -> np.ndarray:
    """[N, 2] points every ``step`` pixels (corner convention, row-major), as LoFTR's coarse cells place them."""
    ys, xs = np.meshgrid(np.arange(0, height, step), np.arange(0, width, step), indexing="ij")
    return np.stack([xs, ys], -1).reshape(-1, 2).astype(np.float64)


def covisible_share(view0: DepthView, view1: DepthView, pose: tuple[np.ndarray, np.ndarray], step: int = 16) -> float:
    """Share of image 0's grid points with depth that camera 1 sees (in its frame and not hidden)."""
    points = grid_points(view0.gray.shape[1], view0.gray.shape[0], step)
    has_depth = _depth_at(view0.depth, points) > 0
    if not has_depth.any():
        return 0.0
    warped = warp_with_depth(points[has_depth], view0.depth, view0.intrinsics, pose, view1.depth, view1.intrinsics)
    return float(np.isfinite(warped).all(1).mean())


def rotation_angle_deg(rotation: np.ndarray) -> float:
    """The angle of a rotation matrix about its axis, in degrees."""
    return float(np.degrees(np.arccos(np.clip((np.trace(rotation) - 1) / 2, -1.0, 1.0))))


def scene_pairs(folder: str | Path, overlap: tuple[float, float] = (0.2, 0.8),
                rotation_deg: tuple[float, float] = (5.0, 45.0), size: tuple[int, int] = (160, 120)) -> list[ScenePair]:
    """The pairs of a scene worth matching, in a fixed order.

    With depth: pairs where each view sees between ``overlap`` of the other (the lower of the two shares), as
    LoFTR picks ScanNet pairs. Without: pairs whose cameras turned by ``rotation_deg`` (the only ground truth
    there is). ``size``: the resolution the overlap is measured at (a coarse grid suffices).
    """
    views = read_scene(folder)
    name = Path(folder).name
    with_depth = all(view.depth is not None for view in views)
    loaded = [load_view(view, size) for view in views] if with_depth else []
    pairs = []
    for i in range(len(views)):
        for j in range(i + 1, len(views)):
            pair = ScenePair(name, views[i], views[j])
            rotation, translation = pair.relative_pose
            if not with_depth:
                if rotation_deg[0] <= rotation_angle_deg(rotation) <= rotation_deg[1]:
                    pairs.append(pair)
                continue
            back = (rotation.T, -rotation.T @ translation)
            shared = min(covisible_share(loaded[i], loaded[j], (rotation, translation)),
                         covisible_share(loaded[j], loaded[i], back))
            if overlap[0] <= shared <= overlap[1]:
                pairs.append(ScenePair(name, views[i], views[j], shared))
    return pairs


def spread_sample(pairs: list[ScenePair], count: int, seed: int = 0) -> list[ScenePair]:
    """At most ``count`` of the pairs, drawn without replacement by a fixed seed, kept in their order."""
    if len(pairs) <= count:
        return pairs
    keep = np.sort(np.random.default_rng(seed).choice(len(pairs), count, replace=False))
    return [pairs[index] for index in keep]
