"""Everything a run writes, for the window and headless runs alike: the video of the view, the video of the input,
a match file per result, a PNG per frame with a ``frames.csv`` row, recordings and snapshots.

Atomic writes, a full disk and finalising live here. Two policies for a failed write (e.g. a full disk): a
headless run stops (``say`` None: the error is raised, and ``close`` finishes what was written), the window goes on
(``say`` given: the failing output stops and is said in one line; an exception in a Qt slot would abort the
application). No Qt here.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Callable

import numpy as np

from model.images import write_image, write_npz

from .session import MatchPacket
from .settings import Outputs
from .video import CsvWriter, MatchFileWriter, PacedVideoWriter, PngWriter, VideoWriter

MAX_VIDEO_FPS = 30.0  # a faster camera's rate is not worth repeating views for
MATCHES_FOLDER = "matches"
MATCHES_PATTERN = "frame_%06d.npz"
PNG_PATTERN = "frame_%06d.png"
FRAME_TABLE = "frames.csv"
VIEW_VIDEO, INPUT_VIDEO = "loftr_matches.mp4", "demo_input.mp4"

Video = VideoWriter | PacedVideoWriter


def _naming(error: OSError, path: Path) -> str:
    """The error's line, with the file it concerns."""
    return str(error) if str(path) in str(error) else f"cannot write {path}: {error}"


class OutputSink:
    """Writes what ``outputs`` asks for into ``outputs.folder``.

    say: None to raise a failed write (headless), else how a failed output is reported before it stops (window).
    paced: videos play in real time at ``outputs.fps`` (at most MAX_VIDEO_FPS) however irregularly views come, a
    view repeated until the next (window); else one video frame per view (headless). table: the columns of
    ``frames.csv``, whose row for a frame is written once every output of that frame is on the disk (None: no
    table).
    """

    def __init__(self, outputs: Outputs, say: Callable[[str], None] | None = None, paced: bool = False,
                 table: tuple[str, ...] | None = None) -> None:
        self.folder, self.say, self.paced = outputs.folder, say, paced
        self.fps = min(outputs.fps, MAX_VIDEO_FPS) if paced else outputs.fps
        if table is not None or outputs.pngs:
            self.folder.mkdir(parents=True, exist_ok=True)
        self.video = self._video(self.folder / VIEW_VIDEO) if outputs.video else None
        self.input_video = self._video(self.folder / INPUT_VIDEO) if outputs.input_video else None
        self.match_files = MatchFileWriter(self.folder / MATCHES_FOLDER, MATCHES_PATTERN) if outputs.matches else None
        self.pngs = PngWriter(self.folder, PNG_PATTERN) if outputs.pngs else None
        self.table = CsvWriter(self.folder / FRAME_TABLE, table) if table is not None else None
        self.pending_rows: list[tuple[object, ...]] = []  # of frames whose PNG is not on the disk yet
        self.videos_written: list[tuple[Path, int]] = []

    def _video(self, path: Path) -> Video:
        return PacedVideoWriter(path, self.fps) if self.paced else VideoWriter(path, self.fps)

    @property
    def recording(self) -> bool:
        return self.video is not None

    @property
    def rows(self) -> int:
        """Rows of ``frames.csv`` written: the frames whose every output is on the disk."""
        return self.table.rows if self.table is not None else 0

    def write_view(self, canvas: np.ndarray) -> None:
        if self.video is not None:
            self.video = self._write_video(self.video, canvas)

    def write_input(self, frame: np.ndarray) -> None:
        if self.input_video is not None:
            self.input_video = self._write_video(self.input_video, frame)

    def write_matches(self, packet: MatchPacket, index: int) -> None:
        """A result's matches as match file ``index``."""
        if self.match_files is None:
            return
        try:
            self.match_files.write(packet.arrays(images=False), index)
        except OSError as error:
            self._failed(error, "; matches are no longer saved")
            self.match_files = None

    def write_frame(self, view: np.ndarray, index: int, row: tuple[object, ...]) -> None:
        """A headless frame's PNG (written on a thread) and its table row, written once the PNG is."""
        if self.pngs is not None:
            self.pngs.write(view, index)
        self.pending_rows.append(row)
        self._write_rows()

    def _write_rows(self) -> None:
        """The rows of frames whose every output is written (PNGs are written on a thread, in order)."""
        if self.table is None:
            self.pending_rows.clear()
            return
        done = len(self.pending_rows) if self.pngs is None else self.pngs.written - self.table.rows
        for row in self.pending_rows[:done]:
            self.table.write(row)
        del self.pending_rows[:done]

    def _write_video(self, writer: Video, frame: np.ndarray) -> Video | None:
        """``writer`` after writing ``frame``, or None when it failed (said, what was written finalised)."""
        try:
            writer.write(frame)
            return writer
        except OSError as error:
            if self.say is None:
                raise
            self.say(f"{_naming(error, writer.path)}; that video stops here")
            try:
                self._finalise(writer)
            except OSError:
                pass  # the file is already broken; the message above says so
            return None

    def _failed(self, error: OSError, consequence: str) -> None:
        if self.say is None:
            raise error
        self.say(f"{error}{consequence}")

    def start_recording(self) -> Path | None:
        """A new, time-stamped mp4 of the view in the output folder (None: the folder cannot be made, said)."""
        stem = time.strftime("recording_%Y%m%d_%H%M%S")
        path = self.folder / f"{stem}.mp4"
        for number in itertools.count(2):  # two recordings within a second keep both
            if not path.exists() and path not in (written for written, _ in self.videos_written):
                break
            path = self.folder / f"{stem}_{number}.mp4"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            self._failed(OSError(f"cannot record into {self.folder}: {error}"), "")
            return None
        self.video = self._video(path)
        return path

    def stop_recording(self) -> Path | None:
        """Finalise the recording; its path (None: there was none)."""
        if self.video is None:
            return None
        path = self.video.path
        self._finalise(self.video)
        self.video = None
        return path

    def snapshot(self, canvas: np.ndarray, packet: MatchPacket) -> Path | None:
        """The view as a PNG, and beside it an npz of the matches with both images (``MatchPacket.arrays``)."""
        stem = time.strftime("snapshot_%Y%m%d_%H%M%S") + f"_frame{packet.frame_index:06d}"
        path = self.folder / f"{stem}.png"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            write_image(path, canvas)
            write_npz(path.with_suffix(".npz"), compressed=True, **packet.arrays())
        except OSError as error:
            self._failed(OSError(_naming(error, path)), "")
            return None
        return path

    def _finalise(self, writer: Video) -> None:
        writer.close()
        if writer.frames_written:
            self.videos_written.append((writer.path, writer.frames_written))

    def finalise_videos(self) -> bool:
        """Finish both videos; whether there was one."""
        had = self.video is not None or self.input_video is not None
        for writer in (self.video, self.input_video):
            if writer is not None:
                self._finalise(writer)
        self.video = self.input_video = None
        return had

    def close(self) -> None:
        """Finish everything: the PNGs still queued, their rows, the table, the videos; safe to call twice. The
        first failure is raised once everything was tried."""
        first: OSError | None = None
        for step in (self._close_pngs, self._write_rows, self._close_table, self.finalise_videos):
            try:
                step()
            except OSError as error:
                first = first or error
        if first is not None:
            raise first

    def _close_pngs(self) -> None:
        if self.pngs is not None:
            self.pngs.close()

    def _close_table(self) -> None:
        if self.table is not None:
            self.table.close()

    def __enter__(self) -> OutputSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
