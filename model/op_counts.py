"""What one matched frame costs a GPU besides arithmetic: the operators it launches and its host syncs.

At the live sizes a GPU is bound by kernel launches and by the points where the host waits for the device, not
by arithmetic. Both are counted on the CPU with the torch profiler: every aten operator that does not call
another one and does more than make a view or convert a Python number is a kernel on a GPU (``launched``), and
the operators that need a device value on the host are a synchronisation there (``syncs``: ``.item()`` or
``bool()`` of a tensor, ``nonzero`` behind ``torch.where(mask)`` and boolean indexing, ``masked_select``,
``unique``). The one copy of the result to the host that every matcher makes
is not counted (on a CPU it is no copy at all).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Callable

from torch.autograd.profiler_util import FunctionEvent
from torch.profiler import ProfilerActivity, profile

#: Operators that make the host wait for the device on CUDA.
SYNCING_OPS = frozenset({"aten::_local_scalar_dense", "aten::nonzero", "aten::masked_select", "aten::_unique2",
                         "aten::unique_dim", "aten::unique_consecutive", "aten::nonzero_static"})


#: Operators that only make a new view or an uninitialised buffer: no kernel on a GPU.
METADATA_OPS = frozenset({"aten::view", "aten::as_strided", "aten::as_strided_", "aten::_unsafe_view",
                          "aten::_reshape_alias",
                          "aten::resolve_conj", "aten::resolve_neg", "aten::empty", "aten::empty_strided",
                          "aten::expand", "aten::permute", "aten::transpose", "aten::t", "aten::unsqueeze",
                          "aten::squeeze", "aten::slice", "aten::select", "aten::alias", "aten::detach",
                          "aten::narrow", "aten::lift_fresh", "aten::view_as", "aten::empty_like",
                          "aten::split", "aten::unbind", "aten::chunk", "aten::reshape", "aten::flatten",
                          "aten::contiguous", "aten::set_", "aten::result_type", "aten::resize_",
                          "aten::_nnpack_available"})


@dataclass(frozen=True)
class OpCounts:
    """Per call: launched (leaf) operators, host syncs, and the commonest launched operators."""

    launched: float
    syncs: float
    top: tuple[tuple[str, float], ...]

    def line(self, label: str) -> str:
        common = ", ".join(f"{name.removeprefix('aten::')} {count:g}" for name, count in self.top)
        return f"{label:<28} {self.launched:7.0f} ops  {self.syncs:5.0f} syncs  [{common}]"


def count_ops(call: Callable[[], object], calls: int = 3, top: int = 6) -> OpCounts:
    """Profile ``calls`` calls of ``call`` (after one warm-up) and average the counts per call."""
    call()
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as profiler:
        for _ in range(calls):
            call()
    launched: Counter[str] = Counter()
    syncs = 0
    for event in profiler.events():
        if not event.name.startswith("aten::"):
            continue
        syncs += event.name in SYNCING_OPS
        if _launches_a_kernel(event):
            launched[event.name] += 1
    common = tuple((name, count / calls) for name, count in launched.most_common(top))
    return OpCounts(sum(launched.values()) / calls, syncs / calls, common)



def _launches_a_kernel(event: FunctionEvent) -> bool:
    """Whether the operator itself is a kernel: no operator under it is one, and it is neither metadata only nor
    the CPU's conversion of a Python number (``x + 1`` wraps the 1 as a 0-dim tensor and converts it; a GPU
    kernel takes it as an argument)."""
    return _is_candidate(event) and not any(_has_kernel(child) for child in event.cpu_children)


def _has_kernel(event: FunctionEvent) -> bool:
    return event.name.startswith("aten::") and (
        _is_candidate(event) or any(_has_kernel(child) for child in event.cpu_children))


def _is_candidate(event: FunctionEvent) -> bool:
    if event.name in METADATA_OPS:
        return False
    if event.name in ("aten::to", "aten::_to_copy", "aten::copy_"):
        shapes = event.input_shapes or [[1], [1]]
        source = shapes[1] if event.name == "aten::copy_" and len(shapes) > 1 else shapes[0]  # copy_(self, src)
        return len(source) > 0
    return True
