"""Frame sources: webcam, video file, image folder, network stream. Each yields BGR frames one by one.

Opening problems are a :class:`SourceError` with one line for the user. Frames that fail to decode in the
middle of a file or folder are skipped, reported through the ``on_warning`` callback and counted
(``lost_frames``). A camera
or network stream that stops delivering is reopened, with growing pauses, before the stream counts as ended.
"""

from __future__ import annotations

import fnmatch
import os
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

# FFmpeg's own log lines ("Connection refused", "partial file") would precede the app's one-line messages,
# which say the same for the user. Set OPENCV_FFMPEG_LOGLEVEL yourself (e.g. 32) to see them.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
# RTSP over TCP: over UDP (FFmpeg's first choice) a Wi-Fi camera's lost packets become smeared frames, whose
# matches are garbage. Other inputs ignore the option. Set OPENCV_FFMPEG_CAPTURE_OPTIONS yourself to override.
os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")

import cv2  # noqa: E402 - after the FFmpeg log level, which OpenCV reads when it first opens a video
import numpy as np  # noqa: E402

from model.images import read_image, silence_opencv_warnings  # noqa: E402

# OpenCV's own warnings, likewise ("[ WARN:0@1.0] ... should be configured with libavdevice to open a camera
# device" before "cannot open camera 7").
silence_opencv_warnings()

DEFAULT_IMAGE_GLOB = ("*.png", "*.jpg", "*.jpeg", "*.bmp", "*.ppm", "*.pgm", "*.tif", "*.tiff", "*.webp")
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts"}


class SourceError(Exception):
    """An input that cannot be used; the message is one line meant for the user."""


@dataclass
class Frame:
    """One input frame: BGR pixels, its index in the source (before --skip) and when it was read
    (``time.perf_counter()`` seconds), from which the app reports how old a result's frame is; ``input_number``
    counts the inputs of a window (a video dropped on it starts the next one)."""

    image: np.ndarray
    index: int
    captured: float = field(default_factory=time.perf_counter)
    input_number: int = 0


class FrameSource:
    """Base class: iterate to get frames; ``close()`` releases the device or file."""

    name: str = "source"
    is_live: bool = False
    fps: float = 15.0
    lost_frames: int = 0  # frames of a file that could not be decoded (damage), counted as they are skipped
    on_warning: Callable[[str], None] = staticmethod(lambda message: None)  # one line for the user

    @property
    def length(self) -> int | None:
        """How many frames a file or folder holds (``frames(start)`` starts anywhere in them); None for a live
        source, or a file that does not say."""
        return None

    def frames(self, start: int = 0) -> Iterator[Frame]:
        """The frames from frame ``start`` on (a file or folder; a live source starts where it is)."""
        raise NotImplementedError

    def interrupt(self) -> None:
        """Make a pending wait (e.g. before reconnecting) end now, so the reading thread can stop."""

    def close(self) -> None:
        """Release the underlying capture; safe to call twice."""


#: Network streams give up opening or reading after this long instead of FFmpeg's default (minutes or never).
STREAM_TIMEOUT_MS = 10000
#: After damage in a file: reads that decode nothing before the reader seeks ahead; frames placed by their
#: timestamps afterwards (only then: a variable frame rate makes timestamps a poor frame count); and how many
#: frames missing at the very end count as a frame count rounded up, not as lost.
RESYNC_EVERY, CHECK_AFTER_DAMAGE, END_SLACK_FRAMES = 24, 48, 2
#: Pauses before each attempt to reopen a live source that stopped delivering (about a minute in all).
RECONNECT_DELAYS_S = (0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0)


#: Codecs FFmpeg gives text files it was asked to play (its tty demuxer draws them as a "video").
TEXT_CODECS = {"ansi", "text"}


def fourcc(capture: Any) -> str:
    """The capture's codec as four characters ("h264", "MJPG"; "" when it does not say)."""
    code = int(capture.get(cv2.CAP_PROP_FOURCC))
    return "".join(chr((code >> (8 * byte)) & 0xFF) for byte in range(4)).strip("\x00")


def check_url(url: str, timeout_s: float = 5.0) -> None:
    """An http(s) URL that cannot be a video is one line (SourceError) before FFmpeg tries it: an error status, or
    a page or text. Servers that do not answer HEAD (many cameras) and unreachable ones are left to FFmpeg."""
    if not url.lower().startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout_s) as response:
            kind = response.headers.get_content_type()
    except urllib.error.HTTPError as error:
        if error.code in (405, 501):  # HEAD not allowed or not implemented
            return
        raise SourceError(f"{url} answered {error.code} {error.reason}: check the URL") from None
    except (OSError, ValueError):  # unreachable, a timeout, a malformed URL: opening it says so
        return
    if kind.startswith("text/") or kind in ("application/json", "application/xml"):
        raise SourceError(f"{url} served {kind}, not a video or stream: check the URL")


