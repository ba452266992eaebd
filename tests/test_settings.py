"""The matching settings: one frozen value, applied whole by the inference thread (what changed only)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from app.capture import LatestFrame
from app.settings import DEFAULT_SETTINGS, MatchSettings
from app.window_setup import WindowOptions
from app.worker import BackgroundCompile, InferenceThread, NewAnchor, SelectRegion, SwitchModel
from model.classical import ClassicalMatcher


def test_changed_names_the_fields_that_differ() -> None:
    assert DEFAULT_SETTINGS.changed(DEFAULT_SETTINGS) == ()
    assert DEFAULT_SETTINGS.changed(replace(DEFAULT_SETTINGS, geometry="homography", resize=320)) == (
        "geometry", "resize")


def _thread(loads: list[str]) -> InferenceThread:
    def load(name: str) -> tuple[ClassicalMatcher, str]:
        loads.append(name)
        return ClassicalMatcher("orb" if name == "orb" else "sift"), name

    thread = InferenceThread(LatestFrame(), load, WindowOptions(MatchSettings(resize=160), domain="sift"))
    thread._switch("sift")  # as run() does first, without starting the thread
    return thread


def test_the_thread_applies_settings_whole_and_loads_a_comparison_once() -> None:
    loads: list[str] = []
    thread = _thread(loads)
    session = thread.session
    assert session is not None and session.resize == 160 and loads == ["sift"]
    wanted = MatchSettings(geometry="fundamental", any_rotation=True, resize=160, threshold=0.35, compare="orb")
    thread._apply(wanted)
    assert (session.geometry, session.settings.any_rotation, session.matcher.threshold) == ("fundamental", True, 0.35)
    assert session.comparison is not None and loads == ["sift", "orb"]
    thread._apply(replace(wanted, geometry="homography"))  # the comparison did not change: not loaded again
    assert session.geometry == "homography" and loads == ["sift", "orb"]
    thread._apply(replace(wanted, compare=None))
    assert session.comparison is None


def test_a_new_model_starts_at_its_own_threshold_and_a_later_one_applies() -> None:
    thread = _thread([])
    thread._apply(MatchSettings(resize=160, threshold=0.5))
    thread._apply(SwitchModel("orb"))
    assert thread.settings.threshold is None  # the model's own: asking for 0.5 again must apply
    own = thread.session.matcher.threshold  # type: ignore[union-attr]
    thread._apply(MatchSettings(resize=160, threshold=0.5))
    assert thread.session.matcher.threshold == 0.5 != own  # type: ignore[union-attr]


def test_events_set_the_anchor_and_its_region() -> None:
    thread = _thread([])
    image = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    thread._apply(NewAnchor(image, "poster.png"))
    session = thread.session
    assert session is not None and session.anchor_name == "poster.png"
    thread._apply(SelectRegion((10.0, 10.0, 80.0, 60.0)))
    assert session.region == (10.0, 10.0, 80.0, 60.0)


def _loftr_thread(monkeypatch, warm_up_result: str | None) -> tuple[InferenceThread, list[str]]:  # type: ignore[no-untyped-def]
    import torch

    from model.config import get_preset
    from model.loftr import LoFTR
    from model.matcher import Matcher

    torch.manual_seed(0)
    network = LoFTR(get_preset("compact_s"))
    loads: list[str] = []

    def load(name: str) -> tuple[Matcher, str]:
        loads.append(name)
        return Matcher(network, device="cpu", precision="fp32", resize=None), name

    monkeypatch.setattr(Matcher, "compile", lambda self: None)  # what is compiled is torch's business (test_matcher)
    monkeypatch.setattr(Matcher, "warm_up", lambda self: warm_up_result)
    options = WindowOptions(MatchSettings(resize=160), domain="outdoor", compile_in_background=True)
    thread = InferenceThread(LatestFrame(), load, options)
    thread._switch("outdoor")
    assert thread.compiler is not None
    thread.compiler.join(60)
    return thread, loads


def test_a_model_compiled_in_the_background_takes_over_with_the_settings_of_now(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    thread, loads = _loftr_thread(monkeypatch, None)
    assert thread.session is not None
    eager = thread.session.matcher
    eager.threshold = 0.45  # a setting changed while it compiled
    notices: list[str] = []
    thread.notice.connect(notices.append)
    thread._take_compiled()
    assert thread.session.matcher is not eager and thread.session.matcher.threshold == 0.45
    assert thread.session.matcher.resize == 160 and loads == ["outdoor", "outdoor"] and thread.compiler is None
    assert notices == ["compiled for this machine: matching is faster from now on"]


def test_a_failed_background_compile_is_said_and_matching_goes_on(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    thread, _ = _loftr_thread(monkeypatch, "InvalidCxxCompiler: No working C++ compiler found")
    assert thread.session is not None
    eager = thread.session.matcher
    failures: list[str] = []
    thread.failed.connect(failures.append)
    thread._take_compiled()
    assert thread.session.matcher is eager and thread.compiler is None
    assert failures == ["torch.compile failed (InvalidCxxCompiler: No working C++ compiler found); matching without it"]


def test_a_compilation_left_running_keeps_the_thread_busy(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import threading

    release = threading.Event()
    monkeypatch.setattr(BackgroundCompile, "run", lambda self: release.wait(30))  # a compilation still going
    thread = InferenceThread(LatestFrame(), lambda name: (ClassicalMatcher("sift"), name), WindowOptions())
    assert not thread.busy()  # never started
    # The model was switched meanwhile: this compilation is no longer the thread's own, and still runs torch.
    orphan = BackgroundCompile(lambda: (ClassicalMatcher("sift"), "sift"), "outdoor", 160)
    orphan.start()
    assert thread.compiler is None and thread.busy()
    release.set()
    orphan.join(30)
    assert not thread.busy()
