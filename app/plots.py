"""The window's rolling plots: frames per second, per-stage latency and frame age, matches and inliers, and (with
an essential matrix) how far the camera turned since the anchor."""

from __future__ import annotations

import collections
import math
import time
from typing import Iterable

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt, QTimer
from PyQt6.QtWidgets import QLabel, QVBoxLayout, QWidget

from .render import MIN_POSE_INLIERS
from .session import MatchPacket

PLOT_SECONDS = 30.0  # the plots show the results of the last 30 s
REFRESH_MS = 500  # how often the plots are redrawn
STAGES = ("backbone", "coarse_transformer", "coarse_matching", "fine", "geometry")
STAGE_COLORS = ("#e6550d", "#3182bd", "#31a354", "#756bb1", "#bdbdbd")
STAGE_SHORT_NAMES = ("backbone", "transformer", "matching", "fine", "geometry")
MATCHES_COLOR, INLIERS_COLOR, FRAME_AGE_COLOR, TURNED_COLOR = "#9ecae1", "#5aff5a", "#f0f0f0", "#fd8d3c"
PLOT_BACKGROUND, PLOT_FOREGROUND = "#202020", "#d0d0d0"
# Qt draws antialiased one-pixel lines on a fast path: with 2-pixel curves a redraw of the plots takes about four
# times as long, twice a second, time a small CPU takes from matching (tools/draw_speed.py --plots).
CURVE_WIDTH = 1


def _finite_max(values: collections.deque[float]) -> float:
    """The largest value that is not NaN (a gap in a curve), 0 for none."""
    return max((value for value in values if not math.isnan(value)), default=0.0)


def _high(values: collections.deque[float]) -> float:
    """The 95th percentile of the values that are not NaN, 0 for none: a top that one spike does not set."""
    finite = [value for value in values if not math.isnan(value)]
    return float(np.percentile(finite, 95)) if finite else 0.0


def _coloured(names_and_colors: Iterable[tuple[str, str]]) -> str:
    """The names as HTML, each in its curve's colour: the plots' titles are their legends."""
    return " ".join(f'<span style="color:{color}">{name}</span>' for name, color in names_and_colors)


def round_up(value: float) -> float:
    """The smallest of 1, 1.5, 2, 3, 5, 7.5 times a power of ten that is >= value (> 0)."""
    power = 10.0 ** math.floor(math.log10(value))
    return next(step * power for step in (1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0) if step * power >= value * (1 - 1e-12))


