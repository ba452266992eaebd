"""The refinement of matches on the images (model.refine) and its place in Matcher."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from textures import point_grid, texture, warped

from model.config import get_preset
from model.loftr import LoFTR
from model.matcher import Matcher
from model.refine import (
    REFINED,
    REFINEMENTS,
    UNVERIFIED,
    DetailImage,
    FlowRefinement,
    detail_image,
    refine_keypoints,
    snap_to_corners,
)

REFINEMENT = FlowRefinement()


def _shifted(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    return warped(image, [[1, 0, dx], [0, 1, dy]])


def test_keypoints_move_to_the_true_sub_pixel_position() -> None:
    image0 = texture()
    image1 = _shifted(image0, 2.3, -1.6)
    keypoints0 = point_grid()
    truth = keypoints0 + np.float32([2.3, -1.6])
    # The network's positions: off by up to 1.5 px, as a shrunk network input leaves them.
    noisy = truth + np.random.default_rng(1).uniform(-1.5, 1.5, truth.shape).astype(np.float32)
    details = (DetailImage(image0, (1.0, 1.0)), DetailImage(image1, (1.0, 1.0)))
    same0, refined, verified = refine_keypoints(*details, keypoints0, noisy, network_px=(2.0, 2.0),
                                                refinement=REFINEMENT)
    assert refined.dtype == np.float32 and refined.shape == noisy.shape
    np.testing.assert_array_equal(same0, keypoints0)  # without corners keypoint 0 stays where the network put it
    assert np.abs(noisy - truth).max() > 1.0
    assert np.abs(refined - truth).max() < 0.1
    assert verified.all()


def test_the_network_position_is_kept_where_the_flow_cannot_be_trusted() -> None:
    image0 = texture()
    keypoints0 = point_grid()
    blank = np.full_like(image0, 128)  # nothing to follow
    details = (DetailImage(image0, (1.0, 1.0)), DetailImage(blank, (1.0, 1.0)))
    for mode in REFINED:
        kept0, kept, verified = refine_keypoints(*details, keypoints0, keypoints0 + 1.0, network_px=(2.0, 2.0),
                                                 refinement=REFINEMENT, mode=mode)
        assert not verified.any()
        np.testing.assert_array_equal(kept0, keypoints0)
        np.testing.assert_array_equal(kept, keypoints0 + 1.0)
    # Further than two network pixels from the network's position: not moved (1 caller px per network px here).
    image1 = _shifted(image0, 3.0, 0.0)
    _, far, verified = refine_keypoints(DetailImage(image0, (1.0, 1.0)), DetailImage(image1, (1.0, 1.0)), keypoints0,
                                        keypoints0, network_px=(1.0, 1.0), refinement=REFINEMENT)
    assert not verified.any()
    np.testing.assert_array_equal(far, keypoints0)


def test_images_of_different_sizes_and_scales() -> None:
    image0 = texture(240, 320)
    image1 = _shifted(texture(240, 320), 1.2, 0.7)[:200, :300]  # image 0's content, cropped
    keypoints0 = point_grid(height=200, width=300)
    truth = keypoints0 + np.float32([1.2, 0.7])
    _, refined, _ = refine_keypoints(DetailImage(image0, (1.0, 1.0)), DetailImage(image1, (1.0, 1.0)), keypoints0,
                                     truth + 0.8, network_px=(2.0, 2.0), refinement=REFINEMENT)
    assert np.abs(refined - truth).max() < 0.1
    # Detail images at half the caller's size: keypoints come back in the caller's pixels.
    half = [cv2.resize(image, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA) for image in (image0, image1)]
    _, refined, _ = refine_keypoints(DetailImage(half[0], (2.0, 2.0)), DetailImage(half[1], (2.0, 2.0)), keypoints0,
                                     truth + 1.0, network_px=(4.0, 4.0), refinement=REFINEMENT)
    assert np.abs(refined - truth).max() < 0.3
    empty = np.zeros((0, 2), np.float32)
    for mode in REFINED:
        none0, none1, verified = refine_keypoints(DetailImage(image0, (1.0, 1.0)), DetailImage(image1, (1.0, 1.0)),
                                                  empty, empty, network_px=(2.0, 2.0), refinement=REFINEMENT, mode=mode)
        assert none0.shape == none1.shape == (0, 2) and verified.shape == (0,)
    with pytest.raises(ValueError, match="mode must be one of flow, corners, affine"):
        refine_keypoints(DetailImage(image0, (1.0, 1.0)), DetailImage(image1, (1.0, 1.0)), empty, empty,
                         network_px=(2.0, 2.0), refinement=REFINEMENT, mode="none")


def test_points_snap_to_the_most_corner_like_pixel_of_their_cell() -> None:
    image = np.zeros((64, 64), np.uint8)
    image[20:, 36:] = 255  # one corner, at pixel (36, 20)
    detail = DetailImage(image, (1.0, 1.0))
    points = np.float32([[32, 16], [40, 24], [8, 48]])  # cells of side 8 around each (edges included: -4 ... +4)
    snapped = snap_to_corners(detail, points, half_cell=4)
    assert snapped.dtype == np.float32
    # The two cells around the corner: at it (the measure peaks a little inside the bright quadrant), or as near
    # as their own cell allows; the third cell has no corner and keeps a point of its own cell.
    np.testing.assert_allclose(snapped[:2], [[36, 20], [36, 20]], atol=2.5)
    assert np.all(np.abs(snapped - points) <= 4)  # never out of its own cell
    assert detail.corner_response.shape == image.shape


def test_corners_move_keypoint0_within_its_cell_and_keypoint1_along() -> None:
    image0 = texture()
    image1 = _shifted(image0, 2.3, -1.6)
    keypoints0 = point_grid(step=16)
    truth_shift = np.float32([2.3, -1.6])
    noisy = keypoints0 + truth_shift + np.random.default_rng(2).uniform(-1.5, 1.5, keypoints0.shape).astype(np.float32)
    details = (DetailImage(image0, (1.0, 1.0)), DetailImage(image1, (1.0, 1.0)))
    moved0, refined, _ = refine_keypoints(*details, keypoints0, noisy, network_px=(2.0, 2.0), refinement=REFINEMENT,
                                          mode="corners")
    offsets = moved0 - keypoints0
    # Within the 16-pixel cell (searched around the pixel that holds the keypoint: half a pixel off), and moved.
    assert np.all(np.abs(offsets) <= 8.5) and np.abs(offsets).max() > 2.0
    assert np.abs(refined - moved0 - truth_shift).max() < 0.1


def test_detail_images_are_at_most_twice_the_network_size() -> None:
    frame = cv2.cvtColor(texture(720, 1280), cv2.COLOR_GRAY2BGR)
    detail = detail_image(frame, (240, 320), REFINEMENT)
    assert detail.gray.shape == (480, 640) and detail.gray.dtype == np.uint8
    assert detail.scale_xy == (2.0, 1.5)
    small = detail_image(frame[:300, :400], (240, 320), REFINEMENT)  # smaller than twice: its own size
    assert small.gray.shape == (300, 400) and small.scale_xy == (1.0, 1.0)
    as_tensor = detail_image(torch.from_numpy(frame[..., ::-1].copy()).permute(2, 0, 1), (240, 320), REFINEMENT)
    assert as_tensor.gray.shape == (480, 640)
    assert np.abs(as_tensor.gray.astype(int) - detail.gray.astype(int)).mean() < 2.0
    as_float = detail_image(frame[..., 0].astype(np.float32) / 255.0, (240, 320), REFINEMENT)
    assert np.abs(as_float.gray.astype(int) - detail.gray.astype(int)).max() <= 2


def test_matcher_refines_ours_on_shrunk_frames_not_the_official(photo_pair: tuple[np.ndarray, np.ndarray]) -> None:
    torch.manual_seed(0)
    official = Matcher(LoFTR(get_preset("outdoor_ds")), device="cpu", precision="fp32", resize=(320, 240))
    assert official.refinement == "auto" and official.encode(photo_pair[0]).detail is None  # the paper's results
    matcher = Matcher("weights/loftr_live_xfeat_s.pt", device="cpu", precision="fp32", resize=(320, 240))
    assert matcher.refinement == "auto"
    # Every match kept, so that the refinements' keypoints compare one to one (the next test: the default drops).
    matcher.unverified = "keep"
    refined = matcher.match(*photo_pair)  # 640x480 frames seen at 320x240: refined
    anchor = matcher.encode(photo_pair[0])
    assert anchor.detail is not None and anchor.detail.gray.shape == (480, 640)
    cached = matcher.match(anchor, photo_pair[1])  # the same matches; ties in confidence may come in another order
    order = [np.lexsort(result.keypoints0.T) for result in (cached, refined)]
    # The same to within the affine windows' stopping step of 0.01 pixels (the network's positions differ by 1e-5).
    np.testing.assert_allclose(cached.keypoints1[order[0]], refined.keypoints1[order[1]], atol=0.02)
    results = {}
    for refinement in REFINEMENTS:
        matcher.refinement = refinement
        results[refinement] = matcher.match(*photo_pair)
    plain, flow = results["none"], results["flow"]
    np.testing.assert_array_equal(plain.keypoints0, flow.keypoints0)  # flow: only image 1's keypoints move
    np.testing.assert_array_equal(plain.confidence, refined.confidence)
    assert np.linalg.norm(plain.keypoints1 - flow.keypoints1, axis=1).max() <= 2 * 2 + 1e-3  # two network pixels
    corners = results["corners"]  # keypoint 0 within its 8-pixel cell
    offsets0 = corners.keypoints0 - plain.keypoints0  # (two caller pixels per network pixel, and the search
    assert np.abs(offsets0).max() <= 4 * 2 + 0.5 and np.abs(offsets0).max() > 1.0  # centred on a pixel)
    # image 1's keypoint moves along with it, then by at most two network pixels
    moved1 = np.linalg.norm(corners.keypoints1 - offsets0 - plain.keypoints1, axis=1)
    assert moved1.max() <= 2 * 2 + 1e-3
    # auto here is affine: most matches in affine windows (the camera turned between the frames), keypoint 0 in its
    # cell and keypoint 1 moved from the network's by the offset in image 0 turned and scaled, then two network pixels.
    np.testing.assert_array_equal(refined.keypoints1, results["affine"].keypoints1)
    offsets0 = refined.keypoints0 - plain.keypoints0
    assert np.abs(offsets0).max() <= 4 * 2 + 0.5
    affine = np.any(refined.keypoints1 != corners.keypoints1, axis=1)
    assert affine.any()
    reach = np.linalg.norm(refined.keypoints1 - plain.keypoints1, axis=1)[affine]
    assert np.all(reach <= 1.5 * np.linalg.norm(offsets0[affine], axis=1) + 2 * 2)
    matcher.refinement = "none"
    assert matcher.encode(photo_pair[0]).detail is None  # nothing kept for the refinement when it is off
    with pytest.raises(ValueError, match="refinement must be one of auto, none, flow, corners, affine"):
        matcher.refinement = "lk"


def test_matches_that_fail_the_check_on_the_images_are_dropped(photo_pair: tuple[np.ndarray, np.ndarray]) -> None:
    matcher = Matcher("weights/loftr_live_xfeat_s.pt", device="cpu", precision="fp32", resize=(320, 240),
                      max_matches=300)
    assert matcher.unverified == "auto"  # 640x480 frames seen at 320x240: dropped
    verified = matcher.match(*photo_pair)
    matcher.unverified = "keep"
    every = matcher.match(*photo_pair)
    # The camera turned between the frames: some windows do not hold, and only they go.
    assert matcher.flow_refinement.min_verified <= len(verified) < len(every)
    assert {tuple(row) for row in np.hstack([verified.keypoints0, verified.keypoints1, verified.confidence[:, None]])} \
        <= {tuple(row) for row in np.hstack([every.keypoints0, every.keypoints1, every.confidence[:, None]])}
    assert np.all(np.diff(verified.confidence) <= 0)  # still the most confident first
    # Too few verified (here: fewer than all of them): the frame keeps every match.
    matcher.flow_refinement = FlowRefinement(min_verified=len(every) + 1)
    np.testing.assert_array_equal(matcher.match(*photo_pair).keypoints1, every.keypoints1)
    # At the network's own size auto keeps them (the fine stage is precise there; most do not verify), drop drops.
    matcher.resize, matcher.refinement, matcher.max_matches = (640, 480), "affine", None
    native = {}
    for choice in UNVERIFIED:
        matcher.unverified = choice
        native[choice] = len(matcher.match(*photo_pair))
    assert native["auto"] == native["keep"] > native["drop"], native


def test_kept_matches() -> None:
    verified, every = np.array([True, False, True, True]), [0, 1, 2, 3]
    np.testing.assert_array_equal(FlowRefinement(min_verified=3).kept(verified, shrink=2.0), [0, 2, 3])
    np.testing.assert_array_equal(FlowRefinement(min_verified=4).kept(verified, shrink=2.0), every)  # too few
    np.testing.assert_array_equal(FlowRefinement(min_verified=3).kept(verified, shrink=1.0), every)  # own size
    np.testing.assert_array_equal(FlowRefinement(min_verified=3, unverified="drop").kept(verified, 1.0), [0, 2, 3])
    np.testing.assert_array_equal(FlowRefinement(unverified="keep").kept(verified, shrink=2.0), every)
    with pytest.raises(ValueError, match="unverified must be one of auto, drop, keep"):
        FlowRefinement(unverified="some")


def test_auto_refines_only_frames_the_network_sees_shrunk(photo_pair: tuple[np.ndarray, np.ndarray]) -> None:
    frame = photo_pair[0]
    shifted = _shifted(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), 3.3, -2.6)
    matcher = Matcher("weights/loftr_live_xfeat_s.pt", device="cpu", precision="fp32", resize=(640, 480),
                      max_matches=100)
    matcher.unverified = "keep"  # the same matches in each
    results = {}
    for refinement in ("auto", *REFINEMENTS):
        matcher.refinement = refinement
        results[refinement] = matcher.match(frame, shifted).keypoints1
    np.testing.assert_array_equal(results["auto"], results["none"])  # at the network's own size: as it is
    for asked in REFINED:  # asked for: refined at any size
        assert np.abs(results[asked] - results["none"]).max() > 0.05


def test_the_bundled_model_is_more_precise_with_the_refinement(photo_pair: tuple[np.ndarray, np.ndarray]) -> None:
    frame = photo_pair[0]
    shifted = _shifted(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), 3.3, -2.6)  # truth: every point moves by this
    matcher = Matcher("weights/loftr_live_xfeat_s.pt", device="cpu", precision="fp32", resize=(320, 240),
                      max_matches=300)
    errors = {}
    for refinement in ("none", "auto", "flow"):
        matcher.refinement = refinement
        result = matcher.match(frame, shifted)
        inside = np.all((result.keypoints0 > 16) & (result.keypoints0 < np.array(frame.shape[1::-1]) - 16), 1)
        offsets = result.keypoints1[inside] - result.keypoints0[inside] - np.float32([3.3, -2.6])
        errors[refinement] = float(np.median(np.linalg.norm(offsets, axis=1)))
    assert errors["auto"] < 0.5 * errors["none"] and errors["flow"] < 0.5 * errors["none"], errors
