"""The drawn view (app/render.py) and the PNG writer (app/video.py)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from app import render
from app.render import (
    GAP,
    OUTLINE_COLOR,
    REGION_COLOR,
    Drawing,
    Overlay,
    ViewSettings,
    display_scale,
    geometry_lines,
    render_view,
    view_scales,
)
from app.video import PacedVideoWriter, PngWriter, VideoWriter
from model.geometry import STILL, RelativePose, TwoViewGeometry
from model.visualize import OUTLIER_COLOR, confidence_colors, position_colors

HEIGHT, WIDTH = 240, 320


def _is_outlier_grey(pixel: np.ndarray) -> bool:
    """Grey near OUTLIER_COLOR (anti-aliasing dims a 1-px line a little)."""
    return int(pixel.max()) - int(pixel.min()) <= 2 and abs(int(pixel[0]) - OUTLIER_COLOR[0]) <= 20


def _view(geometry: TwoViewGeometry | None, scale: int = 1, region: tuple[float, ...] | None = None) -> np.ndarray:
    anchor = np.zeros((HEIGHT, WIDTH), np.uint8)
    frame = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    # Two horizontal lines, clear of the text panels: the first from (80, 130), the second from (240, 170).
    keypoints = np.array([[80.5, 130.5], [240.5, 170.5]], np.float32)
    confidence = np.array([0.9, 0.5], np.float32)
    return render_view(Drawing(anchor, frame, keypoints, keypoints, confidence, scale, None, geometry, region),
                       Overlay())


def test_small_frames_are_drawn_larger() -> None:
    assert [display_scale((h, 4 * h // 3)) for h in (120, 240, 360, 480, 1080)] == [4, 2, 1, 1, 1]
    assert display_scale((64, 960)) == 2  # a panorama strip: 1920 pixels wide, not 8x as tall
    assert _view(None, scale=2).shape == (2 * HEIGHT, 2 * (2 * WIDTH) + GAP, 3)


def test_outliers_are_grey_and_the_homography_outlines_the_anchor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("app.render.MIN_OUTLINE_INLIERS", 1)  # two drawn matches stand for a well-supported fit
    inliers = np.array([True, False])
    geometry = TwoViewGeometry("homography", np.diag([0.5, 0.5, 1.0]), inliers, 3.0)
    plain, verified = _view(None), _view(geometry)
    # The inlier keeps its confidence colour; the outlier turns grey (checked at its midpoint).
    inlier_x, outlier_x = (2 * 80 + WIDTH + GAP) // 2, (2 * 240 + WIDTH + GAP) // 2
    np.testing.assert_array_equal(verified[130, inlier_x], plain[130, inlier_x])
    assert not _is_outlier_grey(plain[130, inlier_x])
    assert _is_outlier_grey(verified[170, outlier_x])
    assert not _is_outlier_grey(plain[170, outlier_x])
    # The anchor's border shrunk by half: its right edge runs down x = WIDTH / 2 of the live frame, to y = 120.
    edge_x = WIDTH + GAP + WIDTH // 2
    distance = np.abs(verified[106:118, edge_x - 1:edge_x + 2].astype(int) - OUTLINE_COLOR).sum(-1)
    assert (distance.min(axis=1) < 60).all()
    assert not np.any(plain[106:118, edge_x - 1:edge_x + 2, 1] > 100)


def test_a_region_is_boxed_on_the_anchor_and_outlined_in_the_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("app.render.MIN_OUTLINE_INLIERS", 1)
    geometry = TwoViewGeometry("homography", np.diag([0.5, 0.5, 1.0]), np.array([True, True]), 3.0)
    view = _view(geometry, region=(200.0, 120.0, 300.0, 220.0))
    assert np.abs(view[150:190, 199:202].astype(int) - REGION_COLOR).sum(-1).min() < 60  # the box's left edge
    # Its outline in the frame: the right edge at x = 300 / 2, from y = 60 to 110; the whole anchor's would be
    # at x = 160, which stays dark.
    edge_x = WIDTH + GAP + 150
    assert (np.abs(view[70:100, edge_x - 1:edge_x + 2].astype(int) - OUTLINE_COLOR).sum(-1).min(axis=1) < 60).all()
    assert not np.any(view[70:100, WIDTH + GAP + 159:WIDTH + GAP + 162, 1] > 100)


@pytest.mark.parametrize("scale", [1, 2])
def test_the_anchor_is_laid_over_the_frame_in_false_colour_through_the_homography(scale: int) -> None:
    rng = np.random.default_rng(0)
    anchor = cv2.GaussianBlur(rng.integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8), (5, 5), 0)
    shift = np.array([[1.0, 0.0, 30.0], [0.0, 1.0, 20.0], [0.0, 0.0, 1.0]])
    frame = cv2.warpPerspective(anchor, shift, (WIDTH, HEIGHT))  # the anchor moved by (30, 20)
    box = (100.0, 60.0, 200.0, 160.0)
    no_matches = np.zeros((0, 2), np.float32)

    def live_panel(homography: np.ndarray, blend: bool) -> np.ndarray:
        geometry = TwoViewGeometry("homography", homography, np.ones(40, bool), 3.0)
        view = render_view(Drawing(anchor, frame, no_matches, no_matches, np.zeros(0, np.float32), scale, None,
                                   geometry, box), Overlay(), ViewSettings(blend_anchor=blend))
        return view[:, scale * WIDTH + GAP:].astype(int)

    plain, right, wrong = live_panel(shift, False), live_panel(shift, True), live_panel(np.eye(3), True)
    # Where the box lands in the frame, (130, 80) to (230, 180), the anchor (magenta: blue and red) is laid
    # over the frame (green). The right homography lays it onto itself: grey, the frame's brightness. The
    # wrong one (identity: the box lands at (100, 60) to (200, 160)) lays it 30 px off. Compared where both land:
    inside = (slice(scale * 90, scale * 150), slice(scale * 140, scale * 190))
    gray = cv2.cvtColor(plain[inside].astype(np.uint8), cv2.COLOR_BGR2GRAY).astype(int)
    assert np.abs(right[inside][..., 1] - gray).max() <= 1  # OpenCV versions round the blend differently
    np.testing.assert_array_equal(right[inside][..., 0], right[inside][..., 2])
    assert np.abs(right[inside][..., 2] - right[inside][..., 1]).mean() < 2.0
    assert np.abs(wrong[inside][..., 2] - wrong[inside][..., 1]).mean() > 10.0
    # Outside it nothing changes, whichever the homography.
    outside = (slice(scale * 190, scale * 230), slice(scale * 20, scale * 100))
    np.testing.assert_array_equal(right[outside], plain[outside])
    np.testing.assert_array_equal(wrong[outside], plain[outside])


def test_an_anchor_photo_of_another_size_is_drawn_as_tall_as_the_frame() -> None:
    rng = np.random.default_rng(0)
    frame = cv2.GaussianBlur(rng.integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8), (5, 5), 0)
    anchor = cv2.resize(frame, (2 * WIDTH, 2 * HEIGHT), interpolation=cv2.INTER_LINEAR)  # the scene at twice the size
    assert view_scales(frame.shape, frame.shape) == (2.0, 2)  # a frame of the stream: the frame's factor
    assert view_scales(anchor.shape, frame.shape) == (1.0, 2)  # the frame drawn at 2x (480 rows), the anchor at 1x
    assert view_scales((120, 1920), frame.shape) == (2 * 2 * WIDTH / 1920, 2)  # a panorama: twice the frame's width
    geometry = TwoViewGeometry("homography", np.diag([0.5, 0.5, 1.0]), np.ones(40, bool), 3.0)  # anchor -> frame
    box = (200.0, 100.0, 440.0, 380.0)  # anchor pixels
    # One match, (300.5, 200.5) in the anchor and (150.25, 100.25) in the frame: both drawn on canvas row 200.
    keypoints0, keypoints1 = np.array([[300.5, 200.5]], np.float32), np.array([[150.25, 100.25]], np.float32)
    confidence = np.ones(1, np.float32)
    blank = render_view(Drawing(np.zeros_like(anchor), np.zeros_like(frame), keypoints0, keypoints1, confidence, 2,
                                1.0), Overlay())
    assert blank.shape == (2 * HEIGHT, 2 * WIDTH + GAP + 2 * WIDTH, 3)
    assert blank[200, 400].max() > 100 and blank[200, 2 * WIDTH + GAP + 200].max() > 100
    assert blank[215, 400].max() == 0  # the line is level: rows apart from it stay black
    view = render_view(Drawing(anchor, frame, keypoints0[:0], keypoints1[:0], confidence[:0], 2, 1.0, geometry, box),
                       Overlay(), ViewSettings(blend_anchor=True))
    assert np.abs(view[150:300, 199:202].astype(int) - REGION_COLOR).sum(-1).min() < 60  # the box on the anchor
    # In the frame the box lands at (100, 50)-(220, 190), drawn at 2x; the anchor laid over it is grey there.
    inside = view[120:360, 2 * WIDTH + GAP + 220:2 * WIDTH + GAP + 420].astype(int)
    assert np.abs(inside[..., 2] - inside[..., 1]).mean() < 3.0 and np.abs(inside[..., 0] - inside[..., 2]).max() == 0


@pytest.mark.parametrize("anchor_width", [WIDTH, 100])
def test_the_status_line_never_overlaps_the_overlay_text(anchor_width: int) -> None:
    status_color = np.array((80, 220, 255))
    anchor, frame = np.full((HEIGHT, anchor_width, 3), 200, np.uint8), np.full((HEIGHT, WIDTH, 3), 200, np.uint8)
    no_matches = np.zeros((0, 2), np.float32)
    view = render_view(Drawing(anchor, frame, no_matches, no_matches, np.zeros(0, np.float32)),
                       Overlay(status="paused")).astype(int)
    # The text panel darkens the grey images (its first row holds no text): measured, not assumed, as its size
    # follows the font's metrics, which differ between OpenCV versions.
    darkened = view.max(axis=2) < 120
    panel_bottom, panel_right = int(np.argmin(darkened[:, 1])), int(np.argmin(darkened[1, :]))
    ys, xs = np.nonzero(np.abs(view - status_color).sum(-1) < 30)
    assert len(ys) and xs.min() >= anchor_width + GAP  # on the live frame
    assert not ((ys < panel_bottom) & (xs < panel_right)).any()
    if panel_right < anchor_width + GAP:  # room beside the text: the status sits at the top of the live frame
        assert ys.min() < panel_bottom
    else:  # the text runs over the live frame: the status goes below it
        assert ys.min() > panel_bottom


@pytest.mark.parametrize("view", ["lines", "points"])
def test_text_and_legend_grow_with_the_text_scale(view: str) -> None:
    white = np.full((2 * HEIGHT, 2 * WIDTH, 3), 255, np.uint8)
    no_matches = np.zeros((0, 2), np.float32)

    def drawn(text_scale: float) -> tuple[int, int, int]:
        """The height of the text panel (top left), and the height and width of the legend's (bottom right)."""
        canvas = render_view(Drawing(white, white, no_matches, no_matches, np.zeros(0, np.float32)), Overlay(),
                             ViewSettings(view=view, text_scale=text_scale))
        darkened = canvas.max(axis=2) < 200  # the panels darken what is beneath them; text is black or white
        text_panel = int(np.argmin(darkened[:, 1]))  # the first row below it
        legend_top = np.nonzero(~darkened[:, -2])[0].max() + 1
        legend_left = np.nonzero(~darkened[-2, :])[0].max() + 1
        return text_panel, canvas.shape[0] - legend_top, canvas.shape[1] - legend_left

    normal, twice = drawn(1.0), drawn(2.0)
    assert normal == (14 + 18 * 4, 46, 196)  # four lines of text without matches, threshold or geometry
    assert twice == tuple(2 * size for size in normal)


