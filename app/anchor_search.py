"""When a live session looks for the view of its anchor (turned, seen smaller: ``model.views``) that the frames
match best (--any_rotation, --any_scale).

Matching a frame against every view costs as many times as much, so a session matches against one view, the
last one found, and tries the others only when they may do better:

- when its matches turn weak: fewer confident ones than ``DROP_FRACTION`` of the most this anchor has had lately
  (the object or the camera turned or moved away): at once, then every ``RETRY_EVERY`` frames while they stay
  weak (halfway between two turns neither may be good yet). The most lately fades by ``PEAK_FADE`` a frame, so
  that a scene that is simply harder to match now stops counting as weak after a few seconds;
- every ``SEARCH_EVERY`` frames otherwise, in case the scene came back in another orientation or size.

It moves to another view only when that one scores ``SWITCH_MARGIN`` times as much, so that near 45 degrees it
does not flip between two turns frame by frame.
"""

from __future__ import annotations

import numpy as np

from model.geometry import Box
from model.matcher import MatchResult
from model.views import UPRIGHT, AnchorView, AnchorViews, best_view, match_score

#: Matches are weak below this fraction of the best score lately.
DROP_FRACTION = 0.5
#: While they are weak, the other views are tried every this many frames.
RETRY_EVERY = 8
#: Otherwise every this many frames.
SEARCH_EVERY = 30
#: Move to another view only when it scores this many times the current one.
SWITCH_MARGIN = 1.5
#: The best score lately is multiplied by this every frame (halved in about 70 frames).
PEAK_FADE = 0.99


class AnchorSearch:
    """The view of one anchor that frames are matched against, and when to look for a better one among ``views``."""

    def __init__(self, anchor: AnchorViews, views: tuple[AnchorView, ...]) -> None:
        self.anchor, self.views = anchor, views
        self.view = UPRIGHT
        self.peak = 0.0  # the best score lately (fading)
        self.frames_since_search = SEARCH_EVERY  # a new anchor: every view is tried at the first frame
        self.weak = False  # the last frame's matches were weak
        self.searches = 0

    def match(self, frame: np.ndarray, region: Box | None = None, again: bool = False) -> MatchResult:
        """The frame matched against the anchor in the current view, or in a better one found now; ``again``: the
        same frame once more (after a change of settings), which does not count as a frame."""
        result = self.anchor.match(self.view, frame, region)
        score = match_score(result.confidence)
        if not again:
            self.frames_since_search += 1
            self.peak *= PEAK_FADE
        weak = score < DROP_FRACTION * self.peak
        if (weak and not self.weak) or self.frames_since_search >= (RETRY_EVERY if weak else SEARCH_EVERY):
            others = self.anchor.match_views(frame, tuple(view for view in self.views if view != self.view), region)
            best = best_view(others)
            if match_score(others[best].confidence) > SWITCH_MARGIN * score:
                self.view, result, score = best, others[best], match_score(others[best].confidence)
            self.frames_since_search = 0
            self.searches += 1
            weak = score < DROP_FRACTION * self.peak
        self.peak = max(self.peak, score)
        self.weak = weak
        return result
