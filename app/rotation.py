"""When a live session looks for the quarter turn of its anchor that the frames match best (--any_rotation).

Matching a frame against all four turns costs four times as much, so a session matches against one turn, the
last one found, and tries the others only when they may do better:

- when its matches turn weak: their summed confidence below ``DROP_FRACTION`` of the best this anchor has scored
  lately (the object or the camera turned away): at once, then every ``RETRY_EVERY`` frames while they stay weak
  (halfway between two turns neither may be good yet). The best score fades by ``PEAK_FADE`` a frame, so that
  a scene that is simply harder to match now stops counting as weak after a few seconds;
- every ``SEARCH_EVERY`` frames otherwise, in case the scene came back in another orientation.

It moves to another turn only when that one scores ``SWITCH_MARGIN`` times as much, so that near 45 degrees it
does not flip between two turns frame by frame.
"""

from __future__ import annotations

import numpy as np

from model.geometry import Box
from model.matcher import MatchResult
from model.rotation import QUARTER_TURNS, TurnedAnchor, match_score

#: Matches are weak below this fraction of the best score lately.
DROP_FRACTION = 0.5
#: While they are weak, the other turns are tried every this many frames.
RETRY_EVERY = 8
#: Otherwise every this many frames.
SEARCH_EVERY = 30
#: Move to another turn only when it scores this many times the current one.
SWITCH_MARGIN = 1.5
#: The best score lately is multiplied by this every frame (halved in about 70 frames).
PEAK_FADE = 0.99


class RotationSearch:
    """The quarter turn of one anchor that frames are matched against, and when to look for a better one."""

    def __init__(self, anchor: TurnedAnchor) -> None:
        self.anchor = anchor
        self.turn = 0  # quarter turns clockwise
        self.peak = 0.0  # the best score lately (fading)
        self.frames_since_search = SEARCH_EVERY  # a new anchor: every turn is tried at the first frame
        self.weak = False  # the last frame's matches were weak
        self.searches = 0

    @property
    def degrees(self) -> int:
        return 90 * self.turn

    def match(self, frame: np.ndarray, region: Box | None = None, again: bool = False) -> MatchResult:
        """The frame matched against the anchor at the current turn, or at a better one found now; ``again``: the
        same frame once more (after a change of settings), which does not count as a frame."""
        result = self.anchor.match(self.turn, frame, region)
        score = match_score(result.confidence)
        if not again:
            self.frames_since_search += 1
            self.peak *= PEAK_FADE
        weak = score < DROP_FRACTION * self.peak
        if (weak and not self.weak) or self.frames_since_search >= (RETRY_EVERY if weak else SEARCH_EVERY):
            others = self.anchor.match_turns(frame, region, tuple(turn for turn in QUARTER_TURNS if turn != self.turn))
            best = max(others, key=lambda turn: match_score(others[turn].confidence))
            if match_score(others[best].confidence) > SWITCH_MARGIN * score:
                self.turn, result, score = best, others[best], match_score(others[best].confidence)
            self.frames_since_search = 0
            self.searches += 1
            weak = score < DROP_FRACTION * self.peak
        self.peak = max(self.peak, score)
        self.weak = weak
        return result
