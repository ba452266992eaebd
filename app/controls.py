"""The window's control bar: every setting a key changes, as a widget, for those who reach for the mouse.

The bar only reports what was clicked (signals) and shows what it is told (``show_state(BarState)``); the
window owns the state, so keys and widgets stay in step. A boolean setting with a key in the action table
(``app.actions.SETTING_TOGGLES``) gets its button here without code of its own. Its widgets never take the
keyboard focus: the window's keys keep working after a click (a focused combo box would otherwise swallow letters
to pick its items).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QAction, QMouseEvent
from PyQt6.QtWidgets import QComboBox, QDoubleSpinBox, QLabel, QSlider, QStyle, QStyleOptionSlider, QToolBar, QWidget

from model.classical import reference_methods

from .actions import SETTING_TOGGLES, tooltip
from .render import VIEWS, ViewSettings
from .settings import DEFAULT_SETTINGS, MatchSettings
from .verify import available_modes
from .window_setup import COMPARISONS

#: What the Matcher box offers: LoFTR (the model of the Model button), or OpenCV's SIFT or ORB or DISK + LightGlue
#: (where installed) to compare with.
METHODS = ("loftr", *reference_methods())
THRESHOLD_STEP = 0.05  # the spin box's step, as the [ / ] keys


def comparison_label(choice: str) -> str:
    """How a comparison is named in the Compare box: "none", "sift", "orb", "lightglue" or a weights file's name."""
    return choice if choice in COMPARISONS else Path(choice).name


@dataclass(frozen=True)
class BarChoices:
    """What the bar's boxes offer: matching sizes (labels), comparisons ("none", SIFT, ORB, ..., and a LoFTR weights
    file's path, shown by its name) and geometric verification modes."""

    sizes: tuple[str, ...] = ()
    comparisons: tuple[str, ...] = COMPARISONS
    geometry_modes: tuple[str, ...] = available_modes(False)


@dataclass(frozen=True)
class BarState:
    """Everything the bar shows: the LoFTR model (``domain``), the matcher shown (``method``), how frames are
    matched and drawn, the threshold (None: not known yet), and the window's own state."""

    domain: str = "-"
    method: str = "loftr"
    settings: MatchSettings = DEFAULT_SETTINGS
    look: ViewSettings = ViewSettings()
    threshold: float | None = None
    paused: bool = False
    plots: bool = True
    recording: bool = False
    size: int = 0


class ControlBar(QToolBar):
    """Open, anchor, model, matcher, comparison, any rotation and scale, geometric verification, blend, view, size,
    threshold, pause, step back and forward, snapshot, record, plots."""

    open_clicked = pyqtSignal()
    anchor_clicked = pyqtSignal()
    anchor_file_clicked = pyqtSignal()
    model_clicked = pyqtSignal()
    method_chosen = pyqtSignal(str)
    compare_chosen = pyqtSignal(str)
    setting_toggled = pyqtSignal(str, bool)  # a boolean MatchSettings field (app.actions.SETTING_TOGGLES), on/off
    geometry_chosen = pyqtSignal(str)
    blend_toggled = pyqtSignal(bool)
    view_chosen = pyqtSignal(str)
    threshold_chosen = pyqtSignal(float)
    size_chosen = pyqtSignal(int)  # an index into the sizes the bar was given
    pause_toggled = pyqtSignal(bool)
    step_back_clicked = pyqtSignal()
    step_clicked = pyqtSignal()
    snapshot_clicked = pyqtSignal()
    record_toggled = pyqtSignal(bool)
    plots_toggled = pyqtSignal(bool)

    def __init__(self, choices: BarChoices, state: BarState, parent: QWidget | None = None) -> None:
        """``choices``: what the boxes offer; ``state``: what the bar shows first."""
        super().__init__("controls", parent)
        self.setMovable(False)
        self.open_action = self._action("Open...", tooltip("open"), self.open_clicked)
        self.anchor_action = self._action("Set anchor", tooltip("anchor"), self.anchor_clicked)
        self.anchor_file_action = self._action("Anchor image...",
                                               "an image file becomes the anchor (or drop one on the window)",
                                               self.anchor_file_clicked)
        self.model_action = self._action("Model: -", tooltip("model"), self.model_clicked)
        self.method_box = self._combo("Matcher", METHODS, tooltip("matcher"))
        self.method_box.currentTextChanged.connect(self.method_chosen)
        comparisons = choices.comparisons
        self.compare_box = self._combo("Compare", tuple(comparison_label(choice) for choice in comparisons),
                                       tooltip("compare"))
        for index, choice in enumerate(comparisons):
            self.compare_box.setItemData(index, choice)
        self.compare_box.currentIndexChanged.connect(
            lambda index: self.compare_chosen.emit(self.compare_box.itemData(index)))
        self.setting_actions = {item.setting: self._toggle(item.button, tooltip(item.name),
                                                           self._setting_signal(item.setting))
                                for item in SETTING_TOGGLES}
        self.addSeparator()
        self.geometry_box = self._combo("Geometry", choices.geometry_modes, tooltip("geometry"))
        self.geometry_box.currentTextChanged.connect(self.geometry_chosen)
        self.blend_action = self._toggle("Blend", tooltip("blend"), self.blend_toggled)
        self.addSeparator()
        self.view_box = self._combo("View", VIEWS, tooltip("view"))
        self.view_box.currentTextChanged.connect(self.view_chosen)
        self.size_box = self._combo("Size", choices.sizes, tooltip("size"))
        self.size_box.currentIndexChanged.connect(self.size_chosen)
        self.threshold_box = self._threshold_box()
        self.addSeparator()
        self.pause_action = self._toggle("Pause", tooltip("pause"), self.pause_toggled)
        self.step_back_action = self._action("Back", tooltip("step"), self.step_back_clicked)
        self.step_action = self._action("Step", tooltip("step"), self.step_clicked)
        self.snapshot_action = self._action("Snapshot", tooltip("snapshot"), self.snapshot_clicked)
        self.record_action = self._toggle("Record", tooltip("record"), self.record_toggled)
        self.plots_action = self._toggle("Plots", tooltip("plots"), self.plots_toggled)
        self.show_state(state)

    def _setting_signal(self, name: str) -> Callable[[bool], None]:
        return lambda on: self.setting_toggled.emit(name, on)

    def _threshold_box(self) -> QDoubleSpinBox:
        self.addWidget(QLabel(" Threshold "))
        box = QDoubleSpinBox()
        box.setRange(0.0, 1.0)
        box.setSingleStep(THRESHOLD_STEP)
        box.setDecimals(2)
        box.setToolTip(tooltip("threshold"))
        box.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        box.valueChanged.connect(self.threshold_chosen)
        self.addWidget(box)
        return box

    def _action(self, text: str, tip: str, signal: pyqtSignal) -> QAction:
        action = self.addAction(text)
        assert action is not None
        action.setToolTip(tip)
        action.triggered.connect(lambda: signal.emit())
        return action

    def _toggle(self, text: str, tip: str, signal: pyqtSignal | Callable[[bool], None]) -> QAction:
        action = self.addAction(text)
        assert action is not None
        action.setCheckable(True)
        action.setToolTip(tip)
        action.toggled.connect(signal)
        return action

    def _combo(self, label: str, items: tuple[str, ...], tip: str) -> QComboBox:
        self.addWidget(QLabel(f" {label} "))
        box = QComboBox()
        box.addItems(list(items))
        box.setToolTip(tip)
        box.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.addWidget(box)
        return box

    def show_state(self, state: BarState) -> None:
        """Show the window's state (after a key or a click) without emitting the widgets' signals again."""
        settings, look = state.settings, state.look
        updates = [(self.model_action, lambda: self.model_action.setText(f"Model: {state.domain}")),
                   (self.method_box, lambda: self.method_box.setCurrentText(state.method)),
                   (self.compare_box, lambda: self.compare_box.setCurrentIndex(
                       self.compare_box.findData(settings.compare or "none"))),
                   (self.geometry_box, lambda: self.geometry_box.setCurrentText(settings.geometry)),
                   (self.blend_action, lambda: self.blend_action.setChecked(look.blend_anchor)),
                   (self.view_box, lambda: self.view_box.setCurrentText(look.view)),
                   (self.pause_action, lambda: self.pause_action.setChecked(state.paused)),
                   (self.plots_action, lambda: self.plots_action.setChecked(state.plots)),
                   (self.record_action, lambda: self.record_action.setChecked(state.recording)),
                   (self.size_box, lambda: self.size_box.setCurrentIndex(state.size))]
        if state.threshold is not None:
            updates.append((self.threshold_box, lambda: self.threshold_box.setValue(state.threshold or 0.0)))
        updates.extend((action, _checker(action, bool(getattr(settings, name))))
                       for name, action in self.setting_actions.items())
        for widget, show in updates:
            blocked = widget.blockSignals(True)
            try:
                show()
            finally:
                widget.blockSignals(blocked)


