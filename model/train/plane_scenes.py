"""Synthetic 3D training pairs: scenes of textured planes at several depths, seen from two cameras.

A homography pair shows one plane; real camera motion shows parallax, occlusion and out-of-plane rotation.
Each scene here is a far back wall, often a floor, and a few cards (boxes' faces, pictures, occluders) at
random depths and tilts, each textured with a training photo. Two pinhole cameras with known intrinsics and
relative pose render it with a depth buffer, so every pixel has an exact depth and the truth follows from
:func:`model.scenes.warp_with_depth`, with occlusion, exactly as for real scenes with depth.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from ..loftr import COARSE_STRIDE
from ..scenes import grid_points, warp_with_depth
from .data import PhotometricRanges, photometric, read_gray

#: Rendered pairs whose views share less than this (grid points of image 0 seen in image 1) are drawn again.
MIN_OVERLAP = 0.15


@dataclass(frozen=True)
class Plane:
    """A textured rectangle: corner ``origin`` and edge vectors ``u_axis`` (texture width) and ``v_axis``
    (texture height), world coordinates in metres, and its grayscale texture in [0, 1]."""

    origin: np.ndarray  # [3]
    u_axis: np.ndarray  # [3]
    v_axis: np.ndarray  # [3]
    texture: np.ndarray  # float32 [h, w]
    gain: float  # its brightness (shading)
    repeats: float = 1.0  # texture tiles along each edge (mirrored), so that large planes keep fine detail


@dataclass(frozen=True)
class Camera:
    """A pinhole camera: X_camera = rotation @ X_world + translation, pixels = intrinsics @ X_camera (pixel
    centres at integers, as OpenCV's warps and ``warp_with_depth`` use them)."""

    intrinsics: np.ndarray  # [3, 3]
    rotation: np.ndarray  # [3, 3]
    translation: np.ndarray  # [3]


@dataclass(frozen=True)
class View:
    """A rendered view: image in [0, 1] and depth in metres (0 where nothing was drawn)."""

    image: np.ndarray  # float32 [H, W]
    depth: np.ndarray  # float32 [H, W]


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Rotation from angles in radians about the y, x and z axes (applied in that order)."""
    cy, sy, cp, sp, cr, sr = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
    about_y = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    about_x = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    about_z = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return about_z @ about_x @ about_y


def _look_at(centre: np.ndarray, target: np.ndarray, roll: float) -> np.ndarray:
    """World-to-camera rotation of a camera at ``centre`` whose optical axis points at ``target`` (y down)."""
    forward = (target - centre) / np.linalg.norm(target - centre)
    right = np.cross(np.array([0.0, 1.0, 0.0]), forward)
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    rotation = np.stack([right, down, forward])
    return _rotation(0.0, 0.0, roll) @ rotation


def plane_depth(plane: Plane, camera: Camera, hw: tuple[int, int]) -> np.ndarray:
    """Depth [H, W] of the plane's infinite extension along each pixel's ray (inf where the ray misses it)."""
    normal = camera.rotation @ np.cross(plane.u_axis, plane.v_axis)
    distance = float(normal @ (camera.rotation @ plane.origin + camera.translation))
    ys, xs = np.mgrid[0:hw[0], 0:hw[1]].astype(np.float64)
    rays = np.stack([xs, ys, np.ones_like(xs)], -1) @ np.linalg.inv(camera.intrinsics).T
    with np.errstate(divide="ignore"):
        depth = distance / (rays @ normal)
    return np.where(depth > 0, depth, np.inf).astype(np.float32)


def texture_coordinates(plane: Plane, camera: Camera, hw: tuple[int, int]) -> np.ndarray:
    """Where each pixel's ray meets the plane, in texture pixels [H, W, 2] (pixel centres at integers; the
    texture repeats ``plane.repeats`` times along each edge)."""
    height, width = plane.texture.shape
    scale = np.array([plane.repeats * width, plane.repeats * height, 1.0])
    columns = np.stack([camera.rotation @ plane.u_axis, camera.rotation @ plane.v_axis,
                        camera.rotation @ plane.origin + camera.translation], 1)
    to_texture = np.diag(scale) @ np.linalg.inv(camera.intrinsics @ columns)
    ys, xs = np.mgrid[0:hw[0], 0:hw[1]].astype(np.float64)
    mapped = np.stack([xs, ys, np.ones_like(xs)], -1) @ to_texture.T
    with np.errstate(divide="ignore", invalid="ignore"):
        return mapped[..., :2] / mapped[..., 2:] - 0.5


def _sample_mipmapped(texture: np.ndarray, coordinates: np.ndarray) -> np.ndarray:
    """The texture at [H, W, 2] coordinates, each pixel from the pyramid level that matches how many texels it
    covers (a camera's optics blur what they shrink; plain bilinear sampling would alias)."""
    finite = np.isfinite(coordinates).all(-1)
    coordinates = np.where(finite[..., None], coordinates, -1e6).astype(np.float32)
    du, dv = np.gradient(coordinates[..., 0]), np.gradient(coordinates[..., 1])
    footprint = np.sqrt(np.abs(du[1] * dv[0] - du[0] * dv[1]))
    level = np.clip(np.floor(np.log2(np.maximum(footprint, 1e-6))), 0, 4).astype(np.int64)
    out = np.zeros(coordinates.shape[:2], np.float32)
    level_texture = texture
    for index in range(5):
        chosen = level == index
        if chosen.any():
            scaled = coordinates / 2 ** index + (0.5 / 2 ** index - 0.5)
            out[chosen] = cv2.remap(level_texture, scaled[..., 0], scaled[..., 1], cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_REFLECT_101)[chosen]
        if min(level_texture.shape) >= 4:
            level_texture = cv2.pyrDown(level_texture)
    return out


def render(planes: list[Plane], camera: Camera, hw: tuple[int, int]) -> View:
    """The planes drawn with a depth buffer: the nearest plane wins each pixel."""
    image = np.zeros(hw, np.float32)
    depth = np.full(hw, np.inf, np.float32)
    for plane in planes:
        coordinates = texture_coordinates(plane, camera, hw)
        height, width = plane.texture.shape
        with np.errstate(invalid="ignore"):
            inside = ((coordinates[..., 0] >= -0.5) & (coordinates[..., 0] < plane.repeats * width - 0.5)
                      & (coordinates[..., 1] >= -0.5) & (coordinates[..., 1] < plane.repeats * height - 0.5))
        plane_z = plane_depth(plane, camera, hw)
        nearer = inside & (plane_z < depth)
        if nearer.any():
            image[nearer] = _sample_mipmapped(plane.texture, coordinates)[nearer] * plane.gain
            depth[nearer] = plane_z[nearer]
    return View(np.clip(image, 0, 1), np.where(np.isfinite(depth), depth, 0).astype(np.float32))


class SceneSampler:
    """Random plane scenes and camera pairs; textures are crops of the given photos."""

    def __init__(self, files: list[Path], out_hw: tuple[int, int], rng: np.random.Generator) -> None:
        self.files, self.out_hw, self.rng = files, out_hw, rng

    def _texture(self, aspect: float | None = None) -> np.ndarray:
        while True:
            photo = read_gray(self.files[int(self.rng.integers(len(self.files)))])
            if min(photo.shape) >= 64:
                break
        height, width = photo.shape
        if aspect is not None:  # a crop of the wanted width / height
            crop_w = min(width, int(height * aspect))
            crop_h = min(height, int(crop_w / aspect))
            x, y = self.rng.integers(0, width - crop_w + 1), self.rng.integers(0, height - crop_h + 1)
            photo = photo[y:y + crop_h, x:x + crop_w]
        return photo.astype(np.float32) / 255.0

    def _plane(self, centre: np.ndarray, size: tuple[float, float], rotation: np.ndarray,
               texel: float | None = None) -> Plane:
        """A plane of ``size`` (metres) about ``centre``; ``texel``: the texture repeats so that one texel is
        about that many metres wide (None: one copy of the texture)."""
        u_axis, v_axis = rotation @ np.array([size[0], 0, 0]), rotation @ np.array([0, size[1], 0])
        texture = self._texture(size[0] / size[1])
        repeats = 1.0 if texel is None else max(1.0, size[0] / (texture.shape[1] * texel))
        return Plane(centre - 0.5 * u_axis - 0.5 * v_axis, u_axis, v_axis, texture,
                     float(self.rng.uniform(0.6, 1.2)), repeats)

    def planes(self, focal: float) -> list[Plane]:
        """A back wall, usually a floor, and two to six cards in front of camera 0 (at the origin, looking +z).
        The wall and floor repeat their texture so that a texel spans about one pixel where they are seen."""
        rng, (height, width) = self.rng, self.out_hw
        far = rng.uniform(6, 15)
        wall_tilt = _rotation(rng.uniform(-0.4, 0.4), rng.uniform(-0.3, 0.3), 0.0)
        planes = [self._plane(np.array([0, 0, far]), (4.0 * far, 3.0 * far), wall_tilt,
                              texel=rng.uniform(0.5, 2.0) * far / focal)]
        if rng.random() < 0.6:
            floor_y, length = rng.uniform(1.0, 2.0), far
            floor = _rotation(rng.uniform(-0.3, 0.3), np.pi / 2, 0.0)
            planes.append(self._plane(np.array([0, floor_y, length / 2]), (3.0 * far, length), floor,
                                      texel=rng.uniform(0.5, 2.0) * 0.4 * far / focal))
        for _ in range(int(rng.integers(2, 7))):
            z = rng.uniform(1.5, 0.7 * far)
            x, y = (rng.uniform(0, width) - width / 2) * z / focal, (rng.uniform(0, height) - height / 2) * z / focal
            side = rng.uniform(0.15, 0.6) * z * min(width, height) / focal
            aspect = rng.uniform(0.6, 1.6)
            tilt = _rotation(rng.uniform(-1.0, 1.0), rng.uniform(-0.8, 0.8), rng.uniform(-0.5, 0.5))
            planes.append(self._plane(np.array([x, y, z]), (side * aspect, side), tilt))
        return planes

    def cameras(self, focal: float) -> tuple[Camera, Camera]:
        """Camera 0 at the origin; camera 1 moved sideways and forward or back, turned to look at a point of
        camera 0's view, rolled, and sometimes zoomed."""
        rng, (height, width) = self.rng, self.out_hw
        principal = np.array([(width - 1) / 2, (height - 1) / 2])
        intrinsics0 = np.array([[focal, 0, principal[0]], [0, focal, principal[1]], [0, 0, 1]])
        target = np.array([rng.uniform(-0.3, 0.3), rng.uniform(-0.2, 0.2), 1.0]) * rng.uniform(2.0, 6.0)
        direction = rng.normal(size=3) * np.array([1.0, 0.4, 0.6])
        centre = direction / np.linalg.norm(direction) * rng.uniform(0.1, 0.6) * target[2]
        rotation = _look_at(centre, target, rng.uniform(-0.6, 0.6))
        zoom = rng.uniform(0.7, 1.4) if rng.random() < 0.3 else 1.0
        intrinsics1 = intrinsics0 * np.array([[zoom, 1, 1], [1, zoom, 1], [1, 1, 1]])
        return (Camera(intrinsics0, np.eye(3), np.zeros(3)),
                Camera(intrinsics1, rotation, -rotation @ centre))


def relative_pose(camera0: Camera, camera1: Camera) -> tuple[np.ndarray, np.ndarray]:
    """(R, t) with X1 = R @ X0 + t, from camera 0's to camera 1's coordinates."""
    rotation = camera1.rotation @ camera0.rotation.T
    return rotation, camera1.translation - rotation @ camera0.translation


def plane_item(sampler: SceneSampler, ranges: PhotometricRanges | None) -> dict[str, np.ndarray] | None:
    """One training item (as ``scene_data.depth_item``), or None when the views overlap too little."""
    rng, (height, width) = sampler.rng, sampler.out_hw
    focal = width * rng.uniform(0.6, 1.2)
    planes = sampler.planes(focal)
    camera0, camera1 = sampler.cameras(focal)
    views = [render(planes, camera, sampler.out_hw) for camera in (camera0, camera1)]
    forward = relative_pose(camera0, camera1)
    backward = relative_pose(camera1, camera0)
    points = grid_points(width, height, COARSE_STRIDE)
    warp0 = warp_with_depth(points, views[0].depth, camera0.intrinsics, forward, views[1].depth, camera1.intrinsics)
    if np.isfinite(warp0).all(1).mean() < MIN_OVERLAP:
        return None
    warp1 = warp_with_depth(points, views[1].depth, camera1.intrinsics, backward, views[0].depth, camera0.intrinsics)
    images = []
    for view in views:
        image = cv2.GaussianBlur(view.image, (0, 0), rng.uniform(0.3, 0.8))  # soften the drawn plane edges
        images.append(photometric(rng, image, ranges) if ranges is not None else image)
    return {"image0": images[0], "image1": images[1], "warp0": warp0.astype(np.float32),
            "warp1": warp1.astype(np.float32)}


class PlanePairs(IterableDataset):
    """Endless plane-scene pairs from a list of photos; each worker has its own random stream."""

    def __init__(self, files: list[Path], out_hw: tuple[int, int], photometric_ranges: PhotometricRanges,
                 seed: int) -> None:
        super().__init__()
        self.files, self.out_hw, self.photometric_ranges, self.seed = files, out_hw, photometric_ranges, seed

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = get_worker_info()
        cv2.setNumThreads(1)
        sampler = SceneSampler(self.files, self.out_hw, np.random.default_rng([self.seed, info.id if info else 0, 13]))
        while True:
            item = plane_item(sampler, self.photometric_ranges)
            if item is not None:
                yield {key: torch.from_numpy(np.ascontiguousarray(value)) for key, value in item.items()}
