"""The Qt window, offscreen: frames flow through both threads, keys act, shutdown is clean."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PyQt6.QtCore import QPoint, Qt

from app.controls import METHODS
from app.gui import build_window
from app.packet_view import render_packet
from app.render import MatchWindow, ViewSettings
from app.session import KEEP_ANCHOR, AnchorRule, SessionSetup, StartAnchor
from app.settings import MatchSettings, Outputs
from app.sources import open_source
from app.window_setup import WindowHooks, WindowOptions
from app.worker import InferenceThread
from model.classical import CLASSICAL_METHODS, AnyMatcher, ClassicalMatcher
from model.config import get_preset
from model.loftr import LoFTR
from model.matcher import Matcher

ROOT = Path(__file__).resolve().parent.parent


def _count_frames(path: Path) -> int:
    capture = cv2.VideoCapture(str(path))
    frames = 0
    while capture.read()[0]:
        frames += 1
    return frames


def _matcher() -> Matcher:
    torch.manual_seed(0)
    return Matcher(LoFTR(get_preset("compact_s")), device="cpu", precision="fp32", resize=None, threshold=0.0)


@pytest.fixture(autouse=True)
def fail_fast(request, qtbot, monkeypatch):  # type: ignore[no-untyped-def]
    """A failure the inference thread reports (a bug: every frame fails) fails the test at its next wait, instead of
    each wait for a result running out its 60 s, one after the other (a suite of ~25 minutes, seen once)."""
    if request.node.get_closest_marker("inference_failures_expected"):
        return
    failures: list[str] = []
    start_thread = InferenceThread.start

    def start_recording_failures(thread: InferenceThread) -> None:
        thread.failed.connect(failures.append)
        start_thread(thread)

    wait_until = qtbot.waitUntil

    def wait_until_or_fail(condition, **kwargs):  # type: ignore[no-untyped-def]
        def check():  # type: ignore[no-untyped-def]
            if failures:
                pytest.fail(f"the inference thread reported: {failures[0]}")
            return condition()
        wait_until(check, **kwargs)

    monkeypatch.setattr(InferenceThread, "start", start_recording_failures)
    monkeypatch.setattr(qtbot, "waitUntil", wait_until_or_fail)


def _started_window(qtbot, tmp_path: Path, input_path: str = str(ROOT / "assets" / "sample.mp4"),  # type: ignore
                    seekable: bool = False, geometry: str = "none", **options):
    """A started window on the sample video (or ``input_path``) with the test model, matching at 160x120; with
    ``seekable``, the slider over its frames; ``options`` are ``WindowOptions`` and ``WindowHooks`` fields."""
    source = open_source(input_path)
    hooks = WindowHooks(options.pop("load_model", lambda domain: (_matcher(), domain)),
                        options.pop("read_anchor_file", None), source.frames if seekable else None,
                        options.pop("open_input", None))
    settings = MatchSettings(geometry=geometry, resize=(160, 120))
    setup = SessionSetup(anchor_rule=options.pop("anchor_rule", KEEP_ANCHOR),
                         intrinsics=options.pop("intrinsics", None))
    outputs = Outputs(tmp_path, source.fps, options.pop("save_video", False),
                      matches=options.pop("save_matches", False))
    window_options = WindowOptions(settings, ViewSettings(MatchWindow(0, 2000)), setup, domain="outdoor",
                                   outputs=outputs, **options)
    main_window = build_window(source, source.frames(), (_matcher(), "outdoor: test model"), window_options, hooks)
    qtbot.addWidget(main_window)
    main_window.show()
    main_window.start()
    return main_window


@pytest.fixture
def window(qtbot, tmp_path: Path):  # type: ignore[no-untyped-def]
    loads: list[str] = []

    def load(domain: str) -> tuple[AnyMatcher, str]:
        loads.append(domain)
        if domain in CLASSICAL_METHODS:
            return ClassicalMatcher(domain), f"{domain}: OpenCV"
        return _matcher(), f"{domain}: test model"

    main_window = _started_window(qtbot, tmp_path, save_video=True, load_model=load, save_matches=True)
    main_window.loads = loads  # type: ignore[attr-defined]
    yield main_window
    main_window.shutdown()


def test_frames_flow_and_stats_update(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(lambda: window.results_shown >= 3, timeout=60000)
    assert window.view.shown_rect() is not None and not window.view.grab().isNull()
    assert len(window.stats.history["fps"]) >= 3
    assert window.model_label == "outdoor: test model"
    assert window.windowTitle() == "LoFTR Live - sample.mp4 - outdoor: test model [cpu/fp32]"
    packet = window.last_packet
    assert 0 < packet.latency_ms <= packet.frame_age_ms  # the frame waited at least as long as its matching took
    first, latest = window.result_times
    assert window.matching_rate() == pytest.approx((window.results_received - 1) / (latest - first))
    assert 0 < window.matching_rate() <= 1.5 * window.capture.source.fps  # the file is paced at its frame rate


def test_n_makes_the_current_frame_the_anchor(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(lambda: window.results_shown >= 2, timeout=60000)
    assert window.last_packet.anchor_index == 0
    qtbot.keyClick(window, Qt.Key.Key_N)
    qtbot.waitUntil(lambda: window.last_packet.anchor_index > 0, timeout=60000)


def test_m_hot_swaps_the_model(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(lambda: window.results_shown >= 1, timeout=60000)
    qtbot.keyClick(window, Qt.Key.Key_M)
    qtbot.waitUntil(lambda: window.model_label == "indoor: test model", timeout=60000)
    assert window.loads == ["indoor"]
    # "loading indoor model..." is gone from the status bar; the new model's name stays for its time.
    qtbot.waitUntil(lambda: window.status_text == "", timeout=60000)
    assert window.statusBar().currentMessage() == "model: indoor: test model on cpu/fp32"
    shown = window.results_shown
    qtbot.waitUntil(lambda: window.results_shown > shown, timeout=60000)  # still matching after the swap


def test_k_switches_to_sift_and_orb_on_the_same_frames_and_back(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(lambda: window.results_shown >= 1, timeout=60000)
    qtbot.keyClick(window, Qt.Key.Key_K)
    qtbot.waitUntil(lambda: window.model_label == "sift: OpenCV", timeout=60000)
    assert window.loads == ["sift"] and window.controls.method_box.currentText() == "sift"
    assert window.controls.model_action.text() == "Model: outdoor"  # the LoFTR model k comes back to
    qtbot.waitUntil(lambda: np.isnan(window.last_packet.result.fine_std).all()
                    and len(window.last_packet.result) > 0, timeout=60000)  # SIFT's matches, drawn
    qtbot.keyClick(window, Qt.Key.Key_M)  # m from SIFT: back to LoFTR
    qtbot.waitUntil(lambda: window.model_label == "outdoor: test model", timeout=60000)
    assert window.loads[-1] == "outdoor" and window.controls.method_box.currentText() == "loftr"
    window.controls.method_box.setCurrentText("orb")  # the control bar does the same
    qtbot.waitUntil(lambda: window.model_label == "orb: OpenCV", timeout=60000)
    lightglue = ["lightglue"] if "lightglue" in METHODS else []  # offered where its package is installed
    if lightglue:
        qtbot.keyClick(window, Qt.Key.Key_K)  # orb -> DISK + LightGlue
        qtbot.waitUntil(lambda: window.model_label == "lightglue: test model", timeout=60000)
        assert window.controls.method_box.currentText() == "lightglue"
    qtbot.keyClick(window, Qt.Key.Key_K)  # -> LoFTR again
    qtbot.waitUntil(lambda: window.model_label == "outdoor: test model", timeout=60000)
    assert window.loads == ["sift", "outdoor", "orb", *lightglue, "outdoor"]


def test_b_draws_sift_then_orb_below_on_the_same_frames_then_nothing(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(lambda: window.results_shown >= 1, timeout=60000)
    single = window.redraw().shape
    qtbot.keyClick(window, Qt.Key.Key_B)
    assert window.compare == "sift" and window.controls.compare_box.currentText() == "sift"
    qtbot.waitUntil(lambda: window.last_packet.comparison is not None, timeout=60000)
    label, other = window.last_packet.comparison
    assert label == "sift: OpenCV" and other.frame is window.last_packet.frame
    assert other.anchor_index == window.last_packet.anchor_index and np.isnan(other.result.fine_std).all()
    assert window.redraw().shape == (2 * single[0] + 10, single[1], 3)  # LoFTR above, SIFT below
    assert window.loads == ["sift"] and window.model_label == "outdoor: test model"  # the main model stays
    assert window.stats.history["compare_matches"][-1] == len(other.result)  # plotted dashed beside LoFTR's
    # A box dragged over the lower view's anchor is the same box of the anchor: (80, 40)-(400, 360).
    window.on_box_selected((80.0, single[0] + 10 + 40.0, 400.0, single[0] + 10 + 360.0))
    qtbot.waitUntil(lambda: window.last_packet.region is not None, timeout=60000)
    assert window.last_packet.region == pytest.approx((80.0, 40.0, 400.0, 360.0))
    qtbot.waitUntil(lambda: window.last_packet.comparison is not None
                    and window.last_packet.comparison[1].region == window.last_packet.region, timeout=60000)
    qtbot.keyClick(window, Qt.Key.Key_B)
    qtbot.waitUntil(lambda: window.last_packet.comparison is not None
                    and window.last_packet.comparison[0] == "orb: OpenCV", timeout=60000)
    if "lightglue" in METHODS:
        qtbot.keyClick(window, Qt.Key.Key_B)
        assert window.compare == "lightglue"
    qtbot.keyClick(window, Qt.Key.Key_B)
    assert window.compare == "none"
    qtbot.waitUntil(lambda: window.last_packet.comparison is None, timeout=60000)


def test_b_also_offers_the_loftr_weights_of_compare_file(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from app.controls import COMPARISONS

    other = str(tmp_path / "official_outdoor_ds.ckpt")  # its name is all the window shows of it
    main_window = _started_window(qtbot, tmp_path, comparisons=(*COMPARISONS, other),
                                  load_model=lambda choice: (_matcher(), f"compared: {Path(choice).name}"))
    try:
        for _ in range(len(COMPARISONS)):  # from none: sift, orb, (lightglue,) the file
            qtbot.keyClick(main_window, Qt.Key.Key_B)
        assert main_window.compare == other
        assert main_window.controls.compare_box.currentText() == "official_outdoor_ds.ckpt"
        qtbot.waitUntil(lambda: main_window.last_packet is not None and main_window.last_packet.comparison is not None
                        and main_window.last_packet.comparison[0] == "compared: official_outdoor_ds.ckpt",
                        timeout=60000)
        assert not np.isnan(main_window.last_packet.comparison[1].result.fine_std).all()  # LoFTR below
        main_window.controls.compare_box.setCurrentIndex(0)  # the box, as a click would
        assert main_window.compare == "none"
    finally:
        main_window.shutdown()


def test_the_keys_show_again_after_a_message(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    from PyQt6.QtWidgets import QLabel

    keys = [label for label in window.statusBar().findChildren(QLabel) if label.text().startswith("n/space")]
    assert len(keys) == 1
    qtbot.waitUntil(lambda: window.results_shown >= 1, timeout=60000)  # the model's messages came before
    window.statusBar().showMessage("a message for a moment", 50)
    qtbot.waitUntil(lambda: keys[0].isVisible(), timeout=5000)
    assert window.statusBar().currentMessage() == ""


def test_m_says_so_when_both_models_are_one_file(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    loads: list[str] = []

    def load(domain: str) -> tuple[Matcher, str]:
        loads.append(domain)
        return _matcher(), domain

    main_window = _started_window(qtbot, tmp_path, load_model=load, model_switch=False)
    try:
        qtbot.waitUntil(lambda: main_window.results_shown >= 1, timeout=60000)
        qtbot.keyClick(main_window, Qt.Key.Key_M)
        assert "same weights" in main_window.statusBar().currentMessage()
        shown = main_window.results_shown
        qtbot.waitUntil(lambda: main_window.results_shown > shown, timeout=60000)
        assert loads == [] and main_window.domain == "outdoor"
    finally:
        main_window.shutdown()


def test_a_new_anchor_after_too_few_matches_is_said_in_the_status_bar(  # type: ignore[no-untyped-def]
        qtbot, tmp_path: Path) -> None:
    main_window = _started_window(qtbot, tmp_path, anchor_rule=AnchorRule(below=10**6))  # every frame is "lost"
    try:
        qtbot.waitUntil(lambda: main_window.last_packet is not None and main_window.last_packet.reanchored,
                        timeout=60000)
        packet = main_window.last_packet
        assert packet.anchor_index == packet.frame_index
        assert main_window.statusBar().currentMessage().startswith("too few matches: frame ")
    finally:
        main_window.shutdown()


def test_anchor_every_reanchors_in_the_window_too(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    main_window = _started_window(qtbot, tmp_path, anchor_rule=AnchorRule(every=2))
    try:
        qtbot.waitUntil(lambda: main_window.last_packet is not None and main_window.last_packet.anchor_index > 0,
                        timeout=60000)
    finally:
        main_window.shutdown()


def test_size_options_and_labels() -> None:
    from app.window_actions import size_label, size_options

    assert size_options((320, 240)) == ((320, 240), 480, 640, 960)
    assert size_options(480) == (320, 480, 640, 960) and size_options(None) == (320, 480, 640, 960, None)
    assert size_options((400, 300)) == (320, (400, 300), 480, 640, 960)
    assert [size_label(size) for size in ((320, 240), 640, None)] == ["320x240", "max 640", "original"]


def test_comma_and_period_change_the_size_frames_are_matched_at(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(lambda: window.results_shown >= 1, timeout=60000)
    assert window.last_packet.network_size == (160, 120) and window.sizes[window.size_index] == (160, 120)
    assert window.last_packet.frame.shape == (480, 640, 3)  # drawn as the video has it, whatever the size matched
    qtbot.keyClick(window, Qt.Key.Key_Period)
    assert window.sizes[window.size_index] == 320 and window.controls.size_box.currentText() == "max 320"
    qtbot.waitUntil(lambda: window.last_packet.network_size == (320, 240), timeout=60000)
    assert window.inference.session.anchor.network_size == (240, 320)  # the anchor was encoded again
    qtbot.keyClick(window, Qt.Key.Key_Comma)
    qtbot.keyClick(window, Qt.Key.Key_Comma)  # already the smallest
    assert window.size_index == 0
    qtbot.waitUntil(lambda: window.last_packet.network_size == (160, 120), timeout=60000)
    window.controls.size_box.setCurrentIndex(2)  # the control bar does the same
    assert window.sizes[window.size_index] == 480
    qtbot.waitUntil(lambda: window.last_packet.network_size == (480, 360), timeout=60000)


def test_e_cycles_geometric_verification(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(lambda: window.results_shown >= 1, timeout=60000)
    assert window.last_packet.geometry is None
    qtbot.keyClick(window, Qt.Key.Key_E)
    assert window.settings.geometry == "homography"
    qtbot.waitUntil(lambda: window.last_packet.geometry is not None, timeout=60000)
    assert window.last_packet.geometry.model == "homography"
    assert len(window.last_packet.geometry.inliers) == len(window.last_packet.result)
    assert window.stats.history["inliers"][-1] == window.last_packet.geometry.num_inliers
    qtbot.keyClick(window, Qt.Key.Key_E)
    qtbot.waitUntil(lambda: window.last_packet.geometry is not None
                    and window.last_packet.geometry.model == "fundamental", timeout=60000)
    qtbot.keyClick(window, Qt.Key.Key_E)
    qtbot.waitUntil(lambda: window.last_packet.geometry is None, timeout=60000)


def test_with_intrinsics_e_also_offers_the_essential_matrix(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from app.verify import CameraIntrinsics

    window = _started_window(qtbot, tmp_path, geometry="fundamental", intrinsics=CameraIntrinsics(fov_deg=70.0))
    try:
        boxed = [window.controls.geometry_box.itemText(index) for index in range(window.controls.geometry_box.count())]
        assert boxed == ["none", "homography", "fundamental", "essential"]
        qtbot.keyClick(window, Qt.Key.Key_E)
        assert window.settings.geometry == "essential" and window.controls.geometry_box.currentText() == "essential"
        qtbot.waitUntil(lambda: window.last_packet is not None and window.last_packet.geometry is not None
                        and window.last_packet.geometry.model == "essential", timeout=60000)
        # Another video opened in the window: the intrinsics given at start still apply, and the status bar says so.
        from app.cli import build_parser, open_input

        window.inputs.open_input = lambda path: open_input(build_parser().parse_args([]), path)
        window.inputs.use_input(str(ROOT / "assets" / "sample.mp4"))
        assert window.statusBar().currentMessage() == (
            "playing sample.mp4: its first frame is the anchor; an essential matrix still uses the intrinsics given "
            "at start")
        qtbot.keyClick(window, Qt.Key.Key_E)
        assert window.settings.geometry == "none"
    finally:
        window.shutdown()


def test_w_blends_the_anchor_and_turns_on_the_homography(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(lambda: window.results_shown >= 1, timeout=60000)
    qtbot.keyClick(window, Qt.Key.Key_W)
    assert window.look.blend_anchor and window.settings.geometry == "homography"
    qtbot.waitUntil(lambda: window.last_packet.geometry is not None, timeout=60000)
    drawn = window.redraw()
    packet = window.last_packet
    look = ViewSettings(window.look.shown, blend_anchor=True, text_scale=window.text_scale())
    np.testing.assert_array_equal(drawn, render_packet(packet, look, window.model_label, window.device_label,
                                                       window.status_text))
    qtbot.keyClick(window, Qt.Key.Key_W)
    assert not window.look.blend_anchor and window.settings.geometry == "homography"


def test_display_keys_change_the_view_state(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(lambda: window.results_shown >= 1, timeout=60000)
    qtbot.keyClick(window, Qt.Key.Key_F)
    assert window.look.shown == MatchWindow(200, 2200)
    qtbot.keyClick(window, Qt.Key.Key_C)
    assert window.look.shown == MatchWindow(200, 2150)
    qtbot.keyClick(window, Qt.Key.Key_H)
    assert window.look.show_help
    qtbot.keyClick(window, Qt.Key.Key_G)
    assert not window.stats.isVisible()
    qtbot.keyClick(window, Qt.Key.Key_F11)
    assert window.isFullScreen()
    qtbot.keyClick(window, Qt.Key.Key_F11)
    assert not window.isFullScreen()
    qtbot.keyClick(window, Qt.Key.Key_L)
    assert window.look.view == "points"
    look = ViewSettings(window.look.shown, "points", show_help=True, text_scale=window.text_scale())
    np.testing.assert_array_equal(window.redraw(), render_packet(
        window.last_packet, look, window.model_label, window.device_label, window.status_text))
    qtbot.keyClick(window, Qt.Key.Key_L)
    assert window.look.view == "lines"
    snapshot = window.snapshot()
    assert snapshot is not None and cv2.imread(str(snapshot)) is not None
    saved = np.load(snapshot.with_suffix(".npz"))
    assert saved["keypoints0"].shape == saved["keypoints1"].shape and saved["frame"].shape == (480, 640, 3)
    assert len(saved["confidence"]) == len(window.last_packet.result) and "inliers" not in saved.files


def test_q_closes_and_finalises(qtbot, window, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(lambda: window.results_shown >= 2, timeout=60000)
    qtbot.keyClick(window, Qt.Key.Key_Q)
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=10000)
    assert window.capture.isFinished() and window.inference.isFinished()
    # The video of the view is finalised with every frame it was given: the views drawn, repeated to play in
    # real time.
    assert [path.name for path, _ in window.sink.videos_written] == ["loftr_matches.mp4"]
    assert _count_frames(tmp_path / "loftr_matches.mp4") == window.sink.videos_written[0][1] > 0
    # Every result's matches, drawn or not, numbered in order of arrival.
    files = sorted((tmp_path / "matches").glob("*.npz"))
    assert [f.name for f in files] == [f"frame_{i:06d}.npz" for i in range(window.results_received)]
    frame_numbers = [int(np.load(f)["frame_index"]) for f in files]
    assert frame_numbers == sorted(frame_numbers) and int(np.load(files[-1])["frame_index"]) == \
        window.last_packet.frame_index


def test_r_records_the_view_until_pressed_again(qtbot, window, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(lambda: window.results_shown >= 1, timeout=60000)
    qtbot.keyClick(window, Qt.Key.Key_R)  # the fixture records from the start (--save_video): r stops that
    assert window.sink.video is None and not window.controls.record_action.isChecked()
    qtbot.keyClick(window, Qt.Key.Key_R)
    assert window.sink.video is not None and window.controls.record_action.isChecked()
    recording = window.sink.video.path
    assert recording.parent == tmp_path and recording.name.startswith("recording_")
    shown = window.results_shown
    qtbot.waitUntil(lambda: window.results_shown >= shown + 3, timeout=60000)
    window.controls.record_action.trigger()  # the control bar's button does the same
    assert window.sink.video is None
    assert [path for path, _ in window.sink.videos_written] == [tmp_path / "loftr_matches.mp4", recording]
    assert _count_frames(recording) == window.sink.videos_written[1][1] >= 1
    qtbot.keyClick(window, Qt.Key.Key_R)  # a second recording, maybe within the same second: its own name
    shown = window.results_shown
    qtbot.waitUntil(lambda: window.results_shown > shown, timeout=60000)
    qtbot.keyClick(window, Qt.Key.Key_R)
    second = window.sink.videos_written[-1][0]
    assert len(window.sink.videos_written) == 3 and second != recording and second.name.startswith("recording_")


def test_a_video_that_cannot_be_written_stops_alone(qtbot, window, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(lambda: window.results_shown >= 1, timeout=60000)

    def full_disk(frame: np.ndarray, now: float | None = None) -> None:
        raise OSError("No space left on device")

    monkeypatch.setattr(window.sink.video, "write", full_disk)
    shown = window.results_shown
    qtbot.waitUntil(lambda: window.sink.video is None, timeout=60000)
    assert "cannot write" in window.statusBar().currentMessage()
    assert not window.controls.record_action.isChecked()
    qtbot.waitUntil(lambda: window.results_shown > shown + 1, timeout=60000)  # the window goes on


def test_source_warnings_reach_the_status_bar_signal(qtbot) -> None:  # type: ignore[no-untyped-def]
    from app.capture import CaptureThread, LatestFrame
    from app.sources import Frame, FrameSource

    printed: list[str] = []

    class LosingStream(FrameSource):
        is_live = True

        def __init__(self) -> None:
            self.on_warning = printed.append

        def frames(self):  # type: ignore[no-untyped-def]
            yield Frame(np.zeros((8, 8, 3), np.uint8), 0)
            self.on_warning("camera 0 stopped delivering frames; reconnecting in 0.5 s (attempt 1/10)")

    source = LosingStream()
    capture = CaptureThread(source, source.frames, LatestFrame(), pace=False)
    with qtbot.waitSignal(capture.warning, timeout=10000) as signal:
        capture.start()
    capture.stop()
    capture.wait(5000)
    assert signal.args == ["camera 0 stopped delivering frames; reconnecting in 0.5 s (attempt 1/10)"]
    assert printed == signal.args


def test_an_anchor_image_is_used_until_n(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    poster = np.random.default_rng(0).integers(0, 255, (96, 72, 3), dtype=np.uint8)
    main_window = _started_window(qtbot, tmp_path, anchor=StartAnchor(poster, "poster.png"))
    try:
        qtbot.waitUntil(lambda: main_window.results_shown >= 1, timeout=60000)
        assert main_window.last_packet.anchor_name == "poster.png"
        assert main_window.last_packet.anchor.shape == (96, 72, 3)  # kept as it came, drawn as tall as the frames
        assert main_window.inference.session.anchor.network_size == (160, 120)  # matched: longer side 160
        # Drawn 5x (96 rows as tall as the video's 480): a box dragged over canvas pixels (0, 0)-(240, 240) is
        # (0, 0)-(48, 48) of the poster.
        main_window.on_box_selected((0.0, 0.0, 240.0, 240.0))
        qtbot.waitUntil(lambda: main_window.last_packet.region is not None, timeout=60000)
        assert main_window.last_packet.region == pytest.approx((0.0, 0.0, 48.0, 48.0))
        qtbot.keyClick(main_window, Qt.Key.Key_N)
        qtbot.waitUntil(lambda: main_window.last_packet.anchor_name == "", timeout=60000)
    finally:
        main_window.shutdown()


def _drop(main_window, path: Path) -> None:  # type: ignore[no-untyped-def]
    """Drop a file or folder on the window, straight to it: QApplication passes a drop on only during a real
    drag-and-drop."""
    from PyQt6.QtCore import QMimeData, QPointF, QUrl
    from PyQt6.QtGui import QDropEvent

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    main_window.event(QDropEvent(QPointF(100, 100), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                                 Qt.KeyboardModifier.NoModifier))


def test_an_image_file_dropped_or_chosen_becomes_the_anchor(  # type: ignore[no-untyped-def]
        qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.cli import read_anchor

    poster = tmp_path / "poster.png"
    cv2.imwrite(str(poster), np.random.default_rng(0).integers(0, 255, (300, 200, 3), dtype=np.uint8))
    (tmp_path / "notes.png").write_text("not an image")
    main_window = _started_window(qtbot, tmp_path, read_anchor_file=lambda path: read_anchor(path, (160, 120)))

    try:
        assert main_window.acceptDrops()
        qtbot.waitUntil(lambda: main_window.results_shown >= 1, timeout=60000)
        _drop(main_window, tmp_path / "notes.png")
        assert main_window.statusBar().currentMessage().startswith("cannot read the anchor image")
        _drop(main_window, poster)
        qtbot.waitUntil(lambda: main_window.last_packet.anchor_name == "poster.png", timeout=60000)
        assert main_window.last_packet.anchor.shape == (300, 200, 3)  # as --anchor: kept as it came
        assert main_window.inference.session.anchor.network_size == (160, 104)  # aspect kept, longer side 160, x 8
        qtbot.keyClick(main_window, Qt.Key.Key_N)
        qtbot.waitUntil(lambda: main_window.last_packet.anchor_name == "", timeout=60000)
        # The control bar's file dialog (answered here without a dialog) does the same.
        monkeypatch.setattr("app.inputs.QFileDialog.getOpenFileName", lambda *args: (str(poster), ""))
        main_window.controls.anchor_file_action.trigger()
        qtbot.waitUntil(lambda: main_window.last_packet.anchor_name == "poster.png", timeout=60000)
    finally:
        main_window.shutdown()


def test_a_video_or_folder_dropped_or_opened_becomes_the_input(  # type: ignore[no-untyped-def]
        qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.cli import build_parser, open_input

    capture = cv2.VideoCapture(str(ROOT / "assets" / "sample.mp4"))
    folder = tmp_path / "upside_down"  # another input: the video's first frames, turned over
    folder.mkdir()
    turned = [cv2.rotate(capture.read()[1], cv2.ROTATE_180) for _ in range(3)]
    for index, image in enumerate(turned):
        cv2.imwrite(str(folder / f"{index}.png"), image)
    args = build_parser().parse_args([])
    main_window = _started_window(qtbot, tmp_path, save_video=True, seekable=True,
                                  open_input=lambda path: open_input(args, path))
    try:
        qtbot.waitUntil(lambda: main_window.last_packet is not None and main_window.last_packet.frame_index > 3,
                        timeout=60000)
        _drop(main_window, folder)
        qtbot.waitUntil(lambda: main_window.last_packet.frame.shape == turned[0].shape and np.array_equal(
            main_window.last_packet.anchor, turned[0]), timeout=60000)  # its first frame is the anchor
        assert main_window.playback.positions is not None and main_window.playback.positions.length == 3
        assert main_window.windowTitle().startswith("LoFTR Live - upside_down - ")
        # the first input's video
        assert [path.name for path, _ in main_window.sink.videos_written] == ["loftr_matches.mp4"]
        qtbot.waitUntil(lambda: main_window.status_text == "end of stream", timeout=60000)
        assert main_window.statusBar().currentMessage().endswith("the frames before; p: play again; q: quit.")
        received = main_window.results_received
        qtbot.keyClick(main_window, Qt.Key.Key_P)  # at the end of a file: played again from its first frame
        qtbot.waitUntil(lambda: main_window.results_received > received, timeout=60000)
        _settle(qtbot, main_window)
        assert not main_window.playback.paused and main_window.last_packet.frame_index == 2
        assert main_window.status_text == "end of stream"
        _drop(main_window, tmp_path / "missing.mp4")  # one line, and the input stays
        assert main_window.statusBar().currentMessage().startswith("input not found")
        monkeypatch.setattr("app.inputs.QFileDialog.getOpenFileName",
                            lambda *args: (str(ROOT / "assets" / "sample.mp4"), ""))
        qtbot.keyClick(main_window, Qt.Key.Key_O, Qt.KeyboardModifier.ControlModifier)  # Ctrl+O (dialog answered)
        qtbot.waitUntil(lambda: main_window.last_packet.frame_index > 3 and main_window.status_text == "",
                        timeout=60000)
        assert main_window.playback.positions.length == 120 and main_window.last_packet.anchor_index == 0
    finally:
        main_window.shutdown()

def test_a_box_dragged_on_the_anchor_restricts_the_matches(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(lambda: window.results_shown >= 1, timeout=60000)
    view = window.view
    shown, canvas_width = view.shown_rect(), view.canvas_size().width()
    factor = shown.width() / canvas_width
    left, top = shown.left(), shown.top()

    def widget_point(x: float, y: float) -> QPoint:  # canvas pixels -> widget position
        return QPoint(round(left + x * factor), round(top + y * factor))

    # The video's 640x480 frames are drawn as they are (matched at 160x120): canvas pixels are the anchor's.
    start, end = widget_point(80, 40), widget_point(400, 360)
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(view, end)
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=end)
    qtbot.waitUntil(lambda: window.last_packet.region is not None, timeout=60000)
    x0, y0, x1, y1 = window.last_packet.region
    assert abs(x0 - 80) < 4 and abs(y0 - 40) < 4 and abs(x1 - 400) < 4 and abs(y1 - 360) < 4
    points = window.last_packet.result.keypoints0
    assert ((points[:, 0] >= x0) & (points[:, 0] < x1) & (points[:, 1] >= y0) & (points[:, 1] < y1)).all()
    qtbot.mouseClick(view, Qt.MouseButton.RightButton, pos=start)
    qtbot.waitUntil(lambda: window.last_packet.region is None, timeout=60000)


def test_a_slow_view_skips_to_the_newest_result(qtbot, window, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import app.window

    draw = app.window.render_packet

    def slow_draw(*args, **kwargs):  # type: ignore[no-untyped-def]
        time.sleep(0.3)  # far slower than matching a 160x120 frame
        return draw(*args, **kwargs)

    monkeypatch.setattr(app.window, "render_packet", slow_draw)
    qtbot.waitUntil(lambda: window.results_received >= 8, timeout=60000)
    # Drawing every result would have queued them up (shown == received, each drawn late); instead results
    # that arrived during a draw were skipped, and every one of them still reached the plots.
    assert window.results_shown < window.results_received
    assert len(window.stats.history["fps"]) == window.results_received


def test_the_window_fits_the_screen(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    screen = window.screen().availableGeometry()  # offscreen: 800x600, a small screen for a 1600x560 window
    assert screen.width() < 1600
    assert screen.contains(window.frameGeometry())
    assert window.stats.fps_plot.width() <= window.stats.width()  # no plot wider than its panel (newest results cut)
    plots_width = window.stats.width()
    qtbot.waitUntil(lambda: window.results_shown >= 1, timeout=60000)
    qtbot.wait(200)  # the window's try to grow to its first view (1290x480), which the screen has no room for
    assert screen.contains(window.frameGeometry())
    assert window.stats.width() >= min(plots_width, 400)  # the view did not squeeze the plots away


HIGH_DPI_VIEW = """
import json, cv2, numpy as np
from PyQt6.QtCore import QPoint
from PyQt6.QtGui import QImage
from PyQt6.QtWidgets import QApplication
app = QApplication([])
from app.window import MatchView
view = MatchView()
view.resize(800, 400)
view.show()
canvas = np.random.default_rng(0).integers(0, 256, (480, 1290, 3), dtype=np.uint8)
view.show_canvas(canvas)
app.processEvents()
ratio = view.devicePixelRatioF()
shown = view.shown_rect()
left, top, width, height = (round(value * ratio) for value in (shown.x(), shown.y(), shown.width(), shown.height()))
grabbed = view.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)  # what the widget painted, screen pixels
pixels = np.frombuffer(grabbed.constBits().asstring(grabbed.sizeInBytes()), np.uint8)
rows = pixels.reshape(grabbed.height(), grabbed.bytesPerLine())
pixels = rows[:, : grabbed.width() * 3].reshape(grabbed.height(), -1, 3)
shrunk = width < canvas.shape[1]  # shrunk: each pixel the area average; enlarged: bilinear
expected = cv2.resize(canvas, (width, height), interpolation=cv2.INTER_AREA if shrunk else cv2.INTER_LINEAR)[..., ::-1]
difference = int(np.abs(pixels[top : top + height, left : left + width].astype(int) - expected).max())
outside = pixels.copy()
outside[top : top + height, left : left + width] = 0
print(json.dumps([ratio, grabbed.width(), width, difference, int(outside.max()), top,
                  view.to_canvas(QPoint(400, 200)), view.shrink_factor()]))
