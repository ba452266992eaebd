"""Per-stage timing (model/timing.py) on the CPU; the CUDA-event path is in tests/test_cuda.py."""

from __future__ import annotations

import time

import torch

from model.timing import StageTimer, maybe_stage


def test_stages_accumulate_in_first_seen_order() -> None:
    timer = StageTimer(torch.device("cpu"))
    with timer.stage("b"):
        time.sleep(0.02)
    with timer.stage("a"):
        pass
    with timer.stage("b"):
        time.sleep(0.01)
    assert list(timer.ms) == ["b", "a"]
    assert timer.ms["b"] >= 29.0 and timer.ms["a"] < timer.ms["b"]


def test_a_failing_stage_is_still_timed_and_no_timer_times_nothing() -> None:
    timer = StageTimer(torch.device("cpu"))
    try:
        with maybe_stage(timer, "broken"):
            raise ValueError
    except ValueError:
        pass
    assert "broken" in timer.ms
    with maybe_stage(None, "ignored"):
        pass
