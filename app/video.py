"""H.264 mp4 writing through imageio-ffmpeg; every file is finalised by ``close()`` (also on errors)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import imageio_ffmpeg
import numpy as np


class VideoWriter:
    """Writes BGR frames to an H.264 mp4 at the frames' real size (odd sizes are padded by one pixel).

    The size is fixed by the first frame; later frames of another size are padded or cropped to it.
    """

    def __init__(self, path: str | Path, fps: float) -> None:
        self.path = Path(path)
        self.fps = fps
        self.frames_written = 0
        self._writer: Any = None
        self._size: tuple[int, int] | None = None  # (width, height), even

    def write(self, frame: np.ndarray) -> None:
        if self._writer is None:
            height, width = frame.shape[:2]
            self._size = (width + width % 2, height + height % 2)  # yuv420p needs even sizes
            self._writer = imageio_ffmpeg.write_frames(
                str(self.path), self._size, fps=self.fps, codec="libx264", pix_fmt_in="rgb24",
                pix_fmt_out="yuv420p", quality=7, macro_block_size=1, ffmpeg_log_level="error")
            self._writer.send(None)
        assert self._size is not None
        width, height = self._size
        canvas = np.zeros((height, width, 3), np.uint8)
        crop = frame[:height, :width]
        canvas[: crop.shape[0], : crop.shape[1]] = crop if crop.ndim == 3 else crop[:, :, None]
        self._writer.send(np.ascontiguousarray(canvas[:, :, ::-1]))
        self.frames_written += 1

    def close(self) -> None:
        """Finish the file (writes the mp4 index); safe to call twice."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
