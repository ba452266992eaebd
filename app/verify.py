"""Geometric verification of a frame's matches against the anchor: which of them one homography, one
fundamental matrix or (for a camera whose intrinsics are known) one essential matrix explains (MAGSAC++), for
the view to dim the rest; for a homography, to outline where the anchor (or the region of it the matches come
from) lies in the live frame; for an essential matrix, to say how the camera moved since the anchor."""

from __future__ import annotations

import math
from dataclasses import dataclass

from model.camera import Camera, intrinsic_matrix
from model.geometry import TwoViewGeometry, fit_to_result
from model.matcher import MatchResult, Resize

GEOMETRY_MODES = ("none", "homography", "fundamental", "essential")


def available_modes(has_intrinsics: bool) -> tuple[str, ...]:
    """The modes a user can choose: an essential matrix needs the camera's intrinsics (--calibration,
    --intrinsics or --fov)."""
    return GEOMETRY_MODES if has_intrinsics else tuple(mode for mode in GEOMETRY_MODES if mode != "essential")


def next_mode(mode: str, modes: tuple[str, ...] = GEOMETRY_MODES) -> str:
    """The mode after ``mode`` in ``modes``, wrapping around (the window's key cycles through them)."""
    return modes[(modes.index(mode) + 1) % len(modes)]


def verify_matches(result: MatchResult, mode: str, frame_shape: tuple[int, ...], resize: Resize,
                   camera: Camera | None = None) -> TwoViewGeometry | None:
    """Fit the mode's model to the result's matches (in frame pixels); None for mode 'none'. ``camera``: the
    camera of anchor and frame, in their pixels, for 'essential'."""
    if mode == "none":
        return None
    if mode not in GEOMETRY_MODES:
        raise ValueError(f"unknown geometry mode {mode!r}; choose one of {', '.join(GEOMETRY_MODES)}")
    return fit_to_result(result, mode, frame_shape, resize, camera=camera)


@dataclass(frozen=True)
class CameraIntrinsics:
    """What is known of the camera: a ``calibration`` (--calibration FILE, with its lens distortion, or
    --intrinsics; in the pixels of its frames as they come unless the file says for which size), or only its
    horizontal field of view ``fov_deg`` (--fov; square pixels, the principal point at the centre), which a
    webcam's data sheet gives."""

    calibration: Camera | None = None
    fov_deg: float | None = None

    def for_frames(self, source_shape: tuple[int, ...], shape: tuple[int, ...]) -> Camera:
        """The camera for frames of ``source_shape`` (height, width, ...) as they came, kept at ``shape``;
        ValueError when they have another shape than the calibration's frames."""
        height, width = shape[:2]
        if self.calibration is not None:
            return self.calibration.for_size(width, height, assumed_size=(source_shape[1], source_shape[0]))
        assert self.fov_deg is not None
        focal = width / 2 / math.tan(math.radians(self.fov_deg) / 2)
        return Camera(intrinsic_matrix(focal, focal, width / 2, height / 2), image_size=(width, height))
