"""OpenCV SIFT and ORB behind the Matcher interface (model/classical.py)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from model.classical import ClassicalMatcher

# A known motion of the camera: a little rotation, zoom and shift (image 0 pixels -> image 1 pixels).
HOMOGRAPHY = np.array([[0.95, -0.08, 30.0], [0.07, 0.97, 10.0], [0.0, 0.0, 1.0]])


def _warped_pair(photo_pair: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    image = photo_pair[0]
    return image, cv2.warpPerspective(image, HOMOGRAPHY, (image.shape[1], image.shape[0]), flags=cv2.INTER_LINEAR)


def _errors(keypoints0: np.ndarray, keypoints1: np.ndarray) -> np.ndarray:
    """Distance of each match from the truth, in image 1 pixels (keypoints: corner convention)."""
    projected = cv2.perspectiveTransform((keypoints0 - 0.5).reshape(-1, 1, 2).astype(np.float64), HOMOGRAPHY)
    return np.linalg.norm(projected.reshape(-1, 2) + 0.5 - keypoints1, axis=1)


@pytest.mark.parametrize(("method", "median_px"), [("sift", 1.0), ("orb", 2.0)])
@pytest.mark.parametrize("resize", [None, (320, 240)])
def test_matches_follow_a_known_homography_in_the_callers_pixels(
        photo_pair: tuple[np.ndarray, np.ndarray], method: str, median_px: float,
        resize: tuple[int, int] | None) -> None:
    image0, image1 = _warped_pair(photo_pair)
    result = ClassicalMatcher(method, resize=resize).match(image0, image1)
    assert len(result) >= 50
    errors = _errors(result.keypoints0, result.keypoints1)
    scale = 1 if resize is None else 2  # found at half the size: half the precision, in these pixels
    assert np.median(errors) < median_px * scale and np.mean(errors < 5 * scale) > 0.8
    assert result.keypoints1[:, 0].max() > 400  # in the 640x480 images' pixels, whatever size was used
    assert np.all(np.diff(result.confidence) <= 0) and np.all(result.confidence >= 0.2)  # sorted; ratio 0.8
    assert np.isnan(result.fine_std).all() and set(result.timings_ms) == {"backbone", "coarse_matching"}


def test_threshold_is_the_ratio_test_and_the_cap_keeps_the_most_confident(
        photo_pair: tuple[np.ndarray, np.ndarray]) -> None:
    image0, image1 = _warped_pair(photo_pair)
    matcher = ClassicalMatcher("sift")
    loose = matcher.match(image0, image1)
    matcher.threshold = 0.5  # ratio 0.5
    strict = matcher.match(image0, image1)
    assert 0 < len(strict) < len(loose) and strict.confidence.min() >= 0.5
    assert np.median(_errors(strict.keypoints0, strict.keypoints1)) <= np.median(
        _errors(loose.keypoints0, loose.keypoints1)) + 0.1  # a stricter ratio keeps the more distinctive matches
    matcher.max_matches = 20
    capped = matcher.match(image0, image1)
    np.testing.assert_array_equal(capped.confidence, strict.confidence[:20])
    with pytest.raises(ValueError, match="threshold"):
        matcher.threshold = 1.5


def test_cached_features_region_and_blank_images(photo_pair: tuple[np.ndarray, np.ndarray]) -> None:
    image0, image1 = _warped_pair(photo_pair)
    matcher = ClassicalMatcher("orb", resize=(320, 240))
    anchor = matcher.encode(image0)
    direct, cached = matcher.match(image0, image1), matcher.match(anchor, image1)
    np.testing.assert_array_equal(direct.keypoints0, cached.keypoints0)
    np.testing.assert_array_equal(direct.keypoints1, cached.keypoints1)
    box = (0.0, 0.0, 320.0, 240.0)  # the top left quarter of image 0
    inside = matcher.match(anchor, image1, region0=box).keypoints0
    assert len(inside) > 0 and np.all((inside[:, 0] < 320) & (inside[:, 1] < 240))
    blank = np.full_like(image0, 128)
    assert len(matcher.match(blank, image1)) == 0 and len(matcher.match(anchor, blank)) == 0
    with pytest.raises(ValueError, match="sift features"):
        matcher.match(ClassicalMatcher("sift").encode(image0), image1)
    with pytest.raises(ValueError, match="unknown classical method"):
        ClassicalMatcher("surf")
