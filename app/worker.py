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
from model.cpu_load import ThreadGovernor
from model.errors import out_of_memory, out_of_memory_message
from model.geometry import Box
from model.matcher import Matcher, Resize

from .capture import LatestFrame
from .packet_view import render_packet
from .render import ViewSettings
from .session import MatchPacket, MatchSession, matched_on
from .settings import MatchSettings
from .sources import Frame
from .window_setup import WindowOptions


def _reason(error: Exception) -> str:
    """The first line of an error's message (its type when it has none), for the status bar; running out of memory
    says what to do instead of the allocator's message."""
    if out_of_memory(error):
        return out_of_memory_message(error, "match at a smaller size (the , key)")
    return str(error).splitlines()[0] if str(error) else type(error).__name__


@dataclass(frozen=True)
class NewAnchor:
    """This image becomes the anchor (a file dropped on the window, as with --anchor: its ``name``); without one,
    the frame on screen does."""

    image: np.ndarray | None = None
    name: str = ""


@dataclass(frozen=True)
class SwitchModel:
    """Load and run another model: "indoor", "outdoor", or another matcher ("sift", "orb", "lightglue")."""

    domain: str


@dataclass(frozen=True)
class SelectRegion:
    """Keep only matches from this box of the current anchor (anchor pixels); None: the whole anchor."""

    box: Box | None


#: What the window asks of the inference thread: events, new matching settings (applied whole), or how to draw
#: each result's view (``ViewSettings``, with the window's text scale; the window shows the view as drawn here).
Request = NewAnchor | SwitchModel | SelectRegion | MatchSettings | ViewSettings