class StatsPanel(QWidget):
    """Rolling plots of the last ``PLOT_SECONDS`` seconds: FPS, per-stage latency, match count and (with geometric
    verification) inliers, and the compared matcher's counts (dashed) while a comparison runs.

    The x axis is seconds before the newest result, so a rate reads the same on a CPU and on a GPU (a fixed number
    of samples spanned 13 s at 15 FPS and 3 s at 60). Each title is its plot's legend, in the curves' colours: a
    legend on the plot hid the curves beneath it. Results are recorded as they come, but the plots are redrawn by
    a timer a few times a second: redrawing them for every result was most of the GUI thread's work (profiled),
    time a small CPU took from inference.
    """

    def __init__(self, refresh_ms: int = REFRESH_MS) -> None:
        super().__init__()
        pg.setConfigOptions(antialias=True, background=PLOT_BACKGROUND, foreground=PLOT_FOREGROUND)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        self.times: collections.deque[float] = collections.deque()  # perf_counter of each result
        self.history: dict[str, collections.deque[float]] = {
            name: collections.deque()
            for name in ("fps", "matches", "inliers", "compare_matches", "compare_inliers", "frame_age", "turned",
                         *STAGES)}
        self.fps_plot = pg.PlotWidget()
        self.latency_plot = pg.PlotWidget()
        self.matches_plot = pg.PlotWidget()
        self.turned_plot = pg.PlotWidget()  # shown only while there is a camera motion to plot
        titles = {self.fps_plot: f"frames per second, last {PLOT_SECONDS:.0f} s",
                  self.latency_plot: "ms: " + _coloured(zip(STAGE_SHORT_NAMES, STAGE_COLORS, strict=True))
                  + ", frame age (dashed)",
                  self.matches_plot: _coloured([("matches", MATCHES_COLOR), ("inliers", INLIERS_COLOR)])
                  + "; dashed: compared",
                  self.turned_plot: _coloured([("degrees the camera turned since the anchor", TURNED_COLOR)])}
        # Inliers are NaN while verification is off: connect="finite" leaves a gap instead of a line at 0.
        self.curves = {"fps": self.fps_plot.plot(pen=pg.mkPen("#fdae6b", width=CURVE_WIDTH), connect="finite")}
        for name, color in (("matches", MATCHES_COLOR), ("inliers", INLIERS_COLOR)):
            self.curves[name] = self.matches_plot.plot(pen=pg.mkPen(color, width=CURVE_WIDTH), connect="finite")
            self.curves[f"compare_{name}"] = self.matches_plot.plot(  # NaN without a comparison: gaps
                pen=pg.mkPen(color, width=CURVE_WIDTH, style=Qt.PenStyle.DashLine), connect="finite")
        for stage, color in zip(STAGES, STAGE_COLORS, strict=True):
            self.curves[stage] = self.latency_plot.plot(pen=pg.mkPen(color, width=CURVE_WIDTH))
        # How old each result's frame was: the stages plus the wait for the matcher (the latency a user sees).
        self.curves["frame_age"] = self.latency_plot.plot(
            pen=pg.mkPen(FRAME_AGE_COLOR, width=CURVE_WIDTH, style=Qt.PenStyle.DashLine))
        self.curves["turned"] = self.turned_plot.plot(pen=pg.mkPen(TURNED_COLOR, width=CURVE_WIDTH), connect="finite")
        self.titles: dict[pg.PlotWidget, QLabel] = {}
        for plot, title in titles.items():
            # A QLabel, not the plot's own title: that one cannot be narrower than its text, and on a small screen
            # it made the plot wider than the panel, hiding the newest results; a label wraps instead.
            if layout.count():
                layout.addSpacing(4)  # the window's colour between the plots, as a frame
            label = QLabel(title)
            label.setWordWrap(True)
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            label.setStyleSheet(f"background: {PLOT_BACKGROUND}; color: {PLOT_FOREGROUND}; padding: 3px;")
            layout.addWidget(label)
            self.titles[plot] = label
            plot.setMinimumHeight(100)
            plot.showGrid(x=False, y=True, alpha=0.3)
            plot.setXRange(-PLOT_SECONDS, 1.0, padding=0)  # a second to spare: room for the label of 0
            plot.setMouseEnabled(x=False, y=False)  # a drag would move the axes away from the newest results
            plot.hideButtons()
            layout.addWidget(plot)
        self._show_turned(False)
        self.stale = False
        self.tops: dict[str, float] = {}  # the y-axis top each plot was last given
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.refresh)
        self.timer.start(refresh_ms)

    def add(self, packet: MatchPacket, now: float | None = None) -> None:
        """Record ``packet``'s numbers at ``now`` (perf_counter; default: the current time)."""
        now = time.perf_counter() if now is None else now
        self.times.append(now)
        self.history["fps"].append(packet.fps if packet.fps > 0 else float("nan"))  # 0: no rate yet, not a drop
        self.history["matches"].append(float(len(packet.result)))
        self.history["inliers"].append(float("nan") if packet.geometry is None else packet.geometry.num_inliers)
        other = None if packet.comparison is None else packet.comparison[1]
        self.history["compare_matches"].append(float("nan") if other is None else float(len(other.result)))
        self.history["compare_inliers"].append(
            float("nan") if other is None or other.geometry is None else other.geometry.num_inliers)
        for stage in STAGES[:-1]:
            self.history[stage].append(packet.result.timings_ms.get(stage, 0.0))
        self.history["geometry"].append(packet.geometry_ms)
        self.history["frame_age"].append(packet.frame_age_ms)
        pose = None if packet.geometry is None else packet.geometry.pose
        trusted = pose is not None and (not pose.moved or packet.geometry.num_inliers >= MIN_POSE_INLIERS)
        self.history["turned"].append(pose.rotation_deg if trusted else float("nan"))  # type: ignore[union-attr]
        while self.times[0] < now - PLOT_SECONDS:
            self.times.popleft()
            for values in self.history.values():
                values.popleft()
        self.stale = True

    def refresh(self) -> None:
        """Redraw the plots if results arrived since the last redraw (and the panel is shown)."""
        if self.stale and self.isVisible():
            self.stale = False
            seconds = np.fromiter(self.times, dtype=float) - self.times[-1]
            for name, curve in self.curves.items():
                curve.setData(seconds, np.fromiter(self.history[name], dtype=float))
            self._show_turned(not all(math.isnan(value) for value in self.history["turned"]))
            # y from 0: auto-range would blow a steady value (e.g. matches at the --max_matches cap) up to noise.
            # The top is a round number, so the axes (costly to draw) change only when the scale really does.
            # Latency tops at its 95th percentile: the first frame's age (the model warming up, a second or more)
            # squashed every other latency to the bottom for the plot's 30 s.
            for key, plot, names, top_of in (("fps", self.fps_plot, ("fps",), _finite_max),
                                             ("latency", self.latency_plot, (*STAGES, "frame_age"), _high),
                                             ("matches", self.matches_plot, ("matches", "compare_matches"),
                                              _finite_max),
                                             ("turned", self.turned_plot, ("turned",), _finite_max)):
                top = round_up(max(max(top_of(self.history[name]) for name in names), 1.0) * 1.1)
                if self.tops.get(key) != top:
                    self.tops[key] = top
                    plot.setYRange(0.0, top, padding=0)

    def _show_turned(self, shown: bool) -> None:
        """The camera-motion plot and its title, only while the last 30 s have a rotation to plot."""
        if self.turned_plot.isVisibleTo(self) != shown:
            self.turned_plot.setVisible(shown)
            self.titles[self.turned_plot].setVisible(shown)
