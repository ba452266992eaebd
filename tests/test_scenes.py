"""Real-scene ground truth: depth warps, pair selection, the pose benchmark's error, and depth training items."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from model.geometry import fit_geometry
from model.pose_eval import estimate_pose_error, pose_error_deg
from model.scenes import (
    ScenePair,
    covisible_share,
    grid_points,
    load_view,
    read_scene,
    rotation_angle_deg,
    scaled_intrinsics,
    scene_pairs,
    warp_with_depth,
)
from model.train.data import PhotometricRanges
from model.train.scene_data import DepthPairs, depth_item
from model.train.supervision import coarse_truth_from_warps

FOCAL, WIDTH, HEIGHT, PLANE_DEPTH = 100.0, 160, 120, 2.0
#: Camera positions along x (metres): 0.16 m moves the plane by 8 px (one coarse cell), 0.96 m by 48 px.
POSITIONS = (0.0, 0.16, 0.96)


def _camera(width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    return np.array([[FOCAL, 0, (width - 1) / 2], [0, FOCAL, (height - 1) / 2], [0, 0, 1]])


def _rotation_y(degrees: float) -> np.ndarray:
    angle = np.radians(degrees)
    return np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])


def _plane_scene(folder: Path) -> Path:
    """Three cameras looking at a textured wall 2 m away, sliding along x: images, poses, intrinsics, depth."""
    texture = cv2.GaussianBlur(np.random.default_rng(0).integers(0, 256, (HEIGHT, 400)).astype(np.uint8), (5, 5), 0)
    for sub in ("images", "depth"):
        (folder / sub).mkdir(parents=True)
    poses, intrinsics = [], []
    for index, position in enumerate(POSITIONS):
        name = f"view{index}.png"
        shift = int(round(position * FOCAL / PLANE_DEPTH))
        cv2.imwrite(str(folder / "images" / name), texture[:, shift:shift + WIDTH])
        cv2.imwrite(str(folder / "depth" / name), np.full((HEIGHT, WIDTH), PLANE_DEPTH * 1000, np.uint16))
        camera_to_world = np.eye(4)
        camera_to_world[0, 3] = position
        poses.append(name + " " + " ".join(f"{v:.6f}" for v in camera_to_world.ravel()))
        intrinsics.append(name + " " + " ".join(f"{v:.6f}" for v in _camera().ravel()))
    (folder / "poses.txt").write_text("\n".join(poses) + "\n")
    (folder / "intrinsics.txt").write_text("\n".join(intrinsics) + "\n")
    return folder


def test_a_scene_reads_its_views_and_relative_poses(tmp_path: Path) -> None:
    views = read_scene(_plane_scene(tmp_path / "wall"))
    assert [view.image.name for view in views] == ["view0.png", "view1.png", "view2.png"]
    assert all(view.depth is not None for view in views)
    rotation, translation = ScenePair("wall", views[0], views[2]).relative_pose
    assert np.allclose(rotation, np.eye(3)) and np.allclose(translation, [-0.96, 0, 0])


def test_a_folder_without_poses_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="poses.txt"):
        read_scene(tmp_path)


def test_depth_warp_of_a_plane_is_its_homography() -> None:
    camera0, camera1 = _camera(), _camera(200, 150)
    rotation, translation = _rotation_y(8.0), np.array([0.3, -0.1, 0.2])
    depth0 = np.full((HEIGHT, WIDTH), PLANE_DEPTH, np.float32)
    # The same plane (z = 2 in camera 0) seen from camera 1: n1 . X1 = d1 with n1 = R n0, d1 = d0 + n1 . t.
    normal1 = rotation @ np.array([0.0, 0.0, 1.0])
    distance1 = PLANE_DEPTH + normal1 @ translation
    centres = grid_points(200, 150, 1)
    rays = np.concatenate([centres, np.ones((len(centres), 1))], 1) @ np.linalg.inv(camera1).T
    depth1 = (distance1 / (rays @ normal1)).reshape(150, 200).astype(np.float32)

    points = grid_points(WIDTH, HEIGHT, 8) + 0.5
    warped = warp_with_depth(points, depth0, camera0, (rotation, translation), depth1, camera1)
    homography = camera1 @ (rotation + np.outer(translation, [0, 0, 1]) / PLANE_DEPTH) @ np.linalg.inv(camera0)
    expected = cv2.perspectiveTransform((points - 0.5)[None], homography)[0] + 0.5
    seen = np.isfinite(warped).all(1)
    inside = (expected >= 0).all(1) & (expected[:, 0] < 200) & (expected[:, 1] < 150)
    assert seen.sum() > 100 and np.array_equal(seen, inside)
    assert np.abs(warped[seen] - expected[seen]).max() < 0.02  # only depth's float32 rounding


def test_hidden_and_unknown_points_have_no_true_position() -> None:
    camera = _camera()
    pose = (np.eye(3), np.array([-0.16, 0.0, 0.0]))
    depth = np.full((HEIGHT, WIDTH), PLANE_DEPTH, np.float32)
    points = grid_points(WIDTH, HEIGHT, 8) + 0.5
    occluder = np.full_like(depth, 1.0)  # something 1 m away in front of the wall in camera 1
    assert not np.isfinite(warp_with_depth(points, depth, camera, pose, occluder, camera)).any()
    assert not np.isfinite(warp_with_depth(points, np.zeros_like(depth), camera, pose, depth, camera)).any()
    visible = warp_with_depth(points, depth, camera, pose, depth, camera)
    assert np.isfinite(visible).all(1).mean() > 0.9


def test_resized_views_warp_consistently(tmp_path: Path) -> None:
    views = read_scene(_plane_scene(tmp_path / "wall"))
    pose = ScenePair("wall", views[0], views[2]).relative_pose
    full, half = (load_view(view) for view in views[::2]), (load_view(view, (80, 60)) for view in views[::2])
    full0, full2 = full
    half0, half2 = half
    points = grid_points(WIDTH, HEIGHT, 16) + 8.0
    at_full = warp_with_depth(points, full0.depth, full0.intrinsics, pose, full2.depth, full2.intrinsics)
    at_half = warp_with_depth(points / 2, half0.depth, half0.intrinsics, pose, half2.depth, half2.intrinsics)
    seen = np.isfinite(at_full).all(1) & np.isfinite(at_half).all(1)
    assert seen.sum() > 20
    assert np.allclose(at_half[seen] * 2, at_full[seen], atol=1e-6)
    assert np.allclose(scaled_intrinsics(_camera(), 0.5, 0.5), half0.intrinsics)


def test_pairs_are_picked_by_how_much_each_view_sees_of_the_other(tmp_path: Path) -> None:
    folder = _plane_scene(tmp_path / "wall")
    pairs = scene_pairs(folder, overlap=(0.2, 0.8), size=(WIDTH, HEIGHT))
    # view0-view1 overlap by 95% (too alike); the others by 70% and 75%.
    assert [(pair.view0.image.name, pair.view1.image.name) for pair in pairs] == [
        ("view0.png", "view2.png"), ("view1.png", "view2.png")]
    assert pairs[0].overlap == pytest.approx(1 - 48 / WIDTH, abs=0.05)
    views = [load_view(view) for view in read_scene(folder)]
    assert covisible_share(views[0], views[0], (np.eye(3), np.zeros(3))) == 1.0


def test_pose_error_ignores_the_translation_sign_and_measures_rotation() -> None:
    rotation, translation = _rotation_y(10.0), np.array([1.0, 0.0, 0.2])
    assert pose_error_deg(rotation, translation, rotation, translation) == pytest.approx(0.0, abs=1e-6)
    assert pose_error_deg(rotation, -translation, rotation, translation) == pytest.approx(0.0, abs=1e-6)
    assert pose_error_deg(_rotation_y(13.0), translation, rotation, translation) == pytest.approx(3.0, abs=1e-6)
    assert rotation_angle_deg(_rotation_y(-25.0)) == pytest.approx(25.0)


def test_exact_matches_give_the_true_pose(tmp_path: Path) -> None:
    views = read_scene(_plane_scene(tmp_path / "wall"))
    rotation, translation = _rotation_y(6.0), np.array([0.4, 0.05, 0.1])
    camera_to_world = np.eye(4)
    camera_to_world[:3, :3], camera_to_world[:3, 3] = rotation.T, -rotation.T @ translation
    moved = type(views[0])(views[1].image, camera_to_world, views[0].intrinsics)
    pair = ScenePair("points", views[0], moved)
    assert np.allclose(pair.relative_pose[0], rotation) and np.allclose(pair.relative_pose[1], translation)
    rng = np.random.default_rng(1)
    world = np.stack([rng.uniform(-1.5, 1.5, 300), rng.uniform(-1, 1, 300), rng.uniform(2, 6, 300)], 1)
    camera = views[0].intrinsics
    project = lambda points: (points @ camera.T)[:, :2] / points[:, 2:] + 0.5  # noqa: E731
    points0, points1 = project(world), project(world @ rotation.T + translation)
    for estimator in ("ransac", "magsac"):
        assert estimate_pose_error(points0, points1, pair, estimator) < 0.5
    assert estimate_pose_error(points0[:3], points1[:3], pair, "ransac") == float("inf")


def test_opencv_assertions_in_a_fit_count_as_a_failed_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args, **kwargs):
        raise cv2.error("solvePoly: degenerate sample")

    points0 = np.random.default_rng(0).uniform(0, 100, (50, 2))
    points1 = points0 + [5.0, 1.0]
    for name, model in (("findEssentialMat", "essential"), ("findHomography", "homography"),
                        ("findFundamentalMat", "fundamental")):
        monkeypatch.setattr(cv2, name, broken)
        fit = fit_geometry(points0, points1, model, 1.0, "magsac", camera=_camera())
        assert fit.matrix is None and not fit.inliers.any()


def test_a_depth_item_gives_the_cells_the_camera_moved(tmp_path: Path) -> None:
    views = read_scene(_plane_scene(tmp_path / "wall"))
    pair = ScenePair("wall", views[0], views[2])
    loaded = [load_view(view) for view in (pair.view0, pair.view1)]
    item = depth_item(loaded[0], loaded[1], pair, swap=False)
    assert item["image0"].shape == (HEIGHT, WIDTH) and item["warp0"].shape == ((HEIGHT // 8) * (WIDTH // 8), 2)
    grid = (HEIGHT // 8, WIDTH // 8)
    truth = coarse_truth_from_warps(torch.from_numpy(item["warp0"])[None].double(),
                                    torch.from_numpy(item["warp1"])[None].double(), grid, grid)
    # The wall moves 48 px = 6 cells left from view 0 to view 2: cell (x, y) matches (x - 6, y) where x >= 6.
    assert len(truth.i_ids) == grid[0] * (grid[1] - 6)
    assert torch.equal(truth.j_ids, truth.i_ids - 6)
    swapped = depth_item(loaded[0], loaded[1], pair, swap=True)
    assert np.array_equal(swapped["image0"], item["image1"])


def test_depth_pairs_stream_items_from_their_scenes(tmp_path: Path) -> None:
    folder = _plane_scene(tmp_path / "wall")
    pairs = DepthPairs([folder], (HEIGHT, WIDTH), PhotometricRanges(), seed=0)
    assert len(pairs) == 2
    item = next(iter(pairs))
    assert set(item) == {"image0", "image1", "warp0", "warp1"}
    assert item["image0"].dtype == torch.float32 and np.isfinite(item["warp0"].numpy()).any()
    with pytest.raises(ValueError, match="overlaps"):
        DepthPairs([folder], (HEIGHT, WIDTH), PhotometricRanges(), seed=0, overlap=(0.99, 1.0))


def test_a_tiny_run_mixes_depth_pairs_and_scores_held_out_poses(tmp_path: Path) -> None:
    from model.train.trainer import TrainSettings, train

    photos = tmp_path / "photos"
    photos.mkdir()
    for index in range(4):
        noise = np.random.default_rng(index).integers(0, 255, (120, 160), dtype=np.uint8)
        cv2.imwrite(str(photos / f"photo{index}.png"), cv2.GaussianBlur(noise, (0, 0), 1.5))
    folder = _plane_scene(tmp_path / "wall")
    settings = TrainSettings(images=str(photos), out=str(tmp_path / "run"), steps=2, batch=2, size=(WIDTH, HEIGHT),
                             workers=0, log_every=1, eval_every=2, eval_pairs=1, holdout_percent=40.0,
                             precision="fp32", scenes=(str(folder),), depth_share=0.5, val_scenes=(str(folder),),
                             val_pairs_per_scene=2)
    train(settings)
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [record["step"] for record in records] == [0, 2]  # the starting point, then the end
    assert all(0.0 <= record["val_pose_auc@20"] <= 1.0 for record in records)


def test_eval_scores_poses_on_scenes_against_the_references(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    from model.__main__ import main
    from model.checkpoints import save_weights
    from model.config import get_preset
    from model.loftr import LoFTR

    save_weights(tmp_path / "w.pt", LoFTR(get_preset("compact_s")))
    folder = _plane_scene(tmp_path / "wall")
    arguments = ["eval", "--weights", str(tmp_path / "w.pt"), "--pairs", "0", "--scenes", str(folder),
                 "--no_xfeat", "--no_lightglue", "--precision", "fp32", "--resize", "160", "120"]
    assert main([*arguments, "--compare", str(tmp_path / "w.pt")]) == 0
    out = capsys.readouterr().out
    assert "pose benchmark: 2 pairs from 1 real scenes (wall)" in out and "AUC@20" in out
    assert "homography benchmark" not in out
    assert out.count("ours - compare, ") == 2 and out.count("ours - OpenCV SIFT, ") == 2
    assert main(arguments[:5]) == 2
    assert "--pairs is 0 or more (0 needs --scenes)" in capsys.readouterr().err
    assert main([*arguments[:6], str(tmp_path)]) == 2
    assert "--scenes:" in capsys.readouterr().err