class InferenceThread(QThread):
    """Owns the model: matches each newest frame against the anchor (a :class:`MatchSession`), applies the
    window's requests (new anchor, model switch, comparison, geometry mode, region, threshold) between frames. A
    request or a frame that fails is reported through ``failed`` and the thread goes on. A comparison (e.g. SIFT)
    is the session's own (``MatchSession.compare_with``)."""

    result_ready = pyqtSignal(object)  # MatchPacket
    status = pyqtSignal(str)  # "" when idle
    model_changed = pyqtSignal(str, str, str)  # (domain, label, device/precision)
    failed = pyqtSignal(str)
    notice = pyqtSignal(str)  # a passing message for the status bar

    def __init__(self, mailbox: LatestFrame, load_model: Callable[[str], tuple[AnyMatcher, str]],
                 options: WindowOptions, initial: tuple[AnyMatcher, str] | None = None) -> None:
        """``options``: the model to start with (``domain``), how to match (``settings``; its ``compare`` is
        ignored: ask for a comparison with ``request``), the first anchor, the region of every anchor, when a frame
        becomes the anchor by itself and the camera's intrinsics; ``initial``: an already loaded (matcher, label)
        for ``options.domain``, otherwise it loads here."""
        super().__init__()
        self.mailbox, self.load_model, self.domain, self.initial = mailbox, load_model, options.domain, initial
        self.settings = replace(options.settings, compare=None)  # as applied
        self.start_anchor = options.anchor
        self.setup = options.setup
        self.adapt_threads = options.adapt_threads
        self.compile_in_background = options.compile_in_background
        self.compiler: BackgroundCompile | None = None
        self.requests: queue.Queue[Request] = queue.Queue()
        self._stop = threading.Event()
        self.session: MatchSession | None = None  # made in run(), with the first model
        self.look: ViewSettings | None = None  # how to draw each result's view (None: the window draws)
        self.labels = ("", "")  # the model's label and where it runs, as the view shows them
        self.last_frame: Frame | None = None
        self.input_number = 0  # of the frames matched (the capture thread counts the window's inputs)

    def request(self, request: Request) -> None:
        """Apply this between frames: an event, or new settings (what changed in them)."""
        self.requests.put(request)

    def request_anchor(self) -> None:
        self.request(NewAnchor())

    def request_region(self, box: Box | None) -> None:
        self.request(SelectRegion(box))

    def stop(self) -> None:
        self._stop.set()

    def busy(self) -> bool:
        """Whether this thread or a model compiling in the background still runs (after ``stop`` and a wait: a
        load or a compilation can outlast it; a compilation for a model switched away from runs on unseen)."""
        compiling = any(isinstance(thread, BackgroundCompile) and thread.is_alive() for thread in threading.enumerate())
        return self.isRunning() or compiling

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
        self.settings = replace(self.settings, threshold=None)  # the new model's own, until one is asked for
        if self.session is None:
            self.session = MatchSession(matcher, self.settings, self.setup)
        else:
            self.session.set_matcher(matcher)
            self.session.settings = self.settings
        if isinstance(matcher, Matcher) and matcher.compiled:
            self.status.emit("compiling the model for this machine (about a minute the first time)...")
            if (failure := self.session.warm_up()) is not None:
                self.failed.emit(f"torch.compile failed ({failure}); matching without it")
        elif isinstance(matcher, Matcher) and self.compile_in_background:
            self.compiler = BackgroundCompile(lambda: self.load_model(domain), domain, self.session.resize)
            self.compiler.start()
        self.labels = (label, matched_on(matcher))
        self.model_changed.emit(domain, label, matched_on(matcher))
        self.status.emit("")

    def _apply(self, request: Request) -> None:
        if isinstance(request, ViewSettings):
            self.look = request
        elif isinstance(request, SwitchModel):
            self._switch(request.domain)
        elif self.session is None:
            return
        elif isinstance(request, MatchSettings):
            self._apply_settings(request)
        elif isinstance(request, SelectRegion):
            self.session.region = request.box
        elif request.image is not None:
            self.session.set_anchor(request.image, 0, request.name)
        elif self.last_frame is not None:
            self.session.set_anchor(self.last_frame.image, self.last_frame.index)

    def _apply_settings(self, wanted: MatchSettings) -> None:
        """Make the session match as ``wanted`` says: what changed since the settings applied before."""
        assert self.session is not None
        if "compare" in self.settings.changed(wanted):
            self.session.compare_with(*self.load_model(wanted.compare) if wanted.compare else (None,))
        self.session.apply(wanted)
        self.settings = wanted

    def run(self) -> None:
        last_failure = ""  # a failure repeated frame after frame is reported once
        threads = ThreadGovernor() if self.adapt_threads else None  # OpenMP's threads belong to this thread
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
                    self.failed.emit(f"{type(request).__name__} failed: {_reason(error)}")
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
            self._take_compiled()
            if threads is not None:
                threads.update()
            try:
                packet = self.session.process(frame, again=again)
            except Exception as error:  # noqa: BLE001 - e.g. out of GPU memory: said once, the next frame may work
                reason = _reason(error)
                if reason != last_failure:
                    self.failed.emit(f"matching frame {frame.index} failed: {reason}")
                last_failure = reason
                continue
            last_failure = ""
            self._draw(packet)
            self.result_ready.emit(packet)

    def _draw(self, packet: MatchPacket) -> None:
        """On a CPU, draw the packet's view here, after matching, rather than in the window's thread beside the next
        frame's matching, where drawing and OpenMP's team contend for the cores (``tools/gui_fps.py``)."""
        # On a GPU drawing here would hold matching back (thousands of lines, tens of ms): the window draws.
        if self.look is not None and self.session is not None and self.session.matcher.device.type == "cpu":
            packet.view = render_packet(packet, self.look, *self.labels)
            packet.view_key = (self.look, *self.labels)

    def _take_compiled(self) -> None:
        """Match with the model compiled in the background from now on, once it is ready (with the settings the
        eager one has now); dropped when the model or the size changed meanwhile."""
        compiler, session = self.compiler, self.session
        if compiler is None or compiler.is_alive() or session is None:
            return
        self.compiler = None
        if compiler.matcher is None:
            self.failed.emit(f"torch.compile failed ({compiler.failure}); matching without it")
        elif compiler.domain == self.domain and compiler.resize == session.resize:
            eager, compiled = session.matcher, compiler.matcher
            assert isinstance(eager, Matcher)
            compiled.threshold, compiled.max_matches = eager.threshold, eager.max_matches
            compiled.fine_expectation, compiled.refinement = eager.fine_expectation, eager.refinement
            session.set_matcher(compiled)
            self.notice.emit("compiled for this machine: matching is faster from now on")


class BackgroundCompile(threading.Thread):
    """Loads a second copy of a LoFTR model and compiles it (``Matcher.compile``, ``warm_up``) at ``resize`` beside
    the matching thread, which goes on with the eager copy meanwhile (``InferenceThread._take_compiled``)."""

    def __init__(self, load: Callable[[], tuple[AnyMatcher, str]], domain: str, resize: Resize) -> None:
        super().__init__(name="compile", daemon=True)
        self.load, self.domain, self.resize = load, domain, resize
        self.matcher: Matcher | None = None
        self.failure = ""

    def run(self) -> None:
        try:
            matcher, _ = self.load()
            if not isinstance(matcher, Matcher):
                self.failure = "not a LoFTR model"
                return
            matcher.resize = self.resize
            matcher.compile()
            failure = matcher.warm_up()
        except Exception as error:  # noqa: BLE001 - any failure leaves the eager model running, said once
            failure = _reason(error)
        if failure is None:
            self.matcher = matcher
        else:
            self.failure = failure

