"""``python -m app`` / ``./run_demo.sh``: flags of the original demo_loftr.py plus LoFTR Live's own."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from model.camera import camera_from_flags
from model.checkpoints import CheckpointError
from model.classical import (
    CLASSICAL_METHODS,
    DEFAULT_RATIO_THRESHOLD,
    REFERENCE_METHODS,
    AnyMatcher,
    ClassicalMatcher,
)
from model.errors import say_out_of_memory
from model.images import make_writable_folder, read_image
from model.interrupt import quit_at_once_on_ctrl_c
from model.matcher import PRECISIONS, Matcher, Resize, device_argument, parse_resize, resize_array, resolve_device
from model.matching import FINE_EXPECTATIONS
from model.peers import LightGlueMatcher, MissingPeerError
from model.refine import REFINEMENTS, UNVERIFIED
from model.weights import default_weights_path

from .actions import epilog_keys
from .headless import HeadlessOptions, ffmpeg_command, run_headless
from .render import VIEWS, MatchWindow, ViewSettings
from .session import AnchorRule, SessionSetup, StartAnchor
from .settings import MatchSettings, Outputs
from .sink import MATCHES_FOLDER
from .sources import (
    CAMERA_INDICES,
    DEFAULT_IMAGE_GLOB,
    CaptureSource,
    Frame,
    FrameSource,
    SourceError,
    camera_available,
    list_cameras,
    looped,
    open_source,
    thin,
)
from .verify import GEOMETRY_MODES, CameraIntrinsics
from .window_setup import WindowHooks, WindowOptions, comparisons_offered

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_VIDEO = ROOT / "assets" / "sample.mp4"
DEFAULT_OUTPUT = Path("demo_output")
#: Matches kept per frame on a CPU: the fine stage costs time per match, and the most confident few hundred
#: also gave a better homography than all of them (weights/README.md, ``--max_matches`` of ``model eval``).
CPU_MAX_MATCHES = 300
MAX_ANCHOR_SIDE = 1280  # an --anchor image's longer side when frames are not resized (--resize -1)

EPILOG = epilog_keys() + """

examples:
  ./run_demo.sh                                   webcam 0 (or the bundled sample video without a camera)
  ./run_demo.sh --input video.mp4 --save_video    a video file, also written as an mp4 of the view
  ./run_demo.sh --input frames/ --image_glob '*.png' --no_display --output_dir out/
  ./run_demo.sh --list_cameras                    which cameras there are (their --input index, size, rate)
  ./run_demo.sh --camera_size 1280 720            webcam 0 at 720p (the view is sharper; matching stays fast)
  ./run_demo.sh --input clip.mp4 --loop --compare sift   a demo that never ends: LoFTR and SIFT on a loop
  ./run_demo.sh --geometry fundamental --reanchor_below 80   walk around: a new anchor when the old one is lost
  ./run_demo.sh --input rtsp://camera/stream --model indoor
  ./run_demo.sh --input poster.mp4 --geometry homography     outline the anchor in the live frame
  ./run_demo.sh --anchor book_cover.jpg --geometry homography --any_rotation --any_scale   find a known object
  ./run_demo.sh --input poster.mp4 --geometry homography --blend_anchor   see where the homography is right
  ./run_demo.sh --weight weights/outdoor_ds.ckpt --device cuda --precision fp16
  ./run_demo.sh --input frames/ --no_display --geometry fundamental --compare sift   LoFTR and SIFT, both
  ./run_demo.sh --geometry essential --fov 70     how far the webcam turned since the anchor, which way it moved
  ./run_demo.sh --geometry essential --calibration webcam.yml   the same, calibrated (lens distortion taken out)
  ./run_demo.sh --input clip.mp4 --no_display --anchor_frame 300 --geometry homography   all frames vs frame 300
