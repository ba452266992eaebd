"""How right are the teacher's labels? Label a scene that has depth and poses (`python -m model label --scenes
SCENE --out DIR`), then compare each labelled pair's cell truth (model/train/pseudo_labels.py) with the truth from
depth and poses (model/scenes.py), at the training size:

    python tools/pseudo_label_accuracy.py --labels DIR --scene ../shared/data/multiview/7scenes_redkitchen

Prints, over the pairs: the share of cell points the labels cover, the share depth covers, the labels' error
against depth where both say where a cell point lands (training pixels), and how far the teacher's matches lie from
the epipolar lines of the ground-truth poses (which needs no depth; `--focal F` tries another focal length).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model.loftr import COARSE_STRIDE  # noqa: E402
from model.scenes import ScenePair, SceneView, grid_points, load_view, read_scene, warp_with_depth  # noqa: E402
from model.train.pseudo_labels import pseudo_item, read_label  # noqa: E402
from model.train.supervision import coarse_truth_from_warps  # noqa: E402


@dataclass
class PairCheck:
    """One labelled pair against the scene's truth: errors against depth (training pixels) of the cell points both
    place and of the teacher's own matches that depth places; the teacher's matches' Sampson distances (stored
    pixels) to the epipolar geometry of the ground-truth pose (no depth needed); the coarse truth's matches (mutual
    cells) that depth puts in another cell than the labels do, out of those depth places; the shares of cell points
    the labels and depth cover."""

    cells: np.ndarray
    matches: np.ndarray
    epipolar: np.ndarray
    wrong_positives: int
    positives: int
    label_cover: float
    depth_cover: float


def sampson_distances(keypoints0: np.ndarray, keypoints1: np.ndarray, pair: ScenePair) -> np.ndarray:
    """[N] Sampson distances (pixels) of matches (corner convention) to the epipolar geometry of the pair's pose."""
    rotation, translation = pair.relative_pose
    cross = np.array([[0, -translation[2], translation[1]], [translation[2], 0, -translation[0]],
                      [-translation[1], translation[0], 0]])
    fundamental = np.linalg.inv(pair.view1.intrinsics).T @ cross @ rotation @ np.linalg.inv(pair.view0.intrinsics)
    x0, x1 = (np.c_[points - 0.5, np.ones(len(points))] for points in (keypoints0, keypoints1))  # centres at integers
    line1, line0 = x0 @ fundamental.T, x1 @ fundamental
    return np.abs((x1 * line1).sum(1)) / np.sqrt((line1[:, :2] ** 2).sum(1) + (line0[:, :2] ** 2).sum(1))


def check_pair(label: dict[str, np.ndarray], views: dict[str, SceneView], size: tuple[int, int]) -> PairCheck:
    """The labels of one pair against the truth from depth and poses, at ``size`` (W, H)."""
    names = [Path(str(label[f"path{index}"])).name for index in (0, 1)]
    pair = ScenePair("", views[names[0]], views[names[1]])
    loaded = [load_view(view, size) for view in (pair.view0, pair.view1)]

    def by_depth(points: np.ndarray) -> np.ndarray:
        return warp_with_depth(points, loaded[0].depth, loaded[0].intrinsics, pair.relative_pose, loaded[1].depth,
                               loaded[1].intrinsics)

    points = grid_points(size[0], size[1], COARSE_STRIDE)
    depth = by_depth(points)
    item = pseudo_item(label, (size[1], size[0]))
    labelled = item["warp0"].astype(np.float64)
    grid = (size[1] // COARSE_STRIDE, size[0] // COARSE_STRIDE)
    truth = coarse_truth_from_warps(*(torch.from_numpy(item[key])[None] for key in ("warp0", "warp1")), grid, grid)
    true_cell = depth[truth.i_ids.numpy()]
    placed_truth = np.isfinite(true_cell).all(1)
    cell_j = np.stack([truth.j_ids.numpy() % grid[1], truth.j_ids.numpy() // grid[1]], -1) * COARSE_STRIDE
    wrong = np.abs(true_cell[placed_truth] - cell_j[placed_truth]).max(1) > COARSE_STRIDE
    both = np.isfinite(depth).all(1) & np.isfinite(labelled).all(1)
    scale = [np.array(size) / label[f"size{index}"] for index in (0, 1)]
    keypoints0, keypoints1 = label["keypoints0"] * scale[0], label["keypoints1"] * scale[1]
    placed = by_depth(keypoints0)
    seen = np.isfinite(placed).all(1)
    return PairCheck(np.linalg.norm(labelled[both] - depth[both], axis=1),
                     np.linalg.norm(keypoints1[seen] - placed[seen], axis=1),
                     sampson_distances(label["keypoints0"], label["keypoints1"], pair), int(wrong.sum()),
                     int(placed_truth.sum()),
                     float(np.isfinite(labelled).all(1).mean()), float(np.isfinite(depth).all(1).mean()))


def with_focal(intrinsics: np.ndarray, focal: float) -> np.ndarray:
    """The intrinsics with both focal lengths set to ``focal`` (the principal point kept)."""
    changed = intrinsics.copy()
    changed[0, 0] = changed[1, 1] = focal
    return changed


def describe(errors: np.ndarray) -> str:
    return (f"median {np.median(errors):.2f}, mean {errors.mean():.2f}, within 1 px {np.mean(errors <= 1):.3f}, "
            f"within 2 px {np.mean(errors <= 2):.3f}, beyond 4 px {np.mean(errors > 4):.3f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labels", required=True, help="folder of label files")
    parser.add_argument("--scene", required=True, help="the labelled scene's folder (with depth and poses)")
    parser.add_argument("--size", type=int, nargs=2, default=[320, 240], metavar=("W", "H"))
    parser.add_argument("--focal", type=float,
                        help="check with this focal length (stored pixels) in place of the scene's intrinsics")
    args = parser.parse_args()
    views = {view.image.name: view for view in read_scene(args.scene)}
    if args.focal:
        views = {name: replace(view, intrinsics=with_focal(view.intrinsics, args.focal))
                 for name, view in views.items()}
    files = sorted(Path(args.labels).glob(f"{Path(args.scene).name}__*.npz"))
    if not files:
        print(f"error: no labels of {Path(args.scene).name} in {args.labels}", file=sys.stderr)
        return 2
    checks = []
    for path in files:
        checks.append(check_pair(read_label(path), views, tuple(args.size)))
    cells = np.concatenate([check.cells for check in checks])
    matches = np.concatenate([check.matches for check in checks])
    print(f"{len(files)} labelled pairs of {Path(args.scene).name} at {args.size[0]}x{args.size[1]}: labels cover "
          f"{np.mean([check.label_cover for check in checks]):.3f} of the cell points, depth "
          f"{np.mean([check.depth_cover for check in checks]):.3f}; {len(cells)} cell points placed by both")
    print(f"cell labels against depth (px): {describe(cells)}")
    wrong, positives = sum(check.wrong_positives for check in checks), sum(check.positives for check in checks)
    print(f"coarse truth from the labels: {positives} cell matches that depth places, {wrong / max(positives, 1):.3f} "
          "of them more than a cell off")
    epipolar = np.concatenate([check.epipolar for check in checks])
    print(f"the teacher's verified matches against the poses' epipolar geometry (Sampson distance, stored px, "
          f"{len(epipolar)}): {describe(epipolar)}")
    print(f"the teacher's verified matches against depth (px, {len(matches)}): {describe(matches)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
