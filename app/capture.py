"""The GUI's capture thread: reads frames from a source into a one-slot mailbox for the inference thread.

Live sources keep only the newest frame, so latency cannot build up; files are paced at their frame rate. While
the window is paused it presents one frame per step (back through the frames kept, or forward) or seek.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from dataclasses import replace
from typing import Callable, Iterable, Iterator, Literal

from PyQt6.QtCore import QThread, pyqtSignal

from .sources import Frame, FrameSource


class LatestFrame:
    """A one-slot mailbox: the capture thread overwrites, the inference thread takes the newest; but the first
    frame of an input switched to (``Frame.input_number``) is kept until taken, since it becomes the anchor (while
    matching the input before it, the inference thread could otherwise miss it, and a later frame be the anchor)."""

    def __init__(self) -> None:
        self._frame: Frame | None = None
        self._ended = False
        self._taken_input = 0  # the input of the last frame taken
        self._condition = threading.Condition()

    def put(self, frame: Frame) -> None:
        with self._condition:
            first_of_input = self._frame is not None and self._frame.input_number != self._taken_input
            if first_of_input and frame.input_number == self._frame.input_number:  # type: ignore[union-attr]
                return
            self._frame = frame
            self._condition.notify_all()

    def end(self) -> None:
        with self._condition:
            self._ended = True
            self._condition.notify_all()

    def reopen(self) -> None:
        """Frames come again after the end (a file was sought back into)."""
        with self._condition:
            self._ended = False

    def take(self, timeout: float) -> tuple[Frame | None, bool]:
        """(newest frame or None after ``timeout`` s, whether the stream has ended and nothing is left)."""
        with self._condition:
            if self._frame is None and not self._ended:
                self._condition.wait(timeout)
            frame, self._frame = self._frame, None
            if frame is not None:
                self._taken_input = frame.input_number
            return frame, self._ended and frame is None


#: Pixels of the latest frames a paused window can step back through (about 5 s of 640x480 at 30 FPS).
HISTORY_BYTES = 128 * 2**20


class FrameHistory:
    """The latest frames presented, oldest first, at most ``max_bytes`` of pixels (always the newest one), and
    where a paused window has stepped to among them.

    Steps go from the frame on screen (its index), not from the newest presented: when matching is slower than a
    file's frame rate, frames are presented that were never matched, and one step back must not land on a frame
    later than the one shown. Only the capture thread uses it.
    """

    def __init__(self, max_bytes: int = HISTORY_BYTES) -> None:
        self.max_bytes = max_bytes
        self.frames: deque[Frame] = deque()
        self.bytes = 0
        self.cursor: int | None = None  # the position stepped to; None: at the newest (the source comes next)

    def add(self, frame: Frame) -> None:
        """A frame just read from the source (the cursor is at the newest)."""
        self.frames.append(frame)
        self.bytes += frame.image.nbytes
        while self.bytes > self.max_bytes and len(self.frames) > 1:
            self.bytes -= self.frames.popleft().image.nbytes

    def before(self, index: int) -> Frame | None:
        """Step to the newest kept frame older than frame ``index``; None (and no step) when none is kept."""
        positions = [position for position, frame in enumerate(self.frames) if frame.index < index]
        return self._step_to(positions[-1]) if positions else None

    def after(self, index: int) -> Frame | None:
        """Step to the oldest kept frame newer than frame ``index``; None when the source's next frame comes next
        (the cursor is then at the newest)."""
        positions = [position for position, frame in enumerate(self.frames) if frame.index > index]
        return self._step_to(positions[0]) if positions else self._step_to(None)

    def to_newest(self) -> None:
        """Back to the newest: the source's next frame comes next."""
        self.cursor = None

    def next_kept(self) -> Frame | None:
        """Playing on from a step back: the kept frame after the cursor; None at the newest."""
        if self.cursor is None:
            return None
        return self._step_to(self.cursor + 1 if self.cursor + 1 < len(self.frames) else None)

    def _step_to(self, position: int | None) -> Frame | None:
        self.cursor = position
        return None if position is None else self.frames[position]


