"""Headless runner: every frame of the source is matched and rendered to PNGs and/or mp4, nothing dropped.

Ctrl-C and SIGTERM stop the loop between frames; whatever was written is finalised either way.
"""

from __future__ import annotations

import shlex
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, TextIO

import imageio_ffmpeg

from model.classical import AnyMatcher
from model.cpu_load import ThreadGovernor
from model.interrupt import quit_at_once_on_ctrl_c
from model.matcher import Matcher

from .packet_view import render_packet
from .render import ViewSettings
from .session import MatchPacket, MatchSession, SessionSetup, StartAnchor, matched_on
from .settings import DEFAULT_SETTINGS, MatchSettings, Outputs
from .sink import FRAME_TABLE, INPUT_VIDEO, PNG_PATTERN, VIEW_VIDEO, OutputSink
from .sources import Frame

FRAME_COLUMNS = ("output_index", "frame_index", "anchor", "matches", "inliers", "match_ms", "reanchored",
                 "rotation_deg", "anchor_turn_deg", "anchor_scale")


def frame_row(output_index: int, packet: MatchPacket) -> tuple[object, ...]:
    """A frame's line of ``frames.csv``: the number of its PNG and match file, the source's frame number, the
    anchor (``#N`` or the --anchor file's name), the matches, the inliers (empty without --geometry), the matching
    time in ms, whether the frame became the anchor (--reanchor_below), how far the camera turned since the
    anchor (--geometry essential; else empty) and the anchor's view matched (its turn and scale, with
    --any_rotation or --any_scale; else empty); with --compare, the comparison's matches and inliers after them
    (``compare_matches``, ``compare_inliers``)."""
    def counts(counted: MatchPacket) -> tuple[object, ...]:
        return len(counted.result), "" if counted.geometry is None else counted.geometry.num_inliers

    pose = None if packet.geometry is None else packet.geometry.pose
    row = (output_index, packet.frame_index, packet.anchor_label, *counts(packet), f"{packet.latency_ms:.1f}",
           int(packet.reanchored), "" if pose is None else f"{pose.rotation_deg:.2f}",
           *(("", "") if packet.anchor_view is None else (packet.anchor_view.degrees, packet.anchor_view.scale)))
    return row if packet.comparison is None else (*row, *counts(packet.comparison[1]))


@dataclass
class HeadlessOptions:
    """What to write (``Outputs``), and how to match and draw (the flags', for the whole run).

    settings: how frames are matched (``MatchSettings``; its ``compare`` is the caller's to load). look: how views
    are drawn. setup: the anchor's region, when a frame becomes the anchor by itself, the camera's intrinsics.
    anchor: the anchor to start with instead of the first frame (an image file or a frame read ahead;
    ``AnchorRule.every`` still re-anchors on frames N, 2N, ...); the match files go to outputs.folder /
    MATCHES_FOLDER. adapt_threads: match on the cores other programs leave free (model.cpu_load).
    """

    outputs: Outputs
    settings: MatchSettings = DEFAULT_SETTINGS
    look: ViewSettings = ViewSettings()
    setup: SessionSetup = SessionSetup()
    anchor: StartAnchor | None = None
    adapt_threads: bool = True


@dataclass
class HeadlessSummary:
    frames: int
    pngs: int
    seconds: float
    interrupted: bool
    video: Path | None
    input_video: Path | None
    match_files: int = 0
    table: Path | None = None  # frames.csv
    # Per model (its label; the comparison's too): frames with geometric verification, their matches and inliers.
    verified: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)  # matching (and verification) time of each frame
    reanchored: list[int] = field(default_factory=list)  # frames that became the anchor after too few matches
    stop_signal: int = 0  # the signal that stopped the run (SIGINT, SIGTERM), 0 when it ran to its end
    lost_frames: int = 0  # input frames that could not be decoded (a damaged file, unreadable images)
    write_error: str = ""  # why the run stopped early: an output could not be written (e.g. the disk is full)

    @property
    def exit_code(self) -> int:
        """128 + the stopping signal's number as shells report it (130: Ctrl-C, 143: SIGTERM); 2 when an output
        could not be written (an unwritable path, a full disk); 1 when input frames were lost (a damaged file);
        0 when every frame was matched and written."""
        if self.interrupted:
            return 128 + self.stop_signal
        return 2 if self.write_error else 1 if self.lost_frames else 0


class _StopOnSignal:
    """SIGINT/SIGTERM set a flag instead of killing the process mid-write (and call ``on_stop``, e.g. to end
    a source's wait to reconnect); restores the old handlers."""

    def __init__(self, on_stop: Callable[[], None]) -> None:
        self.stop, self.signal_number = False, 0
        self.on_stop = on_stop
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopOnSignal:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.stop, self.signal_number = True, signum
        self.on_stop()

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class Progress:
    """Frames, FPS and ETA on stderr: one line redrawn in place on a terminal; in a log file (not a terminal),
    a plain line every ``log_every_s`` seconds, since redrawn lines would pile up there."""

    def __init__(self, total: int | None, stream: TextIO, log_every_s: float = 10.0) -> None:
        self.total, self.stream, self.log_every_s = total, stream, log_every_s
        self.interactive = stream.isatty()
        self.started = time.perf_counter()
        self.last_logged = self.started

    def update(self, done: int) -> None:
        now = time.perf_counter()
        if not self.interactive and now - self.last_logged < self.log_every_s:
            return
        self.last_logged = now
        self.stream.write(("\r" if self.interactive else "") + self.text(done, now - self.started)
                          + ("" if self.interactive else "\n"))
        self.stream.flush()

    def text(self, done: int, elapsed: float) -> str:
        fps = done / elapsed if elapsed > 0 else 0.0
        if not self.total:
            return f"{done} frames  {fps:.1f} fps "
        eta = (self.total - done) / fps if fps > 0 else 0.0
        width = 24
        filled = int(width * done / self.total)
        bar = "#" * filled + "-" * (width - filled)
        return f"[{bar}] {done}/{self.total} frames  {fps:.1f} fps  ETA {int(eta) // 60}:{int(eta) % 60:02d} "

    def finish(self) -> None:
        if self.interactive:
            self.stream.write("\n")


