"""Starting the Qt application: threads, window, Ctrl-C handling. Imported only when a window is wanted."""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Iterator

from PyQt6.QtCore import QTimer
from PyQt6.QtWidgets import QApplication

from model.classical import AnyMatcher
from model.interrupt import end_process

from .capture import CaptureThread, LatestFrame
from .sink import MATCHES_FOLDER
from .sources import Frame, FrameSource
from .window import MainWindow
from .window_setup import WindowHooks, WindowOptions
from .worker import InferenceThread


def build_window(source: FrameSource, frames: Iterator[Frame], initial: tuple[AnyMatcher, str],
                 options: WindowOptions, hooks: WindowHooks) -> MainWindow:
    """The window with its capture and inference threads (not started), matching ``frames`` of ``source`` with
    ``initial`` (an already loaded matcher and its label, for ``options.domain``)."""
    mailbox = LatestFrame()
    capture = CaptureThread(source, lambda: frames, mailbox, pace=not source.is_live, frames_from=hooks.frames_from,
                            stride=options.stride)
    inference = InferenceThread(mailbox, hooks.load_model, options, initial)
    return MainWindow(capture, inference, options, hooks)


def run_gui(args: argparse.Namespace, source: FrameSource, frames: Iterator[Frame], initial: tuple[AnyMatcher, str],
            options: WindowOptions, hooks: WindowHooks) -> int:
    """Show the window until it is closed (q, Ctrl-C, SIGTERM); the exit code (128 + a stopping signal's)."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    main_window = build_window(source, frames, initial, options, hooks)
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
        main_window.actions.set_compare(args.compare)
    main_window.start()
    app.exec()
    threads_left = main_window.shutdown()
    print(f"{main_window.results_received} frames matched ({main_window.matching_rate():.1f} per second while "
          f"matching), {main_window.results_shown} drawn", file=sys.stderr)
    for path, frames in main_window.sink.videos_written:
        print(f"wrote {path} ({frames} frames)", file=sys.stderr)
    if main_window.sink.match_files is not None and main_window.sink.match_files.written:
        folder = options.outputs.folder / MATCHES_FOLDER
        print(f"wrote {main_window.sink.match_files.written} match files to {folder}/", file=sys.stderr)
    code = 128 + interrupted[0] if interrupted else 0  # as shells report a signal: 130 Ctrl-C, 143 SIGTERM
    if threads_left:  # everything is written and said; the interpreter's shutdown would abort inside torch
        end_process(code)
    return code