class CaptureThread(QThread):
    """Reads frames from a source into a LatestFrame; paces files and folders at their frame rate.

    While paused it presents no frame, except one per ``step``: forward (the next frame of the source, or of
    those stepped back over) or back (one of the last ``HISTORY_BYTES`` of frames, see ``FrameHistory``), also
    after the end of the stream, until ``stop``. Playing on after stepping back, a file goes on from there; a live
    source goes back to its live frames. Given ``frames_from`` (the frames from a position of a file or folder),
    ``seek_to`` goes on from any frame, paused (it is shown) or playing, also after the end, and steps back go on
    past the frames kept (a looped file's frame numbers are taken modulo its length).

    The source's warnings (a broken frame, a lost stream and its reconnection) keep going where they went
    (stderr) and are also emitted as ``warning``, for the window's status bar.
    """

    warning = pyqtSignal(str)
    stream_ended = pyqtSignal()

    def __init__(self, source: FrameSource, frames: Callable[[], Iterable[Frame]], mailbox: LatestFrame,
                 pace: bool, frames_from: Callable[[int], Iterable[Frame]] | None = None, stride: int = 1) -> None:
        super().__init__()
        self.source, self.make_frames, self.mailbox, self.pace = source, frames, mailbox, pace
        self.frames_from = frames_from  # the frames from a position of the source; None: it cannot seek
        self.stride = stride  # frames_from's frames are every stride-th (--skip): a step back reads from stride back
        self.history = FrameHistory()
        self._frames: Iterator[Frame] = iter(())
        self._seeks: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._switches: queue.SimpleQueue[tuple[FrameSource, Callable[[int], Iterable[Frame]]]] = queue.SimpleQueue()
        self.input_number = 0  # of the frames presented: 1, 2, ... after each switch_to
        self._stop = threading.Event()
        self.paused = threading.Event()
        self._steps: queue.SimpleQueue[tuple[int, int | None]] = queue.SimpleQueue()  # (+1 or -1, index shown)
        self._ended = False  # the source has no more frames
        # The frame the last step presented, while paused: steps go on from it, also before its result is shown (a
        # held arrow key steps faster than frames are matched).
        self._stepped_to: int | None = None
        self._listen_to(source)

    def _listen_to(self, source: FrameSource) -> None:
        """The source's warnings keep going where they went and also reach ``warning``."""
        self._report_elsewhere, source.on_warning = source.on_warning, self._warn

    def _warn(self, message: str) -> None:
        self._report_elsewhere(message)
        self.warning.emit(message)

    def run(self) -> None:
        next_time = time.perf_counter()
        self._frames = iter(self.make_frames())
        try:
            while not self._stop.is_set():
                frame, kept = self._next_frame()
                if frame is None:
                    continue
                period = 1.0 / self.source.fps if self.pace else 0.0  # the source may have been switched
                if self.paused.is_set():  # a step shows its frame at once
                    self._stepped_to = frame.index
                    next_time = time.perf_counter()
                elif period:
                    next_time += period
                    delay = next_time - time.perf_counter()
                    if delay > 0:
                        self._stop.wait(delay)
                    else:
                        next_time = time.perf_counter()
                if period or kept:
                    # A paced file's frame is decoded ahead, a kept one was read a while ago: either becomes current
                    # when presented, now (a live frame keeps the time it was read: its age includes the camera's).
                    frame = replace(frame, captured=time.perf_counter())
                self.mailbox.put(replace(frame, input_number=self.input_number) if self.input_number else frame)
        finally:
            self._end_of_stream()
            self.source.close()

    def _next_frame(self) -> tuple[Frame | None, bool]:
        """(the frame to present next, whether it is a kept one), or (None, False) when there is none now: paused
        and no step came, or the stream has ended (steps back and seeks still work until ``stop``)."""
        switch = None
        while not self._switches.empty():  # a file dropped after another: the last one counts
            if switch is not None:
                switch[0].close()
            switch = self._switches.get_nowait()
        if switch is not None:
            self._switch(*switch)
            return self._read()  # its first frame: shown at once, paused or not
        target = None
        while not self._seeks.empty():  # the slider may have moved on meanwhile: the last position counts
            target = self._seeks.get_nowait()
        if target is not None and self.frames_from is not None:
            self._go_to(target)
            return self._read()  # the frame sought: shown at once, paused or not
        if self.paused.is_set():
            step = self._wait_for_a_step()
            if step is None:  # playing again, stopping or seeking
                return None, False
            if isinstance(step, Frame):
                return step, True
        else:
            self._stepped_to = None
            if self.source.is_live:  # playing on after steps back: the live frames
                self.history.to_newest()
            elif (kept := self.history.next_kept()) is not None:  # a file plays on through the frames stepped over
                return kept, True
        return self._read()

    def _read(self) -> tuple[Frame | None, bool]:
        """(the source's next frame, False); (None, False) at the end of the stream."""
        if self._ended:
            self._stop.wait(0.02)
            return None, False
        frame = next(self._frames, None)
        if frame is None:
            self._end_of_stream()
            return None, False
        self.history.add(frame)
        return frame, False

    def _go_to(self, index: int) -> None:
        """Go on from frame ``index`` of the source; the frames kept belong to another part of it."""
        assert self.frames_from is not None
        self._frames = iter(self.frames_from(index))
        self.history = FrameHistory(self.history.max_bytes)
        self._stepped_to = None
        if self._ended:
            self._ended = False
            self.mailbox.reopen()

    def _switch(self, source: FrameSource, frames_from: Callable[[int], Iterable[Frame]]) -> None:
        """Read another file or folder from its first frame on; the old one is released."""
        self.source.close()
        self.source, self.frames_from, self.pace = source, frames_from, not source.is_live
        self._listen_to(source)
        self.input_number += 1
        while not self._seeks.empty():  # positions in the old file
            self._seeks.get_nowait()
        self._go_to(0)

    def _wait_for_a_step(self) -> Frame | Literal["next"] | None:
        """While paused: a kept frame stepped to, "next" for a step past the newest kept frame (the source's next
        one), None once playing again, stopping or seeking."""
        while (self.paused.is_set() and not self._stop.is_set() and self._seeks.empty()
               and self._switches.empty()):
            try:
                direction, shown = self._steps.get(timeout=0.02)
            except queue.Empty:
                continue
            shown = self._stepped_to if self._stepped_to is not None else shown
            if shown is None:  # nothing shown yet
                return "next"
            if direction > 0:
                kept = self.history.after(shown)
                if kept is not None or not self._ended:
                    return kept or "next"
                self.warning.emit("the end of the stream: no frame after this one")
                continue
            frame = self.history.before(shown)
            if frame is not None:
                return frame
            length = self.source.length
            if self.frames_from is not None and length and shown % length > 0:  # a file: read it again from there
                self._go_to(max(shown % length - self.stride, 0))
                return "next"
            self.warning.emit("no earlier frame kept: the window keeps the last "
                              f"{self.history.max_bytes // 2**20} MiB of frames to step back through")
        return None

    def _end_of_stream(self) -> None:
        """The source has no more frames (or the thread stops): say so, once; a camera or stream is released now,
        a file that can be sought back into when the thread stops."""
        if not self._ended:
            self._ended = True
            if self.frames_from is None:
                self.source.close()
            self.mailbox.end()
            self.stream_ended.emit()

    def step(self, direction: int = 1, shown: int | None = None) -> None:
        """While paused, present one more frame: the one after (``direction`` 1) or before (-1) frame ``shown``,
        the frame on screen (None: nothing shown yet)."""
        self._steps.put((1 if direction > 0 else -1, shown))

    def switch_to(self, source: FrameSource, frames_from: Callable[[int], Iterable[Frame]]) -> None:
        """Read another video file or image folder (opened) from its first frame on; its frames carry the next
        ``input_number``."""
        self._switches.put((source, frames_from))
        self.source.interrupt()  # a camera waiting to reconnect stops waiting (a file's reading is not held up)

    def seek_to(self, index: int) -> None:
        """Go on from frame ``index`` of the file or folder (needs ``frames_from``)."""
        self._seeks.put(index)

    def stop(self) -> None:
        self._stop.set()
        self.source.interrupt()  # a source waiting to reconnect stops waiting