"""


CLEAR_LINE = "\r\x1b[K"  # carriage return, then erase to the end of the line (ANSI)


class AppError(Exception):
    """A one-line problem for the user; exit code 2."""


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad command line in one line (plus exit code 2), not usage + error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="run_demo.sh", description="LoFTR Live: dense LoFTR matches between an anchor frame and a live "
                                        "frame, coloured by confidence.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--input", help="webcam index, video file, image folder, or http/rtsp URL (default: webcam 0, or the "
                        "bundled sample video when there is no camera)")
    add("--list_cameras", action="store_true",
        help="list the cameras that deliver frames (index, size, rate) and exit")
    add("--camera_size", type=int, nargs=2, metavar=("W", "H"),
        help="ask the camera for frames of this size (e.g. 1280 720; in MJPG, which USB cameras deliver at "
             "full rate); the first lines say what it gives")
    add("--weight", help="weights for the selected --model (official .ckpt or ours)")
    add("--indoor_weight", help="weights used for the indoor model")
    add("--outdoor_weight", help="weights used for the outdoor model")
    add("--model", choices=("indoor", "outdoor", *REFERENCE_METHODS), default="outdoor",
        help="which model to start with: LoFTR's indoor or outdoor one, or OpenCV's SIFT or ORB or DISK + "
             "LightGlue to compare with on the same frames (key k switches at run time)")
    add("--compare", metavar="sift|orb|lightglue|WEIGHTS",
        help="also match every frame with OpenCV's SIFT or ORB, DISK + LightGlue, or other LoFTR weights (e.g. an "
             "official checkpoint against ours), and draw its matches below (key b)")
    add("--loop", action="store_true",
        help="in the window, play a video file or image folder over and over (e.g. a demo at a stand)")
    add("--image_glob", nargs="+", default=list(DEFAULT_IMAGE_GLOB), help="file patterns for an image folder")
    add("--skip", type=int, default=1, help="use every N-th image/frame of a folder or video")
    add("--max_length", type=int, default=1000000, help="maximum number of frames read from a folder or video")
    add("--start", type=int, default=0, metavar="N",
        help="begin at frame N of a video file or image folder (it is the first anchor); the window's slider goes "
             "anywhere")
    add("--resize", type=int, nargs="+",
        help="the size frames are matched at: W H (exact), MAX (longer side, aspect kept) or -1 (as they come); "
             "default a longer side of 640 on CUDA, 320 on a CPU (interactive speed); frames are shown sharper, "
             "as they come (at most 960 pixels on their longer side)")
    add("--no_display", action="store_true", help="no window: write PNGs (and videos) to --output_dir")
    add("--output_dir", help="folder for PNGs, videos and, headless, frames.csv (a line per frame: matches, inliers, "
                             f"time) (default with --no_display: ./{DEFAULT_OUTPUT}/)")
    add("--save_video", action="store_true", help="write the rendered view as an H.264 mp4")
    add("--save_input", action="store_true", help="write the raw input frames as an mp4")
    add("--save_matches", action="store_true",
        help="write each frame's matches (keypoints, confidences, inliers, ...) as an npz into "
             "OUTPUT_DIR/matches/, numbered like the PNGs")
    add("--skip_frames", type=int, default=1, help="match every N-th frame of a live camera or stream")
    add("--top_k", type=int, default=2000, help="end of the shown window of matches (by confidence rank)")
    add("--bottom_k", type=int, default=0, help="start of the shown window of matches (by confidence rank)")
    add("--device", default="auto", type=device_argument, help="auto, cpu, cuda or cuda:N")
    add("--precision", default="auto", choices=PRECISIONS, help="auto: fp16 on CUDA, bf16 on CPUs that have it")
    add("--compile", nargs="?", const="on", default="auto", choices=("auto", "on", "off"),
        help="compile LoFTR for this machine with torch.compile: 1.5x faster matching on a CPU (python -m model "
             "bench --compile; about a minute the first time on a machine, seconds later). on (or --compile alone): "
             "before the first frame; auto: in the window on a CPU, in the background while matching goes on; off")
    add("--threads", type=int, metavar="N",
        help="CPU threads for matching (default: the cores other programs leave free, re-checked every 2 s)")
    add("--threshold", type=float, help="coarse confidence threshold (default: the model's)")
    add("--fine_expectation", default="auto", choices=("auto", *FINE_EXPECTATIONS),
        help="LoFTR's sub-pixel refinement: the expectation over the whole fine window (the official) or around "
             "its peak (more accurate for our weights); auto: the official for official weights, peak for ours")
    add("--refinement", default="auto", choices=("auto", *REFINEMENTS),
        help="after the network, each match refined on the frames themselves by optical flow (flow), with the anchor's "
             "keypoint first moved to the most corner-like pixel of its cell (corners), and with windows turned and "
             "scaled as the neighbouring matches show where the view turned or zoomed (affine), or not (none); auto: "
             "affine for our weights when the network sees the frames shrunk 1.5x or more, never for official weights")
    add("--unverified", default="auto", choices=UNVERIFIED,
        help="matches whose refinement on the frames did not hold (the flow strayed or did not lead back): dropped "
             "(unless fewer than 8 held) or kept at the network's positions; auto: dropped where the network sees the "
             "frames shrunk 1.5x or more, else kept")
    add("--max_matches", type=int,
        help=f"cap on matches per frame, the most confident are kept (they alone go through the fine stage); "
             f"default {CPU_MAX_MATCHES} on a CPU (interactive speed), none on CUDA; -1 for none")
    add("--anchor", metavar="IMAGE",
        help="start with this image as the anchor (e.g. a photo of the object to find) instead of the first "
             "frame; n replaces it with the live frame")
    add("--anchor_frame", type=int, metavar="N",
        help="start with frame N of the video file or image folder as the anchor (read ahead), e.g. a frame from "
             "the middle against the whole video")
    add("--region", type=float, nargs=4, metavar=("X0", "Y0", "X1", "Y1"),
        help="match only from this box of the anchor, in fractions of its width and height (0 0 1 1: all of "
             "it), for every anchor; in the window, drag a box on the anchor instead")
    add("--anchor_every", type=int, default=0,
        help="every N-th frame matched after an anchor becomes the anchor (0: keep it); in the window, frames "
             "dropped while matching do not count")
    add("--reanchor_below", type=int, default=0, metavar="N",
        help="after a frame with fewer than N matches (inliers, with --geometry) the next frame becomes the anchor: "
             "the view recovers when the camera has moved away from the anchor (0: never; an --anchor image is "
             "kept)")
    add("--geometry", choices=GEOMETRY_MODES, default="none",
        help="fit a homography (planar scenes, rotating camera), a fundamental matrix (any rigid scene) or an "
             "essential matrix (any rigid scene, a camera of known --calibration, --intrinsics or --fov: also how "
             "far it turned and which way it moved since the anchor) to each frame's matches with MAGSAC++ and grey "
             "out the outliers (key e cycles; default none)")
    add("--inliers_only", action="store_true",
        help="keep only the matches the --geometry fit takes as inliers, in the view and the match files (key o)")
    add("--intrinsics", type=float, nargs=4, metavar=("FX", "FY", "CX", "CY"),
        help="the camera's focal lengths and principal point, in pixels of its frames as they come (from a "
             "calibration), for --geometry essential")
    add("--calibration", metavar="FILE",
        help="instead of --intrinsics: the camera's calibration file, with its lens distortion, which is taken out "
             "of the matches before an essential matrix is fitted (OpenCV's YAML/XML/JSON as calibrateCamera "
             "writes it, ROS camera_info YAML, or JSON with K and dist)")
    add("--fov", type=float, metavar="DEGREES",
        help="instead of --intrinsics, for a camera without a calibration: its horizontal field of view (a "
             "webcam's data sheet says it, often 60-80 degrees)")
    add("--any_rotation", action="store_true",
        help="match LoFTR at any in-plane rotation (a camera rolled over, an object held upside down): frames are "
             "matched against the anchor turned by the quarter turn (0, 90, 180, 270 degrees) that matches best, "
             "tried again when the matches weaken (key t toggles it; LoFTR alone finds matches up to about 45 "
             "degrees)")
    add("--any_scale", action="store_true",
        help="also match LoFTR against the anchor seen at half its size, and keep whichever matches best: a scene "
             "or object more than twice as far away as in the anchor (e.g. a book cover held at arm's length) is "
             "found again (key z toggles it; LoFTR alone copes with about twice or half the anchor's size)")
    add("--blend_anchor", action="store_true",
        help="with --geometry homography: lay the anchor, warped by the homography, over the live frame in false "
             "colour (grey where the fit is right, green/magenta fringes where not; key w toggles it)")
    add("--view", choices=VIEWS, default="lines",
        help="draw matches as lines coloured by confidence, or as dots at both ends coloured by their position in "
             "the anchor (the correspondence field, clearer for thousands of matches; key l toggles)")
    return parser


def gui_unavailable_reason() -> str | None:
    """Why a Qt window cannot open here, or None. Checked up front: Qt aborts the process when it cannot."""
    if not sys.platform.startswith("linux"):
        return None
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "No display found"
    if not os.environ.get("WAYLAND_DISPLAY"):
        from PyQt6.QtCore import QLibraryInfo

        plugins = Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath))
        return xcb_plugin_problem(plugins / "platforms" / "libqxcb.so")
    return None


#: What Qt 6's X11 plugin needs beyond a desktop's usual libraries (Debian/Ubuntu package names).
QT_X11_PACKAGES = ("libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 "
                   "libxcb-shape0 libxcb-xkb1 libxkbcommon-x11-0")


def debian_package(soname: str) -> str:
    """Debian's package for a shared library: libxcb-icccm.so.4 -> libxcb-icccm4, libxkbcommon-x11.so.0 ->
    libxkbcommon-x11-0."""
    stem, _, version = soname.partition(".so.")
    return f"{stem}{'-' if stem[-1:].isdigit() else ''}{version.split('.')[0]}"


def xcb_plugin_problem(plugin: Path) -> str | None:
    """Why Qt's X11 plugin would not load (a missing system library), or None.

    Loading it is the only reliable check: Qt itself aborts the whole process when it cannot.
    """
    import ctypes
    import re

    try:
        ctypes.CDLL(str(plugin))
    except OSError as error:
        missing = re.search(r"(lib[\w.+-]+\.so[.\d]*): cannot open shared object file", str(error))
        if missing:
            return (f"Qt cannot open a window without {missing.group(1)} (apt-get install "
                    f"{debian_package(missing.group(1))}; all Qt needs: apt-get install {QT_X11_PACKAGES})")
        return f"Qt's X11 plugin does not load ({str(error).splitlines()[0]})"
    return None


def weights_for(args: argparse.Namespace, domain: str) -> Path:
    explicit = args.weight if args.model == domain and args.weight else getattr(args, f"{domain}_weight")
    return Path(explicit) if explicit else default_weights_path(domain, resolve_device(args.device).type)


def compiles_in_background(args: argparse.Namespace) -> bool:
    """--compile auto in the window: LoFTR on a CPU is compiled beside the matching (``app.worker``)."""
    return args.compile == "auto" and resolve_device(args.device).type == "cpu"


def max_matches_for(args: argparse.Namespace) -> int | None:
    """--max_matches, with its device-dependent default; None means no cap."""
    if args.max_matches is None:
        return CPU_MAX_MATCHES if resolve_device(args.device).type == "cpu" else None
    return None if args.max_matches == -1 else args.max_matches


def build_matcher(args: argparse.Namespace, domain: str) -> AnyMatcher:
    """The matcher of a domain: LoFTR's indoor or outdoor weights, a classical method (CLASSICAL_METHODS), whose
    threshold is the ratio test's (``model.classical``), or DISK + LightGlue ("lightglue", ``model.peers``)."""
    if domain in CLASSICAL_METHODS:
        threshold = DEFAULT_RATIO_THRESHOLD if args.threshold is None else args.threshold
        return ClassicalMatcher(domain, threshold=threshold, max_matches=max_matches_for(args))
    if domain == "lightglue":
        return lightglue_matcher(args)
    return loftr_matcher(args, weights_for(args, domain))