def open_capture(target: int | str) -> Any:
    """cv2.VideoCapture for a camera index, a file or a URL (URLs with open and read timeouts)."""
    if isinstance(target, str) and "://" in target:
        return cv2.VideoCapture(target, cv2.CAP_ANY, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, STREAM_TIMEOUT_MS,
                                                       cv2.CAP_PROP_READ_TIMEOUT_MSEC, STREAM_TIMEOUT_MS])
    return cv2.VideoCapture(target)


def open_camera(index: int, size: tuple[int, int] | None = None) -> Any:
    """cv2.VideoCapture of camera ``index``, asked for frames of ``size`` (width, height) when given, in MJPG:
    many USB cameras offer sizes above 640x480 uncompressed at only 5-10 FPS, compressed at their full rate.
    A camera without that size picks another; ``CaptureSource.frame_size`` tells which."""
    capture = cv2.VideoCapture(index)
    if size is not None and capture.isOpened():
        capture.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*"MJPG"))
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
    return capture


class CaptureSource(FrameSource):
    """A cv2.VideoCapture: camera index, video file or stream URL.

    A live source (camera, stream) that stops delivering frames is reopened after each pause of
    ``reconnect_delays_s`` in turn, frame indices continuing; it ends when every attempt failed.
    """

    def __init__(self, target: int | str, name: str, is_live: bool | None, on_warning: Callable[[str], None],
                 reconnect_delays_s: tuple[float, ...] = RECONNECT_DELAYS_S,
                 opener: Callable[[int | str], Any] = open_capture) -> None:
        """``is_live`` None (a URL): live unless the capture says how many frames it has (a file served over
        http is played once, as a file: its end is the end of the stream)."""
        self.target, self.name, self.on_warning = target, name, on_warning
        self.reconnect_delays_s, self.opener = reconnect_delays_s, opener
        self._interrupted = threading.Event()
        self.capture = opener(target)
        if not self.capture.isOpened():
            self.capture.release()
            kind = "camera" if isinstance(target, int) else ("video" if is_live is False else "stream")
            hint = {"camera": "check that it is connected and not used by another program (--list_cameras shows "
                              "the cameras that deliver frames)",
                    "stream": "check the URL and that the stream is reachable",
                    "video": "check that it is a video file in a format FFmpeg can read"}[kind]
            raise SourceError(f"cannot open {kind} {target}: {hint}")
        if fourcc(self.capture) in TEXT_CODECS:  # FFmpeg's tty demuxer plays any text as a "video" of it
            self.capture.release()
            raise SourceError(f"{target} is text, not a video: check the file or URL")
        fps = self.capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if 1.0 <= fps <= 240.0 else 15.0
        count = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.is_live = count <= 0 if is_live is None else is_live
        self.frame_count = count if not self.is_live else 0

    @property
    def frame_size(self) -> tuple[int, int] | None:
        """(width, height) of the frames, as the capture reports it; None when it does not."""
        width, height = (int(self.capture.get(prop)) for prop in (cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT))
        return (width, height) if width > 0 and height > 0 else None

    @property
    def length(self) -> int | None:
        return self.frame_count if not self.is_live and self.frame_count > 0 else None

    def frames(self, start: int = 0) -> Iterator[Frame]:
        index = 0
        if not self.is_live and start:
            # Exact: FFmpeg decodes from the key frame before it. The capture says where it ended up.
            self.capture.set(cv2.CAP_PROP_POS_FRAMES, start)
            index = int(self.capture.get(cv2.CAP_PROP_POS_FRAMES))
        elif not self.is_live and self.capture.get(cv2.CAP_PROP_POS_FRAMES) > 0:
            # Back to the start by opening the file again: after a seek OpenCV reads nothing from a one-frame video.
            self.capture.release()
            self.capture = self.opener(self.target)
        failed, offset = 0, 0  # reads in a row that decoded nothing; frame index minus timestamp index
        checking = 0  # frames still placed by their timestamps after damage
        while True:
            ok, image = self.capture.read()
            if ok and image is not None:
                if checking:  # after damage, the decoder may resume frames later: place them by timestamp
                    checking -= 1
                    placed = self._after_damage(index, offset)
                    if placed is None:
                        continue
                    index = placed
                elif not self.is_live:  # timestamp -> index, as the healthy frames run (streams may start late)
                    offset = index - self._stamp()
                failed = 0
                yield Frame(image, index)
                index += 1
                continue
            if not self.is_live and failed < max(self.frame_count - index, 0) + END_SLACK_FRAMES:
                # Damage before the end of a file: read on past it (FFmpeg resumes at the next key frame) and
                # seek ahead now and then in case the demuxer is stuck, instead of ending the video there.
                failed, checking = failed + 1, CHECK_AFTER_DAMAGE
                if failed % RESYNC_EVERY == 0:
                    self.capture.set(cv2.CAP_PROP_POS_FRAMES, index + failed)
                continue
            if self.is_live and (image := self._reconnect()) is not None:
                yield Frame(image, index)
                index += 1
                continue
            if not self.is_live and self.frame_count - index > END_SLACK_FRAMES:  # cut short, or damage not placed
                self.lost_frames += self.frame_count - index
                self.on_warning(f"{self.frame_count - index} of the {self.frame_count} frames {self.name} says it has "
                                "could not be decoded (damaged or cut short)")
            return

    def _stamp(self) -> int:
        """The frame just read's timestamp, in frames."""
        return round(self.capture.get(cv2.CAP_PROP_POS_MSEC) * self.fps / 1000.0)

    def _after_damage(self, index: int, offset: int) -> int | None:
        """The index of the frame just read after damage, from its timestamp (``offset``: index minus timestamp,
        as before the damage): ahead of ``index``, the frames between were lost (counted and said); behind it,
        the frame is the decoder's concealment of damage, not a frame of the file: None, to drop it."""
        position = self._stamp() + offset
        if position > index:
            self._report_gap(index, position - index)
        return position if position >= index else None

    def _report_gap(self, first: int, count: int) -> None:
        self.lost_frames += count
        frames = f"frame {first}" if count == 1 else f"frames {first}-{first + count - 1}"
        self.on_warning(f"{frames} of {self.name} could not be decoded (damaged file); skipped")

    def _reconnect(self) -> np.ndarray | None:
        """Reopen a live source that stopped delivering -> its first new frame, or None when every attempt
        failed or interrupt() was called."""
        self.capture.release()
        attempts = len(self.reconnect_delays_s)
        for attempt, delay in enumerate(self.reconnect_delays_s, start=1):
            self.on_warning(f"{self.name} stopped delivering frames; reconnecting in {delay:g} s "
                            f"(attempt {attempt}/{attempts})")
            if self._interrupted.wait(delay):
                return None
            self.capture = self.opener(self.target)
            if self.capture.isOpened():
                ok, image = self.capture.read()
                if ok and image is not None:
                    self.on_warning(f"{self.name} reconnected")
                    return image
            self.capture.release()
        self.on_warning(f"{self.name} did not come back after {attempts} attempts; stream ended")
        return None

    def interrupt(self) -> None:
        self._interrupted.set()

    def close(self) -> None:
        self._interrupted.set()
        self.capture.release()


