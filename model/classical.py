"""OpenCV SIFT and ORB behind the :class:`~model.matcher.Matcher` interface: the classical references LoFTR is
measured against, in the homography benchmark and live in the app (``--model sift``, key ``k``), on the same
frames at the same size.

Matching is nearest neighbour with Lowe's ratio test. Its confidence is ``1 - d1 / d2`` (the best descriptor
distance over the second best), so the matcher's ``threshold`` is the ratio test: the default 0.2 keeps matches
with ``d1 < 0.8 d2``, Lowe's value. ``timings_ms`` reports detection and description as "backbone" and
descriptor matching as "coarse_matching", so the app's latency plot shows them beside LoFTR's stages.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from .matcher import Matcher, MatchLimits, MatchResult, Resize, keeping_aspect, resize_array
from .peers import LightGlueMatcher, lightglue_installed

CLASSICAL_METHODS = ("sift", "orb")
#: The matchers LoFTR is shown beside in the app: the classical ones and DISK + LightGlue (``model.peers``).
REFERENCE_METHODS = (*CLASSICAL_METHODS, "lightglue")
DEFAULT_RATIO_THRESHOLD = 0.2  # 1 - Lowe's ratio 0.8


@dataclass(frozen=True)
class ClassicalFeatures:
    """Keypoints ([N, 2] float32, network pixels, corner convention) and descriptors of one image, with what is
    needed to map matches back to its pixels."""

    keypoints: np.ndarray
    descriptors: np.ndarray | None  # None when no keypoint was found
    image_size: tuple[int, int]  # (height, width) of the caller's image
    network_size: tuple[int, int]  # (height, width) the features were computed at
    method: str

    @property
    def scale_xy(self) -> tuple[float, float]:
        """Caller pixels per feature pixel, (x, y)."""
        return self.image_size[1] / self.network_size[1], self.image_size[0] / self.network_size[0]


class ClassicalMatcher(MatchLimits):
    """SIFT or ORB keypoints matched by nearest neighbour with Lowe's ratio test, as a drop-in for ``Matcher``.

    Args:
        method: "sift" or "orb".
        resize: as ``Matcher``'s: (W, H), longer side, or None; results are in the pixels of the images passed in.
        threshold: minimum ``1 - d1 / d2`` (0.2: Lowe's ratio 0.8); changeable at run time.
        max_matches: keep the most confident ones (None: all).
        max_features: keypoints detected per image.
    """

    device = torch.device("cpu")
    precision = "fp32"  # SIFT's descriptors; ORB's are binary. Named like Matcher's for the app's labels.
    loaded = None  # no weights file

    def __init__(self, method: str = "sift", resize: Resize = None, threshold: float = DEFAULT_RATIO_THRESHOLD,
                 max_matches: int | None = None, max_features: int = 4000) -> None:
        if method not in CLASSICAL_METHODS:
            raise ValueError(f"unknown classical method {method!r}; choose one of {', '.join(CLASSICAL_METHODS)}")
        self.method, self.resize, self.max_features = method, resize, max_features
        self.threshold, self.max_matches = threshold, max_matches
        if method == "sift":
            self._detector = cv2.SIFT_create(nfeatures=max_features)
            self._matcher = cv2.BFMatcher(cv2.NORM_L2)
        else:
            self._detector = cv2.ORB_create(nfeatures=max_features)
            self._matcher = cv2.BFMatcher(cv2.NORM_HAMMING)

    @property
    def name(self) -> str:
        return f"OpenCV {self.method.upper()} ({self.max_features} keypoints, ratio test)"

    def encode(self, image: np.ndarray, keep_aspect: bool = False) -> ClassicalFeatures:
        """Keypoints and descriptors of a uint8 gray or BGR image (``keep_aspect``: see ``Matcher.preprocess``)."""
        resize = keeping_aspect(self.resize) if keep_aspect else self.resize
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        small = resize_array(gray, resize)
        keypoints, descriptors = self._detector.detectAndCompute(small, None)
        # OpenCV keypoints have pixel centres at integers; +0.5 puts them in LoFTR's corner convention.
        points = np.array([k.pt for k in keypoints], np.float32).reshape(-1, 2) + 0.5
        return ClassicalFeatures(points, descriptors if len(keypoints) else None, gray.shape[:2], small.shape[:2],
                                 self.method)

    def match(self, image0: np.ndarray | ClassicalFeatures, image1: np.ndarray | ClassicalFeatures,
              region0: tuple[float, float, float, float] | None = None) -> MatchResult:
        """Match two images (or their features), sorted by confidence, descending; ``region0`` as ``Matcher``'s:
        only keypoints of image 0 inside this box (its pixels) are matched, before ``max_matches``."""
        start = time.perf_counter()
        features = [self._encoded(image) for image in (image0, image1)]
        extracted = time.perf_counter()
        first, second = features
        points0, descriptors0 = first.keypoints * first.scale_xy, first.descriptors
        if region0 is not None and descriptors0 is not None:
            x0, y0, x1, y1 = region0
            inside = (points0[:, 0] >= x0) & (points0[:, 0] < x1) & (points0[:, 1] >= y0) & (points0[:, 1] < y1)
            points0, descriptors0 = points0[inside], descriptors0[inside]
        pairs = np.zeros((0, 2), np.int64)
        confidence = np.zeros(0, np.float32)
        if descriptors0 is not None and len(descriptors0) and second.descriptors is not None \
                and len(second.descriptors) >= 2:
            candidates = [c for c in self._matcher.knnMatch(descriptors0, second.descriptors, k=2) if len(c) == 2]
            if candidates:
                pairs = np.array([(best.queryIdx, best.trainIdx) for best, _ in candidates], np.int64)
                ratio = np.array([best.distance / max(other.distance, 1e-9) for best, other in candidates], np.float32)
                confidence = np.clip(1.0 - ratio, 0.0, 1.0)
        keep = confidence >= self.threshold
        pairs, confidence = pairs[keep], confidence[keep]
        order = np.argsort(-confidence, kind="stable")[: self.max_matches]
        pairs, confidence = pairs[order], confidence[order]
        keypoints1 = second.keypoints[pairs[:, 1]] * second.scale_xy
        done = time.perf_counter()
        return MatchResult(
            keypoints0=np.ascontiguousarray(points0[pairs[:, 0]], np.float32),
            keypoints1=np.ascontiguousarray(keypoints1, np.float32),
            confidence=np.ascontiguousarray(confidence, np.float32),
            fine_std=np.full(len(confidence), np.nan, np.float32),  # no sub-pixel refinement to measure
            timings_ms={"backbone": (extracted - start) * 1000.0, "coarse_matching": (done - extracted) * 1000.0},
        )

    def _encoded(self, image: np.ndarray | ClassicalFeatures) -> ClassicalFeatures:
        if isinstance(image, ClassicalFeatures):
            if image.method != self.method:
                raise ValueError(f"these are {image.method} features; encode the image again for {self.method}")
            return image
        return self.encode(image)


def reference_methods() -> tuple[str, ...]:
    """The REFERENCE_METHODS that can run here (DISK + LightGlue only where its package is installed)."""
    return REFERENCE_METHODS if lightglue_installed() else CLASSICAL_METHODS


#: Any of the matchers: what the app's matching session, inference thread and headless runner take.
AnyMatcher = Matcher | ClassicalMatcher | LightGlueMatcher
