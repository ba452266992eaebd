"""A matching session: one matcher, one anchor and the settings that turn each frame into a :class:`MatchPacket`.

Shared by the window's inference thread and the headless runner. No Qt and no threads of its own: its owner
calls it from one thread.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from model.camera import Camera
from model.classical import AnyMatcher, ClassicalFeatures, ClassicalMatcher
from model.geometry import Box, TwoViewGeometry
from model.matcher import EncodedImage, Matcher, MatchResult, Resize, longer_side, network_size
from model.views import AnchorView, AnchorViews, views

from .anchor_search import AnchorSearch
from .settings import DEFAULT_SETTINGS, MatchSettings
from .sources import Frame
from .verify import CameraIntrinsics, verify_matches

# Frames and anchors are kept, drawn and written with their longer side at most this many pixels (or the
# network's, when it is matched larger): sharp next to the small copy the network sees on a CPU (320 pixels), yet
# a 4K camera does not make every view and video 8 megapixels.
DISPLAY_MAX_SIDE = 960


def fit_for_display(image: np.ndarray, resize: Resize) -> np.ndarray:
    """The image as a session keeps it: as it came, brought down (aspect kept) to a longer side of at most
    DISPLAY_MAX_SIDE or the network's (``resize``; None: the image's own), whichever is larger."""
    height, width = image.shape[:2]
    limit = max(DISPLAY_MAX_SIDE, longer_side(resize))
    if max(height, width) <= limit:
        return image
    scale = limit / max(height, width)
    # At least one pixel a side: a 1 x 5000 image must shrink to 1 x 960, not to nothing.
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


@dataclass
class MatchPacket:
    """One frame's result and everything needed to draw it."""

    anchor: np.ndarray
    anchor_index: int
    anchor_name: str  # the image file the anchor came from (--anchor), "" for a frame of the stream
    frame: np.ndarray
    frame_index: int
    result: MatchResult
    latency_ms: float  # matching (and geometric verification) of this frame
    fps: float  # frames matched per second, over the last two seconds
    frame_age_ms: float  # from reading the frame to its result: latency plus waiting for the matcher
    geometry: TwoViewGeometry | None = None  # None when geometric verification is off
    geometry_ms: float = 0.0
    region: Box | None = None  # the box of the anchor the matches were restricted to (anchor pixels)
    threshold: float | None = None  # the matcher's: LoFTR's coarse confidence, or 1 - Lowe's ratio (SIFT, ORB)
    network_size: tuple[int, int] | None = None  # (width, height) the network matched the frame at
    ratio_test: bool = False  # the matcher is SIFT or ORB: the threshold is a ratio test's
    reanchored: bool = False  # the frame became the anchor: the one before had too few matches (AnchorRule.below)
    again: bool = False  # the frame on screen matched again after a change of settings (paused, or a file ended)
    device: str = ""  # where it was matched, e.g. "cuda/fp16" ("cpu" for SIFT and ORB)
    anchor_view: AnchorView | None = None  # --any_rotation, --any_scale: the anchor's view matched (None: off)
    # The same frame and anchor matched by a second matcher, to compare (its label, its packet): drawn below.
    comparison: tuple[str, MatchPacket] | None = None
    # Drawn by the thread that matched it (app.worker), and what it was drawn with: the window shows it as it is
    # when it would draw the same, instead of drawing it again beside the next frame's matching.
    view: np.ndarray | None = None
    view_key: tuple[object, ...] | None = None

    @property
    def anchor_label(self) -> str:
        return self.anchor_name or f"#{self.anchor_index}"

    def arrays(self, images: bool = True) -> dict[str, np.ndarray]:
        """The result as arrays for ``np.savez``: keypoints0/1 (N x 2, pixels of anchor and frame as kept),
        confidence and fine_std (N), frame_index and anchor_index (the source's frame numbers), anchor_name (the
        --anchor file, or ""), network_size (width, height the frame was matched at), with ``images`` anchor and
        frame (BGR), and when present inliers (N), matrix (3 x 3, ``geometry_model`` names it), for an essential
        matrix the camera's motion (rotation 3 x 3 and translation 3, unit length; ``RelativePose``), region (x0,
        y0, x1, y1 of the anchor), anchor_turn_deg and anchor_scale (--any_rotation, --any_scale: the anchor's view
        the frame matched) and the comparison's matches (``compare_`` + keypoints0, keypoints1, confidence,
        fine_std, inliers, ..., and compare_label)."""
        arrays = {"keypoints0": self.result.keypoints0, "keypoints1": self.result.keypoints1,
                  "confidence": self.result.confidence, "fine_std": self.result.fine_std,
                  "frame_index": np.array(self.frame_index), "anchor_index": np.array(self.anchor_index),
                  "anchor_name": np.array(self.anchor_name)}
        if self.network_size is not None:
            arrays["network_size"] = np.array(self.network_size)
        if images:
            arrays.update(anchor=self.anchor, frame=self.frame)
        if self.geometry is not None:
            arrays["inliers"] = self.geometry.inliers
            arrays["geometry_model"] = np.array(self.geometry.model)
            if self.geometry.matrix is not None:
                arrays["matrix"] = self.geometry.matrix
            if self.geometry.pose is not None:
                arrays["rotation"], arrays["translation"] = self.geometry.pose.rotation, self.geometry.pose.translation
        if self.region is not None:
            arrays["region"] = np.array(self.region)
        if self.anchor_view is not None:
            arrays["anchor_turn_deg"] = np.array(self.anchor_view.degrees)
            arrays["anchor_scale"] = np.array(self.anchor_view.scale)
        if self.comparison is not None:  # the second matcher's, prefixed: compare_keypoints0, compare_label, ...
            label, other = self.comparison
            arrays.update({f"compare_{name}": value for name, value in other.arrays(images=False).items()
                           if name not in ("frame_index", "anchor_index", "anchor_name", "network_size", "region")})
            arrays["compare_label"] = np.array(label)
        return arrays


