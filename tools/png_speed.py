"""Milliseconds and kilobytes per PNG for the views of a headless run: the app's settings (``app.video.PNG_PARAMS``)
against level 1 with Huffman coding and every filter (the app's settings until 2026-11-27), run-length matching with
the Sub filter, and the installed OpenCV's default.
Each setting encodes every image in turn, round after round, so that a machine's changing speed hits all alike;
every encoding is checked to decode to the same pixels.

Usage:  .venv/bin/python tools/png_speed.py FOLDER [--rounds 3] [--limit 20]
e.g. after  .venv/bin/python -m app --input assets/sample.mp4 --no_display --output_dir /tmp/views
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.video import PNG_PARAMS  # noqa: E402

SETTINGS = {
    "app (level 1, Huffman, Sub)": list(PNG_PARAMS),
    "level 1, Huffman, all filters": [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY,
                                      cv2.IMWRITE_PNG_STRATEGY_HUFFMAN_ONLY],
    "level 1, run-length, Sub": [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY,
                                 cv2.IMWRITE_PNG_STRATEGY_RLE, cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_SUB],
    "this OpenCV's default": [],
}


def main() -> int:
    tool = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    tool.add_argument("folder", type=Path)
    tool.add_argument("--rounds", type=int, default=3)
    tool.add_argument("--limit", type=int, default=20, help="at most this many images, spread over the folder")
    options = tool.parse_args()
    paths = sorted(options.folder.glob("*.png"))
    if not paths:
        print(f"no PNG files in {options.folder}; make some with the app's --no_display --output_dir", file=sys.stderr)
        return 2
    paths = paths[:: max(1, len(paths) // options.limit)][: options.limit]
    images = [image for image in (cv2.imread(str(path)) for path in paths) if image is not None]
    times: dict[str, list[float]] = {name: [] for name in SETTINGS}
    sizes: dict[str, list[int]] = {name: [] for name in SETTINGS}
    for _ in range(options.rounds):
        for name, params in SETTINGS.items():
            for image in images:
                start = time.perf_counter()
                ok, encoded = cv2.imencode(".png", image, params)
                times[name].append((time.perf_counter() - start) * 1000.0)
                assert ok and np.array_equal(cv2.imdecode(encoded, cv2.IMREAD_COLOR), image)
                sizes[name].append(len(encoded))
    height, width = images[0].shape[:2]
    print(f"{len(images)} images of {options.folder} ({width}x{height} the first), {options.rounds} rounds:")
    reference = statistics.median(times[next(iter(SETTINGS))])
    for name in SETTINGS:
        median = statistics.median(times[name])
        print(f"  {name:32s} {median:6.1f} ms  {statistics.mean(sizes[name]) / 1024:7.0f} KB  "
              f"({median / reference:.2f}x the app's time)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