#: Frames must be at least this many pixels a side and at most this elongated to be matched and drawn: LoFTR's
#: coarse grid needs a few 8-pixel cells each way, and the view lays both images side by side at one height.
MIN_FRAME_SIDE, MAX_FRAME_ASPECT = 16, 8.0


def unmatchable(image: np.ndarray) -> str | None:
    """Why an image cannot be matched (too small or too thin), or None."""
    height, width = image.shape[:2]
    if min(height, width) < MIN_FRAME_SIDE or max(height, width) > MAX_FRAME_ASPECT * min(height, width):
        return (f"{width}x{height} is too small or too thin to match (at least {MIN_FRAME_SIDE} pixels a side, "
                f"at most {MAX_FRAME_ASPECT:g}:1)")
    return None


class FolderSource(FrameSource):
    """Images of a folder in name order; unreadable files are skipped."""

    def __init__(self, folder: Path, patterns: tuple[str, ...], on_warning: Callable[[str], None],
                 fps: float = 15.0) -> None:
        self.name, self.on_warning, self.fps = folder.name, on_warning, fps
        self.files = sorted(p for p in folder.iterdir()
                            if p.is_file() and any(fnmatch.fnmatch(p.name.lower(), g.lower()) for g in patterns))
        if not self.files:
            raise SourceError(f"no images matching {' '.join(patterns)} in folder {folder}; "
                              "use --image_glob to choose the file pattern")
        if not any(read_image(path) is not None for path in self.files):  # stops at the first that decodes
            raise SourceError(f"none of the {len(self.files)} files matching {' '.join(patterns)} in folder {folder} "
                              "could be decoded as an image; use --image_glob to choose the files")

    @property
    def length(self) -> int | None:
        return len(self.files)

    def frames(self, start: int = 0) -> Iterator[Frame]:
        warned = False
        for index, path in enumerate(self.files[start:], start=start):
            image = read_image(path)
            if image is None:
                self.lost_frames += 1
                if not warned:
                    self.on_warning(f"cannot decode {path.name}; skipping unreadable images")
                    warned = True
                continue
            reason = unmatchable(image)
            if reason:  # said for each such file: unlike a run of broken ones, each is a surprise
                self.on_warning(f"skipping {path.name}: {reason}")
                continue
            yield Frame(image, index)


