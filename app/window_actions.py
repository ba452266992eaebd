"""What the window's keys and controls change: how frames are matched (``MatchSettings``) and drawn
(``ViewSettings``), and which model runs. Each change makes a new frozen value and hands it on whole."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from model.classical import REFERENCE_METHODS
from model.matcher import Resize, longer_side

from .actions import SETTING_TOGGLES
from .controls import METHODS, THRESHOLD_STEP, comparison_label
from .render import RANGE_STEP, SIZE_STEP, VIEWS, MatchWindow
from .verify import next_mode
from .worker import SwitchModel

if TYPE_CHECKING:
    from .window import MainWindow

# Longer sides offered beside --resize's. Frames as they come (None) only when --resize -1 asked for it: a 4K
# camera's frames would make coarse matching take gigabytes.
SIZE_PRESETS: tuple[Resize, ...] = (320, 480, 640, 960)


def after(options: tuple[str, ...], current: str) -> str:
    """The option after ``current``, wrapping around (a key that cycles through a control's choices)."""
    return options[(options.index(current) + 1) % len(options)]


def size_options(start: Resize) -> tuple[Resize, ...]:
    """The sizes the window offers to match at: --resize's and SIZE_PRESETS (those of another longer side),
    smallest first."""
    options = [start, *(size for size in SIZE_PRESETS if longer_side(size) != longer_side(start))]
    return tuple(sorted(options, key=longer_side))


def size_label(resize: Resize) -> str:
    if resize is None:
        return "original"
    return f"max {resize}" if isinstance(resize, int) else f"{resize[0]}x{resize[1]}"


class SettingsActions:
    """The window's changes of settings: each ``set_*`` or ``toggle`` makes the new settings, applies them (the
    inference thread gets matching settings whole, the view is redrawn for view settings), shows them in the
    control bar and says what changed in the status bar."""

    def __init__(self, window: MainWindow) -> None:
        self.window = window

    def handlers(self) -> dict[str, object]:
        """The key actions of ``app.actions.ACTIONS`` that change settings, by name (``MainWindow`` adds the rest)."""
        window = self.window
        handlers: dict[str, object] = {
            "model": self.toggle_model, "matcher": lambda: self.set_method(after(METHODS, window.method)),
            "compare": lambda: self.set_compare(after(window.comparisons, window.compare)),
            "geometry": lambda: self.set_geometry(next_mode(window.settings.geometry, window.geometry_modes)),
            "blend": lambda: self.set_blend_anchor(not window.look.blend_anchor),
            "view": lambda: self.set_view(after(VIEWS, window.look.view)),
            "shift_matches": lambda sign: self.set_shown(window.look.shown.shifted(sign * RANGE_STEP)),
            "show_more": lambda sign: self.set_shown(window.look.shown.resized(sign * SIZE_STEP)),
            "threshold": self.step_threshold,
            "size": lambda step: self.set_size(min(max(window.size_index + step, 0), len(window.sizes) - 1)),
            "help": lambda: window.restyle(replace(window.look, show_help=not window.look.show_help)),
        }
        for item in SETTING_TOGGLES:
            handlers[item.name] = self._toggler(item.setting)
        return handlers

    def _toggler(self, name: str) -> object:
        return lambda: self.toggle(name, not getattr(self.window.settings, name))

    def toggle(self, name: str, on: bool) -> None:
        """Turn a boolean matching setting (``app.actions.SETTING_TOGGLES``) on or off."""
        window = self.window
        window.apply(replace(window.settings, **{name: on}))
        item = next(item for item in SETTING_TOGGLES if item.setting == name)
        message = item.said[on] or f"{item.button}: {'on' if on else 'off'}"
        window.say(message + (" (LoFTR only)" if window.method != "loftr" else ""), 5000)

    def set_method(self, method: str) -> None:
        """LoFTR (its last model), or OpenCV's SIFT or ORB or DISK + LightGlue on the same frames, to compare."""
        window = self.window
        if method != window.method:
            window.inference.request(SwitchModel(window.loftr_domain if method == "loftr" else method))

    def set_compare(self, choice: str) -> None:
        """Draw another matcher's matches on the same frames below the main view: SIFT's, ORB's, LightGlue's or a
        LoFTR weights file's (one of ``comparisons``; "none": stop)."""
        self.window.apply(replace(self.window.settings, compare=None if choice == "none" else choice))
        self.window.say(f"compare with: {comparison_label(choice)}", 5000)

    def toggle_model(self) -> None:
        window = self.window
        if window.domain in REFERENCE_METHODS:  # m from SIFT, ORB or LightGlue: back to LoFTR
            window.inference.request(SwitchModel(window.loftr_domain))
            return
        if not window.model_switch:
            window.say("the indoor and the outdoor model are the same weights here; give --indoor_weight or "
                       "--outdoor_weight to switch between two", 8000)
            return
        window.inference.request(SwitchModel("indoor" if window.domain == "outdoor" else "outdoor"))

    def set_geometry(self, mode: str) -> None:
        self.window.apply(replace(self.window.settings, geometry=mode))
        self.window.say(f"geometric verification: {mode}", 5000)

    def set_blend_anchor(self, on: bool) -> None:
        """Blend the anchor into the live frame through the homography, or stop; turning it on also turns on
        the homography fit it needs."""
        window = self.window
        message = "anchor blended into the live frame" if on else "anchor blending off"
        if on and window.settings.geometry != "homography":
            window.apply(replace(window.settings, geometry="homography"))
            message += " (geometric verification: homography)"
        window.restyle(replace(window.look, blend_anchor=on))
        window.say(message, 5000)

    def set_view(self, view: str) -> None:
        self.window.restyle(replace(self.window.look, view=view))
        self.window.say(f"matches drawn as {view}", 5000)

    def set_shown(self, shown: MatchWindow) -> None:
        """Which of the ranked matches are drawn (d / f shift them, c / v resize them)."""
        self.window.restyle(replace(self.window.look, shown=shown))

    def step_threshold(self, sign: int) -> None:
        if self.window.threshold is not None:  # known once the model's first result came
            self.set_threshold(self.window.threshold + sign * THRESHOLD_STEP)

    def set_threshold(self, value: float) -> None:
        """A new coarse confidence threshold (clipped to [0, 1], to two decimals) for the current model."""
        window = self.window
        window.threshold = min(max(round(value, 2), 0.0), 1.0)
        window.apply(replace(window.settings, threshold=window.threshold))
        window.say(f"coarse confidence threshold {window.threshold:.2f}", 5000)

    def set_size(self, index: int) -> None:
        """Match frames at ``window.sizes[index]`` from the next frame on (the anchor is sized again)."""
        window = self.window
        window.apply(replace(window.settings, resize=window.sizes[index]))
        window.say(f"matching at {size_label(window.sizes[index])}", 5000)
