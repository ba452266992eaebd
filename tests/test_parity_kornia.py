"""Numerical parity with kornia's LoFTR on identical random weights saved in the official checkpoint layout."""

from __future__ import annotations

import copy
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from model.checkpoints import load_weights
from model.config import with_matching

kornia_loftr = pytest.importorskip("kornia.feature.loftr.loftr")


def _random_kornia(temp_bug_fix: bool) -> torch.nn.Module:
    config = copy.deepcopy(kornia_loftr.default_cfg)
    config["coarse"]["temp_bug_fix"] = temp_bug_fix
    config["match_coarse"]["thr"] = 0.0
    reference = kornia_loftr.LoFTR(pretrained=None, config=config)
    generator = torch.Generator().manual_seed(1)
    for module in reference.modules():  # non-trivial BN statistics, so a wrong BN would show
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1, generator=generator)
            module.running_var.uniform_(0.5, 1.5, generator=generator)
            module.weight.data.uniform_(0.5, 1.5, generator=generator)
            module.bias.data.uniform_(-0.1, 0.1, generator=generator)
    return reference.eval()


def _gray(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)).double()[None, None] / 255.0


@pytest.mark.parametrize(("temp_bug_fix", "file_name"), [(False, "outdoor_ds.ckpt"), (True, "indoor_ds_new.ckpt")])
def test_same_matches_as_kornia(tmp_path: Path, photo_pair: tuple[np.ndarray, np.ndarray], temp_bug_fix: bool,
                                file_name: str) -> None:
    reference = _random_kornia(temp_bug_fix)
    checkpoint = tmp_path / file_name  # the official Lightning layout: 'matcher.' prefixed keys
    torch.save({"state_dict": {f"matcher.{k}": v for k, v in reference.state_dict().items()}, "epoch": 30},
               checkpoint)
    loaded = load_weights(checkpoint)
    assert loaded.config.name == file_name.removesuffix(".ckpt")
    assert loaded.config.temp_bug_fix is temp_bug_fix
    ours = type(loaded.model)(with_matching(loaded.config, thr=0.0))
    ours.load_state_dict(loaded.model.state_dict(), strict=True)

    image0, image1 = (_gray(image) for image in photo_pair)
    assert image0.shape[2:] == (480, 640)
    # float64 on both sides: the comparison is of the maths, not of float32 rounding order.
    with torch.no_grad():
        expected = reference.double()({"image0": image0, "image1": image1})
        got = ours.eval().double()({"image0": image0, "image1": image1})

    exp_kpts0 = expected["keypoints0"].numpy()
    got_kpts0 = got["mkpts0_f"].numpy()
    assert len(exp_kpts0) > 5  # random weights: few mutual matches have a non-zero dual-softmax score
    exp_order = np.lexsort(exp_kpts0.T)
    got_order = np.lexsort(got_kpts0.T)
    np.testing.assert_array_equal(exp_kpts0[exp_order], got_kpts0[got_order])  # the same match set
    np.testing.assert_allclose(got["mkpts1_f"].numpy()[got_order], expected["keypoints1"].numpy()[exp_order],
                               atol=1e-3, rtol=0)
    np.testing.assert_allclose(got["mconf"].numpy()[got_order], expected["confidence"].numpy()[exp_order],
                               rtol=1e-3, atol=0)
