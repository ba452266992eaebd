"""The matching settings a user changes at run time, as one frozen value.

The window keeps the current :class:`MatchSettings`; a key or a control makes a new one with
``dataclasses.replace`` and hands it whole to the inference thread, which applies what changed between frames.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from model.matcher import Resize


@dataclass(frozen=True)
class MatchSettings:
    """How frames are matched against the anchor.

    geometry: geometric verification (``app.verify.GEOMETRY_MODES``). any_rotation, any_scale: the anchor's
    views LoFTR also tries (turned by quarter turns, at half size). resize: the size frames are matched at
    (``model.matcher.Resize``). threshold: the coarse confidence threshold, None for the model's own (it resets
    when the model changes). compare: a second matcher on the same frames (a name ``load_model`` knows: "sift",
    "orb" or a weights file), or None. inliers_only: keep only the matches the geometric fit takes as inliers.
    """

    geometry: str = "none"
    any_rotation: bool = False
    any_scale: bool = False
    resize: Resize = None
    threshold: float | None = None
    compare: str | None = None
    inliers_only: bool = False

    def changed(self, other: MatchSettings) -> tuple[str, ...]:
        """The names of the fields in which ``other`` differs from these settings."""
        return tuple(field.name for field in fields(self) if getattr(self, field.name) != getattr(other, field.name))


#: Settings before any flag or key changed them.
DEFAULT_SETTINGS = MatchSettings()


@dataclass(frozen=True)
class Outputs:
    """What a run writes into ``folder``, the window and headless runs alike: the mp4 of the view
    (``video``), of the input (``input_video``), an npz of matches per frame (``matches``), a PNG per frame
    (``pngs``, headless); videos play at ``fps``."""

    folder: Path = Path("demo_output")
    fps: float = 15.0
    video: bool = False
    input_video: bool = False
    matches: bool = False
    pngs: bool = True
