"""Hostile and unusual command lines: each gets one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations

import errno
import functools
import http.server
import io
import os
import pickle
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import pytest
import torch

from app.cli import main as app_main
from model.__main__ import main as model_main
from model.checkpoints import CheckpointError, load_weights

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture()
def images(tmp_path: Path) -> tuple[str, str]:
    image = cv2.GaussianBlur(np.random.default_rng(0).integers(0, 255, (96, 128), dtype=np.uint8), (0, 0), 2)
    paths = (tmp_path / "a.png", tmp_path / "b.png")
    for path in paths:
        cv2.imwrite(str(path), image)
    return str(paths[0]), str(paths[1])


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    return err.splitlines()[-1]


@pytest.mark.parametrize("resize", [["100000", "100000"], ["5000"]])
def test_a_network_size_no_memory_holds_is_refused(images: tuple[str, str], resize: list[str],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert model_main(["match", *images, "--resize", *resize]) == 2
    assert "at most 4096 pixels a side" in _one_line_error(capsys)


@pytest.mark.parametrize("device", ["tpu", "cuda:x"])
def test_an_unknown_device_is_refused_when_the_flags_are_read(images: tuple[str, str], device: str,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    for run in (lambda: model_main(["match", *images, "--device", device, "--resize", "160", "120"]),
                lambda: app_main(["--device", device, "--resize", "160", "120", "--no_display"])):
        with pytest.raises(SystemExit) as stop:
            run()
        assert stop.value.code == 2
        assert "unknown device" in _one_line_error(capsys)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("resize", [[], ["--resize", "160", "120"]])
def test_cuda_without_cuda_is_one_line_on_every_path(resize: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert app_main(["--device", "cuda", *resize, "--no_display", "--input", "assets/sample.mp4"]) == 2
    assert "no CUDA device is available" in _one_line_error(capsys)


def test_an_image_name_opencv_cannot_write_is_refused_before_matching(images: tuple[str, str], tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert model_main(["match", *images, "--viz", str(tmp_path / "out.xyz")]) == 2
    assert "give it an image extension" in _one_line_error(capsys)
    assert not (tmp_path / "out.xyz").exists()


def test_an_empty_input_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert app_main(["--input", "", "--no_display"]) == 2
    assert "--input is empty" in _one_line_error(capsys)


class _Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_a_checkpoint_holding_code_is_refused_without_advice_to_run_it(tmp_path: Path) -> None:
    path = tmp_path / "hostile.ckpt"
    with path.open("wb") as file:
        pickle.dump({"state_dict": _Payload()}, file, protocol=2)
    with pytest.raises(CheckpointError) as error:
        load_weights(path)
    message = str(error.value)
    assert "refused for safety" in message and "weights_only" not in message and "\n" not in message


def test_a_one_pixel_wide_image_in_a_folder_is_skipped_with_a_warning(tmp_path: Path) -> None:
    from app.sources import FolderSource

    rng = np.random.default_rng(0)
    for index in range(3):
        cv2.imwrite(str(tmp_path / f"f{index}.png"), rng.integers(0, 255, (120, 160), dtype=np.uint8))
    cv2.imwrite(str(tmp_path / "f1.png"), np.zeros((5000, 1), np.uint8))
    warnings: list[str] = []
    source = FolderSource(tmp_path, ("*.png",), warnings.append)
    assert [frame.index for frame in source.frames()] == [0, 2]
    assert warnings == ["skipping f1.png: 1x5000 is too small or too thin to match (at least 16 pixels a side, "
                        "at most 8:1)"]


def test_names_that_are_not_utf8_are_read_and_written(tmp_path: Path) -> None:
    from app.sources import FolderSource
    from model.images import read_image, write_image

    folder = Path(os.fsdecode(os.path.join(os.fsencode(tmp_path), b"caf\xe9")))  # Latin-1, not UTF-8
    folder.mkdir()
    image = np.random.default_rng(0).integers(0, 255, (60, 80, 3), dtype=np.uint8)
    for index in range(2):
        write_image(folder / os.fsdecode(b"fr\xe9me%d.png" % index), image)  # OpenCV's imwrite crashed here
    assert [frame.image.shape for frame in FolderSource(folder, ("*.png",), print).frames()] == [(60, 80, 3)] * 2
    assert np.array_equal(read_image(folder / os.fsdecode(b"fr\xe9me0.png")), image)


def test_a_full_disk_is_said_and_leaves_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    from model import images

    real_open = builtins.open

    def full_disk(path, mode="r", *args, **kwargs):
        if "w" in mode:
            file = real_open(path, mode, *args, **kwargs)
            file.write(b"\x89PNG")  # a little gets out before the disk is full
            file.close()
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", full_disk)
    with pytest.raises(OSError, match="disk full") as error:
        images.write_image(tmp_path / "frame.png", np.zeros((8, 8, 3), np.uint8))
    assert str(tmp_path / "frame.png") in str(error.value)
    monkeypatch.setattr(builtins, "open", real_open)
    assert list(tmp_path.iterdir()) == []


def _video(path: Path, frames: int = 60, damage: tuple[float, float] | None = None) -> Path:
    """An H.264 mp4 of numbered frames (a key frame every 6), optionally zeroed over a share of its bytes."""
    import imageio_ffmpeg

    writer = imageio_ffmpeg.write_frames(str(path.with_suffix(".clean.mp4")), (96, 64), fps=30, codec="libx264",
                                         macro_block_size=8, output_params=["-g", "6"])
    writer.send(None)
    texture = cv2.GaussianBlur(np.random.default_rng(0).integers(0, 255, (200, 300, 3), dtype=np.uint8), (0, 0), 2)
    for index in range(frames):
        writer.send(np.ascontiguousarray(texture[index:index + 64, index:index + 96]))
    writer.close()
    data = bytearray(path.with_suffix(".clean.mp4").read_bytes())
    if damage is not None:
        start, stop = (int(share * len(data)) for share in damage)
        data[start:stop] = bytes(stop - start)
    path.write_bytes(bytes(data))
    return path


def test_a_video_damaged_in_the_middle_is_read_to_its_end_and_the_loss_counted(tmp_path: Path) -> None:
    from app.sources import open_source

    warnings: list[str] = []
    clean = open_source(str(_video(tmp_path / "clean.mp4")), on_warning=warnings.append)
    assert [frame.index for frame in clean.frames()] == list(range(60)) and clean.lost_frames == 0
    source = open_source(str(_video(tmp_path / "damaged.mp4", damage=(0.45, 0.55))), on_warning=warnings.append)
    indices = [frame.index for frame in source.frames()]
    # Everything FFmpeg can decode comes out, the last frame included, each under its own number.
    assert indices[-1] == 59 and indices == sorted(set(indices))
    assert source.lost_frames == 60 - len(indices) > 0
    assert len(warnings) == 1 and "could not be decoded (damaged file)" in warnings[0]


def test_a_damaged_video_headless_writes_every_decodable_frame_and_exits_1(tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    video = _video(tmp_path / "damaged.mp4", frames=30, damage=(0.45, 0.6))
    code = app_main(["--input", str(video), "--no_display", "--output_dir", str(tmp_path / "out"),
                     "--resize", "96", "64", "--max_matches", "50"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    written = len(list((tmp_path / "out").glob("frame_*.png")))
    lost = int(err.strip().splitlines()[-1].split()[1])
    assert err.strip().splitlines()[-1].endswith("are missing from the outputs (exit code 1)")
    assert written + lost == 30 and 0 < lost < 30


def test_unreadable_images_in_a_folder_count_as_lost(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = cv2.GaussianBlur(np.random.default_rng(1).integers(0, 255, (64, 96), dtype=np.uint8), (0, 0), 2)
    for index in range(3):
        cv2.imwrite(str(tmp_path / f"{index}.png"), image)
    (tmp_path / "1.png").write_bytes(b"not a png")
    code = app_main(["--input", str(tmp_path), "--no_display", "--output_dir", str(tmp_path / "out"),
                     "--resize", "96", "64"])
    assert code == 1
    assert "1 frame of" in _one_line_error(capsys)
    assert len(list((tmp_path / "out").glob("frame_*.png"))) == 2


class _FileServer(http.server.SimpleHTTPRequestHandler):
    """Files of a folder over http with byte ranges (as web servers serve videos, so that FFmpeg can seek)."""

    def log_message(self, *args: object) -> None:
        pass

    def send_head(self):  # type: ignore[no-untyped-def]
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return None
        data = path.read_bytes()
        found = re.match(r"bytes=(\d*)-(\d*)", self.headers.get("Range", ""))
        start = int(found.group(1) or 0) if found else 0
        end = int(found.group(2)) if found and found.group(2) else len(data) - 1
        if start >= len(data) > 0:
            self.send_error(416)
            return None
        self.send_response(206 if found else 200)
        if found:
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        return io.BytesIO(data[start:end + 1])


@pytest.fixture()
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(base URL, the folder it serves) of an http server on 127.0.0.1."""
    folder = tmp_path / "www"
    folder.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_FileServer, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", folder
    server.shutdown()
    server.server_close()


