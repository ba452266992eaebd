"""Reading image files (model/images.py): every depth and channel layout OpenCV decodes becomes 8-bit BGR."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from model.images import as_bgr_uint8, read_image

RNG = np.random.default_rng(0)
BGR = RNG.integers(0, 256, (24, 32, 3), dtype=np.uint8)


@pytest.mark.parametrize(("name", "stored"), [
    ("plain.png", BGR),
    ("deep.png", BGR.astype(np.uint16) * 257),  # 16 bits: the same picture
    ("alpha.png", np.dstack([BGR, np.full(BGR.shape[:2], 90, np.uint8)])),
    ("unit_float.tiff", BGR.astype(np.float32) / 255),  # OpenCV's 8-bit colour read refuses 32-bit float TIFFs
    ("byte_float.tiff", BGR.astype(np.float32)),
])
def test_colour_files_come_back_as_the_same_bgr_picture(tmp_path: Path, name: str, stored: np.ndarray) -> None:
    path = tmp_path / name
    assert cv2.imwrite(str(path), stored)
    image = read_image(path)
    assert image is not None and image.dtype == np.uint8 and image.shape == BGR.shape
    np.testing.assert_array_equal(image, BGR)


def test_grey_files_become_three_equal_channels(tmp_path: Path) -> None:
    grey = BGR[:, :, 1]
    assert cv2.imwrite(str(tmp_path / "grey.tiff"), grey.astype(np.float32) / 255)
    image = read_image(tmp_path / "grey.tiff")
    assert image is not None and image.shape == BGR.shape
    for channel in range(3):
        np.testing.assert_array_equal(image[:, :, channel], grey)


def test_missing_and_broken_files_are_none(tmp_path: Path) -> None:
    (tmp_path / "broken.png").write_bytes(b"not an image")
    assert read_image(tmp_path / "missing.png") is None
    assert read_image(tmp_path / "broken.png") is None


def test_conversion_clips_floats_and_drops_alpha() -> None:
    hdr = np.array([[-1.0, 0.5, 2.0, np.nan]], np.float32)  # not in [0, 1]: taken as 0..255
    np.testing.assert_array_equal(as_bgr_uint8(hdr)[0, :, 0], [0, 1, 2, 0])
    grey_alpha = np.dstack([np.full((2, 2), 7, np.uint8), np.zeros((2, 2), np.uint8)])
    assert (as_bgr_uint8(grey_alpha) == 7).all()
    with pytest.raises(ValueError, match="unsupported image shape"):
        as_bgr_uint8(np.zeros((2, 2, 5), np.uint8))
