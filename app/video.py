"""Output writers: H.264 mp4 through imageio-ffmpeg, numbered PNGs on a background thread, numbered npz files of
matches. Every output is finished by ``close()`` (also on errors and interruptions)."""

from __future__ import annotations

import contextlib
import csv
import os
import queue
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import imageio_ffmpeg
import numpy as np

from model.images import write_error, write_image, write_npz

#: Seconds of video per fragment of the mp4 (what a killed run or a full disk can lose at most).
FRAGMENT_S = 2.0
#: Less free space than this after FFmpeg failed: the disk is full (FFmpeg's own error does not say so).
MIN_FREE_BYTES = 1 << 20


class VideoWriter:
    """Writes BGR frames to an H.264 mp4 at the frames' real size (odd sizes are padded by one pixel).

    The size is fixed by the first frame; a later frame of another size (e.g. after the window's network size
    changed) is scaled to fit it, aspect kept, and centred on black.
    """

    def __init__(self, path: str | Path, fps: float) -> None:
        self.path = Path(path)
        self.fps = fps
        self.frames_written = 0
        self._writer: Any = None
        self._size: tuple[int, int] | None = None  # (width, height), even
        self._last: np.ndarray | None = None  # the last frame sent, as the encoder takes it

    def write(self, frame: np.ndarray) -> None:
        self.stage(frame)
        self.repeat()

    def stage(self, frame: np.ndarray) -> None:
        """Make ``frame`` the one ``repeat`` writes, without writing it."""
        if self._writer is None:
            height, width = frame.shape[:2]
            self._size = (width + width % 2, height + height % 2)  # yuv420p needs even sizes
            self._writer = imageio_ffmpeg.write_frames(
                str(self.path), self._size, fps=self.fps, codec="libx264", pix_fmt_in="rgb24",
                pix_fmt_out="yuv420p", quality=7, macro_block_size=1, ffmpeg_log_level="error",
                # x264's default preset (medium) took several times longer per view than veryfast, for about the same
                # file size; it competed with matching for the CPU. A fragmented mp4 (a key frame and a fragment
                # every FRAGMENT_S) plays up to its last fragment when the process is killed or the disk fills up;
                # a plain one is unplayable without the index written at the end.
                output_params=["-preset", "veryfast", "-g", str(max(1, round(self.fps * FRAGMENT_S))),
                               "-movflags", "+frag_keyframe+empty_moov+default_base_moof"])
            self._send(None)
        assert self._size is not None
        width, height = self._size
        frame = frame if frame.ndim == 3 else cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        frame_height, frame_width = frame.shape[:2]
        top = left = 0
        if frame_width > width or frame_height > height or frame_width < width - 1 or frame_height < height - 1:
            scale = min(width / frame_width, height / frame_height)
            size = (max(1, round(frame_width * scale)), max(1, round(frame_height * scale)))
            frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
            top, left = (height - size[1]) // 2, (width - size[0]) // 2
        canvas = np.zeros((height, width, 3), np.uint8)
        canvas[top:top + frame.shape[0], left:left + frame.shape[1]] = frame
        self._last = np.ascontiguousarray(canvas[:, :, ::-1])

    def repeat(self) -> None:
        """Write the staged frame (once more; nothing before the first)."""
        if self._last is not None:
            self._send(self._last)
            self.frames_written += 1

    def _send(self, frame: np.ndarray | None) -> None:
        try:
            self._writer.send(frame)
        except (OSError, RuntimeError) as error:  # FFmpeg stopped: a full disk, most often
            writer, self._writer = self._writer, None
            with contextlib.suppress(Exception):  # ends the FFmpeg process, which still holds the file
                writer.close()
            raise OSError(f"cannot write {self.path}: {self._reason(error)}; the video ends at frame "
                          f"{self.frames_written}") from None

    def _reason(self, error: Exception) -> str:
        try:
            if shutil.disk_usage(self.path.parent).free < MIN_FREE_BYTES:
                return "disk full"
        except OSError:
            pass
        return str(error).splitlines()[0]

    def close(self) -> None:
        """Finish the file; safe to call twice. A failure (FFmpeg could not write its last fragment) is raised
        as OSError; the fragments before it stay playable."""
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                writer.close()
            except (OSError, RuntimeError) as error:
                raise OSError(f"cannot finish {self.path}: {self._reason(error)}") from None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PacedVideoWriter:
    """A :class:`VideoWriter` for frames that come at irregular moments (a window draws a view when a result
    arrives, 5 or 25 times a second) whose video still plays in real time: frame k of the video shows what was
    current at k / fps seconds. A frame is repeated until the next arrives; one that arrives while its slot is
    already written is not written, but fills the following slots."""

    def __init__(self, path: str | Path, fps: float) -> None:
        self.video = VideoWriter(path, fps)
        self.path, self.fps = self.video.path, fps
        self._start: float | None = None

    @property
    def frames_written(self) -> int:
        return self.video.frames_written

    def write(self, frame: np.ndarray, now: float | None = None) -> None:
        """``frame`` became current at ``now`` (time.perf_counter() seconds; default: now)."""
        now = time.perf_counter() if now is None else now
        if self._start is None:
            self._start = now
        slot = int((now - self._start) * self.fps)
        while 0 < self.video.frames_written < slot:  # the slots until now show the frame before
            self.video.repeat()
        # Each frame is converted once, however many slots it fills.
        (self.video.write if self.video.frames_written <= slot else self.video.stage)(frame)

    def close(self) -> None:
        self.video.close()


