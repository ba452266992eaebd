"""The widget that shows the view: a BGR canvas scaled to fit, with a box to drag over it."""

from __future__ import annotations

import cv2
import numpy as np
from PyQt6.QtCore import QPoint, QRect, QRectF, QSize, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent
from PyQt6.QtWidgets import QRubberBand, QSizePolicy, QWidget


class MatchView(QWidget):
    """Shows a BGR canvas scaled to the widget, keeping its aspect ratio, centred on black.

    The canvas is painted as a 32-bit image in the screen's own pixels (scaled by OpenCV when it does not fit),
    which Qt copies as it is: a 24-bit image is converted and copied on Qt's thread pool every frame, work that
    takes the cores from matching (``tools/gui_fps.py``). A drag with the left button selects a box
    (``box_selected``, in canvas pixels), shown as a rubber band meanwhile; a right click emits ``box_cleared``.
    """

    box_selected = pyqtSignal(object)  # (x0, y0, x1, y1) in canvas pixels
    box_cleared = pyqtSignal()
    resized = pyqtSignal()

    def __init__(self) -> None:
        super().__init__()
        self.setMinimumSize(320, 120)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)  # every pixel is painted: no background first
        self._canvas: np.ndarray | None = None  # the last canvas, BGR, as it came
        self._pixels: np.ndarray | None = None  # it in BGRA at the size shown; the image below reads this memory
        self._image: QImage | None = None
        self._rubber_band = QRubberBand(QRubberBand.Shape.Rectangle, self)
        self._drag_start: QPoint | None = None

    def show_canvas(self, canvas: np.ndarray) -> None:
        self._canvas = canvas
        self._prepare()
        self.update()

    def canvas_size(self) -> QSize | None:
        """The last canvas's size in its pixels, or None before one."""
        return None if self._canvas is None else QSize(self._canvas.shape[1], self._canvas.shape[0])

    def shown_rect(self) -> QRectF | None:
        """Where the last canvas is drawn, in widget units (scaled to fit, aspect ratio kept, centred)."""
        if self._image is None:
            return None
        ratio = self.devicePixelRatioF()
        width, height = self._image.width(), self._image.height()
        left, top = (round(self.width() * ratio) - width) // 2, (round(self.height() * ratio) - height) // 2
        return QRectF(left / ratio, top / ratio, width / ratio, height / ratio)  # on whole screen pixels

    def to_canvas(self, point: QPoint) -> tuple[float, float] | None:
        """A widget position -> canvas pixels, or None before a canvas."""
        shown, size = self.shown_rect(), self.canvas_size()
        if shown is None or size is None:
            return None
        factor = shown.width() / size.width()
        return (point.x() - shown.left()) / factor, (point.y() - shown.top()) / factor

    def shrink_factor(self) -> float:
        """How many times smaller than its pixels the last canvas is shown on the screen's pixels (1: at its size
        or enlarged)."""
        size = self.canvas_size()
        if size is None or self.width() <= 0 or self.height() <= 0:
            return 1.0
        ratio = self.devicePixelRatioF()
        return max(1.0, size.width() / (self.width() * ratio), size.height() / (self.height() * ratio))

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt's name
        painter = QPainter(self)
        shown = self.shown_rect()
        if self._image is None or shown is None:
            painter.fillRect(self.rect(), QColor("black"))
        else:
            inside = shown.toAlignedRect()  # only the bars beside the canvas: it covers the rest
            width, height = self.width(), self.height()
            for bar in (QRect(0, 0, width, inside.top()), QRect(0, inside.bottom() + 1, width, height),
                        QRect(0, 0, inside.left(), height), QRect(inside.right() + 1, 0, width, height)):
                if not bar.isEmpty():
                    painter.fillRect(bar, QColor("black"))
            painter.drawImage(shown.topLeft(), self._image)  # one screen pixel per image pixel: a plain copy
        painter.end()

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
        self._prepare()
        self.resized.emit()

    def _prepare(self) -> None:
        """The canvas as the image to paint: scaled to the widget's size in the screen's own pixels (on a high-DPI
        screen, 2 pixels per widget unit, scaling it to widget units drew it enlarged 2x, blurred), in BGRA."""
        if self._canvas is None:
            return
        height, width = self._canvas.shape[:2]
        ratio = self.devicePixelRatioF()
        factor = min(self.width() * ratio / width, self.height() * ratio / height)
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        canvas = self._canvas
        if size != (width, height):  # shrinking averages each shown pixel's area: thin lines stay whole
            canvas = cv2.resize(canvas, size, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR)
        code = cv2.COLOR_GRAY2BGRA if canvas.ndim == 2 else cv2.COLOR_BGR2BGRA
        self._pixels = cv2.cvtColor(canvas, code)
        self._image = QImage(self._pixels.data, size[0], size[1], self._pixels.strides[0],
                             QImage.Format.Format_RGB32)
        self._image.setDevicePixelRatio(ratio)