"""


@pytest.mark.parametrize("scale", [1, 1.5, 2])
def test_the_view_uses_every_pixel_of_a_high_dpi_screen(scale: float) -> None:
    import json
    import os
    import subprocess
    import sys

    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QT_SCALE_FACTOR=str(scale))  # 2: a 4K laptop's 200%
    done = subprocess.run([sys.executable, "-c", HIGH_DPI_VIEW], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=True)
    screen_ratio, screen_width, width, difference, outside, top, centre, shrunk = json.loads(
        done.stdout.splitlines()[-1])
    assert screen_ratio == scale and screen_width == 800 * scale
    assert width == 800 * scale  # the canvas scaled to the screen's pixels, not to widget units and enlarged
    assert top > 0 and outside == 0  # the bars above and below the canvas are black
    assert difference == 0  # the canvas scaled once, by OpenCV, then copied to the screen's pixels: no blur
    assert centre == pytest.approx([645.0, 240.0], abs=1.0)  # a click still lands on the right canvas pixel
    assert shrunk == pytest.approx(max(1.0, 1290 / (800 * scale)))  # on 2x pixels, a 1290-wide view is not shrunk


GROWING_WINDOW = """
import json, sys, time
import torch
from PyQt6.QtWidgets import QApplication
app = QApplication([])
from pathlib import Path
from app.gui import build_window
from app.settings import MatchSettings, Outputs
from app.sources import open_source
from app.window_setup import WindowHooks, WindowOptions
from model.config import get_preset
from model.loftr import LoFTR
from model.matcher import Matcher

