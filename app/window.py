"""The main window: the view, the plots and the control bar, wired to the capture and inference threads.

The window owns the state a user changes (``MatchSettings``, ``ViewSettings``); its helpers change it:
``SettingsActions`` (keys and controls that change settings), ``Playback`` (pause, step, seek) and
``InputActions`` (inputs and anchor files opened or dropped). Keys come from one table (``app.actions``).
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np
from PyQt6.QtCore import QSize, Qt, QTimer
from PyQt6.QtGui import QDragEnterEvent, QDropEvent, QKeyEvent
from PyQt6.QtWidgets import QLabel, QMainWindow, QSizePolicy, QSplitter, QWidget

from model.classical import REFERENCE_METHODS

from .actions import KEY_ACTIONS, status_hints
from .capture import CaptureThread
from .controls import BarChoices, BarState, ControlBar
from .inputs import InputActions, dropped_file
from .packet_view import anchor_box, render_packet
from .playback import Playback
from .plots import StatsPanel
from .render import ViewSettings
from .session import MatchPacket
from .settings import MatchSettings
from .sink import OutputSink
from .verify import available_modes
from .view import MatchView
from .window_actions import SettingsActions, size_label, size_options
from .window_setup import WindowHooks, WindowOptions
from .window_size import fit_to_screen, fit_to_view, text_scale_for
from .worker import InferenceThread

MIN_REGION_PX = 16  # a smaller box (anchor pixels; e.g. a click) selects no region


def key_bindings() -> dict[tuple[int, bool], tuple[str, tuple[object, ...]]]:
    """(Qt key code, Control held) -> (action name, its arguments), from the key table ``app.actions``."""
    bindings = {}
    for item in KEY_ACTIONS:
        for key in item.keys:
            code = int(getattr(Qt.Key, "Key_" + key.removeprefix("Ctrl+")).value)
            bindings[(code, key.startswith("Ctrl+"))] = (item.name, item.argument_of(key))
    return bindings


def side_by_side(view: QWidget, plots: QWidget) -> QSplitter:
    """The view and the plots beside it, the view taking four fifths of the width."""
    splitter = QSplitter(Qt.Orientation.Horizontal)
    splitter.addWidget(view)
    splitter.addWidget(plots)
    splitter.setStretchFactor(0, 4)
    splitter.setStretchFactor(1, 1)
    return splitter


def key_hints() -> QLabel:
    """The status bar's line of keys: a normal status-bar widget, so messages cover it for their time, then the keys
    show again. Its width is ignored: on a small screen the line is cut instead of making the window wider."""
    keys = QLabel(status_hints())
    keys.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    return keys


def settled_timer(parent: QWidget, slot: Callable[[], object], milliseconds: int = 150) -> QTimer:
    """A single-shot timer for ``slot``: started again on every event of a burst, it fires once they stop."""
    timer = QTimer(parent)
    timer.setSingleShot(True)
    timer.setInterval(milliseconds)
    timer.timeout.connect(slot)
    return timer


class MainWindow(QMainWindow):
    """Owns the threads, the writers and the state a user changes; turns results into pictures."""

    def __init__(self, capture: CaptureThread, inference: InferenceThread, options: WindowOptions,
                 hooks: WindowHooks) -> None:
        super().__init__()
        # The input shown, as the window knows it (the capture thread's own source is its business).
        self.input_name, self.input_fps = capture.source.name, capture.source.fps
        self.capture, self.inference = capture, inference
        # The window's outputs go on after a failed write (said); it writes no PNG per frame, only snapshots.
        self.sink = OutputSink(replace(options.outputs, pngs=False), lambda message: self.say(message, 8000),
                               paced=True)
        self.view, self.stats = MatchView(), StatsPanel()
        self.splitter = side_by_side(self.view, self.stats)
        self.setCentralWidget(self.splitter)
        self.model_label, self.device_label, self.status_text = "", "", "starting..."
        self.show_title()
        self.settings = replace(options.settings, compare=None)  # how frames are matched, as asked of the thread
        self.look = options.look  # how views are drawn
        self.geometry_modes = available_modes(options.setup.intrinsics is not None)  # essential needs intrinsics
        self.domain = inference.domain  # the model shown; the inference thread's own copy is not read here
        # The LoFTR model m toggles and k comes back to (the domain, when another matcher is shown).
        self.loftr_domain = "outdoor" if inference.domain in REFERENCE_METHODS else inference.domain
        self.model_switch = options.model_switch  # False: indoor and outdoor are the same weights file
        self.comparisons = options.comparisons  # what b cycles through (ControlBar's comparisons)
        self.threshold: float | None = None  # the coarse threshold asked for; None: the model's, not yet known
        self.sizes = size_options(self.settings.resize)  # what , and . step through
        self.actions, self.playback, self.inputs = SettingsActions(self), Playback(self), InputActions(self, hooks)
        self.setAcceptDrops(self.inputs.accepts_drops)
        self.controls = ControlBar(BarChoices(tuple(map(size_label, self.sizes)), self.comparisons,
                                              self.geometry_modes), self.bar_state())
        self.addToolBar(self.controls)
        self._connect_controls(hooks)
        fit_to_screen(self, QSize(1600, 560))
        self.opening_size: QSize | None = self.size()  # until the first view, which may want more (fit_to_view)
        self.playback.show_positions(capture.source.length if capture.frames_from is not None else None)
        self.last_packet: MatchPacket | None = None
        self.results_received = self.results_shown = 0
        self.result_times: tuple[float, float] | None = None  # perf_counter of the first and the latest result
        self._draw_pending = False
        self.statusBar().addWidget(key_hints(), 1)
        self.handlers, self.key_bindings = self.action_handlers(), key_bindings()
        self._connect_threads()
        # Paused or at the end of a file no new result redraws the view: a resize that changes the text size does.
        self.drawn_look: ViewSettings | None = None  # as last drawn, and asked of the inference thread
        self._resize_settled = settled_timer(self, self._redraw_for_text_scale)  # a drag of the edge has stopped
        self.view.resized.connect(self._resize_settled.start)

    def _connect_controls(self, hooks: WindowHooks) -> None:
        controls, actions, playback = self.controls, self.actions, self.playback
        slots = {"anchor_clicked": self.inference.request_anchor, "anchor_file_clicked": self.inputs.choose_anchor_file,
                 "model_clicked": actions.toggle_model, "method_chosen": actions.set_method,
                 "compare_chosen": actions.set_compare, "setting_toggled": actions.toggle,
                 "geometry_chosen": actions.set_geometry, "blend_toggled": actions.set_blend_anchor,
                 "view_chosen": actions.set_view, "threshold_chosen": actions.set_threshold,
                 "size_chosen": actions.set_size, "pause_toggled": playback.play_or_pause,
                 "step_clicked": playback.step, "step_back_clicked": lambda: playback.step(-1),
                 "snapshot_clicked": self.snapshot, "record_toggled": self.set_recording,
                 "plots_toggled": self.set_plots_visible, "open_clicked": self.inputs.choose_input}
        for name, slot in slots.items():
            getattr(controls, name).connect(slot)
        controls.anchor_file_action.setEnabled(hooks.read_anchor_file is not None)
        controls.open_action.setEnabled(hooks.open_input is not None)

    def _connect_threads(self) -> None:
        self.inference.result_ready.connect(self.on_result)
        self.inference.status.connect(self.on_status)
        self.inference.model_changed.connect(self.on_model_changed)
        self.inference.failed.connect(self.on_failed)
        self.inference.notice.connect(lambda message: self.say(message, 5000))
        self.capture.stream_ended.connect(self.playback.on_stream_ended)
        self.capture.warning.connect(lambda message: self.say(message, 8000))
        self.view.box_selected.connect(self.on_box_selected)
        self.view.box_cleared.connect(lambda: self.inference.request_region(None))

    @property
    def compare(self) -> str:
        """The matcher drawn below (another matcher, or a weights file), or "none"."""
        return self.settings.compare or "none"

    @property
    def method(self) -> str:
        """The matcher shown: "loftr", or one of the others (``controls.METHODS``)."""
        return self.domain if self.domain in REFERENCE_METHODS else "loftr"

    @property
    def size_index(self) -> int:
        return self.sizes.index(self.settings.resize)

    def apply(self, settings: MatchSettings) -> None:
        """Match frames as ``settings`` say from the next frame on (the inference thread applies them whole)."""
        self.settings = settings
        self.inference.request(settings)
        self.show_state()

    def restyle(self, look: ViewSettings) -> None:
        """Draw views as ``look`` says, the one on screen at once."""
        self.look = look
        self.show_state()
        self.redraw()

    def bar_state(self) -> BarState:
        return BarState(self.loftr_domain, self.method, self.settings, self.look, self.threshold,
                        self.playback.paused, not self.stats.isHidden(),
                        self.sink.recording, self.size_index)

    def show_state(self) -> None:
        self.controls.show_state(self.bar_state())

    def say(self, message: str, milliseconds: int) -> None:
        """A message in the status bar for a while (0: until the next one)."""
        self.statusBar().showMessage(message, milliseconds)

    def start(self) -> None:
        self.inference.start()
        self.capture.start()

    def on_result(self, packet: MatchPacket) -> None:
        """Every result counts in the plots and the input video; only the newest is drawn.

        Drawing (thousands of lines on a GPU's 640x480 results) can be slower than inference: drawing every
        result would queue them up in Qt's event loop, and the view would fall further and further behind.
        """
        self.last_packet = packet
        self.results_received += 1
        if self.playback.positions is not None:
            self.playback.positions.show_position(packet.frame_index)
        if packet.reanchored:
            self.say(f"too few matches: frame {packet.frame_index} is the new anchor", 5000)
        if self.threshold is None and packet.threshold is not None:
            self.threshold = packet.threshold
            self.show_state()
        if not packet.again:  # the same frame once more (a setting changed while paused) is not a new frame
            now = time.perf_counter()
            self.result_times = (self.result_times[0] if self.result_times else now, now)
            self.stats.add(packet)
            self.sink.write_input(packet.frame)
        self.sink.write_matches(packet, self.results_received - 1)
        if not self._draw_pending:
            self._draw_pending = True
            QTimer.singleShot(0, self._show_newest)

    def matching_rate(self) -> float:
        """Results per second from the first result to the latest (loading, and waiting after the end of a
        file, do not count); 0 before two results."""
        if self.result_times is None or self.results_received < 2:
            return 0.0
        first, latest = self.result_times
        return (self.results_received - 1) / max(latest - first, 1e-9)

    def _show_newest(self) -> None:
        self._draw_pending = False
        canvas = self.redraw()
        self.results_shown += 1
        if canvas is not None and self.opening_size is not None:
            opening, self.opening_size = self.opening_size, None
            fit_to_view(self, canvas.shape, opening)
        if self.sink.recording and canvas is not None:
            self.sink.write_view(canvas)  # the mp4 shows what the window showed
            if not self.sink.recording:  # it failed (said)
                self.show_state()

    def redraw(self) -> np.ndarray | None:
        packet = self.last_packet
        if packet is None:
            return None
        status = "paused" if self.playback.paused else self.status_text
        look = replace(self.look, text_scale=self.text_scale())
        if look != self.drawn_look:  # the inference thread draws each result as the window would
            self.drawn_look = look
            self.inference.request(look)
        labels = (self.model_label, self.device_label)
        drawn = packet.view if packet.view_key == (look, *labels) and not status else None
        canvas = drawn if drawn is not None else render_packet(packet, look, *labels, status)
        self.view.show_canvas(canvas)
        return canvas

    def _redraw_for_text_scale(self) -> None:
        if self.drawn_look is None or self.text_scale() != self.drawn_look.text_scale:
            self.redraw()

    def text_scale(self) -> float:
        return text_scale_for(self.view.shrink_factor())

    def on_box_selected(self, box: tuple[float, float, float, float]) -> None:
        """A box dragged over the anchor (canvas pixels) -> the region of the anchor to match from."""
        if self.last_packet is None:
            return
        x0, y0, x1, y1 = anchor_box(self.last_packet, box)
        if x1 - x0 < MIN_REGION_PX or y1 - y0 < MIN_REGION_PX:
            self.say("drag a box over the anchor (left image) to match only from it; right click: whole anchor "
                     "again", 6000)
            return
        self.inference.request_region((x0, y0, x1, y1))

    def on_status(self, text: str) -> None:
        previous, self.status_text = self.status_text, text
        if text:
            self.say(text, 0)
        elif self.statusBar().currentMessage() == previous:  # not a message shown since (e.g. a failure)
            self.statusBar().clearMessage()
        self.redraw()

    def on_model_changed(self, domain: str, label: str, device: str) -> None:
        self.domain, self.model_label, self.device_label = domain, label, device
        if domain not in REFERENCE_METHODS:
            self.loftr_domain = domain
        self.threshold = None  # the new model starts at its own threshold; the next result shows it
        self.settings = replace(self.settings, threshold=None)  # as the inference thread did
        self.show_state()
        self.show_title()
        self.say(f"model: {label} on {device}", 5000)

    def show_title(self) -> None:
        """The input and, once it is loaded, the model and where it runs."""
        model = f" - {self.model_label} [{self.device_label}]" if self.model_label else ""
        self.setWindowTitle(f"LoFTR Live - {self.input_name}{model}")

    def on_failed(self, message: str) -> None:
        """A request or frame failed (said for 8 s); e.g. a model that did not load: the bar shows the one running."""
        self.say(message, 8000)
        self.show_state()

    def action_handlers(self) -> dict[str, Callable[..., object]]:
        """What each key action of ``app.actions.ACTIONS`` runs (called with the key's argument, if it has one):
        the settings' (``SettingsActions.handlers``) and the window's own."""
        playback = self.playback
        return {
            "anchor": self.inference.request_anchor, "whole_anchor": lambda: self.inference.request_region(None),
            "open": self.inputs.choose_input, **self.actions.handlers(),  # type: ignore[dict-item]
            "pause": lambda: playback.play_or_pause(not playback.paused), "step": playback.step,
            "jump": playback.jump, "snapshot": self.snapshot,
            "record": lambda: self.set_recording(not self.sink.recording),
            "plots": lambda: self.set_plots_visible(not self.stats.isVisible()),
            "full_screen": lambda: (self.showNormal if self.isFullScreen() else self.showFullScreen)(),
            "quit": self.close,
        }

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt's name
        control = bool(event.modifiers() & Qt.KeyboardModifier.ControlModifier)
        code = int(event.key())
        bound = self.key_bindings.get((code, control)) or self.key_bindings.get((code, False))
        if bound is None:
            super().keyPressEvent(event)
            return
        name, arguments = bound
        self.handlers[name](*arguments)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt's name
        if dropped_file(event) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt's name
        self.inputs.drop(event)

    def set_recording(self, on: bool) -> None:
        """Start recording the view (a new, time-stamped mp4 in the output folder) or finalise the recording."""
        if on and not self.sink.recording:
            path = self.sink.start_recording()
            on = path is not None
            if path is not None:
                self.say(f"recording the view to {path} (r stops)", 5000)
        elif not on and (path := self.sink.stop_recording()) is not None:
            self.say(f"saved {path}", 5000)
        self.show_state()

    def set_plots_visible(self, on: bool) -> None:
        self.stats.setVisible(on)
        self.show_state()

    def snapshot(self) -> Path | None:
        """The view as a PNG, and beside it an npz of the matches with both images (``OutputSink.snapshot``)."""
        canvas = self.redraw()
        if canvas is None or self.last_packet is None:
            return None
        path = self.sink.snapshot(canvas, self.last_packet)
        if path is not None:
            self.say(f"saved {path} and its matches, {path.with_suffix('.npz').name}", 5000)
        return path

    def finalise_videos(self) -> bool:
        """Finish the videos being written (the recording too); whether there was one."""
        had = self.sink.finalise_videos()
        self.show_state()
        return had

    def shutdown(self) -> bool:
        """Stop both threads and finalise the outputs; safe to call twice. Whether a thread still runs after the
        wait (a model loading or compiling): then the process must end without the interpreter's shutdown
        (``model.interrupt.end_process``)."""
        self.capture.stop()
        self.inference.stop()
        self.capture.wait(5000)
        self.inference.wait(10000)
        self.finalise_videos()
        return self.capture.isRunning() or self.inference.busy()

    def closeEvent(self, event: object) -> None:  # noqa: N802 - Qt's name
        self.shutdown()
        super().closeEvent(event)  # type: ignore[arg-type]
