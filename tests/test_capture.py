"""The capture thread without a window: the frames kept to step back through, and stepping while paused."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Iterator

import numpy as np
import pytest

from app.capture import CaptureThread, FrameHistory, LatestFrame
from app.sources import Frame, FrameSource


def _frame(index: int, nbytes: int = 100) -> Frame:
    return Frame(np.full(nbytes, index % 256, np.uint8), index)


def test_the_mailbox_keeps_the_newest_frame_but_not_over_the_first_of_a_new_input() -> None:
    mailbox = LatestFrame()
    image = np.zeros((4, 4), np.uint8)
    for index in range(3):  # the inference thread is busy: only the newest waits
        mailbox.put(Frame(image, index))
    assert mailbox.take(0.0)[0].index == 2  # type: ignore[union-attr]
    for index in range(3):  # a video dropped on the window: its first frame becomes the anchor, so it waits
        mailbox.put(Frame(image, index, input_number=1))
    assert mailbox.take(0.0)[0].index == 0  # type: ignore[union-attr]
    for index in range(3, 6):  # taken: the newest again
        mailbox.put(Frame(image, index, input_number=1))
    assert mailbox.take(0.0)[0].index == 5  # type: ignore[union-attr]
    mailbox.put(Frame(image, 6, input_number=1))
    mailbox.put(Frame(image, 0, input_number=2))  # the next input's first frame replaces a frame of the one before
    assert mailbox.take(0.0)[0].input_number == 2  # type: ignore[union-attr]


def test_the_history_keeps_the_latest_frames_within_its_bytes() -> None:
    history = FrameHistory(max_bytes=350)
    for index in range(6):
        history.add(_frame(index))
    assert [frame.index for frame in history.frames] == [3, 4, 5] and history.bytes == 300
    history.add(_frame(6, nbytes=1000))  # larger than all it may keep: the newest is kept all the same
    assert [frame.index for frame in history.frames] == [6]


def test_steps_go_from_the_frame_shown_and_playing_on_goes_through_what_was_stepped_over() -> None:
    history = FrameHistory()
    for index in (0, 1, 2, 4, 5):  # frame 3 failed to decode
        history.add(_frame(index))
    # Matching was slower than the file: frame 2 is on screen, frames 4 and 5 were presented but not matched.
    assert history.before(2).index == 1
    assert history.before(1).index == 0
    assert history.before(0) is None and history.cursor == 0  # nothing older: no step
    assert history.after(0).index == 1
    assert history.after(2).index == 4  # the next kept frame, not the newest
    assert history.next_kept().index == 5
    assert history.next_kept() is None and history.cursor is None  # at the newest: the source comes next
    assert history.after(5) is None and history.cursor is None
    history.before(4)
    history.to_newest()
    assert history.next_kept() is None


class _ListSource(FrameSource):
    def __init__(self, count: int, is_live: bool = False) -> None:
        self.count, self.is_live, self.fps, self.name = count, is_live, 1000.0, "test"

    @property
    def length(self) -> int | None:
        return None if self.is_live else self.count

    def frames(self):  # type: ignore[no-untyped-def]
        return (_frame(index) for index in range(self.count))


class _RecordingMailbox(LatestFrame):
    """Also remembers the index of every frame put, for the frames a one-slot mailbox drops."""

    def __init__(self) -> None:
        super().__init__()
        self.presented: list[int] = []

    def put(self, frame: Frame) -> None:
        self.presented.append(frame.index)
        super().put(frame)


def _take(mailbox: LatestFrame) -> int:
    frame, _ = mailbox.take(timeout=10)
    assert frame is not None, "no frame presented"
    return frame.index


@pytest.mark.parametrize("is_live", [False, True])
def test_paused_steps_present_the_frames_before_and_after_the_one_shown(  # type: ignore[no-untyped-def]
        qtbot, is_live: bool) -> None:
    source, mailbox = _ListSource(20, is_live), _RecordingMailbox()
    capture = CaptureThread(source, source.frames, mailbox, pace=not is_live)
    capture.paused.set()
    warnings: list[str] = []
    capture.warning.connect(warnings.append)
    capture.start()
    try:
        capture.step(1, None)  # nothing shown yet: the first frame
        assert _take(mailbox) == 0
        for shown in (0, 1, 2):
            capture.step(1, shown)
            assert _take(mailbox) == shown + 1
        capture.step(-1, 3)
        assert _take(mailbox) == 2
        capture.step(-1, 2)
        assert _take(mailbox) == 1
        capture.step(1, 1)  # forward through the kept frames
        assert _take(mailbox) == 2
        capture.step(-1, 2)
        capture.step(-1, 2)  # a held key: the second step before the first one's frame was shown goes on from it
        qtbot.waitUntil(lambda: mailbox.presented[-2:] == [1, 0], timeout=10000)
        capture.step(-1, 0)  # nothing older than the first frame: no frame, a message
        qtbot.waitUntil(lambda: len(warnings) > 0, timeout=10000)
        assert "no earlier frame kept" in warnings[0] and mailbox.take(timeout=0.2)[0].index == 0
        capture.step(1, 0)
        capture.step(1, 0)
        qtbot.waitUntil(lambda: mailbox.presented[-2:] == [1, 2], timeout=10000)
        assert mailbox.presented == [0, 1, 2, 3, 2, 1, 2, 1, 0, 1, 2]
        capture.paused.clear()  # playing on: a file goes on after frame 2, a live source from its live frames
        qtbot.waitUntil(lambda: mailbox.take(timeout=0.1)[1], timeout=10000)  # to the end of the 20 frames
        assert mailbox.presented[11:] == list(range(4 if is_live else 3, 20))
    finally:
        capture.stop()
        capture.wait(5000)


@contextmanager
def _paused_seekable(stride: int = 1) -> Iterator[tuple[CaptureThread, _RecordingMailbox]]:
    """A running, paused capture thread over 30 frames that can seek (every ``stride``-th frame, as --skip)."""
    source, mailbox = _ListSource(30), _RecordingMailbox()
    capture = CaptureThread(source, source.frames, mailbox, pace=True, stride=stride,
                            frames_from=lambda start: (_frame(index) for index in range(start, 30, stride)))
    capture.paused.set()
    capture.start()
    try:
        yield capture, mailbox
    finally:
        capture.stop()
        capture.wait(5000)


def test_a_seek_goes_on_from_any_frame_paused_playing_and_after_the_end(qtbot) -> None:  # type: ignore[no-untyped-def]
    with _paused_seekable() as (capture, mailbox):
        capture.seek_to(20)  # paused: the frame sought is shown, and steps go on from it
        assert _take(mailbox) == 20
        capture.step(1, 20)
        assert _take(mailbox) == 21
        for shown in (21, 20):  # back past the frames kept since the seek: the file is read again from there
            capture.step(-1, shown)
            assert _take(mailbox) == shown - 1
        capture.seek_to(5)
        assert _take(mailbox) == 5
        capture.paused.clear()  # playing on from there to the end
        qtbot.waitUntil(lambda: mailbox.take(timeout=0.1)[1], timeout=10000)
        assert mailbox.presented == [20, 21, 20, 19, *range(5, 30)]
        capture.paused.set()
        warnings: list[str] = []
        capture.warning.connect(warnings.append)
        capture.step(1, 29)  # nothing after the last frame: a message
        qtbot.waitUntil(lambda: len(warnings) > 0, timeout=10000)
        assert warnings == ["the end of the stream: no frame after this one"]
        capture.paused.clear()
        capture.seek_to(27)  # after the end: frames come again
        qtbot.waitUntil(lambda: mailbox.presented[-1] == 29, timeout=10000)
        assert mailbox.presented[-3:] == [27, 28, 29] and capture.isRunning()


def test_a_step_back_past_the_frames_kept_keeps_to_every_nth_frame() -> None:
    with _paused_seekable(stride=3) as (capture, mailbox):  # --skip 3
        capture.seek_to(21)
        assert _take(mailbox) == 21
        capture.step(-1, 21)
        assert _take(mailbox) == 18  # the frame before it among those played, not frame 20
        capture.step(1, 18)
        assert _take(mailbox) == 21


def test_switching_to_a_file_does_not_wait_for_a_stream_to_reconnect(qtbot) -> None:  # type: ignore[no-untyped-def]
    class StalledStream(FrameSource):
        is_live, name, fps = True, "stream", 30.0

        def __init__(self) -> None:
            self.interrupted = threading.Event()

        def frames(self, start: int = 0):  # type: ignore[no-untyped-def]
            yield _frame(0)
            self.interrupted.wait(60)  # as a camera waiting to reconnect

        def interrupt(self) -> None:
            self.interrupted.set()

    stream, mailbox = StalledStream(), _RecordingMailbox()
    capture = CaptureThread(stream, stream.frames, mailbox, pace=False)
    capture.start()
    try:
        assert _take(mailbox) == 0
        started = time.perf_counter()
        video = _ListSource(5)
        capture.switch_to(video, lambda start: (_frame(index) for index in range(start, 5)))
        qtbot.waitUntil(lambda: mailbox.presented[-1:] == [4], timeout=10000)
        assert time.perf_counter() - started < 5 and mailbox.presented == [0, 0, 1, 2, 3, 4]
        assert mailbox.take(timeout=1)[0].input_number == 1  # frames of the second input: a new anchor
    finally:
        capture.stop()
        capture.wait(5000)
