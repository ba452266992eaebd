"""Teacher-labelled training pairs: labelling (resumable, verified), labels to cell truth, the masked loss."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from model.__main__ import main
from model.peers import PeerMatches
from model.scenes import grid_points
from model.train.data import PhotometricRanges
from model.train.pseudo_labels import (
    AffineSupport,
    LabelSettings,
    PseudoPairs,
    image_pairs,
    label_scenes,
    local_affine_warp,
    pseudo_item,
    read_label,
)
from model.train.supervision import batch_truth, coarse_focal_loss, labelled_entries

AFFINE = np.array([[0.9, -0.2, 14.0], [0.15, 1.05, -6.0]])
SHIFT = np.array([12.0, 8.0])  # the teacher's matches: near surface (x < 160) moved by 2 * SHIFT, far by SHIFT


def _motion(points: np.ndarray) -> np.ndarray:
    return np.where(points[:, :1] < 160, 2 * SHIFT, SHIFT)


def _apply(affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ affine[:, :2].T + affine[:, 2]


def test_a_local_affine_fit_recovers_the_map_near_matches_and_says_nothing_far_from_them() -> None:
    rng = np.random.default_rng(0)
    source = rng.uniform([0, 0], [60, 120], (300, 2))  # matches only in the left part of a 160x120 image
    points = grid_points(160, 120, 8)
    warped = local_affine_warp(points, source, _apply(AFFINE, source), AffineSupport())
    inside = (points >= 8).all(1) & (points[:, 1] <= 112)
    covered = inside & (points[:, 0] <= 50)
    assert np.isfinite(warped[covered]).all()
    np.testing.assert_allclose(warped[covered], _apply(AFFINE, points[covered]), atol=1e-6)
    assert np.isnan(warped[points[:, 0] >= 80]).all()
    assert np.isnan(warped[points[:, 0] == 72]).all()  # matches within reach, but all on one side: no extrapolation


def test_matches_that_disagree_leave_their_cells_unknown() -> None:
    rng = np.random.default_rng(1)
    source = rng.uniform(0, 64, (200, 2))
    target = _apply(AFFINE, source) + rng.normal(0, 6.0, source.shape)  # 6 px of noise: no one affine map
    points = grid_points(64, 64, 8)
    assert np.isnan(local_affine_warp(points, source, target, AffineSupport())).all()
    lenient = AffineSupport(max_residual=20.0)
    assert np.isfinite(local_affine_warp(points, source, target, lenient)).any()


def test_points_on_one_line_do_not_fix_an_affine_map() -> None:
    source = np.stack([np.linspace(0, 64, 40), np.full(40, 32.0)], -1)
    warped = local_affine_warp(grid_points(64, 64, 8), source, source + 3.0, AffineSupport())
    assert np.isnan(warped).all()


def test_only_labelled_rows_and_columns_give_negatives() -> None:
    warp0 = torch.full((1, 4, 2), float("nan"))
    warp0[0, 1] = torch.tensor([8.0, 0.0])
    warp1 = torch.full((1, 5, 2), float("nan"))
    warp1[0, 2] = torch.tensor([8.0, 0.0])
    labelled = labelled_entries({"warp0": warp0, "warp1": warp1})
    assert labelled.shape == (1, 4, 5)
    assert labelled[0, 1].all() and labelled[0, :, 2].all() and int(labelled.sum()) == 5 + 4 - 1
    known = {"warp0": torch.zeros(1, 4, 2), "warp1": torch.full((1, 5, 2), float("inf"))}
    assert labelled_entries(known) is None

    truth = torch.zeros(1, 4, 5, dtype=torch.bool)
    truth[0, 1, 2] = True
    log_conf = torch.full((1, 4, 5), -3.0)
    loss = coarse_focal_loss(log_conf, truth, labelled=labelled)
    unlabelled_confident = log_conf.clone()
    unlabelled_confident[0, 3, 4] = -0.01  # a confident entry where the teacher said nothing
    assert coarse_focal_loss(unlabelled_confident, truth, labelled=labelled) == loss
    assert coarse_focal_loss(unlabelled_confident, truth) > coarse_focal_loss(log_conf, truth)
    everything = torch.ones(1, 4, 5, dtype=torch.bool)
    assert torch.allclose(coarse_focal_loss(log_conf, truth, labelled=everything), coarse_focal_loss(log_conf, truth))


def _scene(folder: Path, count: int = 3) -> list[Path]:
    """A folder of images/ of one textured scene."""
    rng = np.random.default_rng(2)
    texture = cv2.GaussianBlur(rng.integers(0, 255, (240, 320), dtype=np.uint8), (0, 0), 2.0)
    (folder / "images").mkdir(parents=True)
    paths = []
    for index in range(count):
        paths.append(folder / "images" / f"frame{index}.png")
        cv2.imwrite(str(paths[-1]), np.roll(texture, 6 * index, 1))
    return paths


class _TwoDepthsTeacher:
    """Stands for ALIKED + LightGlue: a camera moving sideways past two surfaces (``_motion``), and a few wrong
    matches far off their epipolar lines."""

    calls = 0

    def __init__(self, max_keypoints: int) -> None:
        self.max_keypoints = max_keypoints

    def extract(self, image: np.ndarray) -> dict[str, torch.Tensor]:
        return {}

    def glue(self, features0: dict, features1: dict) -> PeerMatches:
        _TwoDepthsTeacher.calls += 1
        points = grid_points(320, 240, 6) + 3.0
        points = points[(points[:, 0] < 280) & (points[:, 1] < 200)]
        wrong = np.random.default_rng(3).uniform(20, 200, (20, 2))
        across = np.array([-SHIFT[1], SHIFT[0]]) / np.linalg.norm(SHIFT) * 25.0  # 25 px off the epipolar line
        keypoints0 = np.concatenate([points, wrong]).astype(np.float32)
        keypoints1 = np.concatenate([points + _motion(points), wrong + across]).astype(np.float32)
        return PeerMatches(keypoints0, keypoints1, np.ones(len(keypoints0), np.float32))


def test_labelling_keeps_verified_matches_resumes_and_feeds_training_items(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import model.peers

    paths = _scene(tmp_path / "scene")
    assert image_pairs(tmp_path / "scene", 1) == [(paths[0], paths[1]), (paths[1], paths[2])]
    assert image_pairs(tmp_path / "scene", 5, max_images=2) == [(paths[0], paths[1])]
    monkeypatch.setattr(model.peers, "AlikedLightGlue", _TwoDepthsTeacher)
    _TwoDepthsTeacher.calls = 0
    settings = LabelSettings(max_gap=1, min_inliers=50, epipolar_px=1.0)
    assert label_scenes([tmp_path / "scene"], tmp_path / "labels", settings, log=lambda line: None) == (2, 2)
    assert _TwoDepthsTeacher.calls == 2
    assert label_scenes([tmp_path / "scene"], tmp_path / "labels", settings, log=lambda line: None) == (2, 2)
    assert _TwoDepthsTeacher.calls == 2  # resumed: nothing labelled twice
    files = sorted((tmp_path / "labels").glob("*.npz"))
    assert len(files) == 2 and not list((tmp_path / "labels").glob("*.partial"))
    label = read_label(files[0])
    assert Path(str(label["path0"])).resolve() == paths[0].resolve()
    np.testing.assert_allclose(label["keypoints1"] - label["keypoints0"], _motion(label["keypoints0"]),
                               atol=1e-4)  # the wrong matches are gone
    assert len(label["keypoints0"]) >= 1000

    item = pseudo_item(label, (120, 160))  # half size: the motion halves
    points = grid_points(160, 120, 8)
    known = np.isfinite(item["warp0"]).all(1)
    assert known.mean() > 0.5 and np.isnan(item["warp0"][~known]).all()
    np.testing.assert_allclose(item["warp0"][known], points[known] + _motion(points[known] * 2) / 2, atol=1e-3)
    assert np.isnan(item["warp0"][np.abs(points[:, 0] - 80) < 4]).all()  # a fit across both surfaces fails
    batch = {key: torch.from_numpy(value)[None] for key, value in item.items()}
    truth = batch_truth(batch, (15, 20), (15, 20))
    assert len(truth.i_ids) > 50
    assert labelled_entries(batch) is not None

    stream = iter(PseudoPairs(tmp_path / "labels", (120, 160), PhotometricRanges(), seed=0))
    for _ in range(4):
        drawn = next(stream)
        assert drawn["image0"].shape == (120, 160) and drawn["warp1"].shape == (len(points), 2)
        assert drawn["warp0"].isnan().any()


def test_a_tiny_run_mixes_labelled_pairs_into_the_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import model.peers
    from model.train.trainer import TrainSettings, train

    _scene(tmp_path / "scene", count=2)
    photos = tmp_path / "photos"  # the homography pairs' photos (validation draws from them)
    photos.mkdir()
    for index in range(4):
        noise = (np.random.default_rng(index).random((150, 200)) * 255).astype(np.uint8)
        cv2.imwrite(str(photos / f"photo{index}.png"), cv2.GaussianBlur(noise, (0, 0), 1.5))
    monkeypatch.setattr(model.peers, "AlikedLightGlue", _TwoDepthsTeacher)
    label_scenes([tmp_path / "scene"], tmp_path / "labels", LabelSettings(max_gap=1, min_inliers=50),
                 log=lambda line: None)
    settings = TrainSettings(images=str(photos), out=str(tmp_path / "run"), steps=2, batch=2,
                             size=(160, 120), workers=0, log_every=1, eval_every=2, eval_pairs=1,
                             holdout_percent=40.0, precision="fp32", pseudo=str(tmp_path / "labels"), pseudo_share=1.0)
    train(settings)
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert records[-1]["step"] == 2 and np.isfinite(records[-1]["loss"]) and records[-1]["true_matches"] > 0
    assert json.loads((tmp_path / "run" / "settings.json").read_text())["pseudo"] == str(tmp_path / "labels")


@pytest.mark.parametrize(("argv", "message"), [
    (["label", "--scenes", "{missing}", "--out", "{out}"], "is not a folder"),
    (["label", "--scenes", "{scene}", "--out", "{out}", "--max_gap", "0"], "--max_gap is 1 or more"),
    (["label", "--scenes", "{scene}", "--out", "{file}"], "--out "),
])
def test_bad_label_arguments_are_one_line_and_exit_2(tmp_path: Path, argv: list[str], message: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "scene").mkdir()
    (tmp_path / "file.txt").write_text("not a folder")
    names = {"missing": tmp_path / "missing", "out": tmp_path / "labels", "scene": tmp_path / "scene",
             "file": tmp_path / "file.txt"}
    assert main([arg.format(**names) for arg in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err


def test_training_on_an_empty_label_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no labelled pairs"):
        PseudoPairs(tmp_path, (120, 160), PhotometricRanges(), seed=0)


def test_learning_curves_print_each_runs_validations(tmp_path: Path) -> None:
    import subprocess
    import sys

    run = tmp_path / "run"
    run.mkdir()
    records = [{"step": 20, "loss": 1.0}, {"step": 250, "val_auc@3": 0.25, "val_auc@5": 0.5, "val_auc@10": 0.75,
                                           "val_fine_err_px": 1.5, "val_pose_auc@5": 0.125}]
    (run / "log.jsonl").write_text("\n".join(json.dumps(record) for record in records) + "\n")
    tool = Path(__file__).resolve().parents[1] / "tools" / "learning_curves.py"
    done = subprocess.run([sys.executable, str(tool), str(run)], capture_output=True, text=True, check=True)
    assert "(1 validations)" in done.stdout and "| 250 | 0.250 | 0.500 | 0.750 | 1.500 | 0.125 |" in done.stdout
    missing = subprocess.run([sys.executable, str(tool), str(tmp_path)], capture_output=True, text=True)
    assert missing.returncode == 2 and missing.stderr.startswith("error: ") and missing.stderr.count("\n") == 1
