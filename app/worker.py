"""The GUI's two background threads: capture (reads frames) and inference (owns the model).

Data flows one way: CaptureThread -> LatestFrame -> InferenceThread -> ``result_ready`` signal -> window.
Live sources keep only the newest frame, so latency cannot build up; files are paced at their frame rate.
Only the inference thread touches the model: requests (new anchor, model switch, settings) reach it
through a queue and are applied between frames.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from typing import Callable, Iterable, Iterator, Literal

import numpy as np
from PyQt6.QtCore import QThread, pyqtSignal

from model.classical import AnyMatcher
from model.geometry import Box
from model.matcher import Resize

from .session import KEEP_ANCHOR, AnchorRule, MatchSession, StartAnchor, matched_on
from .sources import Frame, FrameSource


class LatestFrame:
    """A one-slot mailbox: the capture thread overwrites, the inference thread takes the newest."""

    def __init__(self) -> None:
        self._frame: Frame | None = None
        self._ended = False
        self._condition = threading.Condition()

    def put(self, frame: Frame) -> None:
        with self._condition:
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
        self._stop = threading.Event()
        self.paused = threading.Event()
        self._steps: queue.SimpleQueue[tuple[int, int | None]] = queue.SimpleQueue()  # (+1 or -1, index shown)
        self._ended = False  # the source has no more frames
        # The frame the last step presented, while paused: steps go on from it, also before its result is shown (a
        # held arrow key steps faster than frames are matched).
        self._stepped_to: int | None = None
        self._report_elsewhere = source.on_warning
        source.on_warning = self._warn

    def _warn(self, message: str) -> None:
        self._report_elsewhere(message)
        self.warning.emit(message)

    def run(self) -> None:
        period = 1.0 / self.source.fps if self.pace else 0.0
        next_time = time.perf_counter()
        self._frames = iter(self.make_frames())
        try:
            while not self._stop.is_set():
                frame, kept = self._next_frame()
                if frame is None:
                    continue
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
                self.mailbox.put(frame)
        finally:
            self._end_of_stream()
            self.source.close()

    def _next_frame(self) -> tuple[Frame | None, bool]:
        """(the frame to present next, whether it is a kept one), or (None, False) when there is none now: paused
        and no step came, or the stream has ended (steps back and seeks still work until ``stop``)."""
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

    def _wait_for_a_step(self) -> Frame | Literal["next"] | None:
        """While paused: a kept frame stepped to, "next" for a step past the newest kept frame (the source's next
        one), None once playing again, stopping or seeking."""
        while self.paused.is_set() and not self._stop.is_set() and self._seeks.empty():
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

    def seek_to(self, index: int) -> None:
        """Go on from frame ``index`` of the file or folder (needs ``frames_from``)."""
        self._seeks.put(index)

    def stop(self) -> None:
        self._stop.set()
        self.source.interrupt()  # a source waiting to reconnect stops waiting


def _reason(error: Exception) -> str:
    """The first line of an error's message (its type when it has none), for the status bar."""
    return str(error).splitlines()[0] if str(error) else type(error).__name__


@dataclass
class _Request:
    kind: str  # "anchor", "anchor_image", "model", "compare", "geometry", "region", "resize" or "threshold"
    value: object = None


