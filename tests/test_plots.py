"""The rolling plots (app/plots.py): the last 30 s against time, round axis tops."""

from __future__ import annotations

import numpy as np

from app.plots import StatsPanel, round_up
from app.session import MatchPacket
from model.matcher import MatchResult


def _packet(fps: float, matches: int = 3, frame_age_ms: float = 60.0) -> MatchPacket:
    points = np.zeros((matches, 2), np.float32)
    result = MatchResult(points, points, np.ones(matches, np.float32), np.zeros(matches, np.float32),
                         {"backbone": 7.0, "coarse_transformer": 16.0, "coarse_matching": 5.0, "fine": 13.0})
    image = np.zeros((8, 8, 3), np.uint8)
    return MatchPacket(image, 0, "", image, 1, result, latency_ms=41.0, fps=fps, frame_age_ms=frame_age_ms)


def test_plots_show_the_last_30_seconds_against_time(qtbot) -> None:  # type: ignore[no-untyped-def]
    stats = StatsPanel(refresh_ms=60000)  # redrawn below, not by its timer
    qtbot.addWidget(stats)
    stats.show()
    for now, fps in ((100.0, 0.0), (110.0, 12.0), (120.0, 14.0), (135.0, 13.0)):
        stats.add(_packet(fps), now=now)
    assert list(stats.times) == [110.0, 120.0, 135.0]  # 100 s is more than 30 s before the newest
    assert all(len(values) == 3 for values in stats.history.values())
    stats.refresh()
    seconds, fps = stats.curves["fps"].getData()
    assert list(seconds) == [-25.0, -15.0, 0.0] and list(fps) == [12.0, 14.0, 13.0]
    assert list(stats.curves["fine"].getData()[1]) == [13.0] * 3
    assert list(stats.curves["matches"].getData()[1]) == [3.0] * 3
    assert np.isnan(stats.history["inliers"]).all()  # no verification: a gap, not a line at 0
    stats.add(_packet(0.0), now=136.0)  # no rate yet (e.g. after a pause)
    assert np.isnan(stats.history["fps"][-1])  # a gap in the curve, not a drop to 0


def test_the_y_axes_top_at_round_numbers_above_the_data(qtbot) -> None:  # type: ignore[no-untyped-def]
    stats = StatsPanel(refresh_ms=60000)
    qtbot.addWidget(stats)
    stats.show()
    stats.add(_packet(13.0, matches=300), now=0.0)
    stats.refresh()
    assert stats.tops == {"fps": 15.0, "latency": 75.0, "matches": 500.0,  # 1.1 x 13, 60 (frame age), 300
                          "turned": 1.5}  # nothing to plot: the smallest top


def test_one_slow_first_frame_does_not_squash_the_latency_plot(qtbot) -> None:  # type: ignore[no-untyped-def]
    stats = StatsPanel(refresh_ms=60000)
    qtbot.addWidget(stats)
    stats.show()
    stats.add(_packet(0.0, frame_age_ms=1500.0), now=0.0)  # the model warming up
    for index in range(1, 40):
        stats.add(_packet(13.0), now=index / 13)
    stats.refresh()
    assert stats.tops["latency"] == 75.0  # 1.1 x 60 ms of frame age, not 1.1 x 1500
    assert stats.curves["frame_age"].getData()[1][0] == 1500.0  # still drawn, off the top


def test_the_camera_motion_is_plotted_only_while_there_is_one(qtbot) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    from model.geometry import STILL, RelativePose, TwoViewGeometry

    stats = StatsPanel(refresh_ms=60000)
    qtbot.addWidget(stats)
    stats.show()
    stats.add(_packet(13.0), now=0.0)
    stats.refresh()
    assert not stats.turned_plot.isVisible()  # no essential matrix: no plot taking room from the others
    turn = np.array([[np.cos(0.2), 0.0, np.sin(0.2)], [0.0, 1.0, 0.0], [-np.sin(0.2), 0.0, np.cos(0.2)]])
    for now, pose, inliers in ((1.0, STILL, 3), (2.0, RelativePose(turn, np.array([1.0, 0, 0])), 30),
                               (3.0, RelativePose(turn, np.array([1.0, 0, 0])), 5)):  # too few inliers to trust
        geometry = TwoViewGeometry("essential", np.eye(3), np.arange(30) < inliers, 2.0, pose)
        stats.add(replace(_packet(13.0), geometry=geometry), now=now)
    stats.refresh()
    assert stats.turned_plot.isVisible() and stats.titles[stats.turned_plot].isVisible()
    turned = stats.curves["turned"].getData()[1]
    assert np.isnan(turned[0]) and turned[1] == 0.0 and np.isnan(turned[3])
    assert abs(turned[2] - np.degrees(0.2)) < 1e-6 and stats.tops["turned"] == 15.0  # 1.1 x 11.5 degrees


def test_plot_tops_are_round_numbers() -> None:
    assert [round_up(v) for v in (0.5, 1.0, 1.2, 2.5, 9.0, 10.0, 11.0, 33.0, 330.0, 770.0)] == \
        [0.5, 1.0, 1.5, 3.0, 10.0, 10.0, 15.0, 50.0, 500.0, 1000.0]


def test_every_curve_is_drawn_on_qts_fast_path(qtbot) -> None:  # type: ignore[no-untyped-def]
    stats = StatsPanel(refresh_ms=60000)
    qtbot.addWidget(stats)
    # Antialiased pens wider than one pixel go through Qt's general stroker, several times slower per redraw.
    assert all(curve.opts["pen"].widthF() <= 1.0 for curve in stats.curves.values())
