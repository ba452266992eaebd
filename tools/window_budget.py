"""Where the window's frame time goes on a CPU: the app's inference thread, without a window, step by step.

The same compiled model and the app's own ``InferenceThread`` match the bundled sample video in three setups, run
in turns (``--rounds`` times each, alternating, so that a host whose speed drifts treats them alike):

- ``model``: frames already decoded in memory, handed over at once (no capture thread): the model alone in the
  thread that runs it in the app;
- ``+ capture``: the app's ``CaptureThread`` decodes the video and paces it like a camera at --camera_fps, as in
  the window;
- ``+ capture + drawing``: the inference thread also draws each result's view, as it does for the window on a CPU.

What the window (``tools/gui_fps.py``) adds on top of the last setup is its own thread: painting, the plots.
Printed for each setup: frames matched per second (the median of its rounds), milliseconds per frame and per stage,
the frame age (from reading a frame to its result) and the rate as a share of the first setup's.

Usage:  .venv/bin/python tools/window_budget.py [--seconds 15] [--rounds 2] [--camera_fps 30] [app flags...]
(app flags choose the model, size and cap as in the app: --model, --weight, --resize, --max_matches, --threads;
LoFTR is compiled first, as the window compiles it, unless --compile off)
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PyQt6.QtCore import QCoreApplication, Qt  # noqa: E402

from app.capture import CaptureThread, LatestFrame  # noqa: E402
from app.cli import SAMPLE_VIDEO, build_matcher, build_parser, model_label, single_threaded_torch, validate  # noqa: E402
from app.plots import STAGES  # noqa: E402
from app.render import MatchWindow, ViewSettings  # noqa: E402
from app.session import MatchPacket  # noqa: E402
from app.settings import MatchSettings  # noqa: E402
from app.sources import Frame, looped, open_source  # noqa: E402
from app.window_setup import WindowOptions  # noqa: E402
from app.worker import InferenceThread  # noqa: E402

SETUPS = ("model", "+ capture", "+ capture + drawing")


class DecodedFrames(LatestFrame):
    """A mailbox that always holds the next of some frames decoded beforehand (stamped as read now): the inference
    thread never waits for a frame and no thread decodes beside it."""

    def __init__(self, frames: list[Frame]) -> None:
        super().__init__()
        self._next = itertools.cycle(frames)

    def take(self, timeout: float) -> tuple[Frame | None, bool]:
        return replace(next(self._next), captured=time.perf_counter()), False


@dataclass(frozen=True)
class Result:
    """What one result said: when it came, its stages' milliseconds and its frame's age (not the packet: keeping
    every packet's images would make each setup slower than the last, by page faults)."""

    when: float
    stages_ms: dict[str, float]
    frame_age_ms: float


@dataclass
class Results:
    """One setup's results, as they come (called from the inference thread)."""

    kept: list[Result] = field(default_factory=list)

    def add(self, packet: MatchPacket) -> None:
        self.kept.append(Result(time.perf_counter(), dict(packet.result.timings_ms), packet.frame_age_ms))


def run_setup(setup: str, matcher: object, frames: list[Frame], options: argparse.Namespace) -> list[Result]:
    """The results of ``options.seconds`` s of one setup, after ``options.warm_up`` s of running it."""
    results = Results()
    mailbox = DecodedFrames(frames) if setup == "model" else LatestFrame()
    window = WindowOptions(MatchSettings(resize=options.resize), ViewSettings(), domain=options.app.model,
                           adapt_threads=not options.app.threads, compile_in_background=False)
    label = model_label(options.app.model, matcher)
    inference = InferenceThread(mailbox, lambda domain: (matcher, label), window, (matcher, label))
    inference.result_ready.connect(results.add, Qt.ConnectionType.DirectConnection)  # no event loop runs here
    if setup.endswith("drawing"):
        inference.request(ViewSettings(MatchWindow(options.app.bottom_k, options.app.top_k)))
    capture = None
    if setup != "model":
        source = open_source(str(SAMPLE_VIDEO))
        source.fps = options.camera_fps  # paced like a camera, as tools/gui_fps.py does
        capture = CaptureThread(source, lambda: looped(lambda: open_source(str(SAMPLE_VIDEO))), mailbox, pace=True)
        capture.start()
    inference.start()
    time.sleep(options.warm_up)
    start = time.perf_counter()
    time.sleep(options.seconds)
    timed = [result for result in results.kept if result.when >= start]
    inference.stop()
    if capture is not None:
        capture.stop()
        capture.wait()
    inference.wait()
    return timed


def summary(results: list[Result], seconds: float) -> dict[str, float]:
    """Frames per second, mean frame age and mean ms per stage (of the stages the matcher has; zeros when no result
    came)."""
    if not results:
        return {"fps": 0.0, "age": 0.0}
    stages = {stage: statistics.mean(result.stages_ms.get(stage, 0.0) for result in results)
              for stage in STAGES if stage != "geometry" and any(stage in result.stages_ms for result in results)}
    return {"fps": len(results) / seconds, "age": statistics.mean(result.frame_age_ms for result in results),
            **stages}


def main() -> int:
    tool = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    tool.add_argument("--seconds", type=float, default=15.0, help="timed seconds per round of a setup")
    tool.add_argument("--warm_up", type=float, default=3.0, help="seconds each round runs before timing")
    tool.add_argument("--rounds", type=int, default=2)
    tool.add_argument("--camera_fps", type=float, default=30.0)
    options, app_flags = tool.parse_known_args()
    options.app = build_parser().parse_args(app_flags)
    options.resize = validate(options.app)
    QCoreApplication(sys.argv[:1])
    with single_threaded_torch(enabled=True):  # as the app loads it: the inference thread holds the only team
        matcher = build_matcher(options.app, options.app.model)
    matcher.resize = options.resize
    if hasattr(matcher, "compile") and options.app.compile != "off":  # as the window ends up (--compile off: not)
        compiling = threading.Thread(target=lambda: (matcher.compile(), matcher.warm_up()))
        compiling.start()  # in a thread of its own: this thread keeps one torch thread, like the app's main thread
        compiling.join()
    source = open_source(str(SAMPLE_VIDEO))
    frames = list(source.frames())
    source.close()
    print(f"{model_label(options.app.model, matcher)} on {matcher.device.type}/{matcher.precision}, "
          f"{'compiled, ' if getattr(matcher, 'compiled', False) else ''}the sample video ({len(frames)} frames of "
          f"{frames[0].image.shape[1]}x{frames[0].image.shape[0]}), {options.rounds} rounds of {options.seconds:g} s; "
          f"the capture thread paces it at {options.camera_fps:g} FPS, a ceiling for the setups with capture")
    rounds: dict[str, list[dict[str, float]]] = {setup: [] for setup in SETUPS}
    for _ in range(options.rounds):
        for setup in SETUPS:
            rounds[setup].append(summary(run_setup(setup, matcher, frames, options), options.seconds))
    base = statistics.median(result["fps"] for result in rounds["model"]) or 1.0
    for setup in SETUPS:
        fps = statistics.median(result["fps"] for result in rounds[setup])
        means = {name: statistics.mean(result.get(name, 0.0) for result in rounds[setup]) for name in rounds[setup][0]}
        stages = "  ".join(f"{name} {means[name]:.1f}" for name in means if name not in ("fps", "age"))
        rates = ", ".join(f"{result['fps']:.1f}" for result in rounds[setup])
        age = f", frame age {means['age']:.0f} ms" if setup != "model" else ""
        print(f"{setup:<20} {fps:5.1f} FPS ({fps / base:4.0%}), {1000 / max(fps, 1e-9):5.1f} ms per frame{age}; "
              f"rounds {rates}; ms per stage: {stages}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