def test_a_video_file_over_http_plays_once_like_a_file(served: tuple[str, Path], tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    url, folder = served
    _video(folder / "clip.mp4", frames=20)
    code = app_main(["--input", f"{url}/clip.mp4", "--no_display", "--output_dir", str(tmp_path / "out"),
                     "--resize", "96", "64", "--max_matches", "50", "--max_length", "100"])  # replayed: 100
    err = capsys.readouterr().err
    assert code == 0 and "reconnecting" not in err and "Traceback" not in err
    assert len(list((tmp_path / "out").glob("frame_*.png"))) == 20


@pytest.mark.parametrize(("name", "content", "said"), [
    ("notes.txt", b"line\n" * 5000, "served text/plain, not a video or stream"),
    ("page.html", b"<html><body>a login page</body></html>", "served text/html, not a video or stream"),
    ("missing.mp4", None, "answered 404 Not Found"),
])
def test_a_url_that_serves_no_video_says_what_it_served(served: tuple[str, Path], name: str, content: bytes | None,
                                                        said: str, capsys: pytest.CaptureFixture[str]) -> None:
    url, folder = served
    if content is not None:
        (folder / name).write_bytes(content)
    assert app_main(["--input", f"{url}/{name}", "--no_display"]) == 2
    assert said in _one_line_error(capsys)


def test_a_text_file_is_not_played_as_a_video(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"lorem ipsum dolor sit amet\n" * 3000)  # FFmpeg opens it, as a "video" of the text
    assert app_main(["--input", str(path), "--no_display"]) == 2
    assert "notes.txt is not a video file FFmpeg can read" in _one_line_error(capsys)


class _SilentCapture:
    """A stream that opens and then never delivers a frame."""

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        return True

    def read(self) -> tuple[bool, None]:
        return False, None

    def get(self, prop: int) -> float:
        return 0.0

    def release(self) -> None:
        pass


def test_a_stream_that_never_delivers_a_frame_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    import app.cli
    from app.sources import CaptureSource

    def silent(spec: str, *args: object, **kwargs: object) -> CaptureSource:
        return CaptureSource(spec, spec, None, lambda message: None, reconnect_delays_s=(),
                             opener=lambda target: _SilentCapture())

    monkeypatch.setattr(app.cli, "open_source", silent)
    assert app_main(["--input", "rtsp://camera/stream", "--no_display", "--output_dir", str(tmp_path)]) == 2
    assert "rtsp://camera/stream delivered no frames to match" in _one_line_error(capsys)


@pytest.fixture()
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MB file system of its own (tmpfs), to fill up for real; skipped where mounting is not allowed."""
    import shutil
    import subprocess

    folder = tmp_path / "small"
    folder.mkdir()
    mounted = shutil.which("mount") and subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(folder)],
                                                       capture_output=True).returncode == 0
    if not mounted:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)  # fails while a file on it is still open


def test_a_disk_that_fills_up_mid_run_stops_cleanly_and_keeps_what_was_written(
        small_disk: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = app_main(["--input", "assets/sample.mp4", "--no_display", "--output_dir", str(small_disk), "--resize",
                     "160", "120", "--max_matches", "50", "--save_video", "--save_matches", "--max_length", "300"])
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert code == 2 and "Traceback" not in err and "libpng" not in err
    assert last.startswith(f"error: cannot write {small_disk}") and "disk full" in last
    assert not list(small_disk.rglob(".*.tmp"))  # no half-written file left behind
    pngs = sorted(small_disk.glob("frame_*.png"))
    assert pngs and all(cv2.imread(str(path)) is not None for path in pngs)
    npzs = sorted((small_disk / "matches").glob("*.npz"))
    assert len(npzs) >= len(pngs) and all(len(np.load(path)["confidence"]) >= 0 for path in npzs)
    rows = (small_disk / "frames.csv").read_text().splitlines()[1:]
    assert len(rows) == len(pngs) and all(row.count(",") == rows[0].count(",") for row in rows)
    video = cv2.VideoCapture(str(small_disk / "loftr_matches.mp4"))
    frames = 0
    while video.read()[0]:
        frames += 1
    video.release()
    assert f"the outputs hold the first {len(rows)} frames" in last and frames >= 1


def test_threads_are_checked_and_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert app_main(["--input", "assets/sample.mp4", "--no_display", "--threads", "0"]) == 2
    assert "--threads must be at least 1" in _one_line_error(capsys)
    asked: list[int] = []
    monkeypatch.setattr(torch, "set_num_threads", asked.append)  # the test process keeps its own threads
    assert app_main(["--input", "assets/sample.mp4", "--no_display", "--threads", "1", "--max_length", "1",
                     "--output_dir", str(tmp_path), *["--resize", "160", "120"]]) == 0
    assert asked[0] == 1


def _ctrl_c_as_on_a_terminal() -> None:
    """SIGINT as a shell's foreground job has it: a test run started in the background (nohup ... &) ignores it,
    and its children would inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("after_s", [0.3, 0.8, 1.0, 1.3, 2.5, 4.0])
@pytest.mark.parametrize("command", [["-m", "app", "--input", "assets/sample.mp4", "--no_display"],
                                     ["-m", "model", "bench", "--random", "--preset", "compact_s", "--resize", "160",
                                      "120", "--runs", "500"]])
def test_ctrl_c_during_start_up_is_one_line(command: list[str], after_s: float, tmp_path: Path) -> None:
    """Ctrl-C while torch and OpenCV are imported, the model loads or the first frames match: "interrupted" and 130,
    no traceback."""
    process = subprocess.Popen([sys.executable, *command, *(["--output_dir", str(tmp_path)] if "app" in command
                                                            else [])],
                               cwd=ROOT, env=dict(os.environ, PYTHONUNBUFFERED="1"), text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_ctrl_c_as_on_a_terminal)
    time.sleep(after_s)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert "Traceback" not in err and process.returncode == 130, err
    assert "interrupted" in err


def test_ctrl_c_after_a_run_is_done_exits_with_its_code_at_once() -> None:
    """A Ctrl-C that arrives once everything is written (while the interpreter shuts down) ends the process at once
    with the run's exit code: no KeyboardInterrupt in the middle of the shutdown, no death by the signal."""
    code = ("import os, signal, sys, threading, time\n"
            "from model.interrupt import exit_at_once_on_ctrl_c\n"
            "threading.Thread(target=time.sleep, args=(30,)).start()  # a writer thread the shutdown would wait for\n"
            "print('done', flush=True)\n"
            "sys.exit(exit_at_once_on_ctrl_c(3))\n")
    process = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, text=True, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, preexec_fn=_ctrl_c_as_on_a_terminal)
    assert process.stdout is not None and process.stdout.readline().strip() == "done"
    time.sleep(0.3)  # in the shutdown's wait for the thread
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=10)
    assert process.returncode == 3 and "Traceback" not in err and "KeyboardInterrupt" not in err, err