def lightglue_matcher(args: argparse.Namespace) -> LightGlueMatcher:
    """DISK + LightGlue on the frames as matched (the session's size): 512 keypoints on a CPU (about a second a
    frame on two cores), 2048 on a GPU; or one clear AppError when its package is missing."""
    device = resolve_device(args.device)
    settings = {} if args.threshold is None else {"threshold": args.threshold}
    try:
        return LightGlueMatcher(max_matches=max_matches_for(args), max_keypoints=512 if device.type == "cpu" else 2048,
                                device=str(device), **settings)
    except MissingPeerError as error:
        raise AppError(str(error)) from None


def loftr_matcher(args: argparse.Namespace, weights: str | Path) -> Matcher:
    """LoFTR with these weights and the flags' device, precision, threshold and cap, or one clear AppError."""
    try:
        matcher = Matcher(weights, device=args.device, precision=args.precision, resize=None,
                          threshold=args.threshold, max_matches=max_matches_for(args),
                          fine_expectation=args.fine_expectation)
    except (CheckpointError, ValueError) as error:
        raise AppError(str(error)) from None
    matcher.refinement = args.refinement
    matcher.unverified = args.unverified
    if args.compile == "on":
        matcher.compile()  # compiled at the first frames: the session warms it up (MatchSession.warm_up)
    return matcher