@dataclass(frozen=True)
class StartAnchor:
    """The anchor to start with instead of the first frame matched: an image file (``name``, --anchor) or a frame
    of the input read ahead (``index``, --anchor_frame)."""

    image: np.ndarray
    name: str = ""
    index: int = 0


@dataclass
class FpsMeter:
    """Events per second over a sliding two-second window."""

    times: list[float] = field(default_factory=list)

    def tick(self) -> float:
        """Count an event now -> the rate."""
        now = time.perf_counter()
        self.times = [t for t in self.times if now - t < 2.0] + [now]
        return self.rate

    @property
    def rate(self) -> float:
        """Events per second over the two seconds before the latest event (0 before two events)."""
        if len(self.times) < 2:
            return 0.0
        return (len(self.times) - 1) / (self.times[-1] - self.times[0])


def matched_on(matcher: AnyMatcher) -> str:
    """The device and precision a matcher runs at, as the overlay shows them ("cpu" for SIFT and ORB)."""
    if isinstance(matcher, ClassicalMatcher):
        return "cpu"
    return f"{matcher.device.type}/{matcher.precision}"


@dataclass(frozen=True)
class AnchorRule:
    """When a frame of the stream becomes the anchor by itself (besides n, a dropped image or --anchor).

    every: the ``every``-th frame matched after an anchor (0: never), e.g. to match each frame against a recent
        one rather than against the first.
    below: after a frame with fewer matches than this (fewer inliers, with geometric verification), the next
        frame (0: never): when the camera has moved away from the anchor, the view recovers by itself. An anchor
        from an image file (a photo of an object to find) is kept.
    """

    every: int = 0
    below: int = 0


KEEP_ANCHOR = AnchorRule()  # no frame becomes the anchor by itself


@dataclass(frozen=True)
class SessionSetup:
    """What a session keeps from start to end (the flags'; run-time changes are ``MatchSettings``).

    anchor_region: a box in fractions of the anchor's width and height, (0, 0, 1, 1) being all of it: the region
    of every new anchor (None: the whole anchor; ``MatchSession.region`` can be changed meanwhile). anchor_rule:
    when a frame becomes the anchor by itself. intrinsics: the camera's (``CameraIntrinsics``), for the
    'essential' mode; they apply to anchors that are frames of the stream, not to image files.
    """

    anchor_region: Box | None = None
    anchor_rule: AnchorRule = KEEP_ANCHOR
    intrinsics: CameraIntrinsics | None = None


