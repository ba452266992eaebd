"""The window's outputs: the video of the view (--save_video, or r), the video of the input (--save_input), a match
file per result (--save_matches) and snapshots (s). A failed write is said in one line and stops that output only:
an exception in a Qt slot would abort the application. No Qt here."""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Callable

import numpy as np

from model.images import write_image, write_npz

from .headless import MATCHES_FOLDER, MATCHES_PATTERN
from .session import MatchPacket
from .settings import Outputs
from .video import MatchFileWriter, PacedVideoWriter

MAX_VIDEO_FPS = 30.0  # a faster camera's rate is not worth repeating views for


def _naming(error: OSError, path: Path) -> str:
    """The error's line, with the file it concerns."""
    return str(error) if str(path) in str(error) else f"cannot write {path}: {error}"


class Recorder:
    """Writes what the window shows and receives as ``outputs`` say (``Outputs``; its PNGs are headless only);
    ``say(message)`` reports to the user.

    The videos play in real time at ``fps`` (at most MAX_VIDEO_FPS), whatever the rate of results: a view is
    repeated until the next one is drawn. ``videos_written`` lists the finalised videos and their frame counts.
    """

    def __init__(self, outputs: Outputs, say: Callable[[str], None]) -> None:
        output_dir = self.output_dir = outputs.folder
        self.say = say
        self.video_fps = min(outputs.fps, MAX_VIDEO_FPS)
        self.video = PacedVideoWriter(output_dir / "loftr_matches.mp4", self.video_fps) if outputs.video else None
        self.input_video = PacedVideoWriter(output_dir / "demo_input.mp4", self.video_fps) \
            if outputs.input_video else None
        self.match_files = MatchFileWriter(output_dir / MATCHES_FOLDER, MATCHES_PATTERN) if outputs.matches else None
        self.videos_written: list[tuple[Path, int]] = []

    @property
    def recording(self) -> bool:
        return self.video is not None

    def write_view(self, canvas: np.ndarray) -> None:
        if self.video is not None:
            self.video = self._write_video(self.video, canvas)

    def write_input(self, frame: np.ndarray) -> None:
        if self.input_video is not None:
            self.input_video = self._write_video(self.input_video, frame)

    def write_matches(self, packet: MatchPacket, index: int) -> None:
        """A result's matches as match file ``index``; after a failed write, no more are tried."""
        if self.match_files is None:
            return
        try:
            self.match_files.write(packet.arrays(images=False), index)
        except OSError as error:
            self.say(f"{error}; matches are no longer saved")
            self.match_files = None

    def _write_video(self, writer: PacedVideoWriter, frame: np.ndarray) -> PacedVideoWriter | None:
        """``writer`` after writing ``frame``, or None when it failed (e.g. a full disk: said, what was written
        is finalised)."""
        try:
            writer.write(frame)
            return writer
        except OSError as error:
            self.say(f"{_naming(error, writer.path)}; that video stops here")
            try:
                self._finalise(writer)
            except OSError:
                pass  # the file is already broken; the message above says so
            return None

    def start_recording(self) -> Path | None:
        """A new, time-stamped mp4 of the view in the output folder (None: the folder cannot be made, said)."""
        stem = time.strftime("recording_%Y%m%d_%H%M%S")
        path = self.output_dir / f"{stem}.mp4"
        for number in itertools.count(2):  # two recordings within a second keep both
            if not path.exists() and path not in (written for written, _ in self.videos_written):
                break
            path = self.output_dir / f"{stem}_{number}.mp4"
        try:
            self.output_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            self.say(f"cannot record into {self.output_dir}: {error}")
            return None
        self.video = PacedVideoWriter(path, self.video_fps)
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
        path = self.output_dir / f"{stem}.png"
        try:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            write_image(path, canvas)
            write_npz(path.with_suffix(".npz"), compressed=True, **packet.arrays())
        except OSError as error:
            self.say(_naming(error, path))
            return None
        return path

    def _finalise(self, writer: PacedVideoWriter) -> None:
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
