"""``model.cpu_load``: threads from the cores other programs leave free."""

from __future__ import annotations

import pytest
import torch

from model import cpu_load
from model.cpu_load import CpuReading, ThreadGovernor, others_cores, threads_for


def test_others_load_is_the_machines_minus_this_process() -> None:
    before = CpuReading(wall=10.0, machine_busy=100.0, own_busy=5.0)
    after = CpuReading(wall=12.0, machine_busy=104.0, own_busy=7.0)  # 4 CPU s in 2 s, 2 of them ours
    assert others_cores(before, after) == pytest.approx(1.0)
    assert others_cores(after, after) == 0.0


@pytest.mark.parametrize("cores, others, threads", [
    (2, 0.0, 2), (2, 0.4, 2), (2, 0.9, 1), (2, 1.0, 1), (2, 3.0, 1), (8, 2.0, 6), (8, 2.5, 6), (1, 0.0, 1)])
def test_threads_are_the_free_cores(cores: int, others: float, threads: int) -> None:
    assert threads_for(cores, others) == threads


def test_governor_follows_the_load_every_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    readings = iter([CpuReading(0.0, 0.0, 0.0), CpuReading(1.0, 1.0, 0.0),  # too soon: no change
                     CpuReading(2.0, 2.0, 0.1),  # 2 s: others kept one core busy
                     CpuReading(4.0, 2.1, 0.2)])  # 2 s later: quiet again
    monkeypatch.setattr(cpu_load, "read_cpu", lambda: next(readings))
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        governor = ThreadGovernor(cores=2, every_s=2.0)
        assert governor.update() == 2
        assert governor.update() == 1 and torch.get_num_threads() == 1
        assert governor.update() == 2 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_without_proc_stat_threads_stay(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setattr(cpu_load, "PROC_STAT", tmp_path / "missing")
    assert cpu_load.read_cpu() is None
    governor = ThreadGovernor(cores=4)
    assert governor.update() == governor.settle(0.0) == torch.get_num_threads()


def test_reads_this_machine() -> None:
    if not cpu_load.PROC_STAT.exists():
        pytest.skip("no /proc/stat here")
    reading = cpu_load.read_cpu()
    assert reading is not None and reading.machine_busy > 0 and reading.own_busy > 0
