"""A pass of hostile and unusual inputs against ``python -m app`` and ``python -m model``: each case's exit code
and last line, and whether anything went wrong the way it must not (a traceback, a crash by a signal, a file left
half written). It makes its own fixtures in a temporary folder (and a local http server); nothing else is needed.

    .venv/bin/python tools/hostile_pass.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = str(ROOT / "assets" / "sample.mp4")
FAST = ["--resize", "160", "120", "--max_matches", "50"]


def _video(path: Path, frames: int, damage: tuple[float, float] | None = None) -> Path:
    import imageio_ffmpeg

    writer = imageio_ffmpeg.write_frames(str(path), (96, 64), fps=30, codec="libx264", macro_block_size=8,
                                         output_params=["-g", "6"])
    writer.send(None)
    texture = cv2.GaussianBlur(np.random.default_rng(0).integers(0, 255, (200, 300, 3), dtype=np.uint8), (0, 0), 2)
    for index in range(frames):
        writer.send(np.ascontiguousarray(texture[index:index + 64, index:index + 96]))
    writer.close()
    if damage is not None:
        data = bytearray(path.read_bytes())
        start, stop = (int(share * len(data)) for share in damage)
        data[start:stop] = bytes(stop - start)
        path.write_bytes(bytes(data))
    return path


def fixtures(folder: Path) -> dict[str, str]:
    """The hostile files, by name."""
    image = cv2.GaussianBlur(np.random.default_rng(1).integers(0, 255, (96, 128, 3), dtype=np.uint8), (0, 0), 2)
    made = {}
    for name, content in (("zero.png", b""), ("text.png", b"not an image"), ("notes.txt", b"lorem ipsum\n" * 3000),
                          ("zero.mp4", b""), ("garbage.mp4", os.urandom(50000))):
        (folder / name).write_bytes(content)
        made[name] = str(folder / name)
    cv2.imwrite(str(folder / "ok.png"), image)
    made["ok.png"] = str(folder / "ok.png")
    truncated = cv2.imencode(".png", image)[1].tobytes()
    (folder / "truncated.png").write_bytes(truncated[: len(truncated) // 2])
    made["truncated.png"] = str(folder / "truncated.png")
    odd = folder.as_posix().encode() + b"/caf\xe9"  # a Latin-1 name: not valid UTF-8
    os.makedirs(odd, exist_ok=True)
    for index in range(3):
        with open(odd + b"/%d.png" % index, "wb") as file:
            file.write(cv2.imencode(".png", np.roll(image, 3 * index, 1))[1].tobytes())
    made["latin1 folder"] = os.fsdecode(odd)
    tiny = folder / "tiny"
    tiny.mkdir()
    cv2.imwrite(str(tiny / "a.png"), image)
    cv2.imwrite(str(tiny / "b.png"), np.zeros((5000, 1, 3), np.uint8))
    cv2.imwrite(str(tiny / "c.png"), image)
    made["tiny folder"] = str(tiny)
    huge = folder / "huge"
    huge.mkdir()
    for name in ("a.jpg", "b.jpg"):
        cv2.imwrite(str(huge / name), cv2.resize(image, (8000, 6000)))
    made["huge folder"] = str(huge)
    mixed = folder / "mixed"
    mixed.mkdir()
    for index in range(3):
        cv2.imwrite(str(mixed / f"{index}.png"), image)
    (mixed / "1.png").write_bytes(b"broken")
    made["mixed folder"] = str(mixed)
    (folder / "empty").mkdir()
    made["empty folder"] = str(folder / "empty")
    made["damaged.mp4"] = str(_video(folder / "damaged.mp4", 60, damage=(0.45, 0.55)))
    made["clip.mp4"] = str(_video(folder / "clip.mp4", 20))
    made["clip.ts"] = str(_stream(folder / "clip.ts", SAMPLE))
    (folder / "not_a_checkpoint.pt").write_bytes(os.urandom(1000))
    made["not_a_checkpoint.pt"] = str(folder / "not_a_checkpoint.pt")
    return made


def _stream(path: Path, video: str) -> Path:
    """``video`` as an MPEG transport stream: what a network camera sends, readable from any point on."""
    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-y", "-i", video, "-c:v", "libx264",
                    "-f", "mpegts", str(path)], check=True)
    return path


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the folder; under /stall/ it sends the first half of a file, then holds the connection open sending
    nothing (a camera whose network dropped)."""

    def log_message(self, *args: object) -> None:
        pass

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's name
        if not self.path.startswith("/stall/"):
            super().do_HEAD()
            return
        self._stalling_headers()

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if not self.path.startswith("/stall/"):
            super().do_GET()
            return
        data = self._stalling_headers()
        self.wfile.write(data[: len(data) // 2])
        self.wfile.flush()
        time.sleep(120)

    def _stalling_headers(self) -> bytes:
        data = Path(self.translate_path(self.path.replace("/stall/", "/", 1))).read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "video/mp2t")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        return data


def serve(folder: Path) -> str:
    """A local http server over ``folder`` (no byte ranges: a plain one); its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


def cases(made: dict[str, str], url: str, out: Path) -> list[tuple[str, list[str], float | None]]:
    """(case, command line after the interpreter, seconds until Ctrl-C or None)."""
    app, model = ["-m", "app", "--no_display"], ["-m", "model"]
    o = lambda name: ["--output_dir", str(out / name)]  # noqa: E731 - one output folder per case
    return [
        ("a missing video", [*app, "--input", "missing.mp4"], None),
        ("an empty --input", [*app, "--input", ""], None),
        ("a zero-byte video", [*app, "--input", made["zero.mp4"]], None),
        ("random bytes named .mp4", [*app, "--input", made["garbage.mp4"]], None),
        ("a text file as --input", [*app, "--input", made["notes.txt"]], None),
        ("an empty folder", [*app, "--input", made["empty folder"]], None),
        ("a folder with a broken image", [*app, "--input", made["mixed folder"], *FAST, *o("mixed")], None),
        ("a folder with a 1x5000 image", [*app, "--input", made["tiny folder"], *FAST, *o("tiny")], None),
        ("8000x6000 photos at their size", [*app, "--input", made["huge folder"], "--resize", "-1", *o("huge")], None),
        ("match: 8000x6000 photos at their size", [*model, "match", str(Path(made["huge folder"]) / "a.jpg"),
                                                   str(Path(made["huge folder"]) / "b.jpg"), "--resize", "-1"], None),
        ("a folder named in Latin-1", [*app, "--input", made["latin1 folder"], *FAST, *o("latin1")], None),
        ("a video damaged in the middle", [*app, "--input", made["damaged.mp4"], *FAST, *o("damaged")], None),
        ("a video over http", [*app, "--input", f"{url}/clip.mp4", *FAST, *o("http"), "--max_length", "100"], None),
        ("a text file over http", [*app, "--input", f"{url}/notes.txt"], None),
        ("a 404 over http", [*app, "--input", f"{url}/missing.mp4"], None),
        ("a stream that stalls mid-way, Ctrl-C", [*app, "--input", f"{url}/stall/clip.ts", *FAST, *o("stall")], 25.0),
        ("an unreachable stream", [*app, "--input", "rtsp://127.0.0.1:9/none"], None),
        ("a zero-byte anchor", [*app, "--input", SAMPLE, "--anchor", made["zero.png"]], None),
        ("a truncated anchor", [*app, "--input", SAMPLE, "--anchor", made["truncated.png"]], None),
        ("--resize 100000 100000", [*app, "--input", SAMPLE, "--resize", "100000", "100000"], None),
        ("--resize 0 0", [*app, "--input", SAMPLE, "--resize", "0", "0"], None),
        ("--device tpu", [*app, "--input", SAMPLE, "--device", "tpu"], None),
        ("--device cuda:7 with --resize", [*app, "--input", SAMPLE, "--device", "cuda:7", *FAST], None),
        ("--max_length -5", [*app, "--input", SAMPLE, "--max_length", "-5"], None),
        ("--region outside the image", [*app, "--input", SAMPLE, "--region", "2", "2", "3", "3"], None),
        ("--fov 400", [*app, "--input", SAMPLE, "--geometry", "essential", "--fov", "400"], None),
        ("--start past the end", [*app, "--input", SAMPLE, "--start", "100000", *FAST, *o("start")], None),
        ("a checkpoint of random bytes", [*app, "--input", SAMPLE, "--weight", made["not_a_checkpoint.pt"]], None),
        ("an output folder that is a file", [*app, "--input", SAMPLE, "--output_dir", made["ok.png"]], None),
        ("Ctrl-C while starting", [*app, "--input", SAMPLE, *o("ctrl_c_start")], 0.5),
        ("Ctrl-C mid-run", [*app, "--input", SAMPLE, *FAST, "--save_video", *o("ctrl_c_run")], 7.0),
        ("match: a zero-byte image", [*model, "match", made["zero.png"], made["ok.png"]], None),
        ("match: --viz out.xyz", [*model, "match", made["ok.png"], made["ok.png"], "--viz", str(out / "o.xyz")],
         None),
        ("match: Ctrl-C while starting", [*model, "match", made["ok.png"], made["ok.png"]], 0.5),
        ("bench: a checkpoint of random bytes", [*model, "bench", "--weights", made["not_a_checkpoint.pt"]], None),
    ]


def half_written(folder: Path) -> list[str]:
    """Files an interrupted write would leave: temporaries, empty files, PNGs that do not decode."""
    bad = []
    for path in folder.rglob("*") if folder.exists() else []:
        if path.is_file() and (path.name.endswith(".tmp") or path.stat().st_size == 0 or
                               (path.suffix == ".png" and cv2.imdecode(np.fromfile(path, np.uint8), 1) is None)):
            bad.append(path.name)
    return bad


def run_case(command: list[str], interrupt_after: float | None) -> tuple[int, str, str]:
    process = subprocess.Popen([sys.executable, *command], cwd=ROOT, text=True, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=dict(os.environ, PYTHONUNBUFFERED="1", DISPLAY=""))
    if interrupt_after is not None:
        time.sleep(interrupt_after)
        process.send_signal(signal.SIGINT)
    try:
        _, err = process.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
        return -9, "timed out after 300 s", err
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.strip()]
    # The outcome: an error, or the run's summary line (the ffmpeg command printed after it says less).
    said = [line for line in lines if line.startswith(("error:", "done:", "interrupted"))]
    return process.returncode, (said or lines or [""])[-1], err


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", help="make the fixtures and outputs here, and keep them")
    args = parser.parse_args()
    folder = Path(args.keep or tempfile.mkdtemp(prefix="hostile_"))
    folder.mkdir(parents=True, exist_ok=True)
    made = fixtures(folder)
    url = serve(folder)
    failures = 0
    print("| case | exit | last line | problem |\n| --- | --- | --- | --- |")
    for name, command, interrupt_after in cases(made, url, folder / "out"):
        code, last, err = run_case(command, interrupt_after)
        problems = [text for text, bad in (("traceback", "Traceback" in err), ("killed by a signal", code < 0),
                                           ("exit 0 on a bad input", code == 0 and "error" in last))
                    if bad]
        problems += [f"half written: {', '.join(found)}" for found in [half_written(folder / "out")] if found]
        failures += bool(problems)
        print(f"| {name} | {code} | {last[:110].replace('|', '/')} | {'; '.join(problems) or 'ok'} |", flush=True)
    print(f"\n{failures} of {len(cases(made, url, folder / 'out'))} cases went wrong")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
