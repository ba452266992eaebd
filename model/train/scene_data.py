"""Training pairs from real scenes with depth and poses, and the mix of them with synthetic homography pairs.

A training item is ``image0``, ``image1`` ([H, W] float32 in [0, 1]) and ``warp0``, ``warp1``: each image's
coarse cell points (``supervision.cell_points``) in the other image's pixels, inf where a point has no true
position there (:func:`model.scenes.warp_with_depth`: no depth, out of view or hidden). The coarse and fine truth
follow from them as from a homography (``supervision.coarse_truth_from_warps``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from ..loftr import COARSE_STRIDE
from ..scenes import DepthView, ScenePair, grid_points, load_view, scene_pairs, warp_with_depth
from .data import HomographyPairs, PhotometricRanges, augmented_tensors
from .supervision import homography_warps

#: Each view sees between these shares of the other (LoFTR's ScanNet pairs: 0.4 to 0.8; lower keeps the wide
#: baselines a live camera reaches).
TRAINING_OVERLAP = (0.15, 0.8)


def depth_item(view0: DepthView, view1: DepthView, pair: ScenePair, swap: bool) -> dict[str, np.ndarray]:
    """A training item from two loaded views (``swap``: view 1 becomes image 0)."""
    rotation, translation = pair.relative_pose
    back = (rotation.T, -rotation.T @ translation)
    first, second, forward, backward = (view1, view0, back, (rotation, translation)) if swap else (
        view0, view1, (rotation, translation), back)
    height, width = first.gray.shape
    points = grid_points(width, height, COARSE_STRIDE)
    return {"image0": first.gray.astype(np.float32) / 255.0, "image1": second.gray.astype(np.float32) / 255.0,
            "warp0": warp_with_depth(points, first.depth, first.intrinsics, forward, second.depth,
                                     second.intrinsics).astype(np.float32),
            "warp1": warp_with_depth(points, second.depth, second.intrinsics, backward, first.depth,
                                     first.intrinsics).astype(np.float32)}


class DepthPairs(IterableDataset):
    """Endless pairs from scenes with depth: a scene drawn uniformly, then one of its pairs, in a random order,
    each image with its own photometric change."""

    def __init__(self, scenes: Sequence[str | Path], out_hw: tuple[int, int], photometric_ranges: PhotometricRanges,
                 seed: int, overlap: tuple[float, float] = TRAINING_OVERLAP) -> None:
        super().__init__()
        self.pairs = [scene_pairs(folder, overlap=overlap) for folder in scenes]
        for folder, pairs in zip(scenes, self.pairs, strict=True):
            if not pairs:
                raise ValueError(f"{folder}: no pair of its views overlaps by {overlap[0]:g} to {overlap[1]:g}; "
                                 "it needs depth maps and views of the same part of the scene")
        self.out_hw, self.photometric_ranges, self.seed = out_hw, photometric_ranges, seed

    def __len__(self) -> int:
        return sum(len(pairs) for pairs in self.pairs)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = get_worker_info()
        cv2.setNumThreads(1)
        rng = np.random.default_rng([self.seed, info.id if info else 0, 7])
        size = (self.out_hw[1], self.out_hw[0])
        cache: dict[Path, DepthView] = {}
        while True:
            pairs = self.pairs[int(rng.integers(len(self.pairs)))]
            pair = pairs[int(rng.integers(len(pairs)))]
            views = [cache.setdefault(view.image, load_view(view, size)) for view in (pair.view0, pair.view1)]
            yield augmented_tensors(rng, depth_item(views[0], views[1], pair, swap=bool(rng.random() < 0.5)),
                                    self.photometric_ranges)


class MixedPairs(IterableDataset):
    """Homography pairs and other streams of warp items (depth pairs, plane scenes) in one stream: each item
    comes from ``others[k]`` with probability ``shares[k]``, else from the homography pairs."""

    def __init__(self, homographies: HomographyPairs, others: Sequence[IterableDataset], shares: Sequence[float],
                 seed: int) -> None:
        super().__init__()
        if len(others) != len(shares) or any(share < 0 for share in shares) or sum(shares) > 1 + 1e-9:
            raise ValueError(f"the shares of the other pair streams must be >= 0 and sum to at most 1, got {shares}")
        self.homographies, self.others, self.shares, self.seed = homographies, list(others), list(shares), seed

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = get_worker_info()
        rng = np.random.default_rng([self.seed, info.id if info else 0, 11])
        homographies, others = iter(self.homographies), [iter(stream) for stream in self.others]
        bounds = np.cumsum(self.shares)
        height, width = self.homographies.out_hw
        hw_c = (height // COARSE_STRIDE, width // COARSE_STRIDE)
        while True:
            chosen = int(np.searchsorted(bounds, rng.random(), side="right"))
            if chosen < len(others):
                yield next(others[chosen])
                continue
            pair = next(homographies)
            warp0, warp1 = homography_warps(pair["homography"][None], pair["valid0"][None], pair["valid1"][None],
                                            hw_c, hw_c)
            yield {"image0": pair["image0"], "image1": pair["image1"], "warp0": warp0[0].float(),
                   "warp1": warp1[0].float()}


def validation_pairs(scenes: Sequence[str | Path], per_scene: int) -> list[ScenePair]:
    """A fixed sample of each held-out scene's pairs (``scene_pairs``'s defaults), for validation during training."""
    from ..scenes import spread_sample

    return [pair for folder in scenes for pair in spread_sample(scene_pairs(folder), per_scene)]


@torch.no_grad()
def validate_pose(model: torch.nn.Module, pairs: list[ScenePair], size: tuple[int, int], precision: str) -> dict[
        str, float]:
    """Relative-pose AUC@5/10/20 (MAGSAC++) of the model at the training ``size`` (W, H) on held-out scene pairs."""
    from ..evaluate import error_auc
    from ..matcher import Matcher
    from ..pose_eval import POSE_THRESHOLDS, estimate_pose_error, read_pair_images

    device = next(model.parameters()).device
    matcher = Matcher(model, device=device, precision=precision, resize=size)
    errors = []
    for pair in pairs:
        image0, image1 = read_pair_images(pair)
        result = matcher.match(image0, image1)
        errors.append(estimate_pose_error(result.keypoints0, result.keypoints1, pair, "magsac"))
    aucs = error_auc(errors, POSE_THRESHOLDS)
    return {"pose_auc@5": aucs[0], "pose_auc@10": aucs[1], "pose_auc@20": aucs[2]}