def opened(resized_first):
    torch.manual_seed(0)
    matcher = Matcher(LoFTR(get_preset("compact_s")), device="cpu", precision="fp32", resize=None, threshold=0.0)
    source = open_source("assets/sample.mp4")
    options = WindowOptions(MatchSettings(resize=(160, 120)), outputs=Outputs(Path(sys.argv[1]), source.fps))
    window = build_window(source, source.frames(), (matcher, "test"), options, WindowHooks(load_model=None))
    window.show()
    if resized_first:
        window.resize(1000, 500)
    app.processEvents()
    before = [window.width(), window.height()]
    window.start()
    deadline = time.time() + 60
    while window.results_shown < 1 and time.time() < deadline:
        app.processEvents()
        time.sleep(0.01)
    for _ in range(20):
        app.processEvents()
        time.sleep(0.01)
    frame = window.frameGeometry()
    sizes = [before, [window.width(), window.height()], [window.view.width(), window.view.height()],
             [window.stats.width()], window.screen().availableGeometry().contains(frame),
             window.controls.sizeHint().width()]
    window.shutdown()
    return sizes

print(json.dumps([opened(False), opened(True)]))
"""


def test_the_window_grows_to_show_its_first_view_at_its_size(tmp_path: Path) -> None:
    """On a 1920x1080 screen the opening 1600x560 window showed two 640x480 frames (a 1290x480 view) shrunk."""
    import json
    import os
    import subprocess
    import sys

    config = tmp_path / "screen.json"
    config.write_text(json.dumps({"screens": [{"name": "full-hd", "x": 0, "y": 0, "width": 1920, "height": 1080,
                                                "dpi": 96, "dpr": 1}]}))
    env = dict(os.environ, QT_QPA_PLATFORM=f"offscreen:configfile={config}")
    done = subprocess.run([sys.executable, "-c", GROWING_WINDOW, str(tmp_path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=True)
    grown, kept = json.loads(done.stdout.splitlines()[-1])
    before, after, view, plots, on_screen, controls = grown
    # It opens 1600x560 and grows for the view, and for every control of the bar to show (none in its overflow menu).
    assert before == [1600, 560] and after[0] > 1600 and after[0] >= controls and on_screen
    assert view[0] >= 1290 and view[1] >= 480  # the view at its own size, not shrunk
    assert plots[0] > 200  # the plots kept their width
    assert kept[0] == kept[1] == [1000, 500]  # resized before the first view: the user's size is kept


def test_the_overlay_text_grows_when_the_view_is_shown_shrunk(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(lambda: window.results_shown >= 1, timeout=60000)
    canvas = window.redraw()
    shrunk = max(canvas.shape[1] / window.view.width(), canvas.shape[0] / window.view.height())
    assert shrunk > 1.5  # a 1290x480 view in a window that fits the 800x600 offscreen screen
    assert window.text_scale() == pytest.approx(shrunk ** 0.75, abs=0.125)
    qtbot.keyClick(window, Qt.Key.Key_P)  # paused: no new result will redraw the view
    window.resize(2 * canvas.shape[1], 3 * canvas.shape[0])
    qtbot.waitUntil(lambda: window.view.width() > canvas.shape[1], timeout=5000)
    assert window.text_scale() == 1.0  # shown at full size: text as headless PNGs have it
    qtbot.waitUntil(lambda: window.drawn_look.text_scale == 1.0, timeout=5000)  # redrawn once the resize settled


def _settle(qtbot, window) -> int:  # type: ignore[no-untyped-def]
    """Wait until no result comes for a second (after a pause or the end of a file, a frame handed over before may
    still come) -> the results received by then."""
    settled = window.results_received

    def unchanged_for_a_second() -> bool:
        nonlocal settled
        before = settled
        qtbot.wait(1000)
        settled = window.results_received
        return settled == before

    qtbot.waitUntil(unchanged_for_a_second, timeout=30000)
    return settled


def test_right_arrow_pauses_then_steps_one_frame_at_a_time(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(lambda: window.results_received >= 1, timeout=60000)
    qtbot.keyClick(window, Qt.Key.Key_Right)
    assert window.playback.paused and window.controls.pause_action.isChecked()
    assert window.statusBar().currentMessage().startswith("paused: left / right arrow")  # what can be done now
    settled = _settle(qtbot, window)
    frame = window.last_packet.frame_index
    for step in (1, 2):
        qtbot.keyClick(window, Qt.Key.Key_Right)
        qtbot.waitUntil(lambda step=step: window.results_received == settled + step, timeout=60000)
        qtbot.wait(500)
        assert window.results_received == settled + step  # one frame a step, no more
        assert window.last_packet.frame_index == frame + step  # the next frames of the file, none skipped
    window.controls.step_action.trigger()
    qtbot.waitUntil(lambda: window.results_received == settled + 3, timeout=60000)
    assert window.last_packet.frame_index == frame + 3
    qtbot.keyClick(window, Qt.Key.Key_Left)  # back through the frames kept
    qtbot.waitUntil(lambda: window.results_received == settled + 4, timeout=60000)
    assert window.last_packet.frame_index == frame + 2
    window.controls.step_back_action.trigger()
    qtbot.waitUntil(lambda: window.results_received == settled + 5, timeout=60000)
    assert window.last_packet.frame_index == frame + 1
    qtbot.keyClick(window, Qt.Key.Key_N)  # the frame stepped back to becomes the anchor
    qtbot.waitUntil(lambda: window.last_packet.anchor_index == frame + 1, timeout=60000)


def test_a_setting_changed_while_paused_applies_to_the_frame_on_screen(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(lambda: window.results_received >= 3, timeout=60000)
    qtbot.keyClick(window, Qt.Key.Key_P)
    settled = _settle(qtbot, window)
    shown, plotted = window.last_packet, len(window.stats.history["fps"])
    qtbot.keyClick(window, Qt.Key.Key_BracketRight)
    qtbot.waitUntil(lambda: window.results_received == settled + 1, timeout=60000)
    packet = window.last_packet
    assert packet.again and packet.frame_index == shown.frame_index and packet.threshold == 0.05
    assert len(window.stats.history["fps"]) == plotted  # the same frame again is not a new point of the plots
    qtbot.keyClick(window, Qt.Key.Key_E)
    qtbot.waitUntil(lambda: window.last_packet.geometry is not None, timeout=60000)
    qtbot.keyClick(window, Qt.Key.Key_N)
    qtbot.waitUntil(lambda: window.last_packet.anchor_index == shown.frame_index, timeout=60000)
    assert window.last_packet.frame_index == shown.frame_index and window.playback.paused


def test_settings_still_apply_after_the_end_of_a_file(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "frames"
    folder.mkdir()
    capture = cv2.VideoCapture(str(ROOT / "assets" / "sample.mp4"))
    for index in range(3):
        cv2.imwrite(str(folder / f"{index}.png"), capture.read()[1])
    main_window = _started_window(qtbot, tmp_path, input_path=str(folder))
    try:
        qtbot.waitUntil(lambda: main_window.status_text == "end of stream", timeout=60000)
        received = _settle(qtbot, main_window)
        assert main_window.statusBar().currentMessage() == "end of stream. Left arrow: the frames before; q: quit."
        qtbot.keyClick(main_window, Qt.Key.Key_BracketRight)
        qtbot.waitUntil(lambda: main_window.results_received == received + 1, timeout=60000)
        assert main_window.last_packet.again and main_window.last_packet.threshold == 0.05
        last = main_window.last_packet.frame_index
        qtbot.keyClick(main_window, Qt.Key.Key_Left)  # the frames of a file that has ended can still be stepped
        qtbot.waitUntil(lambda: main_window.last_packet.frame_index == last - 1, timeout=60000)
        assert main_window.playback.paused and main_window.last_packet.threshold == 0.05
    finally:
        main_window.shutdown()


def test_a_slider_over_a_files_frames_goes_on_from_any_of_them(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    main_window = _started_window(qtbot, tmp_path, seekable=True)
    try:
        positions = main_window.playback.positions
        assert positions is not None and positions.slider.maximum() == 119  # the video's 120 frames
        qtbot.waitUntil(lambda: main_window.results_shown >= 2, timeout=60000)
        assert positions.slider.value() == main_window.last_packet.frame_index  # it follows the frames shown
        qtbot.keyClick(main_window, Qt.Key.Key_P)
        _settle(qtbot, main_window)
        positions.slider.setValue(90)  # as when the handle is let go there
        qtbot.waitUntil(lambda: main_window.last_packet.frame_index == 90, timeout=60000)
        assert positions.label.text().strip() == "90 / 119" and main_window.playback.paused
        frame = cv2.VideoCapture(str(ROOT / "assets" / "sample.mp4"))
        frame.set(cv2.CAP_PROP_POS_FRAMES, 90)
        np.testing.assert_array_equal(main_window.last_packet.frame, frame.read()[1])  # that very frame
        qtbot.keyClick(main_window, Qt.Key.Key_Left)  # back from it, though no frame before it was kept
        qtbot.waitUntil(lambda: main_window.last_packet.frame_index == 89, timeout=60000)
        qtbot.keyClick(main_window, Qt.Key.Key_N)
        qtbot.waitUntil(lambda: main_window.last_packet.anchor_index == 89, timeout=60000)
        for key, frame in ((Qt.Key.Key_End, 119), (Qt.Key.Key_Home, 0), (Qt.Key.Key_PageDown, 15),  # 15 FPS
                           (Qt.Key.Key_PageUp, 0)):
            qtbot.keyClick(main_window, key)
            qtbot.waitUntil(lambda frame=frame: main_window.last_packet.frame_index == frame, timeout=60000)
        slider = positions.slider  # a click on the groove jumps there, as on a video player's
        qtbot.mouseClick(slider, Qt.MouseButton.LeftButton, pos=QPoint(slider.width() // 4, slider.height() // 2))
        qtbot.waitUntil(lambda: abs(main_window.last_packet.frame_index - 30) <= 3, timeout=60000)
        qtbot.keyClick(main_window, Qt.Key.Key_P)  # plays on from there
        qtbot.waitUntil(lambda: main_window.last_packet.frame_index > 36, timeout=60000)
        assert main_window.last_packet.anchor_index == 89
    finally:
        main_window.shutdown()


def test_a_live_source_has_no_slider(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    assert window.playback.positions is None  # the fixture gives no frames_from, as for a camera or a stream

def test_brackets_change_the_threshold(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(lambda: window.results_shown >= 1, timeout=60000)
    assert window.last_packet.threshold == 0.0  # the test matcher's
    qtbot.keyClick(window, Qt.Key.Key_BracketRight)
    qtbot.waitUntil(lambda: window.last_packet.threshold == 0.05, timeout=60000)
    qtbot.keyClick(window, Qt.Key.Key_BracketLeft)
    qtbot.keyClick(window, Qt.Key.Key_BracketLeft)  # never below 0
    qtbot.waitUntil(lambda: window.last_packet.threshold == 0.0, timeout=60000)
    assert window.controls.threshold_box.value() == 0.0


def test_the_control_bar_and_the_keys_stay_in_step(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    from PyQt6.QtWidgets import QComboBox, QDoubleSpinBox

    controls = window.controls
    for widget in controls.findChildren((QComboBox, QDoubleSpinBox)):
        assert widget.focusPolicy() == Qt.FocusPolicy.NoFocus  # the window's keys keep working after a click
    assert not controls.anchor_file_action.isEnabled()  # this window was given no way to read image files
    qtbot.waitUntil(lambda: window.results_shown >= 1 and controls.model_action.text() == "Model: outdoor",
                    timeout=60000)
    # A widget acts like its key ...
    controls.geometry_box.setCurrentText("fundamental")  # as a user's pick does: currentTextChanged
    assert window.settings.geometry == "fundamental"
    qtbot.waitUntil(lambda: window.last_packet.geometry is not None
                    and window.last_packet.geometry.model == "fundamental", timeout=60000)
    controls.threshold_box.stepUp()
    assert window.threshold == 0.05
    qtbot.waitUntil(lambda: window.last_packet.threshold == 0.05, timeout=60000)
    controls.view_box.setCurrentText("points")
    assert window.look.view == "points"
    controls.pause_action.trigger()
    assert window.playback.paused and window.capture.paused.is_set()
    controls.pause_action.trigger()
    assert not window.playback.paused and not window.capture.paused.is_set()
    # ... and a key shows in the widgets.
    qtbot.keyClick(window, Qt.Key.Key_E)
    assert window.settings.geometry == "none" and controls.geometry_box.currentText() == "none"
    qtbot.keyClick(window, Qt.Key.Key_W)
    assert controls.blend_action.isChecked() and controls.geometry_box.currentText() == "homography"
    qtbot.keyClick(window, Qt.Key.Key_BracketRight)
    assert controls.threshold_box.value() == 0.1
    qtbot.keyClick(window, Qt.Key.Key_L)
    assert controls.view_box.currentText() == "lines"
    qtbot.keyClick(window, Qt.Key.Key_T)  # LoFTR at any rotation: the packets say which view of the anchor matched
    assert window.settings.any_rotation and controls.setting_actions["any_rotation"].isChecked()
    qtbot.waitUntil(lambda: window.last_packet.anchor_view is not None, timeout=60000)
    qtbot.keyClick(window, Qt.Key.Key_Z)
    assert window.settings.any_scale and controls.setting_actions["any_scale"].isChecked()
    controls.setting_actions["any_rotation"].trigger()
    assert not window.settings.any_rotation
    controls.setting_actions["any_scale"].trigger()
    assert not window.settings.any_scale
    qtbot.waitUntil(lambda: window.last_packet.anchor_view is None, timeout=60000)
    qtbot.keyClick(window, Qt.Key.Key_O)  # a toggle of the action table: its button and message came with it
    assert window.settings.inliers_only and controls.setting_actions["inliers_only"].isChecked()
    assert window.statusBar().currentMessage() == "only the inliers of the geometric fit are kept"
    qtbot.keyClick(window, Qt.Key.Key_G)
    assert not controls.plots_action.isChecked() and not window.stats.isVisible()
    controls.model_action.trigger()
    qtbot.waitUntil(lambda: controls.model_action.text() == "Model: indoor", timeout=60000)
    assert window.loads == ["indoor"]


@pytest.mark.inference_failures_expected
def test_a_failing_frame_is_reported_once_and_matching_goes_on(qtbot, window,  # type: ignore[no-untyped-def]
                                                              monkeypatch) -> None:
    qtbot.waitUntil(lambda: window.results_received >= 1, timeout=60000)
    session = window.inference.session
    process = session.process
    failures = {"left": 3}
    messages: list[str] = []
    window.inference.failed.connect(messages.append)

    def flaky(frame, again=False):  # type: ignore[no-untyped-def]
        if failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return process(frame, again)

    monkeypatch.setattr(session, "process", flaky)
    received = window.results_received
    qtbot.waitUntil(lambda: window.results_received > received and not failures["left"], timeout=60000)
    assert len(messages) == 1 and messages[0].endswith("failed: CUDA out of memory. Tried to allocate 2.00 GiB")


def test_backspace_clears_the_region(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(lambda: window.results_shown >= 1, timeout=60000)
    window.inference.request_region((10.0, 10.0, 80.0, 60.0))
    qtbot.waitUntil(lambda: window.last_packet.region is not None, timeout=60000)
    qtbot.keyClick(window, Qt.Key.Key_Backspace)
    qtbot.waitUntil(lambda: window.last_packet.region is None, timeout=60000)


def test_every_key_of_the_table_reaches_its_action(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    """The window's key dispatch is the key table: each key of ``app.actions`` runs its action with its argument."""
    from app.actions import KEY_ACTIONS

    assert set(window.handlers) == {item.name for item in KEY_ACTIONS}
    ran: list[tuple[str, tuple[object, ...]]] = []
    window.handlers = {name: (lambda *args, name=name: ran.append((name, args))) for name in window.handlers}
    for item in KEY_ACTIONS:
        for key in item.keys:
            modifier = Qt.KeyboardModifier.ControlModifier if key.startswith("Ctrl+") else \
                Qt.KeyboardModifier.NoModifier
            qtbot.keyClick(window, getattr(Qt.Key, "Key_" + key.removeprefix("Ctrl+")), modifier)
            assert ran.pop() == (item.name, item.argument_of(key)), key
    qtbot.keyClick(window, Qt.Key.Key_X)  # not bound: nothing runs
    assert not ran


