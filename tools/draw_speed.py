"""Milliseconds to draw one demo view (``app.render.render_view``) with N match lines, as the window and the
headless writer draw it: 320x240 frames (a small camera's) drawn at 2x, and 640x480 frames (a webcam's, kept
as they come whatever size they are matched at) at 1x.

Usage:  .venv/bin/python tools/draw_speed.py [--matches 300 2000] [--runs 20] [--text_scale 1] [--plots]
(--text_scale: the overlay's text size, as a window showing the view shrunk draws it: 2 when shrunk 2.5 times;
--plots: also a redraw of the window's plots (``app.plots.StatsPanel``, offscreen) holding 30 s of results at 22
FPS, with the curves as wide as the window draws them and 2 pixels wide, to compare)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.render import Drawing, MatchWindow, Overlay, ViewSettings, display_scale, render_view  # noqa: E402


def main() -> int:
    tool = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    tool.add_argument("--matches", type=int, nargs="+", default=[300, 2000])
    tool.add_argument("--runs", type=int, default=20)
    tool.add_argument("--text_scale", type=float, default=1.0)
    tool.add_argument("--plots", action="store_true", help="also time a redraw of the window's plots")
    options = tool.parse_args()
    if options.plots:
        _time_plots(options.runs)
    rng = np.random.default_rng(0)
    for width, height in ((320, 240), (640, 480)):
        anchor = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
        frame = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
        for count in options.matches:
            keypoints0 = rng.uniform(0, [width, height], (count, 2)).astype(np.float32)
            keypoints1 = np.clip(keypoints0 + rng.normal(0, width / 20, (count, 2)), 0, [width - 1, height - 1])
            confidence = np.sort(rng.uniform(0.2, 1.0, count))[::-1].astype(np.float32)
            scale = display_scale(frame.shape)
            times = []
            for _ in range(options.runs + 1):
                start = time.perf_counter()
                render_view(Drawing(anchor, frame, keypoints0, keypoints1.astype(np.float32), confidence, scale),
                            Overlay(), ViewSettings(MatchWindow(0, count), text_scale=options.text_scale))
                times.append((time.perf_counter() - start) * 1000.0)
            print(f"{width}x{height} frames drawn at {scale}x, text at {options.text_scale:g}x, {count} matches: "
                  f"{statistics.median(times[1:]):.1f} ms per view")
    return 0


def _time_plots(runs: int) -> None:
    """Milliseconds per redraw of the window's plots, 440x600 pixels, 30 s of results at 22 FPS, by curve width."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import pyqtgraph as pg
    from PyQt6.QtWidgets import QApplication

    from app.plots import CURVE_WIDTH, STAGES, StatsPanel
    from app.session import MatchPacket
    from model.matcher import MatchResult

    application = QApplication.instance() or QApplication(sys.argv[:1])
    rng = np.random.default_rng(0)
    image, points = np.zeros((8, 8, 3), np.uint8), np.zeros((300, 2), np.float32)
    for width in sorted({CURVE_WIDTH, 2}):
        panel = StatsPanel(refresh_ms=10**9)  # redrawn below, not by its timer
        panel.resize(440, 600)
        panel.show()
        for curve in panel.curves.values():
            pen = pg.mkPen(curve.opts["pen"])
            pen.setWidthF(width)
            curve.setPen(pen)
        now, times = 0.0, []
        for run in range(runs + 31):
            for _ in range(11):  # half a second of results between redraws, as in the window
                now += 1 / 22
                timings = {stage: float(rng.uniform(5, 12)) for stage in STAGES[:-1]}
                result = MatchResult(points, points, np.ones(300, np.float32), np.zeros(300, np.float32), timings)
                panel.add(MatchPacket(image, 0, "", image, 1, result, latency_ms=40.0, fps=float(rng.uniform(20, 23)),
                                      frame_age_ms=float(rng.uniform(40, 60))), now=now)
            start = time.perf_counter()
            panel.refresh()
            application.processEvents()  # the redraw itself
            if run > 30:  # the plots hold 30 s of results from here on
                times.append((time.perf_counter() - start) * 1000.0)
        panel.close()
        which = "as the window draws them" if width == CURVE_WIDTH else "for comparison"
        print(f"plots redrawn with {width}-pixel curves ({which}): {statistics.median(times):.1f} ms per redraw")


if __name__ == "__main__":
    sys.exit(main())
