"""How LoFTR copes with in-plane rotation, with and without --any_rotation: a real frame, turned step by step
through a full circle, matched against an upright anchor by the app's own session (the CPU default: bundled
weights, 320 pixels, 300 matches at most), as a camera rolled over or an object turned in the hand would be.

For each angle it prints the matches, their mean confidence, how many of them one fundamental matrix explains
(MAGSAC++, 1 network pixel, as the app's --geometry fundamental) and, with --any_rotation, the anchor's turn that
was matched and the time the frame took (a frame on which the other turns were tried is marked).

Usage:  .venv/bin/python tools/rotation_sweep.py [--images DIR] [--anchor N] [--frame M] [--step DEGREES]
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

from app.session import MatchSession  # noqa: E402
from app.settings import MatchSettings  # noqa: E402
from app.sources import Frame  # noqa: E402
from model.images import read_image  # noqa: E402
from model.matcher import Matcher  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SEQUENCE = ROOT.parent / "shared" / "data" / "sequences" / "tum_freiburg" / "images"


def turned(image: np.ndarray, degrees: float) -> np.ndarray:
    """The image turned clockwise about its centre, as big as it is (the corners that leave it are cut)."""
    height, width = image.shape[:2]
    rotation = cv2.getRotationMatrix2D((width / 2, height / 2), -degrees, 1.0)
    return cv2.warpAffine(image, rotation, (width, height))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", default=str(SEQUENCE), help="a folder of frames (default: the TUM sequence)")
    parser.add_argument("--anchor", type=int, default=0, help="the anchor's index among the sorted frames")
    parser.add_argument("--frame", type=int, default=2, help="the index of the frame that is turned")
    parser.add_argument("--step", type=float, default=30.0, help="degrees between two angles")
    args = parser.parse_args()
    files = sorted(path for path in Path(args.images).iterdir() if path.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if len(files) <= max(args.anchor, args.frame):
        print(f"error: {args.images} has {len(files)} images; --anchor and --frame index them", file=sys.stderr)
        return 2
    anchor, frame = (read_image(str(files[index])) for index in (args.anchor, args.frame))
    matcher = Matcher(resize=320, max_matches=300)
    angles = [*np.arange(0.0, 360.0, args.step), 0.0]
    inliers: dict[bool, list[int]] = {False: [], True: []}
    for any_rotation in (False, True):
        session = MatchSession(matcher, MatchSettings("fundamental", any_rotation=any_rotation, resize=320))
        session.process(Frame(anchor, 0))
        print(f"--any_rotation {'on' if any_rotation else 'off'}: {files[args.frame].name} turned clockwise against "
              f"{files[args.anchor].name}")
        for index, angle in enumerate(angles):
            searches = session.search.searches if session.search else 0
            start = time.perf_counter()
            packet = session.process(Frame(turned(frame, angle), index + 1))
            milliseconds = (time.perf_counter() - start) * 1000
            assert packet.geometry is not None
            inliers[any_rotation].append(packet.geometry.num_inliers)
            searched = session.search is not None and session.search.searches > searches
            turn = "" if packet.anchor_view is None else f"  anchor turned {packet.anchor_view.degrees:3d}"
            print(f"  {angle:5.0f} deg: {len(packet.result):3d} matches, mean confidence "
                  f"{np.mean(packet.result.confidence) if len(packet.result) else 0:.2f}, "
                  f"{packet.geometry.num_inliers:3d} inliers{turn}  {milliseconds:4.0f} ms"
                  f"{'  (all four turns tried)' if searched else ''}")
    print(f"mean inliers over the {len(angles)} angles: {statistics.mean(inliers[False]):.0f} upright, "
          f"{statistics.mean(inliers[True]):.0f} with --any_rotation")
    return 0


if __name__ == "__main__":
    sys.exit(main())