def open_source(spec: str, image_glob: tuple[str, ...] = DEFAULT_IMAGE_GLOB,
                on_warning: Callable[[str], None] = lambda message: None,
                camera_size: tuple[int, int] | None = None) -> FrameSource:
    """A source from the ``--input`` value: camera index, http/rtsp URL, image folder or video file.
    ``camera_size``: the (width, height) a camera is asked for (other sources come at their own size)."""
    if spec.isdigit():
        return CaptureSource(int(spec), f"camera {spec}", True, on_warning,
                             opener=lambda index: open_camera(index, camera_size))  # reconnecting asks again
    if "://" in spec:
        check_url(spec)
        return CaptureSource(spec, spec, None, on_warning)
    path = Path(spec)
    if path.is_dir():
        return FolderSource(path, image_glob, on_warning)
    if not path.exists():
        raise SourceError(f"input not found: {spec} (give a camera index, a video file, an image folder or a URL)")
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        # Let FFmpeg try anything, but a file it cannot open gets a precise message.
        try:
            return CaptureSource(str(path), path.name, False, on_warning)
        except SourceError:
            raise SourceError(f"{spec} is not a video file FFmpeg can read (nor a folder of images)") from None
    return CaptureSource(str(path), path.name, False, on_warning)


@dataclass(frozen=True)
class CameraInfo:
    """A camera that delivered a frame: its index (``--input INDEX``), that frame's size and the rate it reports."""

    index: int
    width: int
    height: int
    fps: float

    def line(self) -> str:
        rate = f", {self.fps:g} FPS" if self.fps > 0 else ""
        return f"camera {self.index}: {self.width}x{self.height}{rate} (--input {self.index})"


#: Indices --list_cameras tries: laptops and desks rarely have more (on Linux each camera may take two
#: /dev/video nodes, one of them metadata only, which opens but delivers nothing and is left out).
CAMERA_INDICES = range(10)


def list_cameras(indices: Iterable[int] = CAMERA_INDICES,
                 opener: Callable[[int], Any] = cv2.VideoCapture) -> list[CameraInfo]:
    """The cameras among ``indices`` that open and deliver a frame, at the size they give by default."""
    found = []
    for index in indices:
        capture = opener(index)
        try:
            ok, image = capture.read() if capture.isOpened() else (False, None)
            if ok and image is not None:
                found.append(CameraInfo(index, image.shape[1], image.shape[0], float(capture.get(cv2.CAP_PROP_FPS))))
        finally:
            capture.release()
    return found


def camera_available(index: int = 0) -> bool:
    """Whether camera ``index`` opens and delivers a frame."""
    capture = cv2.VideoCapture(index)
    try:
        return bool(capture.isOpened() and capture.read()[0])
    finally:
        capture.release()


def looped(open_again: Callable[[], FrameSource], start: int = 0) -> Iterator[Frame]:
    """Frames of a file source played over and over (for the bundled sample video), the first time from frame
    ``start``, indices continuing (the next pass's first frame is numbered as the source's length)."""
    offset = 0
    while True:
        source = open_again()
        count = 0
        try:
            for frame in source.frames(start):
                count += 1
                yield replace(frame, index=offset + frame.index)
        finally:
            source.close()
        if count == 0:
            return
        offset += start + count
        start = 0


def thin(frames: Iterator[Frame], skip: int, max_length: int) -> Iterator[Frame]:
    """Every ``skip``-th frame (1 = all), at most ``max_length`` of them (0 = no limit)."""
    produced = 0
    for position, frame in enumerate(frames):
        if position % max(skip, 1):
            continue
        yield frame
        produced += 1
        if max_length and produced >= max_length:
            return
