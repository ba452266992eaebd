"""Synthetic plane scenes: rendering with a depth buffer, exact truth with occlusion, and their training items."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from model.scenes import grid_points, warp_with_depth
from model.train.plane_scenes import (
    Camera,
    Plane,
    SceneSampler,
    plane_item,
    relative_pose,
    render,
    texture_coordinates,
)

HW = (120, 160)
FOCAL = 100.0


def _camera(centre: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> Camera:
    intrinsics = np.array([[FOCAL, 0, (HW[1] - 1) / 2], [0, FOCAL, (HW[0] - 1) / 2], [0, 0, 1]])
    return Camera(intrinsics, np.eye(3), -np.asarray(centre, np.float64))


def _texture(seed: int, shape: tuple[int, int] = (64, 64)) -> np.ndarray:
    noise = np.random.default_rng(seed).random(shape).astype(np.float32)
    return cv2.GaussianBlur(noise, (0, 0), 2.0)


def _facing(depth: float, half: float, seed: int, repeats: float = 1.0) -> Plane:
    """A square facing the cameras at ``depth``, ``half`` metres either side of the axis."""
    return Plane(np.array([-half, -half, depth]), np.array([2 * half, 0, 0]), np.array([0, 2 * half, 0]),
                 _texture(seed), 1.0, repeats)


def test_a_plane_facing_the_camera_has_its_distance_as_depth_and_maps_texture_corners_to_its_corners() -> None:
    plane = _facing(4.0, 1.0, seed=0)
    view = render([plane], _camera(), HW)
    drawn = view.depth > 0
    assert np.allclose(view.depth[drawn], 4.0, atol=1e-4)
    # 2 m wide at 4 m with a 100 px focal length: 50 px across, centred.
    assert abs(int(drawn[HW[0] // 2].sum()) - 50) <= 1 and abs(int(drawn[:, HW[1] // 2].sum()) - 50) <= 1
    coordinates = texture_coordinates(plane, _camera(), HW)
    row = coordinates[HW[0] // 2][drawn[HW[0] // 2]]
    assert row[0, 0] < 1.5 and row[-1, 0] > 62.5  # the texture spans the drawn square


def test_the_nearer_plane_wins_and_hides_what_is_behind_it_in_the_truth() -> None:
    wall, card = _facing(6.0, 5.0, seed=1, repeats=4.0), _facing(2.0, 0.3, seed=2)
    cameras = (_camera(), _camera((0.8, 0.0, 0.0)))
    views = [render([wall, card], camera, HW) for camera in cameras]
    centre = (HW[0] // 2, HW[1] // 2)
    assert abs(views[0].depth[centre] - 2.0) < 1e-4 and abs(views[0].depth[0, 0] - 6.0) < 0.1
    points = grid_points(HW[1], HW[0], 8)
    warp = warp_with_depth(points, views[0].depth, cameras[0].intrinsics, relative_pose(*cameras),
                           views[1].depth, cameras[1].intrinsics)
    seen = np.isfinite(warp).all(1)
    depth_at = views[0].depth[points[:, 1].astype(int), points[:, 0].astype(int)]
    # The card moves 40 px and the wall 13 px: wall points the card covers in view 1 have no true match.
    card_shift = (warp[seen & (depth_at < 3), 0] - points[seen & (depth_at < 3), 0])
    wall_shift = (warp[seen & (depth_at > 5), 0] - points[seen & (depth_at > 5), 0])
    assert np.allclose(card_shift, -40, atol=0.6) and np.allclose(wall_shift, -FOCAL * 0.8 / 6, atol=0.6)
    assert (~seen & (depth_at > 5)).sum() > 0
    # What the truth pairs shows the same texture in both views.
    a = views[0].image[points[seen, 1].astype(int), points[seen, 0].astype(int)]
    b = views[1].image[np.floor(warp[seen, 1]).astype(int), np.floor(warp[seen, 0]).astype(int)]
    assert np.median(np.abs(a - b)) < 0.3 * np.median(np.abs(a - np.roll(b, 7)))


def test_sampled_scenes_give_consistent_items_with_enough_overlap(tmp_path: Path) -> None:
    for index in range(3):
        noise = (np.random.default_rng(index).random((200, 260)) * 255).astype(np.uint8)
        cv2.imwrite(str(tmp_path / f"photo{index}.png"), cv2.GaussianBlur(noise, (0, 0), 1.5))
    sampler = SceneSampler(sorted(tmp_path.glob("*.png")), HW, np.random.default_rng(0))
    items = [item for item in (plane_item(sampler, None) for _ in range(6)) if item is not None]
    assert items
    points = grid_points(HW[1], HW[0], 8)
    for item in items:
        assert item["image0"].shape == HW and item["warp0"].shape == (len(points), 2)
        seen = np.isfinite(item["warp0"]).all(1)
        assert seen.mean() >= 0.15
        a = item["image0"][points[seen, 1].astype(int), points[seen, 0].astype(int)]
        inside = np.clip(np.floor(item["warp0"][seen]).astype(int), 0, [HW[1] - 1, HW[0] - 1])
        b = item["image1"][inside[:, 1], inside[:, 0]]
        assert np.median(np.abs(a - b)) < 0.5 * np.median(np.abs(a - np.roll(b, 7)))


def test_a_tiny_run_mixes_plane_scenes_into_the_batches(tmp_path: Path) -> None:
    from model.train.trainer import TrainSettings, train

    photos = tmp_path / "photos"
    photos.mkdir()
    for index in range(4):
        noise = (np.random.default_rng(index).random((150, 200)) * 255).astype(np.uint8)
        cv2.imwrite(str(photos / f"photo{index}.png"), cv2.GaussianBlur(noise, (0, 0), 1.5))
    settings = TrainSettings(images=str(photos), out=str(tmp_path / "run"), steps=2, batch=2, size=(160, 120),
                             workers=0, log_every=1, eval_every=2, eval_pairs=1, holdout_percent=40.0,
                             precision="fp32", plane_share=1.0)
    train(settings)
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert records[-1]["step"] == 2 and np.isfinite(records[-1]["loss"])
    saved = json.loads((tmp_path / "run" / "settings.json").read_text())
    assert saved["plane_share"] == 1.0
