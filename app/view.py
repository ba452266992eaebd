"""The widget that shows the view: a BGR canvas scaled to fit, with a box to drag over it."""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import QPoint, QRect, QSize, Qt, pyqtSignal
from PyQt6.QtGui import QImage, QMouseEvent, QPixmap
from PyQt6.QtWidgets import QLabel, QRubberBand, QSizePolicy


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
