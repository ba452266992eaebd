"""``model.op_counts``: launched operators and host syncs per call, and ``python -m model bench --profile``."""

from __future__ import annotations

import pytest
import torch

from model.__main__ import main
from model.op_counts import count_ops


def test_counts_kernels_and_syncs_not_views_or_python_numbers() -> None:
    x = torch.rand(64, 64)

    def work() -> float:
        y = x.view(-1).unsqueeze(0) + 1  # two views, an add of a Python number (no kernel for the number)
        return float(y[y > 0.5].sum())  # comparison, boolean index (nonzero: a sync), sum, .item() (a sync)

    counts = count_ops(work, calls=2, top=50)
    names = dict(counts.top)
    assert counts.syncs == 2
    assert names.get("aten::add") == 1 and "aten::view" not in names and "aten::unsqueeze" not in names
    assert 4 <= counts.launched <= 12


def test_bench_profile_prints_ours_and_kornias_counts(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("kornia")
    assert main(["bench", "--random", "--preset", "compact_s", "--resize", "96", "64", "--profile"]) == 0
    out = capsys.readouterr().out
    for label in ("ours, cached anchor", "ours, full pair", "kornia LoFTR, pair"):
        assert any(line.startswith(label) and "syncs" in line for line in out.splitlines()), out
    assert "ratio kornia pair / ours cached anchor" in out
