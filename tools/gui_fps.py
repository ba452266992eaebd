"""Frames per second of the real window (offscreen Qt, no display needed), with a camera-like source.

The bundled sample video is replayed in a loop at --camera_fps, like a webcam, through the app's own capture
thread, inference thread and window (plots included); after --seconds the window closes and the means of the
last two thirds of the run are printed: frames matched per second and per-stage milliseconds of the
inference thread, with how many results there were and how many of them were drawn, and the share of a core
each of the app's threads used (Linux). ``--threads N`` fixes the matching threads as in the app.

Usage:  .venv/bin/python tools/gui_fps.py [--seconds 30] [--camera_fps 30] [--load_threads N] [--screen 1920x1080]
        [--model_alone] [app flags...]
(app flags such as --geometry homography or --compare sift apply to the window as in the app)
--load_threads N loads the model with N torch threads in the main thread (the app uses 1; see
``app.cli.single_threaded_torch``), to measure what that choice is worth.
--model_alone first times the same model alone (``python -m model bench`` on the same weights, size and cap, eager
and compiled, in a child process: a team of OpenMP threads left in this process's main thread would slow the
window's inference thread) and prints the window's rate as a share of each.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

os.environ["QT_QPA_PLATFORM"] = "offscreen"
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from PyQt6.QtCore import QTimer  # noqa: E402
from PyQt6.QtWidgets import QApplication  # noqa: E402

from app.cli import (  # noqa: E402
    SAMPLE_VIDEO,
    build_matcher,
    build_parser,
    compiles_in_background,
    load_matcher,
    model_label,
    single_threaded_torch,
    validate,
)
from app.gui import build_window  # noqa: E402
from app.plots import STAGES  # noqa: E402
from app.render import MatchWindow, ViewSettings  # noqa: E402
from app.session import SessionSetup  # noqa: E402
from app.settings import MatchSettings, Outputs  # noqa: E402
from app.sources import looped, open_source  # noqa: E402
from app.window_setup import WindowHooks, WindowOptions, comparisons_offered  # noqa: E402
from model.interrupt import end_process  # noqa: E402


def main() -> int:
    tool = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    tool.add_argument("--seconds", type=float, default=30.0)
    tool.add_argument("--camera_fps", type=float, default=30.0)
    tool.add_argument("--load_threads", type=int, help="torch threads for loading the model in the main thread")
    tool.add_argument("--screen", default="1920x1080", metavar="WxH",
                      help="the offscreen screen's size (Qt's own default is 800x800, smaller than most desktops: "
                           "the window would show the view shrunk)")
    tool.add_argument("--model_alone", action="store_true",
                      help="time the model alone first (model bench, eager and compiled) and compare")
    options, app_flags = tool.parse_known_args()
    args = build_parser().parse_args(app_flags)
    resize = validate(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    os.environ["QT_QPA_PLATFORM"] = f"offscreen:configfile={_screen_config(options.screen)}"
    application = QApplication(sys.argv[:1])
    threads = torch.get_num_threads()
    alone: dict[str, float] = {}
    if options.load_threads:
        torch.set_num_threads(options.load_threads)
        matcher = build_matcher(args, args.model)
        torch.set_num_threads(threads)
    else:
        with single_threaded_torch(enabled=True):
            matcher = build_matcher(args, args.model)
    if options.model_alone:
        alone = _model_alone_fps(matcher, resize, args)
    source = open_source(str(SAMPLE_VIDEO))
    source.fps = options.camera_fps  # the capture thread paces at the source's rate, as a camera delivers
    frames = looped(lambda: open_source(str(SAMPLE_VIDEO)))
    window_options = WindowOptions(MatchSettings(geometry=args.geometry, resize=resize),
                                   ViewSettings(MatchWindow(args.bottom_k, args.top_k)),
                                   SessionSetup(intrinsics=args.intrinsics), domain=args.model,
                                   outputs=Outputs(Path("demo_output"), source.fps),
                                   comparisons=comparisons_offered(args.compare), adapt_threads=not args.threads,
                                   compile_in_background=compiles_in_background(args))
    window = build_window(source, frames, (matcher, model_label(args.model, matcher)), window_options,
                          WindowHooks(lambda choice: load_matcher(args, choice)))
    window.show()
    if args.compare:
        window.actions.set_compare(args.compare)
    window.start()
    samples: list[Counter[str]] = []
    QTimer.singleShot(int(options.seconds * 1000 / 3), lambda: samples.append(_thread_cpu_seconds()))
    QTimer.singleShot(int(options.seconds * 1000) - 50, lambda: samples.append(_thread_cpu_seconds()))
    QTimer.singleShot(int(options.seconds * 1000), window.close)
    application.exec()
    threads_left = window.shutdown()
    history = {name: list(values) for name, values in window.stats.history.items()}
    kept = slice(len(history["fps"]) // 3, None)  # skip the warm-up
    window_fps = statistics.mean(history["fps"][kept])
    stages = "  ".join(f"{stage} {statistics.mean(history[stage][kept]):.1f}" for stage in STAGES)
    print(f"{model_label(args.model, matcher)} on {matcher.device.type}/{matcher.precision}, {threads} torch threads, "
          f"model loaded with {options.load_threads or 1}: {window.results_received} results ({window.results_shown} "
          f"drawn) in {options.seconds:g} s, "
          f"{window_fps:.1f} FPS matched, frame age {statistics.mean(history['frame_age'][kept]):.0f} ms; "
          f"ms per stage: {stages}")
    if alone:
        print("the model alone (model bench, same weights, size and cap): " + ", ".join(
            f"{name} {fps:.1f} FPS (window {window_fps / fps:.0%} of it)" for name, fps in alone.items()))
    if len(samples) == 2 and samples[1]:
        busy = samples[1]
        busy.subtract(samples[0])
        shares = ", ".join(f"{name} {seconds / (options.seconds * 2 / 3):.2f}" for name, seconds in busy.most_common(6))
        print(f"cores used by each thread name over the last two thirds (/proc): {shares}")
    if threads_left:  # a model still compiling: the interpreter's shutdown would abort inside torch
        end_process(0)
    return 0


def _screen_config(size: str) -> str:
    """A configuration file for Qt's offscreen platform with one screen of ``size`` (WxH); its path."""
    width, height = (int(value) for value in size.lower().split("x"))
    screen = {"name": "OffscreenScreen", "x": 0, "y": 0, "width": width, "height": height, "logicalDpi": 96,
              "logicalBaseDpi": 96, "dpr": 1}
    path = Path(tempfile.gettempdir()) / f"gui_fps_screen_{width}x{height}.json"
    path.write_text(json.dumps({"synchronousWindowSystemEvents": False, "windowFrameMargins": False,
                                "screens": [screen]}))
    return str(path)