class InferenceThread(QThread):
    """Owns the model: matches each newest frame against the anchor (a :class:`MatchSession`), applies the
    window's requests (new anchor, model switch, comparison, geometry mode, region, threshold) between frames. A
    request or a frame that fails is reported through ``failed`` and the thread goes on. A comparison (e.g. SIFT)
    is the session's own (``MatchSession.compare_with``)."""

    result_ready = pyqtSignal(object)  # MatchPacket
    status = pyqtSignal(str)  # "" when idle
    model_changed = pyqtSignal(str, str, str)  # (domain, label, device/precision)
    failed = pyqtSignal(str)

    def __init__(self, mailbox: LatestFrame, load_model: Callable[[str], tuple[AnyMatcher, str]], domain: str,
                 initial: tuple[AnyMatcher, str] | None = None, geometry: str = "none",
                 anchor: StartAnchor | None = None, anchor_region: Box | None = None,
                 anchor_rule: AnchorRule = KEEP_ANCHOR, resize: Resize = None) -> None:
        """``initial`` is an already loaded (matcher, label) for ``domain``; otherwise it loads here.
        ``geometry`` is the geometric verification mode (see ``app.verify.GEOMETRY_MODES``); ``anchor``
        the anchor to start with instead of the first frame (``StartAnchor``); ``anchor_region`` the region
        of every anchor, in fractions of its size, ``anchor_rule`` when a frame becomes the anchor by itself and
        ``resize`` the size frames are matched at (see ``MatchSession``)."""
        super().__init__()
        self.mailbox, self.load_model, self.domain, self.initial = mailbox, load_model, domain, initial
        self.geometry, self.start_anchor, self.anchor_region = geometry, anchor, anchor_region
        self.anchor_rule, self.resize = anchor_rule, resize
        self.requests: queue.Queue[_Request] = queue.Queue()
        self._stop = threading.Event()
        self.session: MatchSession | None = None  # made in run(), with the first model
        self.last_frame: Frame | None = None

    def request_anchor(self) -> None:
        self.requests.put(_Request("anchor"))

    def request_anchor_image(self, image: np.ndarray, name: str) -> None:
        """This image (e.g. a file dropped on the window) becomes the anchor, as with --anchor."""
        self.requests.put(_Request("anchor_image", (image, name)))

    def request_model(self, domain: str) -> None:
        self.requests.put(_Request("model", domain))

    def request_compare(self, method: str | None) -> None:
        """Also match every frame with this method (a domain ``load_model`` knows, e.g. "sift"); None: stop."""
        self.requests.put(_Request("compare", method))

    def request_geometry(self, mode: str) -> None:
        self.requests.put(_Request("geometry", mode))

    def request_region(self, region: Box | None) -> None:
        """Keep only matches from this box of the current anchor (anchor pixels); None: the whole anchor."""
        self.requests.put(_Request("region", region))

    def request_resize(self, resize: Resize) -> None:
        """Match frames at another size (the anchor is sized and encoded again)."""
        self.requests.put(_Request("resize", resize))

    def request_threshold(self, threshold: float) -> None:
        """A new coarse confidence threshold for the current model (clipped to [0, 1])."""
        self.requests.put(_Request("threshold", min(max(threshold, 0.0), 1.0)))

    def stop(self) -> None:
        self._stop.set()

    def _switch(self, domain: str) -> None:
        self.status.emit(f"loading {domain} model...")
        try:
            matcher, label = self.initial if self.initial else self.load_model(domain)
            self.initial = None
        except Exception as error:  # noqa: BLE001 - shown to the user, the old model keeps running
            self.failed.emit(f"cannot load the {domain} model: {error}")
            self.status.emit("")
            return
        self.domain = domain
        if self.session is None:
            self.session = MatchSession(matcher, self.geometry, self.anchor_region, self.anchor_rule, self.resize)
        else:
            self.session.set_matcher(matcher)
        self.model_changed.emit(domain, label, matched_on(matcher))
        self.status.emit("")

    def _apply(self, request: _Request) -> None:
        if request.kind == "model":
            self._switch(str(request.value))
        elif self.session is None:
            return
        elif request.kind == "compare" and request.value is None:
            self.session.compare_with(None)
        elif request.kind == "compare":
            self.session.compare_with(*self.load_model(str(request.value)))
        elif request.kind == "geometry":
            self.session.geometry = str(request.value)
        elif request.kind == "region":
            self.session.region = request.value  # type: ignore[assignment]
        elif request.kind == "resize":
            self.session.set_resize(request.value)  # type: ignore[arg-type]
        elif request.kind == "threshold":
            self.session.matcher.threshold = float(request.value)  # type: ignore[arg-type]
        elif request.kind == "anchor" and self.last_frame is not None:
            self.session.set_anchor(self.last_frame.image, self.last_frame.index)
        elif request.kind == "anchor_image":
            image, name = request.value  # type: ignore[misc]
            self.session.set_anchor(image, 0, name)

    def run(self) -> None:
        last_failure = ""  # a failure repeated frame after frame is reported once
        self._switch(self.domain)
        if self.start_anchor is not None and self.session is not None:
            self.session.start_with(self.start_anchor)
        while not self._stop.is_set():
            changed = False
            while not self.requests.empty():
                request = self.requests.get_nowait()
                try:
                    self._apply(request)
                    changed = True
                except Exception as error:  # noqa: BLE001 - e.g. encoding a new anchor ran out of memory
                    self.failed.emit(f"{request.kind} request failed: {_reason(error)}")
            frame, ended = self.mailbox.take(timeout=0.05)
            again = frame is None and changed and self.last_frame is not None
            if again:
                # Paused, or at the end of a file: no frame will come to show the new setting, so the frame on
                # screen is matched again (while playing, the next frame shows it).
                assert self.last_frame is not None
                frame = replace(self.last_frame, captured=time.perf_counter())
            if frame is None or self.session is None:
                if ended:  # the window stays open, and its settings keep applying to the last frame
                    self._stop.wait(0.05)
                continue
            self.last_frame = frame
            try:
                packet = self.session.process(frame, again=again)
            except Exception as error:  # noqa: BLE001 - e.g. out of GPU memory: said once, the next frame may work
                reason = _reason(error)
                if reason != last_failure:
                    self.failed.emit(f"matching frame {frame.index} failed: {reason}")
                last_failure = reason
                continue
            last_failure = ""
            self.result_ready.emit(packet)
