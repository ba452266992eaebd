"""Torch CPU threads chosen from the cores other programs leave free, and kept up to date.

With every core asked for while another program keeps one busy, OpenMP's teams wait on the busy core at every
parallel region: on 2 cores the CPU default went from 41 to 97 ms per frame, while one thread took 67 ms
(``tools/busy_core_bench.py``). So matching uses the cores that are free: other programs' load is read from
``/proc/stat`` (all CPU time) minus this process's own CPU time, between two readings; where there is no
``/proc/stat`` the thread count is left as it is.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch

PROC_STAT = Path("/proc/stat")
#: A core counts as free when others use less than this share of it (a desktop's background noise stays below).
FREE_BELOW = 0.7


@dataclass(frozen=True)
class CpuReading:
    """Busy CPU seconds of the whole machine and of this process, at a wall-clock time."""

    wall: float
    machine_busy: float
    own_busy: float


def read_cpu() -> CpuReading | None:
    """The machine's and this process's busy CPU seconds now; None where /proc/stat is not there."""
    try:
        fields = PROC_STAT.read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu" or len(fields) < 5:
        return None
    ticks = [int(value) for value in fields[1:9]]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    return CpuReading(time.monotonic(), (sum(ticks) - idle) / os.sysconf("SC_CLK_TCK"), time.process_time())


def others_cores(before: CpuReading, after: CpuReading) -> float:
    """Cores kept busy by other programs between two readings (0 = none)."""
    wall = after.wall - before.wall
    if wall <= 0:
        return 0.0
    others = (after.machine_busy - before.machine_busy) - (after.own_busy - before.own_busy)
    return max(0.0, others / wall)


def threads_for(cores: int, others: float) -> int:
    """The threads to use on ``cores`` cores when others keep ``others`` cores busy: the free ones, at least 1."""
    free = cores - int(others + (1 - FREE_BELOW))
    return max(1, min(cores, free))


class ThreadGovernor:
    """Sets torch's threads of the calling thread to the free cores, re-checked every ``every_s`` seconds.

    Call ``update()`` from the thread that runs the model (OpenMP's thread count belongs to the calling thread),
    between frames; it costs one small file read when a check is due.
    """

    def __init__(self, cores: int | None = None, every_s: float = 2.0) -> None:
        self.cores = cores or os.cpu_count() or 1
        self.every_s = every_s
        self.threads = torch.get_num_threads()
        self._last = read_cpu()

    def update(self, now_due: bool = False) -> int:
        """The thread count in use after this check (changed when the load changed); ``now_due``: check even if
        ``every_s`` has not passed since the last one."""
        if self._last is None:
            return self.threads
        now = read_cpu()
        if now is None or (not now_due and now.wall - self._last.wall < self.every_s):
            return self.threads
        wanted = threads_for(self.cores, others_cores(self._last, now))
        self._last = now
        if wanted != self.threads:
            torch.set_num_threads(wanted)
            self.threads = wanted
        return self.threads

    def settle(self, seconds: float = 0.5) -> int:
        """Measure the load for ``seconds`` now (before the first frame) and set the threads for it."""
        if self._last is None:
            return self.threads
        self._last = read_cpu()
        time.sleep(seconds)
        return self.update(now_due=True)
