"""How LoFTR copes with an object that appears smaller than in its anchor photo, with and without --any_scale: the
photo is pasted, 10 pixels narrower each frame, into a background frame (an object carried away from the camera
over 41 frames, from 560 to 160 pixels wide), and each frame is matched against the photo as the app's --anchor
with its own session (the CPU default: bundled weights, 320 pixels, 300 matches at most, --geometry homography).

For every fourth width it prints the matches, how many of them are right (within 6 pixels of where the paste put
them), the homography's inliers and, with --any_scale, the anchor's view that was matched, and the time the frame
took; then the means over all frames.

Usage:  .venv/bin/python tools/scale_sweep.py [--anchor IMAGE] [--background IMAGE]
(defaults: a quarter of the sample video's first frame, as a 640x480 photo; a TUM frame, or blurred noise where the
sequence is not there)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from app.session import MatchSession, StartAnchor  # noqa: E402
from app.settings import MatchSettings  # noqa: E402
from app.sources import Frame  # noqa: E402
from model.images import read_image  # noqa: E402
from model.matcher import Matcher  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BACKGROUND = ROOT.parent / "shared" / "data" / "sequences" / "tum_freiburg" / "images" / "1341847985.746954.png"
WIDTHS = tuple(range(560, 150, -10))  # of the photo in the 640-pixel-wide frame, one frame each
SHOWN_EVERY = 40  # pixels of width between two printed frames
TOP_LEFT = (60, 40)


def default_anchor() -> np.ndarray:
    capture = cv2.VideoCapture(str(ROOT / "assets" / "sample.mp4"))
    _, frame = capture.read()
    return cv2.resize(frame[240:480, 0:320], (640, 480), interpolation=cv2.INTER_LINEAR)


def default_background() -> np.ndarray:
    image = read_image(str(BACKGROUND)) if BACKGROUND.is_file() else None
    if image is not None:
        return cv2.resize(image, (640, 480))
    noise = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    return cv2.GaussianBlur(noise, (0, 0), 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--anchor", help="the photo of the object (default: see above)")
    parser.add_argument("--background", help="the frame it is pasted into (resized to 640x480)")
    args = parser.parse_args()
    anchor = default_anchor() if args.anchor is None else read_image(args.anchor)
    background = default_background() if args.background is None else read_image(args.background)
    if anchor is None or background is None:
        print("error: cannot read --anchor or --background", file=sys.stderr)
        return 2
    background = cv2.resize(background, (640, 480))
    matcher = Matcher(resize=320, max_matches=300)
    right: dict[bool, list[int]] = {False: [], True: []}
    for any_scale in (False, True):
        session = MatchSession(matcher, MatchSettings("homography", any_scale=any_scale, resize=320))
        session.start_with(StartAnchor(anchor, name="photo"))
        print(f"--any_scale {'on' if any_scale else 'off'}: the {anchor.shape[1]}x{anchor.shape[0]} photo, "
              f"smaller and smaller in a 640x480 frame")
        started = time.perf_counter()
        for index, width in enumerate(WIDTHS):
            height = round(width * anchor.shape[0] / anchor.shape[1])
            frame = background.copy()
            x, y = TOP_LEFT
            frame[y:y + height, x:x + width] = cv2.resize(anchor, (width, height), interpolation=cv2.INTER_AREA)
            searches = session.search.searches if session.search else 0
            start = time.perf_counter()
            packet = session.process(Frame(frame, index))
            milliseconds = (time.perf_counter() - start) * 1000
            result, geometry = packet.result, packet.geometry
            assert geometry is not None
            truth = result.keypoints0 * (width / anchor.shape[1]) + [x, y]
            correct = int(np.count_nonzero(np.linalg.norm(truth - result.keypoints1, axis=1) < 6))
            right[any_scale].append(correct)
            if width % SHOWN_EVERY:
                continue
            searched = session.search is not None and session.search.searches > searches
            view = "" if packet.anchor_view is None else f"  anchor {packet.anchor_view.describe():<12}"
            print(f"  {width:3d} px wide: {len(result):3d} matches, {correct:3d} right, {geometry.num_inliers:3d} "
                  f"inliers{view}  {milliseconds:4.0f} ms{'  (every view tried)' if searched else ''}")
        searches = f", every view tried on {session.search.searches} of them" if session.search else ""
        print(f"  {len(WIDTHS)} frames in {time.perf_counter() - started:.1f} s{searches}")
    print(f"right matches per frame on average: {statistics.mean(right[False]):.0f} without --any_scale, "
          f"{statistics.mean(right[True]):.0f} with it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
