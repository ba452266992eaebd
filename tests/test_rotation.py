"""Matching at any in-plane rotation: quarter turns of images, points and boxes (model/rotation.py), the bundled
model against a turned photo, and when a live session looks for another turn (app/rotation.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from app.rotation import DROP_FRACTION, PEAK_FADE, RETRY_EVERY, SEARCH_EVERY, SWITCH_MARGIN, RotationSearch
from model.matcher import Matcher, MatchResult
from model.rotation import (
    QUARTER_TURNS,
    TurnedAnchor,
    match_score,
    turn_box,
    turn_image,
    turn_points,
    turned_size,
    unturn_points,
)

ROOT = Path(__file__).resolve().parent.parent


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


def test_the_bundled_model_finds_a_photo_turned_upside_down_or_sideways(
        photo_pair: tuple[np.ndarray, np.ndarray]) -> None:
    torch.manual_seed(0)
    matcher = Matcher(ROOT / "weights" / "loftr_live_xfeat_s.pt", device="cpu", precision="fp32", resize=320,
                      max_matches=300)
    anchor = TurnedAnchor(matcher, photo_pair[0])
    for turns in (1, 2, 3):
        frame = turn_image(photo_pair[0], turns)
        results = anchor.match_turns(frame)
        scores = {turn: match_score(result.confidence) for turn, result in results.items()}
        assert max(scores, key=scores.__getitem__) == turns  # the turn that undoes the frame's scores best
        best = results[turns]
        assert len(best) == 300  # the cap: a frame matched against the right turn of itself
        # keypoints0 are in the anchor's pixels as it is: the frame's keypoints are where the turn took them.
        error = np.linalg.norm(turn_points(best.keypoints0, turns, (640, 480)) - best.keypoints1, axis=1)
        assert np.median(error) < 1.0
        upright = matcher.match(matcher.encode(photo_pair[0]), frame)  # what LoFTR alone makes of it
        assert match_score(upright.confidence) < 0.5 * scores[turns]


class _ScriptedAnchor:
    """Stands in for a TurnedAnchor: each frame is a dict of scores by turn; results have that summed confidence."""

    def __init__(self) -> None:
        self.matched: list[int] = []

    @staticmethod
    def _result(score: float) -> MatchResult:
        confidence = np.full(10, score / 10, np.float32)
        return MatchResult(np.zeros((10, 2), np.float32), np.zeros((10, 2), np.float32), confidence, confidence)

    def match(self, turn: int, frame: dict[int, float], region: object = None) -> MatchResult:
        self.matched.append(turn)
        return self._result(frame[turn])

    def match_turns(self, frame: dict[int, float], region: object = None,
                    quarter_turns: tuple[int, ...] = QUARTER_TURNS) -> dict[int, MatchResult]:
        self.matched.extend(quarter_turns)
        return {turn: self._result(frame[turn]) for turn in quarter_turns}


def test_a_session_tries_other_turns_only_when_its_matches_weaken_or_now_and_then() -> None:
    anchor = _ScriptedAnchor()
    search = RotationSearch(anchor)  # type: ignore[arg-type]
    upright = {0: 200.0, 1: 50.0, 2: 40.0, 3: 50.0}
    search.match(upright)  # a new anchor: every turn is tried at the first frame
    assert search.turn == 0 and anchor.matched == [0, 1, 2, 3] and search.searches == 1
    anchor.matched.clear()
    for _ in range(RETRY_EVERY):  # matching well: one turn per frame
        search.match(upright)
    assert anchor.matched == [0] * RETRY_EVERY
    # The object turned sideways: the upright score falls below half of the best lately, every turn is tried.
    sideways = {0: 90.0, 1: 180.0, 2: 40.0, 3: 45.0}
    assert 90 < DROP_FRACTION * search.peak * PEAK_FADE
    assert search.match(sideways).confidence.sum() == pytest.approx(180.0)
    assert search.turn == 1 and search.degrees == 90 and search.searches == 2
    # Halfway to the next turn neither is good: the matches turn weak (every turn tried at once), stay weak (tried
    # again every RETRY_EVERY frames, not every frame), and no switch to a turn that is not SWITCH_MARGIN times better.
    halfway = {0: 60.0, 1: 80.0, 2: 40.0, 3: 110.0}
    assert 110 < SWITCH_MARGIN * 80
    anchor.matched.clear()
    for _ in range(RETRY_EVERY):
        search.match(halfway)
    assert search.turn == 1 and search.searches == 3 and anchor.matched == [1, 0, 2, 3] + [1] * (RETRY_EVERY - 1)
    past_halfway = {0: 60.0, 1: 70.0, 2: 40.0, 3: 170.0}
    for _ in range(RETRY_EVERY):
        search.match(past_halfway)
    assert search.turn == 3 and search.searches == 4
    # Frames matched again after a change of settings do not count; matching well, the others are tried every
    # SEARCH_EVERY frames, in case the scene came back in another orientation.
    steady = {0: 60.0, 1: 70.0, 2: 40.0, 3: 170.0}
    for _ in range(5 * SEARCH_EVERY):
        search.match(steady, again=True)
    assert search.searches == 4
    for _ in range(3 * SEARCH_EVERY):
        search.match(steady)
    assert search.searches == 7 and search.turn == 3


def test_a_scene_that_stays_hard_to_match_stops_counting_as_weak() -> None:
    search = RotationSearch(_ScriptedAnchor())  # type: ignore[arg-type]
    search.match({0: 250.0, 1: 40.0, 2: 40.0, 3: 40.0})
    harder = {0: 100.0, 1: 40.0, 2: 40.0, 3: 40.0}  # e.g. the camera moved away: fewer matches at every turn
    first_searches = [search.searches]
    for _ in range(4 * SEARCH_EVERY):
        search.match(harder)
        first_searches.append(search.searches)
    # Weak at first (tried at once, then every RETRY_EVERY frames), then the best score lately fades and the
    # searches thin out.
    assert first_searches[1] == 2 and first_searches[1 + RETRY_EVERY] == 3
    assert first_searches[-1] - first_searches[-SEARCH_EVERY - 1] == 1
