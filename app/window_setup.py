"""What the window starts with, as two frozen values: the options (from the flags) and the hooks (what it calls
to load a model or open a file). No Qt here: the command line builds them before Qt is imported."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from model.classical import AnyMatcher, reference_methods

from .render import ViewSettings
from .session import SessionSetup, StartAnchor
from .settings import DEFAULT_SETTINGS, MatchSettings, Outputs
from .sources import Frame, FrameSource

#: What the Compare box offers first: no comparison, then a classical matcher drawn below LoFTR's view, on the
#: same frames (a LoFTR weights file of --compare FILE comes after them).
COMPARISONS = ("none", *reference_methods())

#: Opens a video file or image folder to play in the window: (its source, its frames from any frame on).
InputOpener = Callable[[str], tuple[FrameSource, Callable[[int], Iterator[Frame]]]]


@dataclass(frozen=True)
class WindowOptions:
    """How the window starts.

    settings: how frames are matched (``MatchSettings``); look: how views are drawn (``ViewSettings``); setup: the
    anchor's region, when a frame becomes the anchor by itself, the camera's intrinsics (``SessionSetup``);
    anchor: the first anchor; domain: the model running ("indoor", "outdoor", "sift", "orb", "lightglue");
    outputs: what is written where; comparisons: what b and the Compare box offer; model_switch: whether m has a
    second model to switch to; stride: every stride-th frame of a file or folder; adapt_threads: match on the cores
    other programs leave free (``model.cpu_load``), else on torch's threads; compile_in_background: LoFTR on a CPU is
    compiled beside the matching, which takes the compiled model when it is ready (``app.worker.BackgroundCompile``).
    """

    settings: MatchSettings = DEFAULT_SETTINGS
    look: ViewSettings = ViewSettings()
    setup: SessionSetup = SessionSetup()
    anchor: StartAnchor | None = None
    domain: str = "outdoor"
    outputs: Outputs = Outputs()
    comparisons: tuple[str, ...] = COMPARISONS
    model_switch: bool = True
    stride: int = 1
    adapt_threads: bool = True
    compile_in_background: bool = False


@dataclass(frozen=True)
class WindowHooks:
    """What the window calls: ``load_model`` a model by domain or comparison name (-> matcher, label);
    ``read_anchor_file`` an image file dropped on it (-> image, name); ``frames_from`` the input's frames from any
    frame on (a file or folder: the slider); ``open_input`` a video or folder dropped on it. None: not offered."""

    load_model: Callable[[str], tuple[AnyMatcher, str]]
    read_anchor_file: Callable[[str], tuple[np.ndarray, str]] | None = None
    frames_from: Callable[[int], Iterator[Frame]] | None = None
    open_input: InputOpener | None = None


def comparisons_offered(compare: str | None) -> tuple[str, ...]:
    """What the Compare box offers: none, SIFT, ORB, DISK + LightGlue (where installed), and the LoFTR weights file
    of --compare FILE."""
    return COMPARISONS if compare is None or compare in COMPARISONS else (*COMPARISONS, compare)
