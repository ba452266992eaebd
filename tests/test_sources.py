"""Frame sources (app/sources.py): live sources reconnect, waits can be interrupted, stream errors are one line."""

from __future__ import annotations

import http.server
import socket
import socketserver
import threading
import time
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import pytest

from app.cli import main
from app.sources import CaptureSource, list_cameras, looped, open_source

FRAMES_PER_CONNECTION = 4


class _MjpegCamera(http.server.BaseHTTPRequestHandler):
    """An IP camera's MJPEG-over-HTTP stream that drops the connection after a few frames."""

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.end_headers()
        for value in range(FRAMES_PER_CONNECTION):
            jpeg = cv2.imencode(".jpg", np.full((48, 64, 3), 60 * value, np.uint8))[1].tobytes()
            try:
                self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%s\r\n"
                                 % (len(jpeg), jpeg))
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                return
            time.sleep(0.02)


class _ThreadingServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


@pytest.fixture
def mjpeg_url() -> Iterator[str]:
    server = _ThreadingServer(("127.0.0.1", 0), _MjpegCamera)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/video.mjpg"
    server.shutdown()
    server.server_close()


class FakeCapture:
    """A cv2.VideoCapture stand-in that opens (or not) and then delivers ``frames`` frames."""

    def __init__(self, frames: int, opened: bool = True) -> None:
        self.left, self.opened, self.released = frames, opened, False

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        return self.opened

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self.opened and self.left > 0 and not self.released:
            self.left -= 1
            return True, np.zeros((4, 4, 3), np.uint8)
        return False, None

    def get(self, prop: int) -> float:
        return 0.0

    def release(self) -> None:
        self.released = True


def test_live_source_reconnects_with_continuing_indices_then_gives_up() -> None:
    captures = iter([FakeCapture(3), FakeCapture(0, opened=False), FakeCapture(2)]
                    + [FakeCapture(0, opened=False)] * 3)
    warnings: list[str] = []
    source = CaptureSource("rtsp://camera/stream", "rtsp://camera/stream", True, warnings.append,
                           reconnect_delays_s=(0.0, 0.0, 0.0), opener=lambda target: next(captures))
    assert [frame.index for frame in source.frames()] == [0, 1, 2, 3, 4]
    assert "rtsp://camera/stream stopped delivering frames; reconnecting in 0 s (attempt 1/3)" in warnings
    assert warnings.count("rtsp://camera/stream reconnected") == 1
    assert warnings[-1] == "rtsp://camera/stream did not come back after 3 attempts; stream ended"


def test_a_file_that_ends_is_not_reopened() -> None:
    opened: list[object] = []

    def opener(target: object) -> FakeCapture:
        opened.append(target)
        return FakeCapture(2)

    source = CaptureSource("clip.mp4", "clip.mp4", False, lambda message: None, opener=opener)
    assert len(list(source.frames())) == 2 and opened == ["clip.mp4"]


def test_interrupt_ends_a_wait_to_reconnect() -> None:
    source = CaptureSource(0, "camera 0", True, lambda message: None, reconnect_delays_s=(60.0,),
                           opener=lambda target: FakeCapture(1))
    threading.Timer(0.2, source.interrupt).start()
    started = time.monotonic()
    assert len(list(source.frames())) == 1
    assert time.monotonic() - started < 10


