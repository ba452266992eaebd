"""What the window plays and anchors on: a video or folder opened or dropped, an anchor image chosen or dropped."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable, TypeVar

from PyQt6.QtGui import QDragEnterEvent, QDropEvent
from PyQt6.QtWidgets import QFileDialog

from .sources import VIDEO_SUFFIXES
from .window_setup import WindowHooks
from .worker import NewAnchor

if TYPE_CHECKING:
    from .window import MainWindow

T = TypeVar("T")  # what an action on a dropped or chosen file gives (see InputActions._or_say)


def is_input(path: str) -> bool:
    """A video file or a folder (of images): what the window can play, rather than an anchor image."""
    return Path(path).is_dir() or Path(path).suffix.lower() in VIDEO_SUFFIXES


def dropped_file(event: QDragEnterEvent | QDropEvent) -> str | None:
    """The first local file a drag carries, or None (text, web links)."""
    mime = event.mimeData()
    if mime is None:
        return None
    files = [url.toLocalFile() for url in mime.urls() if url.isLocalFile()]
    return files[0] if files else None


class InputActions:
    """Opens inputs and anchor files for the window (``hooks``: how; None: not offered): the Open... and Anchor
    image... buttons and files dropped on the window. A file that cannot be used is one line in the status bar."""

    def __init__(self, window: MainWindow, hooks: WindowHooks) -> None:
        self.window = window
        self.open_input, self.read_anchor_file = hooks.open_input, hooks.read_anchor_file

    @property
    def accepts_drops(self) -> bool:
        return self.open_input is not None or self.read_anchor_file is not None

    def drop(self, event: QDropEvent) -> None:
        """A video file or image folder becomes the input; an image file, the anchor."""
        path = dropped_file(event)
        if path is None:
            return
        if is_input(path) and self.open_input is not None:
            event.acceptProposedAction()
            self.use_input(path)
        elif not is_input(path) and self.read_anchor_file is not None:
            event.acceptProposedAction()
            self.use_anchor_file(path)

    def use_input(self, path: str) -> None:
        """A video file or image folder becomes the input, from its first frame, which becomes the anchor (an
        anchor image file stays). The videos written of the input before are finalised (r records anew); one that
        cannot be played is said in the status bar and the input stays."""
        assert self.open_input is not None
        window = self.window
        opened = self._or_say(self.open_input, path)
        if opened is None:
            return
        source, frames_from = opened
        window.finalise_videos()
        window.capture.switch_to(source, frames_from)
        window.input_name, window.input_fps = source.name, source.fps
        window.playback.show_positions(source.length)
        if window.playback.ended:
            window.status_text = ""
        window.show_title()
        # The intrinsics belong to the camera they were given for; a file from another camera needs its own.
        intrinsics = "; an essential matrix still uses the intrinsics given at start" \
            if "essential" in window.geometry_modes else ""
        window.say(f"playing {source.name}: its first frame is the anchor{intrinsics}", 8000)

    def choose_input(self) -> None:
        if self.open_input is None:
            return
        path, _ = QFileDialog.getOpenFileName(self.window, "Video", "", "Videos (" + " ".join(
            f"*{suffix}" for suffix in sorted(VIDEO_SUFFIXES)) + ");;All files (*)")
        if path:
            self.use_input(path)

    def use_anchor_file(self, path: str) -> None:
        """An image file becomes the anchor (as --anchor); one that cannot be read is said in the status bar."""
        assert self.read_anchor_file is not None
        read = self._or_say(self.read_anchor_file, path)
        if read is None:
            return
        image, name = read
        self.window.inference.request(NewAnchor(image, name))
        self.window.say(f"anchor: {name}", 5000)

    def choose_anchor_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.window, "Anchor image", "",
                                              "Images (*.png *.jpg *.jpeg *.bmp *.tif *.tiff *.webp);;All files (*)")
        if path:
            self.use_anchor_file(path)

    def _or_say(self, action: Callable[[str], T], path: str) -> T | None:
        """``action(path)``, or None with its one-line error in the status bar (a file that cannot be opened)."""
        try:
            return action(path)
        except Exception as error:  # noqa: BLE001 - the opener's or reader's one-line message, shown to the user
            self.window.say(str(error), 8000)
            return None
