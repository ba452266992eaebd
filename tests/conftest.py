"""Shared fixtures. Qt must never try to open a display in tests, so the platform is set before any import."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_VIDEO = ROOT / "assets" / "sample.mp4"


def read_frames(indices: tuple[int, ...]) -> list[np.ndarray]:
    """BGR frames of the bundled sample video."""
    capture = cv2.VideoCapture(str(SAMPLE_VIDEO))
    frames, index = {}, 0
    while len(frames) < len(indices):
        ok, frame = capture.read()
        if not ok:
            break
        if index in indices:
            frames[index] = frame
        index += 1
    capture.release()
    assert len(frames) == len(indices), f"could not read frames {indices} of {SAMPLE_VIDEO}"
    return [frames[i] for i in indices]


@pytest.fixture(scope="session")
def photo_pair() -> tuple[np.ndarray, np.ndarray]:
    """Two real 640x480 BGR frames of the sample video, a camera motion apart."""
    first, second = read_frames((0, 30))
    return first, second


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
