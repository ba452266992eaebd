"""Training pieces: ground truth from known homographies, the losses, and a tiny run that learns."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from model.checkpoints import load_weights, save_weights
from model.config import get_preset
from model.loftr import LoFTR
from model.train.data import PhotometricRanges, WarpRanges, list_images, make_pair, split_images
from model.train.supervision import coarse_focal_loss, coarse_truth, fine_l2_std_loss, fine_truth
from model.train.trainer import (
    TrainSettings,
    damp_fine_projections,
    in_fine_path,
    train,
    training_losses,
    transfer_weights,
)


def _truth(homography: np.ndarray, size: tuple[int, int] = (48, 64)):
    valid = torch.ones(1, *size, dtype=torch.bool)
    grid = (size[0] // 8, size[1] // 8)
    return coarse_truth(torch.from_numpy(homography)[None], valid, valid, grid, grid)


def test_identity_maps_every_cell_to_itself() -> None:
    truth = _truth(np.eye(3))
    assert len(truth.i_ids) == 48
    assert torch.equal(truth.i_ids, truth.j_ids)
    offsets = fine_truth(truth, truth.b_ids, truth.i_ids, truth.j_ids, 8, 5)
    assert torch.allclose(offsets, torch.zeros_like(offsets))


def test_translation_shifts_cells_and_fine_offsets() -> None:
    shift = np.array([[1, 0, 8 + 2], [0, 1, 0], [0, 0, 1]], dtype=np.float64)  # one cell plus 2 px right
    truth = _truth(shift)
    assert torch.equal(truth.j_ids, truth.i_ids + 1)
    assert len(truth.i_ids) == 6 * 7  # the last column leaves the image
    offsets = fine_truth(truth, truth.b_ids, truth.i_ids, truth.j_ids, 8, 5)
    assert torch.allclose(offsets, torch.tensor([[0.5, 0.0]]).expand_as(offsets))  # 2 px = half the window radius


def test_invalid_content_is_excluded() -> None:
    valid0 = torch.ones(1, 48, 64, dtype=torch.bool)
    valid1 = valid0.clone()
    valid1[:, :, 32:] = False  # right half of image 1 is padding
    truth = coarse_truth(torch.eye(3, dtype=torch.float64)[None], valid0, valid1, (6, 8), (6, 8))
    assert torch.all(truth.j_ids % 8 < 4)


def test_generated_pairs_are_related_by_their_homography() -> None:
    rng = np.random.default_rng(5)
    photo = cv2.GaussianBlur(rng.integers(0, 255, (400, 500), dtype=np.uint8), (0, 0), 2.0)
    pair = make_pair(rng, photo, (120, 160), WarpRanges(), None)
    to_center = np.array([[1, 0, -0.5], [0, 1, -0.5], [0, 0, 1]])
    homography = to_center @ pair["homography"] @ np.linalg.inv(to_center)
    warped = cv2.warpPerspective(pair["image0"], homography, (160, 120))
    inside = cv2.warpPerspective(pair["valid0"].astype(np.float32), homography, (160, 120)) > 0.99
    inside &= pair["valid1"]
    assert inside.sum() > 2000
    assert np.abs(warped - pair["image1"])[inside].mean() < 0.02
    assert np.abs(warped - pair["image1"])[inside].mean() < 0.2 * np.abs(pair["image1"][inside] - 0.5).mean()


def test_losses_prefer_the_truth() -> None:
    truth = torch.zeros(1, 4, 4, dtype=torch.bool)
    truth[0, 1, 2] = True
    good = torch.full((1, 4, 4), -8.0)
    good[0, 1, 2] = -0.01
    bad = torch.full((1, 4, 4), -8.0)
    bad[0, 1, 3] = -0.01
    assert coarse_focal_loss(good, truth) < coarse_focal_loss(bad, truth)
    target = torch.tensor([[0.5, -0.25], [2.0, 0.0]])  # the second is outside the window: ignored
    exact = torch.tensor([[0.5, -0.25, 0.1], [0.0, 0.0, 0.1]])
    assert fine_l2_std_loss(exact, target) == 0


def _photos(folder: Path, count: int = 3) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir()
    for index in range(count):
        noise = rng.integers(0, 255, (180, 240), dtype=np.uint8)
        image = cv2.GaussianBlur(noise, (0, 0), 1.5)
        cv2.rectangle(image, (40 + 10 * index, 30), (120, 90 + 5 * index), 255, -1)
        cv2.imwrite(str(folder / f"photo{index}.png"), image)


def test_loss_drops_on_a_fixed_batch(tmp_path: Path) -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    _photos(tmp_path / "photos")
    pairs = [make_pair(rng, cv2.imread(str(tmp_path / "photos" / f"photo{i}.png"), 0), (96, 128),
                       WarpRanges(max_rotation_deg=10, max_scale=1.2), PhotometricRanges()) for i in range(2)]
    batch = {key: torch.stack([torch.from_numpy(pair[key]) for pair in pairs]) for key in pairs[0]}
    model = LoFTR(get_preset("compact_s")).train()
    damp_fine_projections(model)
    settings = TrainSettings(images="", out="", precision="fp32")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    losses = []
    for step in range(12):
        loss = training_losses(model, batch, settings, step, generator)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]


def test_tiny_run_checkpoints_and_resumes(tmp_path: Path) -> None:
    _photos(tmp_path / "photos", count=6)
    settings = TrainSettings(images=str(tmp_path / "photos"), out=str(tmp_path / "run"), steps=3, batch=1,
                             size=(128, 96), workers=0, log_every=1, eval_every=3, eval_pairs=2,
                             holdout_percent=40.0, precision="fp32")
    best = train(settings)
    assert best.exists() and (tmp_path / "run" / "last.pt").exists()
    resumed = TrainSettings(**{**settings.__dict__, "steps": 5})
    train(resumed, resume=True)
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert state["step"] == 5


def test_include_patterns_select_a_domain_and_keep_the_split(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for folder, scene in (("indoor", "kitchen"), ("outdoor", "coast")):
        (tmp_path / folder).mkdir()
        for index in range(30):
            cv2.imwrite(str(tmp_path / folder / f"{scene}_{index}.png"), (rng.random((8, 8)) * 255).astype(np.uint8))
    every = list_images(tmp_path)
    indoor = list_images(tmp_path, ["indoor/*", "nothing/*"])
    assert len(every) == 60 and len(indoor) == 30 and all(p.parent.name == "indoor" for p in indoor)
    # A photo held out of the whole folder stays held out of any subset: no domain model trains on it.
    held_all = set(split_images(every, tmp_path, 20.0)[1])
    held_indoor = set(split_images(indoor, tmp_path, 20.0)[1])
    assert held_indoor == {p for p in held_all if p.parent.name == "indoor"}
    with pytest.raises(ValueError, match="no images below .* match"):
        list_images(tmp_path, ["*.jpg"])


def test_weights_move_to_another_preset_by_name_and_layer_kind() -> None:
    torch.manual_seed(0)
    source, target = LoFTR(get_preset("xfeat_s")), LoFTR(get_preset("xfeat_lite"))
    fresh = transfer_weights(source, target)
    assert fresh == []  # xfeat_lite is xfeat_s less the fine self layer
    # The lite model's only fine layer (a cross layer) starts from xfeat_s's fine cross layer, not its self layer.
    assert torch.equal(target.loftr_fine.layers[0].q_proj.weight, source.loftr_fine.layers[1].q_proj.weight)
    assert torch.equal(target.loftr_coarse.layers[3].mlp[0].weight, source.loftr_coarse.layers[3].mlp[0].weight)
    assert len(transfer_weights(LoFTR(get_preset("compact_s")), LoFTR(get_preset("xfeat_lite")))) > 0


def test_fine_path_trains_alone_from_another_preset(tmp_path: Path) -> None:
    """--init with xfeat_s weights, --preset xfeat_lite, --freeze_coarse: everything the coarse matches
    depend on (weights and BatchNorm statistics) stays as it was, the fine path moves."""
    _photos(tmp_path / "photos", count=6)
    torch.manual_seed(0)
    save_weights(tmp_path / "xfeat_s.pt", LoFTR(get_preset("xfeat_s")))
    init = load_weights(tmp_path / "xfeat_s.pt").model.state_dict()  # fp16-rounded, as the run will see it
    settings = TrainSettings(images=str(tmp_path / "photos"), out=str(tmp_path / "run"), preset="xfeat_lite",
                             init=str(tmp_path / "xfeat_s.pt"), freeze_coarse=True, steps=3, batch=2,
                             size=(128, 96), workers=0, eval_every=3, eval_pairs=2, holdout_percent=40.0,
                             precision="fp32", lr=1e-2, warmup=1)
    train(settings)
    trained = load_weights(tmp_path / "run" / "last_weights.pt")
    assert trained.config.name == "xfeat_lite"
    model, state = trained.model, trained.model.state_dict()
    for key, value in state.items():
        if not in_fine_path(key, model):
            assert torch.equal(value, init[key]), f"{key} changed although the coarse path is frozen"
    moved = {key.split(".")[0] + "." + key.split(".")[1] for key in state
             if in_fine_path(key, model) and not torch.equal(state[key], init[key.replace("layers.0", "layers.1")])}
    assert {"backbone.fine_out", "fine_preprocess.merge_feat", "loftr_fine.layers"} <= moved


def test_freezing_needs_weights_to_start_from(tmp_path: Path) -> None:
    settings = TrainSettings(images=str(tmp_path), out=str(tmp_path / "run"), freeze_coarse=True)
    with pytest.raises(ValueError, match="--freeze_coarse"):
        train(settings)


def test_frozen_batchnorm_statistics_stay_while_weights_move(tmp_path: Path) -> None:
    """--freeze_bn: every BatchNorm's running statistics stay those of --init; the weights still train."""
    _photos(tmp_path / "photos", count=6)
    torch.manual_seed(0)
    save_weights(tmp_path / "init.pt", LoFTR(get_preset("compact_s")))
    init = load_weights(tmp_path / "init.pt").model.state_dict()
    settings = TrainSettings(images=str(tmp_path / "photos"), out=str(tmp_path / "run"), init=str(tmp_path / "init.pt"),
                             freeze_bn=True, steps=2, batch=2, size=(128, 96), workers=0, eval_every=2,
                             eval_pairs=2, holdout_percent=40.0, precision="fp32", lr=1e-2, warmup=1)
    train(settings)
    state = load_weights(tmp_path / "run" / "last_weights.pt").model.state_dict()
    statistics = [key for key in state if key.endswith(("running_mean", "running_var"))]
    assert statistics and all(torch.equal(state[key], init[key]) for key in statistics)
    assert not torch.equal(state["backbone.conv1.weight"], init["backbone.conv1.weight"])


def test_photometric_ranges_are_checked(tmp_path: Path) -> None:
    settings = TrainSettings(images=str(tmp_path), out=str(tmp_path / "run"),
                             photometric=PhotometricRanges(blur_probability=1.5))
    with pytest.raises(ValueError, match="blur_probability"):
        train(settings)
