"""Per-stage timing that does not slow down what it measures.

On a CPU a stage is wall-clock time. On CUDA a stage is the time between two events recorded on the stream:
no synchronisation between stages, so the CPU keeps queueing the next stage's kernels while the GPU runs
the current one (synchronising around every stage, as this module first did, serialises the two).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator

import torch


class StageTimer:
    """Accumulates milliseconds per named stage; ``stage(name)`` is a context manager."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._wall_ms: dict[str, float] = {}
        self._events: list[tuple[str, torch.cuda.Event, torch.cuda.Event]] = []

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        if self.device.type == "cuda":
            stream = torch.cuda.current_stream(self.device)
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record(stream)
            try:
                yield
            finally:
                end.record(stream)
                self._events.append((name, start, end))
            return
        begin = time.perf_counter()
        try:
            yield
        finally:
            self._wall_ms[name] = self._wall_ms.get(name, 0.0) + (time.perf_counter() - begin) * 1000.0

    @property
    def ms(self) -> dict[str, float]:
        """Milliseconds per stage, in the order first seen. On CUDA this waits for the timed work to finish."""
        result = dict(self._wall_ms)
        for name, start, end in self._events:
            end.synchronize()
            result[name] = result.get(name, 0.0) + start.elapsed_time(end)
        return result


@contextmanager
def maybe_stage(timer: StageTimer | None, name: str) -> Iterator[None]:
    """``timer.stage(name)`` when a timer is given, else nothing."""
    if timer is None:
        yield
    else:
        with timer.stage(name):
            yield
