"""The Qt window: the rendered match view, the plots (``app.plots``), keyboard control, snapshot/video output."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, TypeVar

import numpy as np
from PyQt6.QtCore import QPoint, QRect, QSize, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QDragEnterEvent, QDropEvent, QImage, QKeyEvent, QMouseEvent, QPixmap
from PyQt6.QtWidgets import QFileDialog, QLabel, QMainWindow, QRubberBand, QSizePolicy, QSplitter

from model.classical import CLASSICAL_METHODS, REFERENCE_METHODS
from model.matcher import Resize, longer_side

from .actions import KEY_ACTIONS, status_hints
from .capture import CaptureThread
from .controls import METHODS, THRESHOLD_STEP, ControlBar, PositionBar, comparison_label
from .plots import StatsPanel
from .recorder import Recorder
from .render import GAP, RANGE_STEP, SIZE_STEP, VIEWS, MatchWindow, view_scales
from .session import MatchPacket, render_packet
from .settings import MatchSettings
from .sources import VIDEO_SUFFIXES
from .verify import available_modes, next_mode
from .window_setup import WindowHooks, WindowOptions
from .worker import InferenceThread, NewAnchor, SwitchModel

MAX_TEXT_SCALE = 3.0  # the overlay's text grows with the view's shrinking up to this (beyond, it fills the view)
MIN_REGION_PX = 16  # a smaller box (anchor pixels; e.g. a click) selects no region
# Longer sides offered beside --resize's. Frames as they come (None) only when --resize -1 asked for it: a 4K
# camera's frames would make coarse matching take gigabytes.
SIZE_PRESETS: tuple[Resize, ...] = (320, 480, 640, 960)


def _after(options: tuple[str, ...], current: str) -> str:
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


def _is_input(path: str) -> bool:
    """A video file or a folder (of images): what the window can play, rather than an anchor image."""
    return Path(path).is_dir() or Path(path).suffix.lower() in VIDEO_SUFFIXES


T = TypeVar("T")  # what an action on a dropped or chosen file gives (see MainWindow._or_say)


def _dropped_file(event: QDragEnterEvent | QDropEvent) -> str | None:
    """The first local file a drag carries, or None (text, web links)."""
    mime = event.mimeData()
    if mime is None:
        return None
    files = [url.toLocalFile() for url in mime.urls() if url.isLocalFile()]
    return files[0] if files else None


def key_bindings() -> dict[tuple[int, bool], tuple[str, tuple[object, ...]]]:
    """(Qt key code, Control held) -> (action name, its arguments), from the key table ``app.actions``."""
    bindings = {}
    for item in KEY_ACTIONS:
        for key in item.keys:
            code = int(getattr(Qt.Key, "Key_" + key.removeprefix("Ctrl+")).value)
            bindings[(code, key.startswith("Ctrl+"))] = (item.name, item.argument_of(key))
    return bindings


#: Narrower than this, the plots' titles wrap onto three lines and their axes crowd: when the window grows to show
#: its first view, the view may take width from wider plots down to this (see ``MainWindow.fit_to_view``).
MIN_PLOTS_WIDTH = 400


class MatchView(QLabel):
    """Shows a BGR canvas scaled to the widget, keeping its aspect ratio.

    A drag with the left button selects a box (``box_selected``, in canvas pixels), shown as a rubber band
    meanwhile; a right click emits ``box_cleared``.
    """

    box_selected = pyqtSignal(object)  # (x0, y0, x1, y1) in canvas pixels
    box_cleared = pyqtSignal()
    resized = pyqtSignal()

    def __init__(self) -> None:
        super().__init__()
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(320, 120)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setStyleSheet("background: black;")
        self._pixmap: QPixmap | None = None
        self._rubber_band = QRubberBand(QRubberBand.Shape.Rectangle, self)
        self._drag_start: QPoint | None = None

    def show_canvas(self, canvas: np.ndarray) -> None:
        canvas = np.ascontiguousarray(canvas)
        image = QImage(canvas.data, canvas.shape[1], canvas.shape[0], canvas.strides[0],
                       QImage.Format.Format_BGR888).copy()
        self._pixmap = QPixmap.fromImage(image)
        self._rescale()

    def to_canvas(self, point: QPoint) -> tuple[float, float] | None:
        """A widget position -> canvas pixels (the canvas is drawn scaled and centred), or None before one."""
        shown = self.pixmap()
        if self._pixmap is None or shown is None or shown.isNull():
            return None
        size = shown.deviceIndependentSize()  # widget units; on a high-DPI screen it has more pixels than that
        factor = size.width() / self._pixmap.width()
        left, top = (self.width() - size.width()) / 2, (self.height() - size.height()) / 2
        return (point.x() - left) / factor, (point.y() - top) / factor

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt's name
        if event.button() == Qt.MouseButton.RightButton:
            self.box_cleared.emit()
        elif event.button() == Qt.MouseButton.LeftButton:
            self._drag_start = event.position().toPoint()
            self._rubber_band.setGeometry(QRect(self._drag_start, QSize()))
            self._rubber_band.show()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt's name
        if self._drag_start is not None:
            self._rubber_band.setGeometry(QRect(self._drag_start, event.position().toPoint()).normalized())

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt's name
        if self._drag_start is None or event.button() != Qt.MouseButton.LeftButton:
            return
        self._rubber_band.hide()
        corners = [self.to_canvas(point) for point in (self._drag_start, event.position().toPoint())]
        self._drag_start = None
        if corners[0] is not None and corners[1] is not None:
            (xa, ya), (xb, yb) = corners
            self.box_selected.emit((min(xa, xb), min(ya, yb), max(xa, xb), max(ya, yb)))

    def resizeEvent(self, event: object) -> None:  # noqa: N802 - Qt's name
        self._rescale()
        self.resized.emit()

    def shrink_factor(self) -> float:
        """How many times smaller than its pixels the last canvas is shown on the screen's pixels (1: at its size
        or enlarged)."""
        if self._pixmap is None or self.width() <= 0 or self.height() <= 0:
            return 1.0
        ratio = self.devicePixelRatioF()
        return max(1.0, self._pixmap.width() / (self.width() * ratio),  # the aspect ratio is kept
                   self._pixmap.height() / (self.height() * ratio))

    def _rescale(self) -> None:
        """Scale the canvas to the widget's size in the screen's own pixels: on a high-DPI screen (2 pixels per
        widget unit) scaling it to widget units drew it enlarged 2x, blurred."""
        if self._pixmap is not None:
            ratio = self.devicePixelRatioF()
            scaled = self._pixmap.scaled(self.size() * ratio, Qt.AspectRatioMode.KeepAspectRatio,
                                         Qt.TransformationMode.SmoothTransformation)
            scaled.setDevicePixelRatio(ratio)
            self.setPixmap(scaled)


class MainWindow(QMainWindow):
    """Owns the threads and writers; turns keys into requests and results into pictures."""

    def __init__(self, capture: CaptureThread, inference: InferenceThread, options: WindowOptions,
                 hooks: WindowHooks) -> None:
        super().__init__()
        # The input shown, as the window knows it (the capture thread's own source is its business).
        self.input_name, self.input_fps = capture.source.name, capture.source.fps
        self.capture, self.inference = capture, inference
        self.open_input = hooks.open_input
        self.window_range, self.output_dir = options.shown, options.output_dir
        self.recorder = Recorder(self.output_dir, options.fps, lambda message: self.statusBar().showMessage(
            message, 8000), options.save_video, options.save_input, options.save_matches)
        self.view = MatchView()
        self.stats = StatsPanel()
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.view)
        self.splitter.addWidget(self.stats)
        self.splitter.setStretchFactor(0, 4)
        self.splitter.setStretchFactor(1, 1)
        self.setCentralWidget(self.splitter)
        self.model_label, self.device_label, self.status_text = "", "", "starting..."
        self.show_title()
        self.show_help, self.paused = False, False
        self.settings = replace(options.settings, compare=None)  # how frames are matched, as asked of the thread
        self.blend_anchor, self.view_mode = options.blend_anchor, options.view
        self.geometry_modes = available_modes(options.intrinsics is not None)  # e: essential only with intrinsics
        self.domain = inference.domain  # the model shown; the inference thread's own copy is not read here
        # The LoFTR model m toggles and k comes back to (the domain, when SIFT or ORB is shown).
        self.loftr_domain = "outdoor" if inference.domain in REFERENCE_METHODS else inference.domain
        self.model_switch = options.model_switch  # False: indoor and outdoor are the same weights file
        self.comparisons = options.comparisons  # what b cycles through (ControlBar's comparisons)
        self.threshold: float | None = None  # the coarse threshold asked for; None: the model's, not yet known
        # An image file dropped on the window becomes the anchor, read (and sized) as --anchor reads it.
        self.read_anchor_file = hooks.read_anchor_file
        self.setAcceptDrops(hooks.read_anchor_file is not None or hooks.open_input is not None)
        self.sizes = size_options(self.settings.resize)  # what , and . step through
        self.controls = ControlBar(self.settings.geometry, self.view_mode, self.blend_anchor,
                                   tuple(map(size_label, self.sizes)), self.size_index, self.comparisons,
                                   self.geometry_modes, self.settings.any_rotation, self.settings.any_scale)
        self.addToolBar(self.controls)
        self.fit_to_screen(QSize(1600, 560))
        self.opening_size: QSize | None = self.size()  # until the first view, which may want more (fit_to_view)
        self.controls.anchor_clicked.connect(self.inference.request_anchor)
        self.controls.anchor_file_clicked.connect(self.choose_anchor_file)
        self.controls.anchor_file_action.setEnabled(hooks.read_anchor_file is not None)
        self.controls.model_clicked.connect(self.toggle_model)
        self.controls.method_chosen.connect(self.set_method)
        self.controls.compare_chosen.connect(self.set_compare)
        self.controls.rotation_toggled.connect(self.set_any_rotation)
        self.controls.scale_toggled.connect(self.set_any_scale)
        self.controls.geometry_chosen.connect(self.set_geometry)
        self.controls.blend_toggled.connect(self.set_blend_anchor)
        self.controls.view_chosen.connect(self.set_view)
        self.controls.threshold_chosen.connect(self.set_threshold)
        self.controls.size_chosen.connect(self.set_size)
        self.controls.pause_toggled.connect(self.play_or_pause)
        self.controls.step_clicked.connect(self.step)
        self.controls.step_back_clicked.connect(lambda: self.step(-1))
        self.controls.snapshot_clicked.connect(self.snapshot)
        self.controls.record_toggled.connect(self.set_recording)
        self.controls.show_state(recording=self.recorder.recording)
        self.controls.plots_toggled.connect(self.set_plots_visible)
        self.controls.open_clicked.connect(self.choose_input)
        self.controls.open_action.setEnabled(hooks.open_input is not None)
        self.positions: PositionBar | None = None
        self.show_positions(capture.source.length if capture.frames_from is not None else None)
        self.last_packet: MatchPacket | None = None
        self.results_received = self.results_shown = 0
        self.result_times: tuple[float, float] | None = None  # perf_counter of the first and the latest result
        self._draw_pending = False
        # A normal status-bar widget: messages cover it for their time, then the keys show again. Its width is
        # ignored, so that on a small screen the line is cut instead of making the window wider than the screen.
        keys = QLabel(status_hints())
        keys.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.statusBar().addWidget(keys, 1)
        self.handlers = self.action_handlers()
        self.key_bindings = key_bindings()
        inference.result_ready.connect(self.on_result)
        inference.status.connect(self.on_status)
        inference.model_changed.connect(self.on_model_changed)
        inference.failed.connect(self.on_failed)
        capture.stream_ended.connect(self.on_stream_ended)
        self.view.box_selected.connect(self.on_box_selected)
        self.view.box_cleared.connect(lambda: self.inference.request_region(None))
        # Paused or at the end of a file no new result redraws the view: a resize that changes the text size does.
        self.drawn_text_scale = 1.0
        self._resize_settled = QTimer(self)
        self._resize_settled.setSingleShot(True)
        self._resize_settled.setInterval(150)  # once a drag of the window's edge has stopped
        self._resize_settled.timeout.connect(self._redraw_for_text_scale)
        self.view.resized.connect(self._resize_settled.start)
        capture.warning.connect(lambda message: self.statusBar().showMessage(message, 8000))

    @property
    def geometry_mode(self) -> str:
        return self.settings.geometry

    @property
    def any_rotation(self) -> bool:
        """LoFTR also against the anchor's best quarter turn (t)."""
        return self.settings.any_rotation

    @property
    def any_scale(self) -> bool:
        """LoFTR also against the anchor's view at half size (z)."""
        return self.settings.any_scale

    @property
    def compare(self) -> str:
        """The matcher drawn below (a classical one, or a weights file), or "none"."""
        return self.settings.compare or "none"

    @property
    def size_index(self) -> int:
        return self.sizes.index(self.settings.resize)

    def apply(self, settings: MatchSettings) -> None:
        """Match frames as ``settings`` say from the next frame on (the inference thread applies them whole)."""
        self.settings = settings
        self.inference.request(settings)

    def fit_to_screen(self, wanted: QSize) -> None:
        """Take ``wanted``'s size, or as much of it as the screen has room for, centred on the screen (a 1600-pixel
        window on a 1280x720 laptop hid the plots and half the control bar)."""
        screen = self.screen().availableGeometry()
        size = wanted.boundedTo(QSize(int(screen.width() * 0.95), int(screen.height() * 0.9)))
        self.resize(size)
        self.move(screen.center() - QPoint(size.width() // 2, size.height() // 2))

    def fit_to_view(self, canvas_shape: tuple[int, ...]) -> None:
        """Grow the window, as far as the screen allows, to show the first view at its own size (two 640x480 frames
        fit the opening size; a comparison below them, twice as tall, or a 16:9 camera's wider frames were shown
        shrunk, with black bars, on a screen with room for them), and the whole control bar (none of it in its
        overflow menu); the plots take the rest of the width, at least as much as they had or MIN_PLOTS_WIDTH. Only
        once, and not if the window was resized, maximised or made full screen meanwhile: then the user has chosen."""
        opening, self.opening_size = self.opening_size, None
        if opening is None or self.size() != opening or self.isMaximized() or self.isFullScreen():
            return
        ratio = self.devicePixelRatioF()
        wanted = QSize(round(canvas_shape[1] / ratio), round(canvas_shape[0] / ratio))
        missing = (wanted - self.view.size()).expandedTo(QSize(0, 0))
        # The control bar's labels are final by now ("Model: outdoor"): all of it should show, too.
        missing.setWidth(max(missing.width(), self.controls.sizeHint().width() - self.width()))
        if missing.isNull():
            return
        plots_width = self.stats.width() if self.stats.isVisible() else 0
        self.fit_to_screen(self.size() + missing)

        def share_the_width() -> None:  # once the new size is laid out (a top-level window's may come later)
            total = self.splitter.width() - self.splitter.handleWidth()
            plots = max(total - wanted.width(), min(plots_width, MIN_PLOTS_WIDTH)) if plots_width else 0
            self.splitter.setSizes([total - plots, plots])

        QTimer.singleShot(0, share_the_width)

    def start(self) -> None:
        self.inference.start()
        self.capture.start()

    # --- results -------------------------------------------------------------------------------------
    def on_result(self, packet: MatchPacket) -> None:
        """Every result counts in the plots and the input video; only the newest is drawn.

        Drawing (thousands of lines on a GPU's 640x480 results) can be slower than inference: drawing every
        result would queue them up in Qt's event loop, and the view would fall further and further behind.
        """
        self.last_packet = packet
        self.results_received += 1
        if self.positions is not None:
            self.positions.show_position(packet.frame_index)
        if packet.reanchored:
            self.statusBar().showMessage(f"too few matches: frame {packet.frame_index} is the new anchor", 5000)
        if self.threshold is None and packet.threshold is not None:
            self.threshold = packet.threshold
            self.controls.show_state(threshold=packet.threshold)
        if not packet.again:  # the same frame once more (a setting changed while paused) is not a new frame
            now = time.perf_counter()
            self.result_times = (self.result_times[0] if self.result_times else now, now)
            self.stats.add(packet)
            self.recorder.write_input(packet.frame)
        self.recorder.write_matches(packet, self.results_received - 1)
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
            self.fit_to_view(canvas.shape)
        if self.recorder.recording and canvas is not None:
            self.recorder.write_view(canvas)  # the mp4 shows what the window showed
            if not self.recorder.recording:  # it failed (said)
                self.controls.show_state(recording=False)

    def redraw(self) -> np.ndarray | None:
        packet = self.last_packet
        if packet is None:
            return None
        status = "paused" if self.paused else self.status_text
        self.drawn_text_scale = self.text_scale()
        canvas = render_packet(packet, self.window_range, self.model_label, self.device_label, status,
                               self.show_help, self.blend_anchor, self.view_mode, text_scale=self.drawn_text_scale)
        self.view.show_canvas(canvas)
        return canvas

    def _redraw_for_text_scale(self) -> None:
        if self.text_scale() != self.drawn_text_scale:
            self.redraw()

    def text_scale(self) -> float:
        """The overlay's text size when the window shows the view shrunk (a laptop screen: 1290-pixel views in 800
        pixels, text unreadable): the shrinking to the power 0.75, so that text stays ~85% as large as at full size
        (shrunk by 2) while covering less of the picture; in steps of a quarter, so that it does not flicker."""
        return min(MAX_TEXT_SCALE, round(self.view.shrink_factor() ** 0.75 * 4) / 4)

    def on_box_selected(self, box: tuple[float, float, float, float]) -> None:
        """A box dragged over the anchor (canvas pixels) -> the region of the anchor to match from."""
        packet = self.last_packet
        if packet is None:
            return
        scale, frame_scale = view_scales(packet.anchor.shape, packet.frame.shape)
        height, width = packet.anchor.shape[:2]
        view_height = max(round(height * scale), packet.frame.shape[0] * frame_scale)
        if packet.comparison is not None and box[1] >= view_height + GAP:  # a box on the comparison's anchor
            box = (box[0], box[1] - view_height - GAP, box[2], box[3] - view_height - GAP)
        x0, y0, x1, y1 = (value / scale for value in box)
        x0, x1 = max(x0, 0.0), min(x1, float(width))
        y0, y1 = max(y0, 0.0), min(y1, float(height))
        if x1 - x0 < MIN_REGION_PX or y1 - y0 < MIN_REGION_PX:
            self.statusBar().showMessage("drag a box over the anchor (left image) to match only from it; "
                                         "right click: whole anchor again", 6000)
            return
        self.inference.request_region((x0, y0, x1, y1))

    def on_status(self, text: str) -> None:
        previous, self.status_text = self.status_text, text
        if text:
            self.statusBar().showMessage(text)
        elif self.statusBar().currentMessage() == previous:  # not a message shown since (e.g. a failure)
            self.statusBar().clearMessage()
        self.redraw()

    def on_model_changed(self, domain: str, label: str, device: str) -> None:
        self.domain, self.model_label, self.device_label = domain, label, device
        if domain not in REFERENCE_METHODS:
            self.loftr_domain = domain
        self.threshold = None  # the new model starts at its own threshold; the next result shows it
        self.settings = replace(self.settings, threshold=None)  # as the inference thread did
        self.controls.show_state(domain=self.loftr_domain, method=self.method)
        self.show_title()
        self.statusBar().showMessage(f"model: {label} on {device}", 5000)

    def show_title(self) -> None:
        """The input and, once it is loaded, the model and where it runs."""
        model = f" - {self.model_label} [{self.device_label}]" if self.model_label else ""
        self.setWindowTitle(f"LoFTR Live - {self.input_name}{model}")

    def on_failed(self, message: str) -> None:
        """A request or frame failed (said for 8 s); e.g. a model that did not load: the bar shows the one running."""
        self.statusBar().showMessage(message, 8000)
        self.controls.show_state(domain=self.loftr_domain, method=self.method)

    def on_stream_ended(self) -> None:
        self.status_text = "end of stream"
        written = "; videos finalised" if self.finalise_videos() else ""
        again = "; p: play again" if self.positions is not None else ""
        self.statusBar().showMessage(f"end of stream{written}. Left arrow: the frames before{again}; q: quit.")
        self.redraw()

    # --- keys and controls ----------------------------------------------------------------------------
    def action_handlers(self) -> dict[str, Callable[..., object]]:
        """What each key action of ``app.actions.ACTIONS`` runs (called with the key's argument, if it has one)."""
        return {
            "anchor": self.inference.request_anchor, "whole_anchor": lambda: self.inference.request_region(None),
            "open": self.choose_input, "model": self.toggle_model,
            "matcher": lambda: self.set_method(_after(METHODS, self.method)),
            "compare": lambda: self.set_compare(_after(self.comparisons, self.compare)),
            "any_rotation": lambda: self.set_any_rotation(not self.any_rotation),
            "any_scale": lambda: self.set_any_scale(not self.any_scale),
            "geometry": lambda: self.set_geometry(next_mode(self.geometry_mode, self.geometry_modes)),
            "blend": lambda: self.set_blend_anchor(not self.blend_anchor),
            "view": lambda: self.set_view(_after(VIEWS, self.view_mode)),
            "shift_matches": lambda sign: self.set_match_window(self.window_range.shifted(sign * RANGE_STEP)),
            "show_more": lambda sign: self.set_match_window(self.window_range.resized(sign * SIZE_STEP)),
            "threshold": self.step_threshold,
            "size": lambda step: self.set_size(min(max(self.size_index + step, 0), len(self.sizes) - 1)),
            "pause": lambda: self.play_or_pause(not self.paused), "step": self.step, "jump": self.jump,
            "snapshot": self.snapshot, "record": lambda: self.set_recording(not self.recorder.recording),
            "plots": lambda: self.set_plots_visible(not self.stats.isVisible()),
            "full_screen": lambda: (self.showNormal if self.isFullScreen() else self.showFullScreen)(),
            "help": self.toggle_help, "quit": self.close,
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

    def set_match_window(self, window: MatchWindow) -> None:
        """Which of the ranked matches are drawn (d / f shift it, c / v resize it)."""
        self.window_range = window
        self.redraw()

    def step_threshold(self, sign: int) -> None:
        if self.threshold is not None:  # known once the model's first result came
            self.set_threshold(self.threshold + sign * THRESHOLD_STEP)

    def toggle_help(self) -> None:
        self.show_help = not self.show_help
        self.redraw()

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt's name
        if _dropped_file(event) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt's name
        """A video file or image folder becomes the input; an image file, the anchor."""
        path = _dropped_file(event)
        if path is None:
            return
        if _is_input(path) and self.open_input is not None:
            event.acceptProposedAction()
            self.use_input(path)
        elif not _is_input(path) and self.read_anchor_file is not None:
            event.acceptProposedAction()
            self.use_anchor_file(path)

    def use_input(self, path: str) -> None:
        """A video file or image folder becomes the input, from its first frame, which becomes the anchor (an
        anchor image file stays). The videos written of the input before are finalised (r records anew); one that
        cannot be played is said in the status bar and the input stays."""
        assert self.open_input is not None
        opened = self._or_say(self.open_input, path)
        if opened is None:
            return
        source, frames_from = opened
        self.finalise_videos()
        self.capture.switch_to(source, frames_from)
        self.input_name, self.input_fps = source.name, source.fps
        self.show_positions(source.length)
        if self.status_text == "end of stream":
            self.status_text = ""
        self.show_title()
        # The intrinsics belong to the camera they were given for; a file from another camera needs its own.
        intrinsics = "; an essential matrix still uses the intrinsics given at start" \
            if "essential" in self.geometry_modes else ""
        self.statusBar().showMessage(f"playing {source.name}: its first frame is the anchor{intrinsics}", 8000)

    def _or_say(self, action: Callable[[str], T], path: str) -> T | None:
        """``action(path)``, or None with its one-line error in the status bar (a file that cannot be opened)."""
        try:
            return action(path)
        except Exception as error:  # noqa: BLE001 - the opener's or reader's one-line message, shown to the user
            self.statusBar().showMessage(str(error), 8000)
            return None

    def choose_input(self) -> None:
        if self.open_input is None:
            return
        path, _ = QFileDialog.getOpenFileName(self, "Video", "", "Videos (" + " ".join(
            f"*{suffix}" for suffix in sorted(VIDEO_SUFFIXES)) + ");;All files (*)")
        if path:
            self.use_input(path)

    def show_positions(self, length: int | None) -> None:
        """The slider over a file's or folder's frames, below the view like a video player's (None: a live
        source, none)."""
        if self.positions is not None:
            self.removeToolBar(self.positions)
            self.positions.deleteLater()
        self.positions = PositionBar(length) if length else None
        if self.positions is not None:
            self.addToolBar(Qt.ToolBarArea.BottomToolBarArea, self.positions)
            self.positions.position_chosen.connect(self.seek)
            self.positions.show()

    def use_anchor_file(self, path: str) -> None:
        """An image file becomes the anchor (as --anchor); one that cannot be read is said in the status bar."""
        assert self.read_anchor_file is not None
        read = self._or_say(self.read_anchor_file, path)
        if read is None:
            return
        image, name = read
        self.inference.request(NewAnchor(image, name))
        self.statusBar().showMessage(f"anchor: {name}", 5000)

    def choose_anchor_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Anchor image", "",
                                              "Images (*.png *.jpg *.jpeg *.bmp *.tif *.tiff *.webp);;All files (*)")
        if path:
            self.use_anchor_file(path)

    @property
    def method(self) -> str:
        """The matcher shown: "loftr", or one of the others (METHODS)."""
        return self.domain if self.domain in REFERENCE_METHODS else "loftr"

    def set_method(self, method: str) -> None:
        """LoFTR (its last model), or OpenCV's SIFT or ORB or DISK + LightGlue on the same frames, to compare."""
        if method != self.method:
            self.inference.request(SwitchModel(self.loftr_domain if method == "loftr" else method))

    def set_compare(self, choice: str) -> None:
        """Draw another matcher's matches on the same frames below the main view: SIFT's, ORB's or a LoFTR weights
        file's (one of ``comparisons``; "none": stop)."""
        self.apply(replace(self.settings, compare=None if choice == "none" else choice))
        self.controls.show_state(compare=choice)
        self.statusBar().showMessage(f"compare with: {comparison_label(choice)}", 5000)

    def toggle_model(self) -> None:
        if self.domain in REFERENCE_METHODS:  # m from SIFT, ORB or LightGlue: back to LoFTR
            self.inference.request(SwitchModel(self.loftr_domain))
            return
        if not self.model_switch:
            self.statusBar().showMessage("the indoor and the outdoor model are the same weights here; give "
                                         "--indoor_weight or --outdoor_weight to switch between two", 8000)
            return
        self.inference.request(SwitchModel("indoor" if self.domain == "outdoor" else "outdoor"))

    def set_geometry(self, mode: str) -> None:
        self.apply(replace(self.settings, geometry=mode))
        self.controls.show_state(geometry=mode)
        self.statusBar().showMessage(f"geometric verification: {mode}", 5000)

    def set_blend_anchor(self, on: bool) -> None:
        """Blend the anchor into the live frame through the homography, or stop; turning it on also turns on
        the homography fit it needs."""
        self.blend_anchor = on
        self.controls.show_state(blend=on)
        message = "anchor blended into the live frame" if on else "anchor blending off"
        if on and self.geometry_mode != "homography":
            self.set_geometry("homography")
            message += " (geometric verification: homography)"
        self.statusBar().showMessage(message, 5000)
        self.redraw()

    def set_any_rotation(self, on: bool) -> None:
        """Match LoFTR at any in-plane rotation (against the anchor's best quarter turn), or upright only."""
        self.apply(replace(self.settings, any_rotation=on))
        self.controls.show_state(any_rotation=on)
        message = "any rotation: the anchor is also tried turned by 90, 180 and 270 degrees" if on else \
            "any rotation off: LoFTR matches up to about 45 degrees of rotation"
        if self.method != "loftr":
            message += f" (LoFTR only: {self.method.upper()} is rotation invariant)" if self.method in \
                CLASSICAL_METHODS else " (LoFTR only)"
        self.statusBar().showMessage(message, 5000)

    def set_any_scale(self, on: bool) -> None:
        """Also match LoFTR against the anchor seen at half size (content farther away), or at its size only."""
        self.apply(replace(self.settings, any_scale=on))
        self.controls.show_state(any_scale=on)
        message = "any scale: the anchor is also tried at half size, for a scene or object farther away" if on \
            else "any scale off: LoFTR matches up to about twice or half the anchor's size"
        if self.method != "loftr":
            message += f" (LoFTR only: {self.method.upper()} is scale invariant)" if self.method in \
                CLASSICAL_METHODS else " (LoFTR only)"
        self.statusBar().showMessage(message, 5000)

    def set_view(self, view: str) -> None:
        self.view_mode = view
        self.controls.show_state(view=view)
        self.statusBar().showMessage(f"matches drawn as {view}", 5000)
        self.redraw()

    def set_threshold(self, value: float) -> None:
        """A new coarse confidence threshold (clipped to [0, 1], to two decimals) for the current model."""
        self.threshold = min(max(round(value, 2), 0.0), 1.0)
        self.apply(replace(self.settings, threshold=self.threshold))
        self.controls.show_state(threshold=self.threshold)
        self.statusBar().showMessage(f"coarse confidence threshold {self.threshold:.2f}", 5000)

    def set_size(self, index: int) -> None:
        """Match frames at ``self.sizes[index]`` from the next frame on (the anchor is sized again)."""
        self.apply(replace(self.settings, resize=self.sizes[index]))
        self.controls.show_state(size=index)
        self.statusBar().showMessage(f"matching at {size_label(self.sizes[index])}", 5000)

    def play_or_pause(self, pause: bool) -> None:
        """p or the Pause button; at the end of a file, which has nothing left to pause, play it again from its
        first frame (as a video player does)."""
        if pause and not self.paused and self.status_text == "end of stream" and self.positions is not None:
            self.controls.show_state(paused=False)
            self.seek(0)
            return
        self.set_paused(pause)

    def set_paused(self, on: bool) -> None:
        self.paused = on
        (self.capture.paused.set if on else self.capture.paused.clear)()
        self.controls.show_state(paused=on)
        if on:
            self.statusBar().showMessage("paused: left / right arrow: the frame before / after; n: it becomes the "
                                         "anchor; settings apply to it; p: play on", 10000)
        else:
            self.statusBar().clearMessage()
        self.redraw()

    def step(self, direction: int = 1) -> None:
        """Pause; while paused, match the frame after (``direction`` 1) or before (-1) the one on screen, to go
        through a sequence frame by frame, or back to a moment worth an anchor. Going back also pauses and steps."""
        if not self.paused:
            self.set_paused(True)
            if direction > 0:
                return
        self.capture.step(direction, self.last_packet.frame_index if self.last_packet is not None else None)

    def jump(self, where: str) -> None:
        """"first" / "last" frame of the file or folder; a second "back" / "on" (from the frame on screen)."""
        if self.positions is None:
            return
        last = self.positions.length - 1
        shown = self.last_packet.frame_index % self.positions.length if self.last_packet is not None else 0
        second = max(1, round(self.input_fps))
        target = {"first": 0, "last": last, "back": shown - second, "on": shown + second}[where]
        self.seek(min(max(target, 0), last))

    def seek(self, index: int) -> None:
        """Go on from frame ``index`` of the file or folder (paused: that frame is matched and shown)."""
        self.capture.seek_to(index)
        if self.status_text == "end of stream":
            self.status_text = ""
        self.statusBar().showMessage(f"frame {index}", 3000)

    def set_recording(self, on: bool) -> None:
        """Start recording the view (a new, time-stamped mp4 in the output folder) or finalise the recording."""
        if on and not self.recorder.recording:
            path = self.recorder.start_recording()
            on = path is not None
            if path is not None:
                self.statusBar().showMessage(f"recording the view to {path} (r stops)", 5000)
        elif not on and (path := self.recorder.stop_recording()) is not None:
            self.statusBar().showMessage(f"saved {path}", 5000)
        self.controls.show_state(recording=on)

    def set_plots_visible(self, on: bool) -> None:
        self.stats.setVisible(on)
        self.controls.show_state(plots=on)

    def snapshot(self) -> Path | None:
        """The view as a PNG, and beside it an npz of the matches with both images (``Recorder.snapshot``)."""
        canvas = self.redraw()
        if canvas is None or self.last_packet is None:
            return None
        path = self.recorder.snapshot(canvas, self.last_packet)
        if path is not None:
            self.statusBar().showMessage(f"saved {path} and its matches, {path.with_suffix('.npz').name}", 5000)
        return path

    # --- shutdown ------------------------------------------------------------------------------------
    def finalise_videos(self) -> bool:
        """Finish the videos being written (the recording too); whether there was one."""
        had = self.recorder.finalise_videos()
        self.controls.show_state(recording=False)
        return had

    def shutdown(self) -> None:
        """Stop both threads and finalise the outputs; safe to call twice."""
        self.capture.stop()
        self.inference.stop()
        self.capture.wait(5000)
        self.inference.wait(10000)
        self.finalise_videos()

    def closeEvent(self, event: object) -> None:  # noqa: N802 - Qt's name
        self.shutdown()
        super().closeEvent(event)  # type: ignore[arg-type]
