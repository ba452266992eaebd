"""Matching through views of the anchor: quarter turns of images, points and boxes, smaller network sizes
(model/views.py), the bundled model against a turned photo and a distant one, and when a live session looks for
another view (app/anchor_search.py)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from app.anchor_search import DROP_FRACTION, PEAK_FADE, RETRY_EVERY, SEARCH_EVERY, SWITCH_MARGIN, AnchorSearch
from model.matcher import Matcher, MatchResult
from model.views import (
    QUARTER_TURNS,
    UPRIGHT,
    AnchorView,
    AnchorViews,
    match_score,
    turn_box,
    turn_image,
    turn_points,
    turned_size,
    unturn_points,
    views,
)

ROOT = Path(__file__).resolve().parent.parent


def _bundled_matcher() -> Matcher:
    torch.manual_seed(0)
    return Matcher(ROOT / "weights" / "loftr_live_xfeat_s.pt", device="cpu", precision="fp32", resize=320,
                   max_matches=300)


@pytest.mark.parametrize("turns", QUARTER_TURNS)
def test_points_turn_with_the_image(turns: int) -> None:
    image = np.arange(5 * 7 * 3).reshape(5, 7, 3)  # 7 wide, 5 high: every pixel different
    turned = turn_image(image, turns)
    assert (turned.shape[1], turned.shape[0]) == turned_size((7, 5), turns)
    ys, xs = np.mgrid[0:5, 0:7]
    centres = np.stack([xs.ravel() + 0.5, ys.ravel() + 0.5], axis=1)  # pixel (i, j) covers [i, i+1) x [j, j+1)
    moved = turn_points(centres, turns, (7, 5))
    np.testing.assert_array_equal(turned[(moved[:, 1] - 0.5).astype(int), (moved[:, 0] - 0.5).astype(int)],
                                  image[ys.ravel(), xs.ravel()])
    np.testing.assert_allclose(unturn_points(moved, turns, (7, 5)), centres)
    box = turn_box((1.0, 2.0, 4.0, 5.0), turns, (7, 5))
    inside = (moved[:, 0] > box[0]) & (moved[:, 0] < box[2]) & (moved[:, 1] > box[1]) & (moved[:, 1] < box[3])
    was_inside = (centres[:, 0] > 1) & (centres[:, 0] < 4) & (centres[:, 1] > 2) & (centres[:, 1] < 5)
    np.testing.assert_array_equal(inside, was_inside)


def test_views_to_try_and_how_they_read() -> None:
    assert views(False, False) == (UPRIGHT,)
    assert views(True, False) == tuple(AnchorView(turn) for turn in QUARTER_TURNS)
    assert views(False, True) == (UPRIGHT, AnchorView(0, 0.5))
    assert len(views(True, True)) == 8
    assert [view.describe() for view in (UPRIGHT, AnchorView(1), AnchorView(0, 0.5), AnchorView(2, 0.5))] == [
        "as it is", "turned 90 deg", "at 1/2 size", "turned 180 deg, at 1/2 size"]


def test_the_bundled_model_finds_a_photo_turned_upside_down_or_sideways(
        photo_pair: tuple[np.ndarray, np.ndarray]) -> None:
    matcher = _bundled_matcher()
    anchor = AnchorViews(matcher, photo_pair[0])
    for turns in (1, 2, 3):
        frame = turn_image(photo_pair[0], turns)
        results = anchor.match_views(frame, views(True, False))
        scores = {view: match_score(result.confidence) for view, result in results.items()}
        assert max(scores, key=scores.__getitem__) == AnchorView(turns)  # the turn that undoes the frame's
        best = results[AnchorView(turns)]
        assert len(best) >= 0.95 * 300  # the cap (a frame against the right turn of itself), less the few unverified
        # keypoints0 are in the anchor's pixels as it is: the frame's keypoints are where the turn took them.
        error = np.linalg.norm(turn_points(best.keypoints0, turns, (640, 480)) - best.keypoints1, axis=1)
        assert np.median(error) < 1.0
        upright = matcher.match(matcher.encode(photo_pair[0]), frame)  # what LoFTR alone makes of it
        assert match_score(upright.confidence) < 0.2 * scores[AnchorView(turns)]


def test_the_bundled_model_finds_a_distant_photo_through_the_anchor_at_half_size(
        photo_pair: tuple[np.ndarray, np.ndarray]) -> None:
    anchor_image = photo_pair[0]
    noise = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    frame = cv2.GaussianBlur(noise, (0, 0), 2)  # a textured background with nothing of the photo in it
    frame[150:150 + 159, 200:200 + 213] = cv2.resize(anchor_image, (213, 159), interpolation=cv2.INTER_AREA)
    results = AnchorViews(_bundled_matcher(), anchor_image).match_views(frame, views(False, True))

    def right(result: MatchResult) -> int:  # matches within 6 px of where the photo put them
        truth = result.keypoints0 * (213 / 640) + [200, 150]
        return int((np.linalg.norm(truth - result.keypoints1, axis=1) < 6).sum())

    half = results[AnchorView(0, 0.5)]
    assert match_score(half.confidence) > match_score(results[UPRIGHT].confidence)  # the search would pick it
    # Verified matches only (weights/README.md, Verified matches): fewer than the network's, nearly all of them right.
    assert right(half) >= 10 and right(half) >= 0.8 * len(half) and right(half) > 5 * right(results[UPRIGHT])


class _ScriptedAnchor:
    """Stands in for AnchorViews: each frame is a dict of scores by view; a result has that many confident matches
    (and as many weak ones)."""

    def __init__(self) -> None:
        self.matched: list[AnchorView] = []

    @staticmethod
    def _result(score: float) -> MatchResult:
        confidence = np.r_[np.full(int(score), 0.9), np.full(int(score), 0.3)].astype(np.float32)
        points = np.zeros((len(confidence), 2), np.float32)
        return MatchResult(points, points, confidence, confidence)

    def match(self, view: AnchorView, frame: dict[AnchorView, float], region: object = None) -> MatchResult:
        self.matched.append(view)
        return self._result(frame[view])

    def match_views(self, frame: dict[AnchorView, float], views: tuple[AnchorView, ...],
                    region: object = None) -> dict[AnchorView, MatchResult]:
        self.matched.extend(views)
        return {view: self._result(frame[view]) for view in views}


TURNS = views(True, False)
R0, R90, R180, R270 = TURNS


def _frame(*scores: float) -> dict[AnchorView, float]:
    return dict(zip(TURNS, scores, strict=True))


def test_a_session_tries_other_views_only_when_its_matches_weaken_or_now_and_then() -> None:
    anchor = _ScriptedAnchor()
    search = AnchorSearch(anchor, TURNS)  # type: ignore[arg-type]
    upright = _frame(200, 50, 40, 50)
    search.match(upright)  # a new anchor: every view is tried at the first frame
    assert search.view == UPRIGHT and anchor.matched == [R0, R90, R180, R270] and search.searches == 1
    anchor.matched.clear()
    for _ in range(RETRY_EVERY):  # matching well: one view per frame
        search.match(upright)
    assert anchor.matched == [R0] * RETRY_EVERY
    # The object turned sideways: the upright score falls below half of the best lately, every turn is tried.
    sideways = _frame(90, 180, 40, 45)
    assert 90 < DROP_FRACTION * search.peak * PEAK_FADE
    assert match_score(search.match(sideways).confidence) == 180
    assert search.view == R90 and search.searches == 2
    # Halfway to the next turn neither is good: the matches turn weak (every view tried at once), stay weak (tried
    # again every RETRY_EVERY frames, not every frame), and no switch to a view that is not SWITCH_MARGIN times
    # better.
    halfway = _frame(60, 80, 40, 110)
    assert 110 < SWITCH_MARGIN * 80
    anchor.matched.clear()
    for _ in range(RETRY_EVERY):
        search.match(halfway)
    assert search.view == R90 and search.searches == 3
    assert anchor.matched == [R90, R0, R180, R270] + [R90] * (RETRY_EVERY - 1)
    past_halfway = _frame(60, 70, 40, 170)
    for _ in range(RETRY_EVERY):
        search.match(past_halfway)
    assert search.view == R270 and search.searches == 4
    # Frames matched again after a change of settings do not count; matching well, the others are tried every
    # SEARCH_EVERY frames, in case the scene came back in another orientation.
    for _ in range(5 * SEARCH_EVERY):
        search.match(past_halfway, again=True)
    assert search.searches == 4
    for _ in range(3 * SEARCH_EVERY):
        search.match(past_halfway)
    assert search.searches == 7 and search.view == R270


def test_a_scene_that_stays_hard_to_match_stops_counting_as_weak() -> None:
    search = AnchorSearch(_ScriptedAnchor(), TURNS)  # type: ignore[arg-type]
    search.match(_frame(250, 40, 40, 40))
    harder = _frame(100, 40, 40, 40)  # e.g. the camera moved away: fewer matches in every view
    searches = [search.searches]
    for _ in range(4 * SEARCH_EVERY):
        search.match(harder)
        searches.append(search.searches)
    # Weak at first (tried at once, then every RETRY_EVERY frames), then the best score lately fades and the
    # searches thin out.
    assert searches[1] == 2 and searches[1 + RETRY_EVERY] == 3
    assert searches[-1] - searches[-SEARCH_EVERY - 1] == 1
