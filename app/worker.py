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
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
from PyQt6.QtCore import QThread, pyqtSignal

from model.geometry import Box, TwoViewGeometry
from model.matcher import EncodedImage, Matcher, MatchResult

from .sources import Frame, FrameSource
from .verify import verify_matches


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

    def take(self, timeout: float) -> tuple[Frame | None, bool]:
        """(newest frame or None after ``timeout`` s, whether the stream has ended and nothing is left)."""
        with self._condition:
            if self._frame is None and not self._ended:
                self._condition.wait(timeout)
            frame, self._frame = self._frame, None
            return frame, self._ended and frame is None


class CaptureThread(QThread):
    """Reads frames from a source into a LatestFrame; paces files and folders at their frame rate.

    The source's warnings (a broken frame, a lost stream and its reconnection) keep going where they went
    (stderr) and are also emitted as ``warning``, for the window's status bar.
    """

    warning = pyqtSignal(str)
    stream_ended = pyqtSignal()

    def __init__(self, source: FrameSource, frames: Callable[[], object], mailbox: LatestFrame,
                 pace: bool) -> None:
        super().__init__()
        self.source, self.make_frames, self.mailbox, self.pace = source, frames, mailbox, pace
        self._stop = threading.Event()
        self.paused = threading.Event()
        self._report_elsewhere = source.on_warning
        source.on_warning = self._warn

    def _warn(self, message: str) -> None:
        self._report_elsewhere(message)
        self.warning.emit(message)

    def run(self) -> None:
        period = 1.0 / self.source.fps if self.pace else 0.0
        next_time = time.perf_counter()
        try:
            for frame in self.make_frames():  # type: ignore[attr-defined]
                while self.paused.is_set() and not self._stop.is_set():
                    time.sleep(0.02)
                    next_time = time.perf_counter()
                if self._stop.is_set():
                    break
                if period:
                    next_time += period
                    delay = next_time - time.perf_counter()
                    if delay > 0:
                        self._stop.wait(delay)
                    else:
                        next_time = time.perf_counter()
                    # A paced file's frame is decoded ahead; it becomes current when presented, now.
                    frame = replace(frame, captured=time.perf_counter())
                self.mailbox.put(frame)
        finally:
            self.source.close()
            self.mailbox.end()
            self.stream_ended.emit()

    def stop(self) -> None:
        self._stop.set()
        self.source.interrupt()  # a source waiting to reconnect stops waiting


@dataclass
class MatchPacket:
    """What the window needs to draw one result."""

    anchor: np.ndarray
    anchor_index: int
    anchor_name: str  # the image file the anchor came from (--anchor), "" for a frame of the stream
    frame: np.ndarray
    frame_index: int
    result: MatchResult
    latency_ms: float  # matching (and geometric verification) of this frame
    fps: float
    frame_age_ms: float  # from reading the frame to its result: latency plus waiting in the mailbox
    geometry: TwoViewGeometry | None = None  # None when geometric verification is off
    geometry_ms: float = 0.0
    region: Box | None = None  # the box of the anchor the matches were restricted to (anchor pixels)


@dataclass
class _Request:
    kind: str  # "anchor", "model", "geometry" or "region"
    value: object = None


@dataclass
class _FpsMeter:
    times: list[float] = field(default_factory=list)

    def tick(self) -> float:
        now = time.perf_counter()
        self.times = [t for t in self.times if now - t < 2.0] + [now]
        if len(self.times) < 2:
            return 0.0
        return (len(self.times) - 1) / (self.times[-1] - self.times[0])


class InferenceThread(QThread):
    """Owns the Matcher: caches the anchor's features, matches each newest frame, loads/switches models."""

    result_ready = pyqtSignal(object)  # MatchPacket
    status = pyqtSignal(str)  # "" when idle
    model_changed = pyqtSignal(str, str)  # (label, device/precision)
    failed = pyqtSignal(str)

    def __init__(self, mailbox: LatestFrame, load_model: Callable[[str], tuple[Matcher, str]], domain: str,
                 initial: tuple[Matcher, str] | None = None, geometry: str = "none",
                 anchor_file: tuple[np.ndarray, str] | None = None) -> None:
        """``initial`` is an already loaded (matcher, label) for ``domain``; otherwise it loads here.
        ``geometry`` is the geometric verification mode (see ``app.verify.GEOMETRY_MODES``); ``anchor_file``
        an (image, name) to start with as the anchor instead of the first frame."""
        super().__init__()
        self.mailbox, self.load_model, self.domain, self.initial = mailbox, load_model, domain, initial
        self.geometry = geometry
        self.requests: queue.Queue[_Request] = queue.Queue()
        self._stop = threading.Event()
        self.matcher: Matcher | None = None
        self.anchor: EncodedImage | None = None
        self.anchor_image: np.ndarray | None = None
        self.anchor_index = 0
        self.anchor_name = ""
        self.anchor_file = anchor_file
        self.region: Box | None = None
        self.last_frame: Frame | None = None

    def request_anchor(self) -> None:
        self.requests.put(_Request("anchor"))

    def request_model(self, domain: str) -> None:
        self.requests.put(_Request("model", domain))

    def request_geometry(self, mode: str) -> None:
        self.requests.put(_Request("geometry", mode))

    def request_region(self, region: Box | None) -> None:
        """Keep only matches from this box of the current anchor (anchor pixels); None: the whole anchor."""
        self.requests.put(_Request("region", region))

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
        self.matcher, self.domain = matcher, domain
        self.model_changed.emit(label, f"{matcher.device.type}/{matcher.precision}")
        if self.anchor_image is not None:  # the cached features belong to the old model
            self.anchor = matcher.encode(self.anchor_image)
        self.status.emit("")

    def _apply(self, request: _Request) -> None:
        if request.kind == "model":
            self._switch(str(request.value))
        elif request.kind == "geometry":
            self.geometry = str(request.value)
        elif request.kind == "region":
            self.region = request.value  # type: ignore[assignment]
        elif request.kind == "anchor" and self.last_frame is not None and self.matcher is not None:
            self._set_anchor(self.last_frame)

    def _set_anchor(self, frame: Frame, name: str = "") -> None:
        assert self.matcher is not None
        self.anchor = self.matcher.encode(frame.image)
        self.anchor_image, self.anchor_index, self.anchor_name = frame.image, frame.index, name
        self.region = None  # a box of the old anchor means nothing on the new one

    def run(self) -> None:
        self._switch(self.domain)
        if self.anchor_file is not None and self.matcher is not None:
            image, name = self.anchor_file
            self._set_anchor(Frame(image, 0), name)
        meter = _FpsMeter()
        while not self._stop.is_set():
            while not self.requests.empty():
                self._apply(self.requests.get_nowait())
            frame, ended = self.mailbox.take(timeout=0.05)
            if ended:
                break
            if frame is None or self.matcher is None:
                continue
            self.last_frame = frame
            if self.anchor is None:
                self._set_anchor(frame)
            start = time.perf_counter()
            assert self.anchor is not None and self.anchor_image is not None
            result = self.matcher.match(self.anchor, frame.image, region0=self.region)
            matched = time.perf_counter()
            geometry = verify_matches(result, self.geometry, frame.image.shape, self.matcher.resize)
            done = time.perf_counter()
            self.result_ready.emit(MatchPacket(self.anchor_image, self.anchor_index, self.anchor_name,
                                               frame.image, frame.index,
                                               result, (done - start) * 1000.0, meter.tick(),
                                               (done - frame.captured) * 1000.0, geometry,
                                               (done - matched) * 1000.0, self.region))
