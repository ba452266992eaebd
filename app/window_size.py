"""The window's size on the screen and the overlay's text size in it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PyQt6.QtCore import QPoint, QSize, QTimer
from PyQt6.QtWidgets import QWidget

if TYPE_CHECKING:
    from .window import MainWindow

MAX_TEXT_SCALE = 3.0  # the overlay's text grows with the view's shrinking up to this (beyond, it fills the view)
#: Narrower than this, the plots' titles wrap onto three lines and their axes crowd: when the window grows to show
#: its first view, the view may take width from wider plots down to this (see ``fit_to_view``).
MIN_PLOTS_WIDTH = 400


def text_scale_for(shrink_factor: float) -> float:
    """The overlay's text size when the window shows the view shrunk ``shrink_factor`` times (a laptop screen:
    1290-pixel views in 800 pixels, text unreadable): the shrinking to the power 0.75, so that text stays ~85% as
    large as at full size (shrunk by 2) while covering less of the picture; in steps of a quarter, so that it does
    not flicker."""
    return min(MAX_TEXT_SCALE, round(shrink_factor ** 0.75 * 4) / 4)


def fit_to_screen(window: QWidget, wanted: QSize) -> None:
    """Give ``window`` ``wanted``'s size, or as much of it as the screen has room for, centred on the screen (a
    1600-pixel window on a 1280x720 laptop hid the plots and half the control bar)."""
    screen = window.screen().availableGeometry()
    size = wanted.boundedTo(QSize(int(screen.width() * 0.95), int(screen.height() * 0.9)))
    window.resize(size)
    window.move(screen.center() - QPoint(size.width() // 2, size.height() // 2))


def fit_to_view(window: MainWindow, canvas_shape: tuple[int, ...], opening: QSize) -> None:
    """Grow the window, as far as the screen allows, to show the first view at its own size (two 640x480 frames
    fit the opening size; a comparison below them, twice as tall, or a 16:9 camera's wider frames were shown
    shrunk, with black bars, on a screen with room for them), and the whole control bar (none of it in its
    overflow menu); the plots take the rest of the width, at least as much as they had or MIN_PLOTS_WIDTH. Only
    while the window has its ``opening`` size (not resized, maximised or made full screen meanwhile: then the user
    has chosen)."""
    if window.size() != opening or window.isMaximized() or window.isFullScreen():
        return
    ratio = window.devicePixelRatioF()
    wanted = QSize(round(canvas_shape[1] / ratio), round(canvas_shape[0] / ratio))
    missing = (wanted - window.view.size()).expandedTo(QSize(0, 0))
    # The control bar's labels are final by now ("Model: outdoor"): all of it should show, too.
    missing.setWidth(max(missing.width(), window.controls.sizeHint().width() - window.width()))
    if missing.isNull():
        return
    plots_width = window.stats.width() if window.stats.isVisible() else 0
    fit_to_screen(window, window.size() + missing)

    def share_the_width() -> None:  # once the new size is laid out (a top-level window's may come later)
        splitter = window.splitter
        total = splitter.width() - splitter.handleWidth()
        plots = max(total - wanted.width(), min(plots_width, MIN_PLOTS_WIDTH)) if plots_width else 0
        splitter.setSizes([total - plots, plots])

    QTimer.singleShot(0, share_the_width)