def test_unreachable_stream_is_one_line_without_ffmpeg_noise(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert main(["--input", f"http://127.0.0.1:{port}/live.mp4", "--no_display", "--output_dir", str(tmp_path)]) == 2
    err = capfd.readouterr().err
    assert err.strip().splitlines() == [f"error: cannot open stream http://127.0.0.1:{port}/live.mp4: check the URL "
                                        "and that the stream is reachable"]


def test_ip_camera_that_drops_the_connection_is_reconnected(mjpeg_url: str) -> None:
    warnings: list[str] = []
    source = open_source(mjpeg_url, on_warning=warnings.append)
    assert source.is_live
    source.reconnect_delays_s = (0.1, 0.1)
    frames = []
    for frame in source.frames():
        frames.append(frame)
        if len(frames) == 3 * FRAMES_PER_CONNECTION:
            break
    source.close()
    assert [frame.index for frame in frames] == list(range(3 * FRAMES_PER_CONNECTION))
    assert frames[0].image.shape == (48, 64, 3)
    assert warnings.count(f"{mjpeg_url} reconnected") >= 2


def test_a_file_or_folder_starts_at_any_frame_and_a_loop_too(tmp_path: Path) -> None:
    sample = Path(__file__).resolve().parent.parent / "assets" / "sample.mp4"
    in_order = [frame.image for frame in open_source(str(sample)).frames()]
    video = open_source(str(sample))
    assert video.length == len(in_order) == 120
    for start in (90, 7, 0, 119):  # forth and back on one open file, as the window's slider does
        frames = video.frames(start)
        first = next(frames)
        assert first.index == start
        np.testing.assert_array_equal(first.image, in_order[start])  # that very frame, not the key frame before it
    assert next(frames, None) is None  # 119 was the last
    for index in range(3):
        cv2.imwrite(str(tmp_path / f"{index}.png"), in_order[index])
    folder = open_source(str(tmp_path))
    assert folder.length == 3 and [frame.index for frame in folder.frames(1)] == [1, 2]
    loop = looped(lambda: open_source(str(tmp_path)), start=2)
    assert [next(loop).index for _ in range(5)] == [2, 3, 4, 5, 6]  # the second pass numbered on from 3


class _FakeCamera:
    """cv2.VideoCapture of a camera: ``frame`` None opens but delivers nothing (a Linux metadata node)."""

    def __init__(self, frame: np.ndarray | None, fps: float = 30.0) -> None:
        self.frame, self.fps = frame, fps

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        return True

    def read(self) -> tuple[bool, np.ndarray | None]:
        return self.frame is not None, self.frame

    def get(self, prop: int) -> float:
        return self.fps if prop == cv2.CAP_PROP_FPS else 0.0

    def release(self) -> None:
        pass


def test_cameras_that_deliver_frames_are_listed(capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    cameras = {0: _FakeCamera(np.zeros((720, 1280, 3), np.uint8)), 1: _FakeCamera(None),
               2: _FakeCamera(np.zeros((480, 640, 3), np.uint8), fps=0.0)}
    closed = _FakeCamera(None)
    closed.isOpened = lambda: False  # type: ignore[method-assign]
    found = list_cameras(range(4), opener=lambda index: cameras.get(index, closed))
    assert [camera.line() for camera in found] == ["camera 0: 1280x720, 30 FPS (--input 0)",
                                                   "camera 2: 640x480 (--input 2)"]
    monkeypatch.setattr("app.cli.list_cameras", lambda: [])
    assert main(["--list_cameras"]) == 0
    assert capsys.readouterr().out == "no camera delivers frames (tried --input 0 to 9)\n"


def test_a_one_frame_video_plays_again(tmp_path: Path) -> None:
    path = tmp_path / "one.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 15, (64, 48))
    writer.write(np.full((48, 64, 3), 90, np.uint8))
    writer.release()
    video = open_source(str(path))
    assert video.length == 1
    for _ in range(3):  # p at the end replays from frame 0; after a seek OpenCV read nothing from such a file
        assert [frame.index for frame in video.frames(0)] == [0]


@pytest.mark.parametrize("flag", ["--start", "--anchor_frame"])
def test_frame_numbers_of_a_live_stream_are_one_line(mjpeg_url: str, flag: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--input", mjpeg_url, "--no_display", flag, "0" if flag == "--anchor_frame" else "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {flag} needs a video file or image folder; {mjpeg_url} is live"


def test_the_window_opens_files_and_folders_but_not_a_stream(mjpeg_url: str) -> None:
    from app.cli import build_parser, open_input
    from app.sources import SourceError

    args = build_parser().parse_args(["--skip", "40"])
    source, frames_from = open_input(args, str(Path(__file__).resolve().parent.parent / "assets" / "sample.mp4"))
    assert source.length == 120 and [frame.index for frame in frames_from(10)] == [10, 50, 90]  # --skip applies
    source.close()
    with pytest.raises(SourceError, match=r"^cannot play .* here: open a video file or an image folder$"):
        open_input(args, mjpeg_url)