def read_anchor(path: str, resize: Resize) -> tuple[np.ndarray, str]:
    """--anchor: the image and its name. The matching session brings its longer side to the frames' (aspect kept).

    An image larger than MAX_ANCHOR_SIDE is brought down to it here: with --resize -1 (frames as they come) a
    camera photo's 4000 pixels would make coarse matching take gigabytes; that case is said.
    """
    image = read_image(path) if Path(path).is_file() else None
    if image is None:
        raise AppError(f"cannot read the anchor image {path} (missing, or not an image OpenCV can decode)")
    height, width = image.shape[:2]
    if max(height, width) > MAX_ANCHOR_SIDE:
        if resize is None:
            _warn(f"the anchor image is {width}x{height}; using it at {MAX_ANCHOR_SIDE} pixels on its longer side "
                  "(choose another size with --resize)")
        image = resize_array(image, MAX_ANCHOR_SIDE)
    return image, Path(path).name


def frame_feed(args: argparse.Namespace, input_spec: str, source: FrameSource,
               replay: bool) -> Callable[[int], Iterator[Frame]]:
    """The frames of ``source`` (opened from ``input_spec``) from any frame on: every --skip-th (--skip_frames-th
    of a live source), at most --max_length, over and over with ``replay``; sized for matching by the session."""
    stride = args.skip_frames if source.is_live else args.skip

    def frames_from(start: int) -> Iterator[Frame]:
        raw = looped(lambda: open_source(input_spec, tuple(args.image_glob), on_warning=_warn), start) \
            if replay else source.frames(start)
        return thin(raw, stride, args.max_length)

    return frames_from


