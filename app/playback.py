"""Pause, step and seek through the input, as a video player does: the window's playback."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PyQt6.QtCore import Qt

from .controls import PositionBar

if TYPE_CHECKING:
    from .window import MainWindow

END_OF_STREAM = "end of stream"


class Playback:
    """Pausing, stepping and seeking the window's capture thread; the slider under the view for a file or folder.

    ``paused`` is the state the window shows; the capture thread is told (``CaptureThread.paused``, ``step``,
    ``seek_to``). The window reports through ``say`` and redraws the frame on screen (it shows "paused").
    """

    def __init__(self, window: MainWindow) -> None:
        self.window = window
        self.paused = False
        self.positions: PositionBar | None = None

    @property
    def ended(self) -> bool:
        return self.window.status_text == END_OF_STREAM

    def play_or_pause(self, pause: bool) -> None:
        """p or the Pause button; at the end of a file, which has nothing left to pause, play it again from its
        first frame (as a video player does)."""
        if pause and not self.paused and self.ended and self.positions is not None:
            self.window.show_state()
            self.seek(0)
            return
        self.set_paused(pause)

    def set_paused(self, on: bool) -> None:
        self.paused = on
        (self.window.capture.paused.set if on else self.window.capture.paused.clear)()
        self.window.show_state()
        if on:
            self.window.say("paused: left / right arrow: the frame before / after; n: it becomes the anchor; "
                            "settings apply to it; p: play on", 10000)
        else:
            self.window.statusBar().clearMessage()
        self.window.redraw()

    def step(self, direction: int = 1) -> None:
        """Pause; while paused, match the frame after (``direction`` 1) or before (-1) the one on screen, to go
        through a sequence frame by frame, or back to a moment worth an anchor. Going back also pauses and steps."""
        if not self.paused:
            self.set_paused(True)
            if direction > 0:
                return
        packet = self.window.last_packet
        self.window.capture.step(direction, packet.frame_index if packet is not None else None)

    def jump(self, where: str) -> None:
        """"first" / "last" frame of the file or folder; a second "back" / "on" (from the frame on screen)."""
        if self.positions is None:
            return
        last = self.positions.length - 1
        packet = self.window.last_packet
        shown = packet.frame_index % self.positions.length if packet is not None else 0
        second = max(1, round(self.window.input_fps))
        target = {"first": 0, "last": last, "back": shown - second, "on": shown + second}[where]
        self.seek(min(max(target, 0), last))

    def seek(self, index: int) -> None:
        """Go on from frame ``index`` of the file or folder (paused: that frame is matched and shown)."""
        self.window.capture.seek_to(index)
        if self.ended:
            self.window.status_text = ""
        self.window.say(f"frame {index}", 3000)

    def show_positions(self, length: int | None) -> None:
        """The slider over a file's or folder's frames, below the view like a video player's (None: a live
        source, none)."""
        window = self.window
        if self.positions is not None:
            window.removeToolBar(self.positions)
            self.positions.deleteLater()
        self.positions = PositionBar(length) if length else None
        if self.positions is not None:
            window.addToolBar(Qt.ToolBarArea.BottomToolBarArea, self.positions)
            self.positions.position_chosen.connect(self.seek)
            self.positions.show()

    def on_stream_ended(self) -> None:
        self.window.status_text = END_OF_STREAM
        written = "; videos finalised" if self.window.finalise_videos() else ""
        again = "; p: play again" if self.positions is not None else ""
        self.window.say(f"end of stream{written}. Left arrow: the frames before{again}; q: quit.", 0)
        self.window.redraw()