def test_results_come_drawn_by_the_inference_thread(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    def drawn_as_the_window_draws() -> bool:
        look = replace(window.look, text_scale=window.text_scale())
        return window.last_packet.view_key == (look, window.model_label, window.device_label)

    qtbot.waitUntil(lambda: window.results_shown >= 1 and drawn_as_the_window_draws(), timeout=60000)
    packet = window.last_packet
    look = replace(window.look, text_scale=window.text_scale())
    np.testing.assert_array_equal(packet.view, render_packet(packet, look, window.model_label, window.device_label))
    qtbot.keyClick(window, Qt.Key.Key_L)  # a new look: the inference thread draws with it from then on
    qtbot.waitUntil(lambda: window.last_packet.view_key is not None
                    and window.last_packet.view_key[0].view == "points", timeout=60000)


def test_running_out_of_memory_is_said_with_what_to_do() -> None:
    from app.worker import _reason

    allocator = RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate "
                             "memory: you tried to allocate 2250000000000 bytes.")
    assert _reason(allocator) == "out of memory at this size; match at a smaller size (the , key)"
    refused = MemoryError("matching at 8000x6000 and 8000x6000 needs about 4500 GB for coarse matching")
    assert _reason(refused) == ("matching at 8000x6000 and 8000x6000 needs about 4500 GB for coarse matching; match at "
                                "a smaller size (the , key)")
    assert _reason(ValueError("first line\nsecond")) == "first line"