def open_input(args: argparse.Namespace, path: str) -> tuple[FrameSource, Callable[[int], Iterator[Frame]]]:
    """A video file or image folder to play in the window instead of its input (dropped on it, or Open...), and
    its frames from any frame on (played over and over with --loop). SourceError: one line for the status bar."""
    source = open_source(path, tuple(args.image_glob), on_warning=_warn)
    if source.is_live or not source.length:
        source.close()
        raise SourceError(f"cannot play {source.name} here: open a video file or an image folder")
    return source, frame_feed(args, path, source, replay=args.loop)


def start_anchor(args: argparse.Namespace, input_spec: str, resize: Resize) -> StartAnchor | None:
    """The anchor to start with: --anchor's image, or --anchor_frame's frame of the input (read from a second
    opening of it, so that the frames matched still start at --start); None: the first frame matched."""
    if args.anchor:
        return StartAnchor(*read_anchor(args.anchor, resize))
    if args.anchor_frame is None:
        return None
    source = open_source(input_spec, tuple(args.image_glob))
    try:
        frame = next(source.frames(args.anchor_frame), None)
    finally:
        source.close()
    if frame is None or frame.index != args.anchor_frame:
        raise AppError(f"cannot read frame {args.anchor_frame} of {source.name} for --anchor_frame; "
                       "give another frame number")
    return StartAnchor(frame.image, index=frame.index)