def run_headless(frames: Iterator[Frame], matcher: AnyMatcher, options: HeadlessOptions, model_label: str,
                 total: int | None = None, stream: TextIO = sys.stderr,
                 on_stop: Callable[[], None] = lambda: None,
                 comparison: tuple[AnyMatcher, str] | None = None) -> HeadlessSummary:
    """Match every frame against the anchor and write the rendered views. ``on_stop`` is called on Ctrl-C
    or SIGTERM (the loop itself stops before the next frame). ``comparison`` is a second (matcher, label), e.g.
    SIFT, matching the same frames against the same anchor, drawn below."""
    outputs = options.outputs
    video_path = outputs.folder / VIEW_VIDEO if outputs.video else None
    input_path = outputs.folder / INPUT_VIDEO if outputs.input_video else None
    device = matched_on(matcher)
    session = MatchSession(matcher, options.settings, options.setup)
    if isinstance(matcher, Matcher) and matcher.compiled:
        print("compiling the model for this machine (about a minute the first time)...", file=stream)
        with quit_at_once_on_ctrl_c():  # nothing is written yet: end at once, not inside the compiler
            failure = session.warm_up()
        if failure is not None:
            print(f"warning: torch.compile failed ({failure}); matching without it", file=stream)
    if options.anchor is not None:
        session.start_with(options.anchor)
    if comparison is not None:
        session.compare_with(*comparison)
    count, failure = 0, ""
    verified: dict[str, tuple[int, int, int]] = {}
    latencies: list[float] = []
    reanchored: list[int] = []
    started = time.perf_counter()
    progress = Progress(total, stream)
    signals = _StopOnSignal(on_stop)
    columns = FRAME_COLUMNS + (("compare_matches", "compare_inliers") if comparison is not None else ())
    sink = OutputSink(outputs, table=columns)
    try:
        with sink, signals:
            threads = ThreadGovernor() if options.adapt_threads else None
            for frame in frames:
                if signals.stop:
                    break
                if threads is not None:
                    threads.update()
                packet = session.process(frame)
                latencies.append(packet.latency_ms)
                if packet.reanchored:
                    reanchored.append(packet.frame_index)
                _count_verified(verified, model_label, packet)
                view = render_packet(packet, options.look, model_label, device)
                try:  # the synchronous outputs first: a frame whose npz or video frame failed gets no PNG
                    sink.write_matches(packet, count)
                    sink.write_view(view)
                    sink.write_input(packet.frame)  # as matched
                    sink.write_frame(view, count, frame_row(count, packet))
                except OSError as error:  # e.g. a full disk: stop here, finish what was written
                    failure = str(error)
                    break
                count += 1
                progress.update(count)
    except OSError as error:  # raised while finishing (the PNGs still queued, the video's last fragment)
        failure = failure or str(error)
    progress.finish()
    if failure:  # the frames whose every output was written (the PNGs go on a thread and may have failed later)
        count = sink.rows
    return HeadlessSummary(count, sink.pngs.written if sink.pngs else 0, time.perf_counter() - started, signals.stop,
                           video_path, input_path, sink.match_files.written if sink.match_files else 0,
                           outputs.folder / FRAME_TABLE, verified, latencies, reanchored, signals.signal_number,
                           write_error=failure)


def _count_verified(verified: dict[str, tuple[int, int, int]], model_label: str, packet: MatchPacket) -> None:
    """Add a packet's geometric verification (and its comparison's) to the per-model frames, matches, inliers."""
    for name, counted in [(model_label, packet), *([packet.comparison] if packet.comparison else [])]:
        if counted.geometry is not None:
            frames_verified, matches, inliers = verified.get(name, (0, 0, 0))
            verified[name] = (frames_verified + 1, matches + len(counted.result),
                              inliers + counted.geometry.num_inliers)


def ffmpeg_command(output_dir: Path, fps: float) -> str:
    """The one shell command that turns the written PNGs into an mp4, quoted to be pasted as it is (the filter's
    parentheses, spaces in a path). Without an ``ffmpeg`` on the PATH it names the one imageio-ffmpeg installed."""
    executable = "ffmpeg" if shutil.which("ffmpeg") else imageio_ffmpeg.get_ffmpeg_exe()
    return shlex.join([executable, "-framerate", f"{fps:g}", "-i", str(output_dir / PNG_PATTERN), "-c:v", "libx264",
                       "-pix_fmt", "yuv420p", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2",
                       str(output_dir / "matches_from_pngs.mp4")])
