"""The GUI's inference thread: owns the model and matches the newest frame against the anchor.

Data flows one way: CaptureThread (``app.capture``) -> LatestFrame -> InferenceThread -> ``result_ready`` signal
-> window. Only the inference thread touches the model: requests (new anchor, model switch, settings) reach it
through a queue and are applied between frames.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
from PyQt6.QtCore import QThread, pyqtSignal

from model.classical import AnyMatcher
from model.geometry import Box
from model.matcher import Resize

from .capture import LatestFrame
from .session import KEEP_ANCHOR, AnchorRule, MatchSession, StartAnchor, matched_on
from .sources import Frame
from .verify import CameraIntrinsics


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
                 anchor_rule: AnchorRule = KEEP_ANCHOR, resize: Resize = None,
                 intrinsics: CameraIntrinsics | None = None, any_rotation: bool = False,
                 any_scale: bool = False) -> None:
        """``initial`` is an already loaded (matcher, label) for ``domain``; otherwise it loads here.
        ``geometry`` is the geometric verification mode (see ``app.verify.GEOMETRY_MODES``); ``anchor``
        the anchor to start with instead of the first frame (``StartAnchor``); ``anchor_region`` the region
        of every anchor, in fractions of its size, ``anchor_rule`` when a frame becomes the anchor by itself and
        ``resize`` the size frames are matched at, ``intrinsics`` the camera's, ``any_rotation`` and ``any_scale``
        which views of the anchor LoFTR tries (see ``MatchSession``)."""
        super().__init__()
        self.mailbox, self.load_model, self.domain, self.initial = mailbox, load_model, domain, initial
        self.geometry, self.start_anchor, self.anchor_region = geometry, anchor, anchor_region
        self.anchor_rule, self.resize, self.intrinsics = anchor_rule, resize, intrinsics
        self.any_rotation, self.any_scale = any_rotation, any_scale
        self.requests: queue.Queue[_Request] = queue.Queue()
        self._stop = threading.Event()
        self.session: MatchSession | None = None  # made in run(), with the first model
        self.last_frame: Frame | None = None
        self.input_number = 0  # of the frames matched (the capture thread counts the window's inputs)

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

    def request_any_rotation(self, on: bool) -> None:
        self.requests.put(_Request("any_rotation", on))

    def request_any_scale(self, on: bool) -> None:
        self.requests.put(_Request("any_scale", on))

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
            self.session = MatchSession(matcher, self.geometry, self.anchor_region, self.anchor_rule, self.resize,
                                        self.intrinsics, self.any_rotation, self.any_scale)
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
        elif request.kind == "any_rotation":
            self.session.any_rotation = bool(request.value)
        elif request.kind == "any_scale":
            self.session.any_scale = bool(request.value)
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
            if frame.input_number != self.input_number:  # a video dropped on the window: a new anchor from it
                self.input_number = frame.input_number
                self.session.forget_frame_anchor()
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