def test_position_colours_are_distinct_at_the_corners() -> None:
    corners = np.array([[0, 0], [320, 0], [0, 240], [320, 240]], np.float32)
    colors = position_colors(corners, 320, 240).tolist()
    assert colors == [[255, 0, 0], [0, 0, 255], [255, 255, 0], [0, 255, 255]]  # BGR: blue, red, cyan, yellow


def test_the_points_view_draws_both_ends_in_the_anchor_positions_colour() -> None:
    anchor = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    keypoints0 = np.array([[40.5, 130.5], [280.5, 200.5]], np.float32)
    keypoints1 = np.array([[60.5, 140.5], [250.5, 190.5]], np.float32)
    confidence = np.array([0.9, 0.5], np.float32)
    inliers = np.array([True, False])
    geometry = TwoViewGeometry("homography", None, inliers, 3.0)
    view = render_view(Drawing(anchor, anchor, keypoints0, keypoints1, confidence, 1, None, geometry), Overlay(),
                       ViewSettings(view="points"))
    expected = position_colors(keypoints0[:1], WIDTH, HEIGHT)[0]
    offset = WIDTH + GAP
    for x, y in ((40, 130), (offset + 60, 140)):  # the inlier's two dots, in its anchor position's colour
        np.testing.assert_array_equal(view[y, x], expected)
    for x, y in ((280, 200), (offset + 250, 190)):  # the outlier's, small and grey
        assert _is_outlier_grey(view[y, x]) and view[y, x].max() > 50
    midpoint = ((40 + offset + 60) // 2, 135)
    assert view[midpoint[1], midpoint[0]].max() == 0  # no line between them
    with pytest.raises(ValueError, match="unknown view"):
        render_view(Drawing(anchor, anchor, keypoints0, keypoints1, confidence), Overlay(), ViewSettings(view="arrows"))


def test_no_outline_from_too_few_inliers() -> None:
    few = TwoViewGeometry("homography", np.diag([0.5, 0.5, 1.0]), np.array([True, False]), 3.0)
    view = _view(few)  # one inlier: the matrix is drawn from nothing
    edge_x = WIDTH + GAP + WIDTH // 2
    assert not np.any(view[106:118, edge_x - 1:edge_x + 2, 1] > 100)


def test_failed_fit_draws_every_match_grey_without_outline() -> None:
    failed = TwoViewGeometry("fundamental", None, np.zeros(2, bool), 1.0)
    view = _view(failed)
    assert _is_outlier_grey(view[130, (2 * 80 + WIDTH + GAP) // 2])


def test_the_overlay_says_the_fit_and_for_an_essential_matrix_how_the_camera_moved() -> None:
    quarter_turn = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])  # 90 degrees about the y axis
    moved_left = RelativePose(quarter_turn, quarter_turn @ np.array([1.0, 0.0, 0.0]))  # centre at x = -1
    essential = TwoViewGeometry("essential", np.eye(3), np.arange(30) < 20, 2.0, moved_left)
    assert geometry_lines(essential) == [
        "essential (MAGSAC++, 2.0 px): 20/30 inliers (67%)",
        "camera since the anchor: turned 90.0 deg, moved left 1.00 down 0.00 forward 0.00 (a direction)"]
    unknown = TwoViewGeometry("essential", None, np.zeros(3, bool), 2.0, failure="needs the camera's intrinsics")
    assert geometry_lines(unknown) == ["essential: needs the camera's intrinsics"]
    still = TwoViewGeometry("essential", None, np.array([True, True, False]), 2.0, STILL)
    assert geometry_lines(still) == ["essential (MAGSAC++, 2.0 px): 2/3 matches did not move",
                                     "camera since the anchor: not moved measurably"]
    few = TwoViewGeometry("essential", np.eye(3), np.ones(19, bool), 2.0, moved_left)
    assert geometry_lines(few)[1] == "camera since the anchor: too few inliers to tell (fewer than 20)"


def test_png_writer_writes_everything_queued(tmp_path: Path) -> None:
    images = [np.full((24, 32, 3), value, np.uint8) for value in (0, 100, 200)]
    with PngWriter(tmp_path, "frame_%03d.png") as writer:
        for index, image in enumerate(images):
            writer.write(image, index)
    assert writer.written == 3
    for index, image in enumerate(images):
        np.testing.assert_array_equal(cv2.imread(str(tmp_path / f"frame_{index:03d}.png")), image)


def test_png_writer_reports_a_failed_write(tmp_path: Path) -> None:
    writer = PngWriter(tmp_path / "missing_folder", "frame_%03d.png")
    writer.write(np.zeros((8, 8, 3), np.uint8), 0)
    with pytest.raises(OSError, match="cannot write .*frame_000.png"):
        writer.close()
    writer.close()  # the error is reported once; closing again is harmless


def test_png_speed_compares_the_apps_settings_on_a_folder_of_views(tmp_path: Path) -> None:
    import subprocess
    import sys

    tool = Path(__file__).resolve().parent.parent / "tools" / "png_speed.py"
    rng = np.random.default_rng(0)
    for index in range(2):
        cv2.imwrite(str(tmp_path / f"frame_{index}.png"), rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    done = subprocess.run([sys.executable, str(tool), str(tmp_path), "--rounds", "1"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "2 images" in done.stdout and "app (level 1, Huffman, Sub)" in done.stdout
    empty = tmp_path / "empty"
    empty.mkdir()
    done = subprocess.run([sys.executable, str(tool), str(empty)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "no PNG files" in done.stderr

def test_a_paced_video_plays_in_real_time(tmp_path: Path) -> None:
    path = tmp_path / "paced.mp4"
    writer = PacedVideoWriter(path, fps=10.0)
    greys = [30, 90, 150, 210]
    # Views drawn at 0 s, 0.15 s, 0.17 s (the same slot as the one before) and 0.35 s.
    for grey, seconds in zip(greys, (100.0, 100.15, 100.17, 100.35), strict=True):
        writer.write(np.full((48, 64, 3), grey, np.uint8), now=seconds)
    writer.close()
    capture = cv2.VideoCapture(str(path))
    shown = []
    while (read := capture.read())[0]:
        shown.append(int(round(float(read[1].mean()))))
    # Slot 0: the first view; 1: the second; 2: the third, which came in slot 1 and waited; 3: the fourth.
    assert len(shown) == writer.frames_written == 4
    assert all(abs(value - expected) <= 3 for value, expected in zip(shown, greys, strict=True))


def test_a_video_fits_frames_of_another_size_into_its_first(tmp_path: Path) -> None:
    path = tmp_path / "sizes.mp4"
    with VideoWriter(path, fps=10.0) as writer:
        writer.write(np.full((81, 120, 3), 200, np.uint8))  # odd height: the video is 120x82
        big = np.zeros((160, 480, 3), np.uint8)
        big[:, :240] = 255  # left half white
        writer.write(big)  # three times as wide: scaled down to 120x40, centred
        writer.write(np.full((40, 60), 90, np.uint8))  # smaller and grey: scaled up to 120x80
    capture = cv2.VideoCapture(str(path))
    frames = [capture.read()[1] for _ in range(3)]
    assert all(frame.shape == (82, 120, 3) for frame in frames)
    assert abs(int(frames[0].mean()) - 200) <= 3
    second = frames[1].mean(axis=2)
    assert second[41, 30] > 200 and second[41, 90] < 50  # the scaled frame: white left, black right
    assert second[10, 30] < 50 and second[72, 30] < 50  # black bands above and below it
    assert abs(int(frames[2][5:77].mean()) - 90) <= 4


@pytest.mark.parametrize("text_scale", [1.0, 1.25])
def test_the_help_overlay_and_the_text_panel_keep_apart(text_scale: float) -> None:
    """With h, the help's rows (bottom left) and the text panel (top left) do not overlap on a 640x480 pair:
    the panel keeps its title only."""
    grey = np.full((480, 640, 3), 200, np.uint8)
    no_matches = np.zeros((0, 2), np.float32)
    view = render_view(Drawing(grey, grey, no_matches, no_matches, np.zeros(0, np.float32)), Overlay(),
                       ViewSettings(show_help=True, text_scale=text_scale)).astype(int)
    darkened = view.max(axis=2) < 120  # both panels darken the grey images; the first column holds no text
    rows = np.nonzero(darkened[:, 1])[0]
    gaps = np.nonzero(np.diff(rows) > 1)[0]
    assert len(gaps) == 1  # two panels, one above the other, grey between them
    assert rows[0] == 0 and rows[-1] == view.shape[0] - 1


def test_text_is_the_same_drawn_again_and_cut_cleanly_at_the_canvas_edge() -> None:
    """Texts are drawn from kept sprites: a second draw equals the first, and a text moved past the left edge shows
    exactly the part of it still inside, shifted."""
    first, second, moved = (np.full((60, 300, 3), 90, np.uint8) for _ in range(3))
    render._put_text(first, "frame #123", (40, 30), 0.6, (255, 255, 0), 1.5)
    render._put_text(second, "frame #123", (40, 30), 0.6, (255, 255, 0), 1.5)
    render._put_text(moved, "frame #123", (-20, 30), 0.6, (255, 255, 0), 1.5)
    assert (first != 90).any()
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(moved[:, :240], first[:, 60:])
    render._put_text(moved, "off the canvas", (400, 30))  # wholly outside: nothing drawn, no error
    render._put_text(moved, "above it", (10, -50))
    np.testing.assert_array_equal(moved[:, :240], first[:, 60:])


def test_confidence_colours_are_opencvs_turbo_scale() -> None:
    confidence = np.array([-0.5, 0.0, 0.3, 0.5, 1.0, 1.7], np.float32)  # outside [0, 1]: clipped to the ends
    levels = np.array([0, 0, 76, 127, 255, 255], np.uint8)
    expected = cv2.applyColorMap(levels.reshape(-1, 1), cv2.COLORMAP_TURBO).reshape(-1, 3)
    colours = confidence_colors(confidence)
    assert colours.dtype == np.uint8 and np.array_equal(colours, expected)
    assert colours[1, 0] > colours[1, 2] and colours[4, 2] > colours[4, 0]  # BGR: low is blue, high is red
    colours[:] = 0  # the caller's own array: the next call is not changed by it
    assert np.array_equal(confidence_colors(confidence), expected)
    assert confidence_colors(np.zeros(0)).shape == (0, 3)
