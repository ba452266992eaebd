"""tools/window_budget.py: the inference thread's rate in its three setups, printed for each."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_prints_a_rate_for_each_setup_and_the_camera_caps_the_capture_setups() -> None:
    run = subprocess.run([sys.executable, "tools/window_budget.py", "--seconds", "1", "--warm_up", "0.3", "--rounds",
                          "1", "--camera_fps", "10", "--model", "sift"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert run.returncode == 0, run.stderr
    rates = dict(re.findall(r"^(model|\+ capture|\+ capture \+ drawing) +([\d.]+) FPS", run.stdout, re.MULTILINE))
    assert set(rates) == {"model", "+ capture", "+ capture + drawing"}, run.stdout
    assert float(rates["model"]) > 0
    for setup in ("+ capture", "+ capture + drawing"):
        assert 0 < float(rates[setup]) <= 10 + 1, run.stdout  # paced at 10 FPS (one frame of slack in the second)
    assert "frame age" in run.stdout and "backbone" in run.stdout