QUIT_WHILE_COMPILING = """
import sys
import torch
from PyQt6.QtCore import QTimer
import app.cli, app.gui, app.worker

def still_warming_up(self):  # the model compiled in the background is still being warmed up when the user quits
    square = torch.rand(200, 200)
    while True:
        torch.mm(square, square)

app.worker.BackgroundCompile.run = still_warming_up
app.cli.gui_unavailable_reason = lambda: None  # the offscreen platform stands in for a display
build = app.gui.build_window

def closing_after_a_result(*args, **kwargs):
    window = build(*args, **kwargs)
    timer = QTimer(window)
    timer.timeout.connect(lambda: window.results_shown and window.close())  # q, once a result is on screen
    timer.start(100)
    return window

app.gui.build_window = closing_after_a_result
sys.exit(app.cli.main(["--input", "assets/sample.mp4", "--resize", "160", "120", "--max_matches", "50",
                       "--output_dir", sys.argv[1], "--compile", "auto", "--device", "cpu"]))
"""


def test_quitting_while_a_model_compiles_in_the_background_ends_cleanly(tmp_path: Path) -> None:
    """The interpreter's shutdown stopped the compiling thread inside torch's C++ code, which aborted the process
    (exit 134, "terminate called without an active exception") after the outputs were written."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    done = subprocess.run([sys.executable, "-c", QUIT_WHILE_COMPILING, str(tmp_path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "terminate called" not in done.stderr and "Traceback" not in done.stderr
    assert "frames matched" in done.stderr  # the run's summary was said before the process ended
