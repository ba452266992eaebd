"""The matching session shared by the window's inference thread and the headless runner (app/session.py)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from app.packet_view import render_packet
from app.render import ViewSettings
from app.session import AnchorRule, MatchSession, SessionSetup, fit_for_display
from app.settings import MatchSettings
from app.sources import Frame
from model.config import get_preset
from model.loftr import LoFTR
from model.matcher import Matcher


def _matcher(seed: int = 0) -> Matcher:
    torch.manual_seed(seed)
    matcher = Matcher(LoFTR(get_preset("compact_s")), device="cpu", precision="fp32", resize=None, threshold=0.0)
    matcher.unverified = "keep"  # random weights: their matches seldom verify on the images
    return matcher


def _frames(photo_pair: tuple[np.ndarray, np.ndarray]) -> list[Frame]:
    return [Frame(cv2.resize(image, (160, 120), interpolation=cv2.INTER_AREA), index)
            for index, image in enumerate(photo_pair)]


def test_first_frame_is_the_anchor_and_packets_carry_what_the_view_needs(
        photo_pair: tuple[np.ndarray, np.ndarray]) -> None:
    first, second = _frames(photo_pair)
    session = MatchSession(_matcher(), MatchSettings("homography"))
    packet = session.process(first)
    assert packet.anchor is first.image and packet.anchor_label == "#0"
    packet = session.process(second)
    assert packet.anchor is first.image and packet.frame_index == 1 and len(packet.result) > 0
    assert packet.geometry is not None and len(packet.geometry.inliers) == len(packet.result)
    assert 0 < packet.latency_ms <= packet.frame_age_ms and packet.geometry_ms > 0
    view = render_packet(packet, ViewSettings(), "test model", "cpu/fp32")
    assert view.shape == (480, 4 * 160 * 2 + 10, 3)  # 160x120 frames drawn at 4x


def test_inliers_only_keeps_the_matches_the_fit_agrees_with(photo_pair: tuple[np.ndarray, np.ndarray]) -> None:
    first, second = _frames(photo_pair)
    session = MatchSession(_matcher(), MatchSettings("homography"))
    session.process(first)
    everything = session.process(second)
    assert everything.geometry is not None and 0 < everything.geometry.num_inliers < len(everything.result)
    session.apply(MatchSettings("homography", inliers_only=True))
    kept = session.process(second, again=True)
    assert kept.geometry is not None and kept.geometry.inliers.all()
    assert len(kept.result) == kept.geometry.num_inliers == everything.geometry.num_inliers


def test_region_is_applied_and_forgotten_with_a_new_anchor(photo_pair: tuple[np.ndarray, np.ndarray]) -> None:
    first, second = _frames(photo_pair)
    session = MatchSession(_matcher())
    session.set_anchor(first.image, 0, "poster.png")
    session.region = (40.0, 30.0, 120.0, 90.0)
    packet = session.process(second)
    points = packet.result.keypoints0
    assert packet.anchor_label == "poster.png" and packet.region == session.region
    assert ((points[:, 0] >= 40) & (points[:, 0] < 120) & (points[:, 1] >= 30) & (points[:, 1] < 90)).all()
    session.set_anchor(second.image, 1)
    assert session.region is None and session.process(second).anchor_label == "#1"


def test_an_anchor_region_in_fractions_applies_to_every_anchor(
        photo_pair: tuple[np.ndarray, np.ndarray]) -> None:
    first, second = _frames(photo_pair)
    session = MatchSession(_matcher(), setup=SessionSetup((0.25, 0.5, 0.75, 1.0)))
    assert session.process(first).region == (40.0, 60.0, 120.0, 120.0)  # of a 160x120 anchor
    session.region = None  # e.g. a right click in the window
    assert session.process(second).region is None
    session.set_anchor(np.zeros((240, 320, 3), np.uint8), 5)
    assert session.region == (80.0, 120.0, 240.0, 240.0)


def test_a_new_matcher_encodes_the_anchor_again(photo_pair: tuple[np.ndarray, np.ndarray]) -> None:
    first, second = _frames(photo_pair)
    session = MatchSession(_matcher(0))
    session.process(first)
    other = _matcher(1)
    session.set_matcher(other)
    assert session.anchor is not None and session.anchor.model_token == id(other.model)
    assert len(session.process(second).result) > 0  # features of the old model would be refused


def test_a_blank_frame_gives_an_empty_packet_that_still_draws() -> None:
    blank = Frame(np.full((120, 160, 3), 128, np.uint8), 0)
    matcher = _matcher()
    matcher.threshold = 0.2
    session = MatchSession(matcher, MatchSettings("homography"), SessionSetup((0.0, 0.0, 0.5, 0.5)))
    packet = session.process(blank)
    assert len(packet.result) == 0 and packet.geometry is not None and packet.geometry.matrix is None
    view = render_packet(packet, ViewSettings(), "test model", "cpu/fp32")
    assert view.shape == (480, 1290, 3)
    assert set(packet.arrays()) >= {"keypoints0", "inliers", "region"} and "matrix" not in packet.arrays()


def test_every_nth_frame_after_an_anchor_becomes_the_anchor(photo_pair: tuple[np.ndarray, np.ndarray]) -> None:
    image = cv2.resize(photo_pair[0], (64, 48), interpolation=cv2.INTER_AREA)
    session = MatchSession(_matcher(), setup=SessionSetup(anchor_rule=AnchorRule(every=3)))
    anchors = [session.process(Frame(image, index)).anchor_index for index in range(5)]
    assert anchors == [0, 0, 0, 3, 3]
    session.set_anchor(image, 5)  # a new anchor (n in the window) starts the count again
    anchors = [session.process(Frame(image, index)).anchor_index for index in range(5, 9)]
    assert anchors == [5, 5, 5, 8]


def test_a_frame_matched_again_is_not_a_new_frame(photo_pair: tuple[np.ndarray, np.ndarray]) -> None:
    """A setting changed while paused matches the frame on screen again: the anchor rules and the frame rate leave
    that out, and the new setting applies."""
    first, second = _frames(photo_pair)
    session = MatchSession(_matcher(), setup=SessionSetup(anchor_rule=AnchorRule(every=2)))
    session.process(first)
    packet = session.process(second)
    session.matcher.threshold = 0.5
    again = session.process(second, again=True)
    assert again.again and not packet.again and again.anchor_index == 0  # not counted: frame 1 is not due
    assert again.fps == packet.fps  # the rate of new frames, not of the repeat
    assert again.threshold == 0.5 and len(again.result) <= len(packet.result)
    assert bool(np.all(again.result.confidence >= 0.5))
    assert session.process(second).anchor_index == 1  # the second new frame after the anchor is due

def test_after_a_frame_with_too_few_matches_the_next_one_becomes_the_anchor(
        photo_pair: tuple[np.ndarray, np.ndarray]) -> None:
    from model.classical import ClassicalMatcher  # trained features: matches where the scene is, none on a blank

    scene, elsewhere = (cv2.resize(image, (320, 240), interpolation=cv2.INTER_AREA) for image in photo_pair)
    blank = np.full_like(scene, 128)  # nothing to match: the camera has moved away
    session = MatchSession(ClassicalMatcher("sift"), setup=SessionSetup(anchor_rule=AnchorRule(below=10)))
    packets = [session.process(Frame(image, index))
               for index, image in enumerate([scene, elsewhere, blank, scene, elsewhere])]
    assert len(packets[1].result) >= 10 and len(packets[2].result) < 10
    assert [packet.anchor_index for packet in packets] == [0, 0, 0, 3, 3]  # frame 3 followed the lost frame 2
    assert [packet.reanchored for packet in packets] == [False, False, False, True, False]
    session.set_anchor(blank, 5, "poster.png")  # an image file's anchor is kept, however few its matches
    assert [session.process(Frame(blank, index)).anchor_index for index in (6, 7)] == [5, 5]


def test_frames_are_matched_at_the_network_size_and_kept_sharp_and_a_new_size_encodes_the_anchor_again(
        photo_pair: tuple[np.ndarray, np.ndarray]) -> None:
    first, second = (Frame(image, index) for index, image in enumerate(photo_pair))  # 640x480 photos
    session = MatchSession(_matcher(), MatchSettings(resize=(160, 120)), SessionSetup((0.25, 0.25, 0.75, 0.75)))
    packet = session.process(first)
    assert packet.anchor is first.image and packet.frame is first.image  # kept as they came, drawn sharp
    assert packet.network_size == (160, 120) and session.anchor is not None
    assert session.anchor.network_size == (120, 160)
    assert packet.region == (160.0, 120.0, 480.0, 360.0)  # in the anchor's pixels
    small = session.process(second)
    assert len(small.result) > 0 and small.result.keypoints1[:, 0].max() > 160  # in the frame's 640x480 pixels
    session.set_resize(320)  # the longer side, aspect kept
    packet = session.process(second)
    assert session.anchor.network_size == (240, 320) and packet.network_size == (320, 240)
    assert packet.anchor is first.image and packet.anchor_index == 0 and packet.region == small.region
    assert len(packet.result) > len(small.result)  # more cells at the larger size
    poster = np.random.default_rng(0).integers(0, 255, (300, 200, 3), dtype=np.uint8)
    session.set_anchor(poster, 0, "poster.png")  # an image file keeps its aspect: longer side 320, x 8 -> 216
    assert session.anchor_image is poster and session.anchor.network_size == (320, 216)
    session.set_resize((160, 120))  # W H: frames are squashed to it, the poster's longer side brought to 160
    assert session.anchor.network_size == (160, 104)  # 200 x 160 / 300 = 107 -> 104


def test_large_frames_are_kept_at_a_bounded_size_unless_matched_larger() -> None:
    assert fit_for_display(np.zeros((1080, 1920, 3), np.uint8), (320, 240)).shape == (540, 960, 3)
    assert fit_for_display(np.zeros((1920, 1080), np.uint8), 320).shape == (960, 540)
    assert fit_for_display(np.zeros((1080, 1920, 3), np.uint8), 1280).shape == (720, 1280, 3)
    assert fit_for_display(np.zeros((1080, 1920, 3), np.uint8), None).shape == (1080, 1920, 3)  # --resize -1
    small = np.zeros((240, 320, 3), np.uint8)
    assert fit_for_display(small, (640, 480)) is small  # never enlarged: the view enlarges small frames
    session = MatchSession(_matcher(), MatchSettings(resize=(160, 120)), SessionSetup((0.5, 0.5, 1.0, 1.0)))
    session.set_anchor(np.zeros((540, 1200, 3), np.uint8), 0)
    assert session.anchor_image is not None and session.anchor_image.shape == (432, 960, 3)
    assert session.region == (480.0, 216.0, 960.0, 432.0)
    session.set_resize(1200)  # kept larger now: the region follows
    assert session.anchor_image.shape == (540, 1200, 3) and session.region == (600.0, 270.0, 1200.0, 540.0)


def test_a_second_session_follows_the_first_ones_anchor_region_geometry_and_size(
        photo_pair: tuple[np.ndarray, np.ndarray]) -> None:
    from model.classical import ClassicalMatcher

    leader = MatchSession(_matcher(), MatchSettings("homography", resize=(160, 120)),
                          SessionSetup(anchor_rule=AnchorRule(every=2)))
    follower = MatchSession(ClassicalMatcher("sift"))
    frames = [Frame(photo_pair[index % 2], index) for index in range(5)]
    followed = []
    for frame in frames:
        if frame.index == 3:
            leader.region = (0.0, 0.0, 320.0, 240.0)  # e.g. a box dragged in the window
            leader.set_resize(320)
        packet = leader.process(frame)
        follower.follow(leader)
        followed.append(follower.process(frame))
        assert followed[-1].anchor is packet.anchor and followed[-1].anchor_index == packet.anchor_index
        assert followed[-1].region == packet.region and followed[-1].network_size == packet.network_size
        assert followed[-1].geometry is not None
    assert [other.anchor_index for other in followed] == [0, 0, 2, 2, 4] and follower.resize == 320
    assert followed[0].ratio_test and not packet.ratio_test  # SIFT's threshold is shown as its ratio test
    in_region = followed[3].result.keypoints0
    assert len(in_region) > 0 and (in_region < [320, 240]).all()  # frame 3: the region's matches only


def test_a_comparison_matches_each_frame_as_a_session_alone_would(photo_pair: tuple[np.ndarray, np.ndarray]) -> None:
    from model.classical import ClassicalMatcher

    leader = MatchSession(_matcher(), MatchSettings(resize=(160, 120)))
    alone = MatchSession(ClassicalMatcher("sift"), MatchSettings(resize=(160, 120)))
    leader.compare_with(ClassicalMatcher("sift"), "sift: OpenCV")
    for index in range(3):
        frame = Frame(photo_pair[index % 2], index)
        label, compared = leader.process(frame).comparison  # type: ignore[misc]
        expected = alone.process(frame)
        assert label == "sift: OpenCV" and len(compared.result) > 0
        np.testing.assert_array_equal(compared.result.keypoints1, expected.result.keypoints1)
    leader.compare_with(None)
    assert leader.process(Frame(photo_pair[1], 3)).comparison is None


def test_a_size_whose_anchor_cannot_be_encoded_changes_nothing(photo_pair: tuple[np.ndarray, np.ndarray],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    session = MatchSession(_matcher(), MatchSettings(resize=(160, 120)))
    session.process(Frame(photo_pair[0], 0))
    anchor = session.anchor

    def out_of_memory(image: np.ndarray, keep_aspect: bool = False) -> None:
        raise torch.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(session.matcher, "encode", out_of_memory)
    with pytest.raises(torch.OutOfMemoryError):
        session.set_resize(960)
    assert session.resize == session.matcher.resize == (160, 120) and session.anchor is anchor


def test_the_camera_intrinsics_follow_the_frames_size_and_need_an_anchor_from_the_camera(
        photo_pair: tuple[np.ndarray, np.ndarray], monkeypatch: pytest.MonkeyPatch) -> None:
    from app import session as session_module
    from app.verify import CameraIntrinsics
    from model.camera import Camera, intrinsic_matrix
    from model.classical import ClassicalMatcher

    cameras: list[Camera | None] = []
    verify = session_module.verify_matches

    def recording(*args: object) -> object:
        cameras.append(args[-1])  # type: ignore[arg-type]
        return verify(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(session_module, "verify_matches", recording)
    intrinsics = intrinsic_matrix(1000.0, 1000.0, 640.0, 360.0)  # of 1280x720 frames, kept at 960x540
    session = MatchSession(ClassicalMatcher("sift"), MatchSettings("essential", resize=320),
                           SessionSetup(intrinsics=CameraIntrinsics(Camera(intrinsics))))
    session.compare_with(ClassicalMatcher("orb"), "orb")
    frames = [Frame(cv2.resize(image, (1280, 720)), index) for index, image in enumerate(photo_pair)]
    session.process(frames[0])
    packet = session.process(frames[1])
    kept = intrinsic_matrix(750.0, 750.0, 480.0, 270.0)
    assert packet.frame.shape == (540, 960, 3) and len(cameras) == 4  # each frame: LoFTR's stand-in, then ORB's
    for camera in cameras:  # the comparison is handed frames as kept: not scaled a second time
        assert camera is not None
        np.testing.assert_allclose(camera.matrix, kept)
    assert packet.geometry is not None and packet.geometry.model == "essential"
    session.set_anchor(frames[0].image, name="poster.png")  # an image file: another camera's picture
    packet = session.process(frames[1])
    assert cameras[-2] is None and packet.geometry is not None and packet.geometry.matrix is None
    assert packet.geometry.failure == "the anchor is not a frame of this camera"


def test_frames_of_another_shape_than_the_calibration_say_so_in_the_overlay(
        photo_pair: tuple[np.ndarray, np.ndarray]) -> None:
    from app.verify import CameraIntrinsics
    from model.camera import Camera, intrinsic_matrix
    from model.classical import ClassicalMatcher

    calibrated_16_9 = Camera(intrinsic_matrix(1000.0, 1000.0, 640.0, 360.0), image_size=(1280, 720))
    session = MatchSession(ClassicalMatcher("sift"), MatchSettings("essential"),
                           SessionSetup(intrinsics=CameraIntrinsics(calibrated_16_9)))
    frames = [Frame(image, index) for index, image in enumerate(photo_pair)]  # 640x480: another shape
    session.process(frames[0])
    packet = session.process(frames[1])
    assert packet.geometry is not None and packet.geometry.matrix is None
    assert packet.geometry.failure.startswith("the calibration is for 1280x720 images and these are 640x480")
