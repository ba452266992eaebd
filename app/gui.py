"""Starting the Qt application: threads, window, Ctrl-C handling. Imported only when a window is wanted."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from PyQt6.QtCore import QTimer
from PyQt6.QtWidgets import QApplication

from model.classical import AnyMatcher
from model.matcher import Resize

from .capture import CaptureThread, LatestFrame
from .controls import COMPARISONS
from .headless import MATCHES_FOLDER, MATCHES_PATTERN
from .render import MatchWindow
from .session import KEEP_ANCHOR, AnchorRule, StartAnchor
from .settings import MatchSettings
from .sources import Frame, FrameSource
from .verify import CameraIntrinsics, available_modes
from .video import MatchFileWriter, PacedVideoWriter
from .window import InputOpener, MainWindow
from .worker import InferenceThread

MAX_VIDEO_FPS = 30.0  # a faster camera's rate is not worth repeating views for


def build_window(source: FrameSource, frames: Iterator[Frame], matcher: AnyMatcher, label: str, domain: str,
                 window: MatchWindow, output_dir: Path, fps: float, save_video: bool, save_input: bool,
                 load_model: Callable[[str], tuple[AnyMatcher, str]], geometry: str = "none",
                 anchor: StartAnchor | None = None,
                 anchor_region: tuple[float, float, float, float] | None = None,
                 save_matches: bool = False, blend_anchor: bool = False, view: str = "lines",
                 read_anchor_file: Callable[[str], tuple[np.ndarray, str]] | None = None,
                 model_switch: bool = True, anchor_rule: AnchorRule = KEEP_ANCHOR,
                 resize: Resize = None, comparisons: tuple[str, ...] = COMPARISONS,
                 frames_from: Callable[[int], Iterator[Frame]] | None = None, stride: int = 1,
                 open_input: InputOpener | None = None, intrinsics: CameraIntrinsics | None = None,
                 any_rotation: bool = False, any_scale: bool = False) -> MainWindow:
    """The window with its capture and inference threads (not started); ``comparisons``: see ``ControlBar``;
    ``frames_from``: the frames from a position of a file or folder, every ``stride``-th (the window then offers a
    slider over them); ``open_input``: opens a video file or image folder to play instead (dropped, or Open...);
    ``intrinsics``: the camera's (--calibration, --intrinsics or --fov), which the essential-matrix mode needs;
    ``any_rotation``, ``any_scale``: the anchor's views LoFTR tries (--any_rotation, --any_scale; keys t, z)."""
    mailbox = LatestFrame()
    capture = CaptureThread(source, lambda: frames, mailbox, pace=not source.is_live, frames_from=frames_from,
                            stride=stride)
    settings = MatchSettings(geometry=geometry, any_rotation=any_rotation, any_scale=any_scale, resize=resize)
    inference = InferenceThread(mailbox, load_model, domain, settings, initial=(matcher, label), anchor=anchor,
                                anchor_region=anchor_region, anchor_rule=anchor_rule, intrinsics=intrinsics)
    # The window's videos play in real time at the source's rate (at most MAX_VIDEO_FPS), whatever the rate of
    # results: a view is repeated until the next one is drawn.
    video_fps = min(fps, MAX_VIDEO_FPS)
    video = PacedVideoWriter(output_dir / "loftr_matches.mp4", video_fps) if save_video else None
    input_video = PacedVideoWriter(output_dir / "demo_input.mp4", video_fps) if save_input else None
    match_files = MatchFileWriter(output_dir / MATCHES_FOLDER, MATCHES_PATTERN) if save_matches else None
    return MainWindow(capture, inference, window, output_dir, video, input_video, settings,
                      match_files=match_files, blend_anchor=blend_anchor, view=view, read_anchor_file=read_anchor_file,
                      video_fps=video_fps, model_switch=model_switch, comparisons=comparisons,
                      open_input=open_input, geometry_modes=available_modes(intrinsics is not None))


def comparisons_offered(compare: str | None) -> tuple[str, ...]:
    """What the Compare box offers: none, SIFT, ORB, and the LoFTR weights file of --compare FILE."""
    return COMPARISONS if compare is None or compare in COMPARISONS else (*COMPARISONS, compare)


def run_gui(args: argparse.Namespace, source: FrameSource, frames: Iterator[Frame], matcher: AnyMatcher, label: str,
            window: MatchWindow, output_dir: Path, fps: float, load_model: Callable[[str], tuple[AnyMatcher, str]],
            anchor: StartAnchor | None = None,
            read_anchor_file: Callable[[str], tuple[np.ndarray, str]] | None = None,
            model_switch: bool = True, resize: Resize = None,
            frames_from: Callable[[int], Iterator[Frame]] | None = None,
            open_input: InputOpener | None = None) -> int:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    main_window = build_window(source, frames, matcher, label, args.model, window, output_dir, fps,
                               args.save_video, args.save_input, load_model, geometry=args.geometry,
                               anchor=anchor, anchor_region=args.region, save_matches=args.save_matches,
                               blend_anchor=args.blend_anchor, view=args.view, read_anchor_file=read_anchor_file,
                               model_switch=model_switch,
                               anchor_rule=args.anchor_rule, resize=resize,
                               comparisons=comparisons_offered(args.compare), frames_from=frames_from,
                               stride=args.skip, open_input=open_input, intrinsics=args.intrinsics,
                               any_rotation=args.any_rotation, any_scale=args.any_scale)
    interrupted = []

    def on_signal(signum: int, frame: object) -> None:
        interrupted.append(signum)
        main_window.close()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    # Python runs signal handlers only between bytecodes; a timer keeps the interpreter ticking in Qt's loop.
    ticker = QTimer()
    ticker.start(200)
    ticker.timeout.connect(lambda: None)
    main_window.show()
    if args.compare:
        main_window.set_compare(args.compare)
    main_window.start()
    app.exec()
    main_window.shutdown()
    print(f"{main_window.results_received} frames matched ({main_window.matching_rate():.1f} per second while "
          f"matching), {main_window.results_shown} drawn", file=sys.stderr)
    for path, frames in main_window.videos_written:
        print(f"wrote {path} ({frames} frames)", file=sys.stderr)
    if main_window.match_files is not None and main_window.match_files.written:
        print(f"wrote {main_window.match_files.written} match files to {output_dir / MATCHES_FOLDER}/", file=sys.stderr)
    return 128 + interrupted[0] if interrupted else 0  # as shells report a signal: 130 Ctrl-C, 143 SIGTERM