def validate(args: argparse.Namespace) -> Resize:
    try:
        resolve_device(args.device)  # on every path: the default size below and --resize W H alike
        if args.resize is None:
            resize: Resize = 640 if resolve_device(args.device).type == "cuda" else 320
        else:
            resize = parse_resize(args.resize)
    except ValueError as error:
        raise AppError(str(error)) from None
    for name in ("skip", "skip_frames", "max_length", "threads"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise AppError(f"--{name} must be at least 1")
    if args.start < 0 or (args.anchor_frame is not None and args.anchor_frame < 0):
        raise AppError("--start N and --anchor_frame N are frame numbers: 0 or more")
    if args.anchor and args.anchor_frame is not None:
        raise AppError("give --anchor IMAGE or --anchor_frame N, not both: there is one anchor to start with")
    if min(args.anchor_every, args.reanchor_below, args.bottom_k) < 0 or args.top_k <= args.bottom_k:
        raise AppError("need --anchor_every >= 0, --reanchor_below >= 0 and 0 <= --bottom_k < --top_k")
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        raise AppError("--threshold must be between 0 and 1")
    if args.max_matches is not None and args.max_matches < -1:
        raise AppError("--max_matches must be a count >= 0, or -1 for no cap")
    if args.region is not None:
        x0, y0, x1, y1 = args.region
        if not (0.0 <= x0 < x1 <= 1.0 and 0.0 <= y0 < y1 <= 1.0):
            raise AppError("--region X0 Y0 X1 Y1 are fractions of the anchor's size: 0 <= X0 < X1 <= 1 and "
                           "0 <= Y0 < Y1 <= 1")
        args.region = (x0, y0, x1, y1)
    compare_file = args.compare if args.compare and args.compare not in REFERENCE_METHODS else None
    if compare_file and not Path(compare_file).is_file():
        raise AppError(f"--compare takes sift, orb, lightglue or a LoFTR weights file; {compare_file} is neither")
    if compare_file and args.model not in REFERENCE_METHODS:
        with contextlib.suppress(CheckpointError):  # a model without weights is said when it is loaded
            if weights_for(args, args.model).resolve() == Path(compare_file).resolve():
                raise AppError(f"--compare {args.compare} is the {args.model} model's own weights file: it would "
                               "compare the model with itself; give another file")
    if args.compare and args.compare == args.model:
        raise AppError(f"--compare {args.compare} with --model {args.model} would compare {args.model.upper()} with "
                       "itself; start with LoFTR (--model outdoor or indoor)")
    if args.weight and args.model in REFERENCE_METHODS:
        raise AppError(f"--weight is for a LoFTR model; with --model {args.model} give --outdoor_weight or "
                       "--indoor_weight (the models k switches to)")
    if args.loop and args.no_display:
        raise AppError("--loop is for the window: a headless run would never end")
    if args.input is not None and not args.input.strip():
        raise AppError("--input is empty: give a camera index, a video, a folder of frames or a stream URL")
    if args.camera_size is not None:
        if min(args.camera_size) < 1:
            raise AppError("--camera_size W H must be positive, e.g. 1280 720")
        if args.input is not None and not args.input.isdigit():
            raise AppError("--camera_size is for a camera (--input INDEX); a video, folder or stream comes at its own "
                           "size (--resize sets the size frames are matched at)")
        args.camera_size = tuple(args.camera_size)
    args.anchor_rule = AnchorRule(args.anchor_every, args.reanchor_below)  # for the window and headless runs alike
    if args.blend_anchor and args.geometry != "homography":
        raise AppError("--blend_anchor draws the anchor through the fitted homography: add --geometry homography")
    if args.inliers_only and args.geometry == "none":
        raise AppError("--inliers_only keeps the inliers of a geometric fit: add --geometry homography, fundamental "
                       "or essential")
    args.intrinsics = camera_intrinsics(args.intrinsics, args.fov, args.calibration)
    if args.geometry == "essential":
        if args.intrinsics is None:
            raise AppError("--geometry essential needs the camera's intrinsics: add --calibration FILE, --intrinsics "
                           "FX FY CX CY (pixels of its frames as they come) or --fov DEGREES, or use --geometry "
                           "fundamental")
        if args.anchor:
            raise AppError("--geometry essential relates two frames of one camera, and --anchor is an image file: "
                           "use --geometry fundamental or homography")
    return resize


def camera_intrinsics(calibrated: list[float] | None, fov_deg: float | None,
                      calibration_file: str | None = None) -> CameraIntrinsics | None:
    """--intrinsics FX FY CX CY, --fov DEGREES or --calibration FILE (checked, at most one) -> CameraIntrinsics;
    None without any."""
    given = [flag for flag, value in (("--calibration FILE", calibration_file), ("--intrinsics FX FY CX CY",
                                      calibrated), ("--fov DEGREES", fov_deg)) if value is not None]
    if len(given) > 1:
        raise AppError(f"give one of {' or '.join(given)}, not {'both' if len(given) == 2 else 'all three'}")
    try:
        camera = camera_from_flags(calibrated, calibration_file)
    except ValueError as error:
        raise AppError(str(error)) from None
    if camera is not None:
        return CameraIntrinsics(calibration=camera)
    if fov_deg is not None:
        if not 0 < fov_deg < 180:
            raise AppError("--fov DEGREES is a camera's horizontal field of view: between 0 and 180, e.g. 70")
        return CameraIntrinsics(fov_deg=fov_deg)
    return None


def main(argv: list[str] | None = None) -> int:
    try:
        return run(build_parser().parse_args(argv))
    except (AppError, SourceError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (RuntimeError, MemoryError) as error:
        on_gpu = isinstance(error, torch.OutOfMemoryError)
        return say_out_of_memory(error, f"use a smaller --resize (e.g. --resize 640 480){', or --device cpu' * on_gpu}")
    except KeyboardInterrupt:  # while it starts (a run's loop and the window stop on Ctrl-C themselves)
        print("interrupted", file=sys.stderr)
        return 130


def _warn(message: str) -> None:
    # On a terminal, clear the progress line first, so the warning gets a line of its own.
    print(f"{CLEAR_LINE if sys.stderr.isatty() else ''}warning: {message}", file=sys.stderr)


def print_cameras() -> int:
    """--list_cameras: a line per camera that delivers frames (exit code 0), or a line saying there is none."""
    cameras = list_cameras()
    for camera in cameras:
        print(camera.line())
    if not cameras:
        print(f"no camera delivers frames (tried --input {CAMERA_INDICES.start} to {CAMERA_INDICES.stop - 1})")
    return 0


def _report_camera_size(camera: FrameSource, asked: tuple[int, int] | None) -> None:
    """Say the size a camera gives, and warn when it is not the one asked for."""
    size = camera.frame_size if isinstance(camera, CaptureSource) else None
    if size is None:
        return
    print(f"{camera.name.capitalize()}: {size[0]}x{size[1]} frames", file=sys.stderr)
    if asked is not None and size != asked:
        _warn(f"{camera.name} gives {size[0]}x{size[1]} frames, not the {asked[0]}x{asked[1]} asked for "
              "(a size it does not offer)")


def _check_calibration_size(source: FrameSource, intrinsics: CameraIntrinsics | None) -> None:
    """A calibration made for frames of another shape than the source's is one line before anything runs (a
    folder, whose frames' size is not known yet, is checked frame by frame: the overlay says it)."""
    size = source.frame_size if isinstance(source, CaptureSource) else None
    if size is None or intrinsics is None or intrinsics.calibration is None:
        return
    try:
        intrinsics.calibration.for_size(*size)
    except ValueError as error:
        source.close()
        raise AppError(f"--calibration: {error} ({source.name})") from None


def run(args: argparse.Namespace) -> int:
    if args.list_cameras:
        return print_cameras()
    resize = validate(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    gui = not args.no_display
    reason = gui_unavailable_reason() if gui else None
    if reason:
        if args.loop:
            raise AppError(f"--loop is for the window: {reason[0].lower()}{reason[1:]}, and a headless run would "
                           "never end")
        print(f"{reason}: running headless into ./{args.output_dir or DEFAULT_OUTPUT}/", file=sys.stderr)
        gui = False
    input_spec = args.input
    fallback = False
    if input_spec is None:
        if camera_available(0):
            input_spec = "0"
        else:
            print(f"No camera found: playing the bundled sample video {SAMPLE_VIDEO.relative_to(ROOT)}",
                  file=sys.stderr)
            input_spec = str(SAMPLE_VIDEO)
            fallback = True
    source = open_source(input_spec, tuple(args.image_glob), on_warning=_warn,
                         camera_size=args.camera_size if input_spec.isdigit() else None)
    if input_spec.isdigit():
        _report_camera_size(source, args.camera_size)
    _check_calibration_size(source, args.intrinsics)
    if args.loop and source.is_live:
        source.close()
        raise AppError(f"--loop replays a video file or image folder; {source.name} is live")
    for flag, frame in (("--start", args.start or None), ("--anchor_frame", args.anchor_frame)):
        if frame is not None and not (source.length and frame < source.length):
            source.close()
            raise AppError(f"{flag} {frame} is past the last frame of {source.name} ({source.length - 1})"
                           if source.length else f"{flag} needs a video file or image folder; {source.name} is "
                           f"{'live' if source.is_live else 'a video that does not say how many frames it has'}")
    try:
        output_dir = Path(args.output_dir) if args.output_dir else DEFAULT_OUTPUT
        if not gui or args.output_dir or args.save_video or args.save_input or args.save_matches:
            _check_writable(output_dir)
        anchor = start_anchor(args, input_spec, resize)
        # The comparison is loaded here too, so that a file that is not one is a clear line before anything runs;
        # the window's first request for it takes this one.
        preloaded: dict[str, tuple[AnyMatcher, str]] = {}
        with quit_at_once_on_ctrl_c(), single_threaded_torch(enabled=gui):  # nothing is written yet
            if args.compare:
                preloaded[args.compare] = load_matcher(args, args.compare)
            matcher = build_matcher(args, args.model)
        label = model_label(args.model, matcher)
        print(f"Model {label} on {matcher.device.type}/{matcher.precision}", file=sys.stderr)
        stride = args.skip_frames if source.is_live else args.skip
        # In a window the fallback sample video loops, so a new user always has something to look at.
        frames_from = frame_feed(args, input_spec, source, replay=gui and (fallback or args.loop))
        frames = frames_from(args.start)
        settings = MatchSettings(geometry=args.geometry, any_rotation=args.any_rotation, any_scale=args.any_scale,
                                 resize=resize, inliers_only=args.inliers_only)
        look = ViewSettings(MatchWindow(args.bottom_k, args.top_k), args.view, args.blend_anchor)
        setup = SessionSetup(args.region, args.anchor_rule, args.intrinsics)
        outputs = Outputs(output_dir, source.fps / stride, args.save_video, args.save_input, args.save_matches)
        if gui:
            with quit_at_once_on_ctrl_c():
                from .gui import run_gui  # Qt is imported only when a window is wanted

            options = WindowOptions(settings, look, setup, anchor, args.model, outputs,
                                    comparisons_offered(args.compare), _other_model_differs(args), args.skip,
                                    adapt_threads=not args.threads, compile_in_background=compiles_in_background(args))
            hooks = WindowHooks(lambda choice: preloaded.pop(choice, None) or load_matcher(args, choice),
                                lambda path: read_anchor(path, resize), frames_from if source.length else None,
                                lambda path: open_input(args, path))
            return run_gui(args, source, frames, (matcher, label), options, hooks)
        frame_count = (source.length or 0) - args.start
        total = min(-(-frame_count // stride), args.max_length) if frame_count else None
        # As in the original demo, PNGs go to an --output_dir that was asked for; without one they are
        # written only when nothing else is, so that a headless run always leaves something to look at.
        write_png = bool(args.output_dir) or not (args.save_video or args.save_input or args.save_matches)
        comparison = preloaded.get(args.compare) if args.compare else None
        headless = HeadlessOptions(replace(outputs, pngs=write_png), settings, look, setup, anchor,
                                   adapt_threads=not args.threads)
        try:
            summary = run_headless(frames, matcher, headless, label, total, on_stop=source.interrupt,
                                   comparison=comparison)
        except OSError as error:
            raise AppError(str(error)) from None
    finally:
        source.close()
    summary.lost_frames = source.lost_frames
    if not summary.frames and not summary.interrupted and not summary.write_error:
        raise AppError(f"{source.name} delivered no frames to match (an empty stream, or --start past its end)")
    how = "interrupted" if summary.interrupted else "done"
    pngs = f", {summary.pngs} PNG{'s' * (summary.pngs != 1)} in {output_dir}/" if write_png else ""
    print(f"{how}: {summary.frames} frame{'s' * (summary.frames != 1)} in {summary.seconds:.1f} s "
          f"({summary.frames / max(summary.seconds, 1e-9):.1f} fps){pngs}", file=sys.stderr)
    if summary.latencies_ms:
        median, slowest = np.percentile(summary.latencies_ms, [50, 95])
        print(f"matching time per frame: median {median:.0f} ms, 95th percentile {slowest:.0f} ms", file=sys.stderr)
    for name, (frames_verified, matches, inliers) in summary.verified.items():
        print(f"{args.geometry}, {name}: {inliers / frames_verified:.0f} inliers of {matches / frames_verified:.0f} "
              f"matches per frame on average ({100 * inliers / max(matches, 1):.0f}%)", file=sys.stderr)
    if summary.reanchored:
        frames = ", ".join(map(str, summary.reanchored))
        print(f"new anchors after frames with fewer than {args.reanchor_below} "
              f"{'inliers' if args.geometry != 'none' else 'matches'}: frame{'s' * (len(summary.reanchored) > 1)} "
              f"{frames}", file=sys.stderr)
    for path in (summary.video, summary.input_video):
        if path:
            print(f"wrote {path}", file=sys.stderr)
    if summary.match_files:
        print(f"wrote {summary.match_files} match files to {output_dir / MATCHES_FOLDER}/ "
              f"(numpy.load: keypoints0, keypoints1, confidence, ...)", file=sys.stderr)
    if summary.table and summary.frames:
        print(f"wrote {summary.table} (a line per frame: matches, inliers, matching time)", file=sys.stderr)
    if summary.pngs:
        print(f"make a video of the PNGs with:\n  {ffmpeg_command(output_dir, outputs.fps)}", file=sys.stderr)
    if summary.lost_frames:
        print(f"error: {summary.lost_frames} frame{'s' * (summary.lost_frames != 1)} of {source.name} could not be "
              "decoded and are missing from the outputs (exit code 1)", file=sys.stderr)
    if summary.write_error:
        held = f"; the run stopped there: the outputs hold the first {summary.frames} frames, each complete" \
            if summary.frames else ""
        print(f"error: {summary.write_error}{held}", file=sys.stderr)
    return summary.exit_code


def _other_model_differs(args: argparse.Namespace) -> bool:
    """Whether the indoor and the outdoor model are different files (on CUDA, without official weights or
    --indoor_weight / --outdoor_weight, both are the bundled compact_s: switching would reload the same)."""
    try:
        return weights_for(args, "indoor").resolve() != weights_for(args, "outdoor").resolve()
    except CheckpointError:
        return True  # a domain without weights: switching says why, in the status bar


def model_label(domain: str, matcher: AnyMatcher) -> str:
    return f"{domain}: {matcher.loaded.description if matcher.loaded else matcher.name}"


def load_matcher(args: argparse.Namespace, choice: str) -> tuple[AnyMatcher, str]:
    """A matcher and its label: LoFTR's indoor or outdoor model, SIFT, ORB, DISK + LightGlue, or a LoFTR weights
    file (--compare)."""
    if choice in ("indoor", "outdoor", *REFERENCE_METHODS):
        matcher = build_matcher(args, choice)
        return matcher, model_label(choice, matcher)
    compared = loftr_matcher(args, choice)
    return compared, model_label("compared", compared)


@contextlib.contextmanager
def single_threaded_torch(enabled: bool) -> Iterator[None]:
    """Run torch on one thread in the calling thread meanwhile (restored afterwards).

    Every thread that runs a parallel torch op gets its own OpenMP team of worker threads. When the window's
    main thread keeps one (left over from loading the model) beside the inference thread's, the two teams
    contend for the cores and inference slows down (``tools/gui_fps.py --load_threads 2`` measures it; a
    thread alone reaches ``python -m model bench`` speed only when it holds the only team). So the window's
    model is loaded serially.
    """
    if not enabled:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _check_writable(folder: Path) -> None:
    try:
        make_writable_folder(folder)
    except OSError as error:
        raise AppError(f"cannot write to output folder {folder}: {error.strerror or error}") from None