def test_a_ctrl_c_caught_in_code_run_from_text_still_exits_with_130(tmp_path: Path) -> None:
    """A Ctrl-C that lands in code run from source text (as when a dataclass is made while torch imports a module)
    and is caught: ``python -m`` would still kill itself with SIGINT at the end of its shutdown; finish_command
    exits with 130."""
    (tmp_path / "caught_ctrl_c.py").write_text(
        "import os, signal\n"
        "from model.interrupt import finish_command\n"
        "try:\n"
        "    exec('os.kill(os.getpid(), signal.SIGINT)\\nwhile True: pass')\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', flush=True)\n"
        "finish_command(130)\n")
    done = subprocess.run([sys.executable, "-m", "caught_ctrl_c"], cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=os.pathsep.join((str(ROOT), str(tmp_path)))),
                          preexec_fn=_ctrl_c_as_on_a_terminal, timeout=60)
    assert done.returncode == 130 and done.stdout.strip() == "interrupted", done.stderr


def test_a_killed_run_leaves_no_half_written_output(tmp_path: Path) -> None:
    """SIGKILL mid-run (no handler runs): every PNG decodes, every npz loads, frames.csv has whole rows and the
    mp4 plays up to its last finished fragment."""
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-m", "app", "--input", "assets/sample.mp4", "--no_display",
                                "--output_dir", str(out), "--save_video", "--save_matches",
                                "--resize", "160", "120", "--max_matches", "50"],
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    video = out / "loftr_matches.mp4"
    while time.time() < deadline and not (video.exists() and video.stat().st_size > 20000):
        time.sleep(0.1)
    process.kill()
    process.wait(30)
    assert all(cv2.imread(str(path)) is not None for path in out.glob("frame_*.png"))
    assert all(len(np.load(path)["keypoints0"]) >= 0 for path in (out / "matches").glob("*.npz"))
    rows = (out / "frames.csv").read_text().splitlines()
    assert len({row.count(",") for row in rows}) == 1
    capture = cv2.VideoCapture(str(video))
    frames = 0
    while capture.read()[0]:
        frames += 1
    capture.release()
    assert frames >= 1