def _model_alone_fps(matcher: object, resize: object, args: argparse.Namespace) -> dict[str, float]:
    """Frames per second of ``model bench`` (cached anchor) on the window's model, size and cap: eager and compiled."""
    loaded = getattr(matcher, "loaded", None)
    if loaded is None or resize is None:
        return {}
    size = resize if isinstance(resize, tuple) else (resize,)
    command = [sys.executable, "-m", "model", "bench", "--weights", str(loaded.path), "--resize", *map(str, size),
               "--runs", "30", "--no_kornia", "--compile", "--device", str(getattr(matcher, "device", "cpu"))]
    if getattr(matcher, "max_matches", None) is not None:
        command += ["--max_matches", str(matcher.max_matches)]
    if args.threads:
        command += ["--threads", str(args.threads)]
    output = subprocess.run(command, capture_output=True, text=True, check=True,
                            cwd=Path(__file__).resolve().parent.parent).stdout
    rates = {"eager": r"^ours \S+, cached anchor .*?([\d.]+) fps",
             "compiled": r"^ours \S+, compiled, cached .*?([\d.]+) fps"}
    found = {name: re.search(pattern, output, re.MULTILINE) for name, pattern in rates.items()}
    return {name: float(match.group(1)) for name, match in found.items() if match}


def _thread_cpu_seconds() -> Counter[str]:
    """CPU seconds of this process's threads so far, by thread name (Linux; empty elsewhere)."""
    busy: Counter[str] = Counter()
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    for task in Path("/proc/self/task").glob("*"):
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        busy[name] += (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    return busy


if __name__ == "__main__":
    sys.exit(main())