class MatchSession:
    """The anchor (its cached features), the region of it to match from, and matching as ``settings`` say.

    Args:
        matcher: the model; ``set_matcher`` swaps it (the anchor is encoded again).
        settings: ``MatchSettings``, applied whole (``apply``): geometric verification mode, the anchor's views
            LoFTR also tries (any rotation: the anchor turned by the quarter turn that matches best, see
            ``AnchorSearch``; any scale: the anchor seen by the network at half its size; SIFT and ORB are rotation
            and scale invariant already), the size the network matches frames at (``resize``: W H exactly, the
            longer side, or None for as they come; an image-file anchor keeps its aspect ratio, its longer side
            brought to the frames') and the threshold. Its ``compare`` is the owner's to load (``compare_with``).
            Frames and anchors themselves are kept and drawn as they came, at most ``DISPLAY_MAX_SIDE`` pixels
            (``fit_for_display``), and matches are in their pixels.
        setup: what stays from start to end (``SessionSetup``).
    """

    def __init__(self, matcher: AnyMatcher, settings: MatchSettings = DEFAULT_SETTINGS,
                 setup: SessionSetup = SessionSetup()) -> None:
        self.matcher, self.settings, self.anchor_region = matcher, settings, setup.anchor_region
        self.search: AnchorSearch | None = None  # made for each anchor when any_rotation or any_scale is on
        self.intrinsics = setup.intrinsics
        self.frame_camera: Camera | None = None  # ``intrinsics`` for the last frame as kept (its pixels)
        self.camera_problem = ""  # why ``intrinsics`` do not fit the last frame (another shape than calibrated)
        self.anchor_rule, self.frames_since_anchor, self.anchor_lost = setup.anchor_rule, 0, False
        self.resize = self.matcher.resize = settings.resize
        if settings.threshold is not None:
            self.matcher.threshold = min(max(settings.threshold, 0.0), 1.0)
        self.region: Box | None = None
        self.anchor: EncodedImage | ClassicalFeatures | None = None
        self.anchor_image: np.ndarray | None = None  # as kept and drawn (matches are in its pixels)
        self.anchor_source: np.ndarray | None = None  # as it came, to size again when ``resize`` changes
        self.anchor_index, self.anchor_name = 0, ""
        self.comparison: tuple[str, MatchSession] | None = None  # see compare_with
        self._meter = FpsMeter()

    @property
    def geometry(self) -> str:
        return self.settings.geometry

    def warm_up(self) -> str | None:
        """Compile a compiled matcher (``Matcher.compile``) at this session's size now rather than at the first
        frames; None, or why compiling failed (matching goes on without it)."""
        if isinstance(self.matcher, Matcher) and self.matcher.compiled:
            return self.matcher.warm_up()
        return None

    def apply(self, settings: MatchSettings) -> None:
        """Match as ``settings`` say from the next frame on: a new size encodes the anchor again (if that fails,
        e.g. out of memory, the size stays and the error is raised), a threshold goes to the matcher (None: the
        matcher's own stays); ``compare`` is left to the owner (``compare_with``)."""
        if settings.resize != self.resize:
            self.set_resize(settings.resize)
        if settings.threshold is not None and settings.threshold != self.settings.threshold:
            self.matcher.threshold = min(max(settings.threshold, 0.0), 1.0)
        self.settings = settings

    def start_with(self, anchor: StartAnchor) -> None:
        self.set_anchor(anchor.image, anchor.index, anchor.name)

    def set_anchor(self, image: np.ndarray, index: int = 0, name: str = "") -> None:
        """A new anchor: a frame (its index) or an image file (its name), as it came (it is sized here). Its
        region is ``anchor_region`` (a box of the old anchor means nothing on the new one)."""
        self.anchor_source, self.anchor_index, self.anchor_name = image, index, name
        self._encode_anchor()
        self.frames_since_anchor, self.anchor_lost = 0, False
        self.region = None
        if self.anchor_region is not None and self.anchor_image is not None:
            height, width = self.anchor_image.shape[:2]
            x0, y0, x1, y1 = self.anchor_region
            self.region = (x0 * width, y0 * height, x1 * width, y1 * height)

    def forget_frame_anchor(self) -> None:
        """Another input begins: its first frame becomes the anchor, unless the anchor is an image file (an object
        to find in any video); the region of the old anchor goes with it."""
        if not self.anchor_name:
            self.anchor = self.anchor_image = self.anchor_source = None
            self.region = None

    def set_resize(self, resize: Resize) -> None:
        """Match frames at another size from now on; the anchor is encoded again (and, if the size changes
        how it is kept, sized again, a region of it scaled along). If encoding the anchor at the new size
        fails (out of memory), nothing changes."""
        previous, self.resize = self.resize, resize
        self.matcher.resize = resize
        if self.anchor_source is None or self.anchor_image is None:
            return
        old_height, old_width = self.anchor_image.shape[:2]
        try:
            self._encode_anchor()
        except BaseException:
            self.resize = self.matcher.resize = previous
            raise
        height, width = self.anchor_image.shape[:2]
        if self.region is not None:
            x0, y0, x1, y1 = self.region
            sx, sy = width / old_width, height / old_height
            self.region = (x0 * sx, y0 * sy, x1 * sx, y1 * sy)

    def _encode_anchor(self) -> None:
        assert self.anchor_source is not None
        image = fit_for_display(self.anchor_source, self.resize)
        self.anchor = self.matcher.encode(image, keep_aspect=bool(self.anchor_name))
        self.anchor_image = image
        self.search = None

    def compare_with(self, matcher: AnyMatcher | None, label: str = "") -> None:
        """Also match every frame with ``matcher`` (e.g. SIFT, named ``label``) against this session's anchor,
        region, verification and size; its packet rides in each packet's ``comparison``. None: stop."""
        self.comparison = None if matcher is None else (
            label, MatchSession(matcher, MatchSettings(resize=self.resize)))

    def follow(self, leader: MatchSession) -> None:
        """Take the leader's anchor (the same image, encoded by this session's matcher), region, geometric
        verification and size: a second matcher on the same frames, e.g. SIFT beside LoFTR. Call it before
        each ``process`` (this session's own ``anchor_rule`` should be the default: the leader's applies)."""
        if self.resize != leader.resize:
            self.set_resize(leader.resize)
        new_anchor = (self.anchor_source is not leader.anchor_source or self.anchor_index != leader.anchor_index
                      or self.anchor_name != leader.anchor_name)
        if leader.anchor_source is not None and new_anchor:
            self.set_anchor(leader.anchor_source, leader.anchor_index, leader.anchor_name)
        self.region = leader.region
        self.settings = replace(self.settings, geometry=leader.settings.geometry, resize=self.resize,
                                any_rotation=leader.settings.any_rotation, any_scale=leader.settings.any_scale)
        # The leader hands over frames as it keeps them: the camera already made for their pixels.
        self.intrinsics = None if leader.frame_camera is None else CameraIntrinsics(leader.frame_camera)
        self.camera_problem = leader.camera_problem

    def set_matcher(self, matcher: AnyMatcher) -> None:
        """Another model; the anchor's cached features belong to the old one and are computed again."""
        self.matcher = matcher
        matcher.resize = self.resize
        self.search = None
        if self.anchor_image is not None:
            self.anchor = matcher.encode(self.anchor_image, keep_aspect=bool(self.anchor_name))

    def _verify(self, result: MatchResult, frame_shape: tuple[int, ...]) -> TwoViewGeometry | None:
        """The geometric verification of a frame's matches; an essential matrix only against an anchor that is a
        frame of the camera (an image file was taken by another camera, with intrinsics of its own)."""
        assert self.anchor_image is not None
        from_this_camera = not self.anchor_name and self.anchor_image.shape == frame_shape
        camera = self.frame_camera if from_this_camera else None
        geometry = verify_matches(result, self.geometry, frame_shape, self.matcher.resize, camera)
        if geometry is not None and geometry.model == "essential" and camera is None and self.intrinsics is not None:
            geometry = replace(geometry, failure=self.camera_problem or "the anchor is not a frame of this camera")
        return geometry

    def _match(self, image: np.ndarray, again: bool) -> MatchResult:
        """The frame's matches against the anchor, in the anchor's best view with ``any_rotation``/``any_scale``."""
        assert self.anchor is not None and self.anchor_image is not None
        wanted = views(self.settings.any_rotation, self.settings.any_scale)
        if len(wanted) == 1 or isinstance(self.matcher, ClassicalMatcher):
            self.search = None
            return self.matcher.match(self.anchor, image, region0=self.region)
        if self.search is None or self.search.views != wanted:  # the views made so far are kept
            assert isinstance(self.anchor, EncodedImage)
            anchor = self.search.anchor if self.search is not None else AnchorViews(
                self.matcher, self.anchor_image, self.anchor, keep_aspect=bool(self.anchor_name))
            self.search = AnchorSearch(anchor, wanted)
        return self.search.match(image, self.region, again)

    def _camera_for(self, source_shape: tuple[int, ...], shape: tuple[int, ...]) -> tuple[Camera | None, str]:
        """The camera for a frame that came at ``source_shape`` and is kept at ``shape``, or None and why not."""
        if self.intrinsics is None:
            return None, ""
        try:
            return self.intrinsics.for_frames(source_shape, shape), ""
        except ValueError as error:  # the frames have another shape than the calibration's
            return None, str(error)

    def process(self, frame: Frame, again: bool = False) -> MatchPacket:
        """Match a frame against the anchor (the frame becomes the anchor when there is none yet, or when
        ``anchor_rule`` says so). ``again``: the last frame once more, after a change of settings; it is not a new
        frame (the anchor rule and the frame rate leave it out)."""
        due = self.anchor_rule.every and self.frames_since_anchor >= self.anchor_rule.every
        reanchored = self.anchor_lost and not again
        if self.anchor is None or self.anchor_image is None or (not again and (due or self.anchor_lost)):
            self.set_anchor(frame.image, frame.index)
        self.frames_since_anchor += 0 if again else 1
        source_shape = frame.image.shape
        frame = replace(frame, image=fit_for_display(frame.image, self.resize))
        self.frame_camera, self.camera_problem = self._camera_for(source_shape, frame.image.shape)
        assert self.anchor is not None and self.anchor_image is not None
        start = time.perf_counter()
        result = self._match(frame.image, again)
        matched = time.perf_counter()
        geometry = self._verify(result, frame.image.shape)
        if self.settings.inliers_only and geometry is not None and geometry.matrix is not None:
            keep = geometry.inliers
            result = replace(result, keypoints0=result.keypoints0[keep], keypoints1=result.keypoints1[keep],
                             confidence=result.confidence[keep], fine_std=result.fine_std[keep])
            geometry = replace(geometry, inliers=geometry.inliers[keep])
        done = time.perf_counter()
        support = len(result) if geometry is None else geometry.num_inliers
        self.anchor_lost = not self.anchor_name and support < self.anchor_rule.below
        network_height, network_width = network_size(*frame.image.shape[:2], self.resize)
        packet = MatchPacket(self.anchor_image, self.anchor_index, self.anchor_name, frame.image, frame.index, result,
                             (done - start) * 1000.0, self._meter.rate if again else self._meter.tick(),
                             (done - frame.captured) * 1000.0, geometry, (done - matched) * 1000.0, self.region,
                             self.matcher.threshold, (network_width, network_height),
                             ratio_test=isinstance(self.matcher, ClassicalMatcher), reanchored=reanchored,
                             again=again, device=matched_on(self.matcher),
                             anchor_view=None if self.search is None else self.search.view)
        if self.comparison is not None:  # the frame as kept here: it is not sized a second time
            label, other = self.comparison
            other.follow(self)
            packet.comparison = (label, other.process(frame, again))
        return packet