#: How the headless PNGs are encoded: zlib level 1 with Huffman coding only (the drawn lines defeat LZ77 matching
#: anyway) and the Sub filter on every row, instead of libpng trying every filter on each row (the app's settings
#: before): faster to write, the files a few percent larger; ``tools/png_speed.py`` compares them.
PNG_PARAMS = (cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_HUFFMAN_ONLY,
              cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_SUB)


class PngWriter:
    """Writes frames as numbered PNGs (``pattern % index``) on a background thread, so that encoding a view
    (tens of ms at 1290x480) overlaps with matching the next frame; OpenCV releases the GIL meanwhile.

    A bounded queue keeps memory flat when the disk is slower than matching. A failed write is raised as
    OSError by the next ``write()`` or by ``close()``, which waits for every queued frame.
    """

    def __init__(self, folder: str | Path, pattern: str, queue_size: int = 4) -> None:
        self.folder, self.pattern = Path(folder), pattern
        self.written = 0
        self._queue: queue.Queue[tuple[Path, np.ndarray] | None] = queue.Queue(maxsize=queue_size)
        self._error: OSError | None = None
        self._thread = threading.Thread(target=self._run, name="png-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            path, image = item
            if self._error is None:
                try:
                    write_image(path, image, tuple(PNG_PARAMS))
                    self.written += 1
                except (OSError, ValueError) as error:
                    self._error = error if isinstance(error, OSError) else OSError(str(error))

    def write(self, image: np.ndarray, index: int) -> None:
        """Queue ``image`` as ``folder / (pattern % index)``; the array must not be changed afterwards."""
        if self._error is not None:
            raise self._error
        self._queue.put((self.folder / (self.pattern % index), image))

    def close(self) -> None:
        """Write everything queued and stop the thread; safe to call twice."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def __enter__(self) -> PngWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class MatchFileWriter:
    """Writes each frame's matches as one numbered npz (``folder / (pattern % index)``), e.g. for analysis
    after a headless run. Small files (a few kB per hundred matches), each written atomically: nothing is lost
    or left half written when the run is interrupted or the disk is full. A failed write raises OSError."""

    def __init__(self, folder: str | Path, pattern: str) -> None:
        self.folder, self.pattern = Path(folder), pattern
        self.written = 0

    def write(self, arrays: dict[str, np.ndarray], index: int) -> Path:
        path = self.folder / (self.pattern % index)
        try:
            if not self.written:
                self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise write_error(path, error) from None
        write_npz(path, **arrays)  # whole or not at all
        self.written += 1
        return path


class CsvWriter:
    """A CSV table written a row at a time, each row flushed at once: nothing is lost when the run is
    interrupted. A failed write raises OSError naming the file."""

    def __init__(self, path: str | Path, columns: tuple[str, ...]) -> None:
        self.path, self.columns = Path(path), columns
        try:
            self._file = self.path.open("w", newline="")
        except OSError as error:
            raise write_error(self.path, error) from None
        self._csv = csv.writer(self._file)
        self.rows = 0
        self._complete = 0  # bytes of whole rows on the disk
        self._write(columns)

    def write(self, values: tuple[object, ...]) -> None:
        assert len(values) == len(self.columns), (values, self.columns)
        self._write(values)
        self.rows += 1

    def _write(self, values: tuple[object, ...]) -> None:
        try:
            self._csv.writerow(values)
            self._file.flush()
            self._complete = self._file.tell()
        except OSError as error:
            with contextlib.suppress(OSError):  # no half row at the end (truncating frees space on a full disk)
                os.truncate(self.path, self._complete)
            raise write_error(self.path, error) from None

    def close(self) -> None:
        with contextlib.suppress(OSError):  # a failed flush was raised already; its half row is gone
            self._file.close()
        with contextlib.suppress(OSError):
            if self.path.stat().st_size > self._complete:
                os.truncate(self.path, self._complete)

    def __enter__(self) -> CsvWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