def _checker(action: QAction, on: bool) -> Callable[[], None]:
    return lambda: action.setChecked(on)


class JumpSlider(QSlider):
    """A slider on which a click beside the handle jumps there, as on a video player's, instead of a page step
    towards it."""

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt's name
        option = QStyleOptionSlider()
        self.initStyleOption(option)
        style = self.style()
        assert style is not None
        handle = style.subControlRect(QStyle.ComplexControl.CC_Slider, option, QStyle.SubControl.SC_SliderHandle,
                                      self)
        point = event.position().toPoint()
        if event.button() != Qt.MouseButton.LeftButton or handle.contains(point):
            super().mousePressEvent(event)  # the handle: dragged as usual
            return
        self.setValue(QStyle.sliderValueFromPosition(self.minimum(), self.maximum(), point.x() - handle.width() // 2,
                                                     self.width() - handle.width()))
        event.accept()


class PositionBar(QToolBar):
    """Where in a file or folder the frame on screen is, as a slider over its frames: drag it, or click where to go,
    to go on from another frame, e.g. to pick an anchor anywhere in a video. ``position_chosen`` is
    emitted when the handle is let go, not while it is dragged (each position would be a seek)."""

    position_chosen = pyqtSignal(int)  # a frame index of the source

    def __init__(self, length: int, parent: QWidget | None = None) -> None:
        super().__init__("position", parent)
        self.setMovable(False)
        self.length = length
        self.slider = JumpSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, length - 1)
        self.slider.setPageStep(max(1, length // 20))
        self.slider.setTracking(False)  # valueChanged only when let go
        self.slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.slider.setToolTip("drag to go on from another frame of the file (paused: see it, then n)")
        self.slider.valueChanged.connect(self.position_chosen)
        self.slider.sliderMoved.connect(self._show_number)  # the number follows the handle while dragged
        self.label = QLabel()
        self.addWidget(QLabel(" Frame "))
        self.addWidget(self.slider)
        self.addWidget(self.label)
        self.show_position(0)

    def show_position(self, index: int) -> None:
        """The frame on screen (its index in the source; a looped file's passes wrap), unless the handle is held."""
        if self.slider.isSliderDown():
            return
        position = index % self.length
        blocked = self.slider.blockSignals(True)
        try:
            self.slider.setValue(position)
        finally:
            self.slider.blockSignals(blocked)
        self._show_number(position)

    def _show_number(self, position: int) -> None:
        self.label.setText(f" {position} / {self.length - 1} ")
