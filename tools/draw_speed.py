"""Milliseconds to draw one demo view (``app.render.render_view``) with N match lines, as the window and the
headless writer draw it: 320x240 frames (a small camera's) drawn at 2x, and 640x480 frames (a webcam's, kept
as they come whatever size they are matched at) at 1x.

Usage:  .venv/bin/python tools/draw_speed.py [--matches 300 2000] [--runs 20] [--text_scale 1]
(--text_scale: the overlay's text size, as a window showing the view shrunk draws it: 2 when shrunk 2.5 times)
"""

from __future__ import annotations

import argparse
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
    options = tool.parse_args()
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


if __name__ == "__main__":
    sys.exit(main())
