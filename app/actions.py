"""Every key binding of the window, in one table.

The window's key dispatch, the help overlay (h), the status-bar hints, the control bar's tooltips, ``--help``'s
key list and the README's keys table are all generated from :data:`ACTIONS` (as napari's shortcut registry does),
so they cannot disagree. This module needs no Qt: the command line's ``--help`` reads it too.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass


@dataclass(frozen=True)
class Action:
    """One thing a user can do from the keyboard (or the mouse, with no ``keys``).

    name: what the window runs (``MainWindow.action_handlers``); empty for a mouse gesture, which is only
    documented here. keys: names of ``Qt.Key`` without "Key_" ("N", "Space", "BracketLeft"), "Ctrl+" before one
    that needs Control;
    ``arguments``, when given, is what each key passes to the handler (d: -1, f: +1). label: how the keys are
    written for people. hint: the status bar's short text (empty: not listed there). setting: a boolean field of
    ``MatchSettings`` that the key turns on and off; such an action needs no code of its own in the window: it
    gets a checkable button, labelled ``button``, in the control bar, and says ``said`` (off, on) when toggled.
    """

    name: str
    keys: tuple[str, ...]
    label: str
    help: str
    hint: str = ""
    arguments: tuple[object, ...] = ()
    setting: str = ""
    button: str = ""
    said: tuple[str, str] = ("", "")

    def argument_of(self, key: str) -> tuple[object, ...]:
        """What the handler is called with for ``key`` (one of ``keys``)."""
        return (self.arguments[self.keys.index(key)],) if self.arguments else ()


ACTIONS: tuple[Action, ...] = (
    Action("anchor", ("N", "Space"), "n / space", "the current frame becomes the anchor", "anchor"),
    Action("whole_anchor", ("Backspace", "Delete"), "Backspace", "match from the whole anchor again"),
    Action("", (), "drag", "a box on the anchor: match only from it; right click: the whole anchor", "", ()),
    Action("", (), "drop", "on the window: an image becomes the anchor; a video or image folder plays"),
    Action("open", ("Ctrl+O",), "Ctrl+O", "play a video file; its first frame is the anchor"),
    Action("model", ("M",), "m", "LoFTR's indoor / outdoor model", "indoor/outdoor"),
    Action("matcher", ("K",), "k", "the matcher: LoFTR / OpenCV SIFT / ORB / DISK + LightGlue on the same frames",
           "LoFTR/SIFT/ORB/LightGlue"),
    Action("compare", ("B",), "b", "compare: SIFT's, ORB's, LightGlue's or --compare FILE's matches below, or none",
           "compare"),
    Action("any_rotation", ("T",), "t", "any rotation: LoFTR also tries the anchor turned", "any rotation",
           setting="any_rotation", button="Any rotation",
           said=("any rotation off: LoFTR matches up to about 45 degrees of rotation",
                 "any rotation: the anchor is also tried turned by 90, 180 and 270 degrees")),
    Action("any_scale", ("Z",), "z", "any scale: LoFTR also tries the anchor at half size", "any scale",
           setting="any_scale", button="Any scale",
           said=("any scale off: LoFTR matches up to about twice or half the anchor's size",
                 "any scale: the anchor is also tried at half size, for a scene or object farther away")),
    Action("inliers_only", ("O",), "o", "inliers only: keep just the matches the geometric fit agrees with",
           "inliers", setting="inliers_only", button="Inliers only",
           said=("all matches shown, outliers greyed", "only the inliers of the geometric fit are kept")),
    Action("geometry", ("E",), "e", "geometric check: none / homography / fundamental / essential",
           "geometry"),
    Action("blend", ("W",), "w", "the anchor over the frame through the homography (grey: aligned)",
           "blend"),
    Action("view", ("L",), "l", "lines (colour: confidence) / points (colour: place in the anchor)",
           "lines/points"),
    Action("shift_matches", ("D", "F"), "d / f", "shift the shown matches (ranked by confidence)",
           "matches shown", (-1, 1)),
    Action("show_more", ("C", "V"), "c / v", "show fewer / more matches", "", (-1, 1)),
    Action("threshold", ("BracketLeft", "BracketRight"), "[ / ]", "lower / raise the coarse confidence threshold",
           "threshold", (-1, 1)),
    Action("size", ("Comma", "Period"), ", / .", "smaller / larger matching size (faster / more matches)",
           "size", (-1, 1)),
    Action("pause", ("P",), "p", "pause / play (at the end: play again)", "pause"),
    Action("step", ("Left", "Right"), "left / right", "the frame before / after (pauses)",
           "step", (-1, 1)),
    Action("jump", ("Home", "End", "PageUp", "PageDown"), "Home / End",
           "first / last frame (Page Up / Down: a second back / on)", "", ("first", "last", "back", "on")),
    Action("snapshot", ("S",), "s", "save the view (PNG) and its matches (npz)", "snapshot"),
    Action("record", ("R",), "r", "record the view as an mp4 / stop", "record"),
    Action("plots", ("G",), "g", "show / hide the plots", "graphs"),
    Action("full_screen", ("F11",), "F11", "full screen / back"),
    Action("help", ("H",), "h", "this help", "help"),
    Action("quit", ("Q", "Escape"), "q / Esc", "quit (outputs are finalised)", "quit"),
)

#: The actions a key runs (mouse gestures have no handler).
KEY_ACTIONS = tuple(action for action in ACTIONS if action.keys)
#: The actions that turn a boolean ``MatchSettings`` field on and off (a button each in the control bar).
SETTING_TOGGLES = tuple(action for action in ACTIONS if action.setting)


def action(name: str) -> Action:
    """The action called ``name``."""
    for candidate in KEY_ACTIONS:
        if candidate.name == name:
            return candidate
    raise KeyError(name)


def tooltip(name: str) -> str:
    """A control's tooltip: its keys and what they do."""
    found = action(name)
    return f"{found.label}: {found.help}"


def status_hints() -> str:
    """The status bar's line of keys: "n / space: anchor  m: indoor/outdoor ..."."""
    return "  ".join(f"{item.label.replace(' / ', '/')}: {item.hint}" for item in ACTIONS if item.hint)


def help_lines(width: int = 120) -> tuple[str, ...]:
    """The help overlay: each action's "keys: help", in order, as many to a line as fit in ``width`` characters."""
    entries = [f"{item.label}: {item.help}" for item in ACTIONS]
    lines: list[str] = []
    for entry in entries:
        if lines and len(lines[-1]) + 4 + len(entry) <= width:
            lines[-1] += "    " + entry
        else:
            lines.append(entry)
    return tuple(lines)


def epilog_keys(width: int = 116) -> str:
    """``--help``'s key list: one action a line (wrapped, aligned)."""
    column = max(len(item.label) for item in ACTIONS) + 3
    lines = ["keys (GUI):"]
    for item in ACTIONS:
        lines.extend(textwrap.wrap(item.help, width, initial_indent="  " + item.label.ljust(column),
                                   subsequent_indent=" " * (column + 2)))
    return "\n".join(lines)


def markdown_table() -> str:
    """The README's keys table."""
    rows = ["| key | what it does |", "| --- | --- |"]
    rows.extend(f"| {item.label.replace('|', '&#124;')} | {item.help} |" for item in ACTIONS)
    return "\n".join(rows)
