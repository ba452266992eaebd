"""The error type of the command line, and how running out of memory is told apart from other failures."""

from __future__ import annotations

import sys

import torch


class CliError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


def out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` is torch (or Python) running out of memory: CUDA's ``OutOfMemoryError``, or the CPU
    allocator's RuntimeError (e.g. frames matched at their own size, ``--resize -1``, needing terabytes)."""
    if isinstance(error, (MemoryError, torch.OutOfMemoryError)):
        return True
    return isinstance(error, RuntimeError) and "can't allocate memory" in str(error)


def out_of_memory_message(error: BaseException, hint: str) -> str:
    """One line for the user: which memory ran out, and ``hint`` (what to change)."""
    if isinstance(error, MemoryError) and str(error):  # said before trying (``Matcher.check_fits``)
        return f"{error}; {hint}"
    memory = "GPU memory" if isinstance(error, torch.OutOfMemoryError) else "memory"
    return f"out of {memory} at this size; {hint}"


def say_out_of_memory(error: BaseException, hint: str) -> int:
    """A command line's handling of ``error`` from a run: running out of memory is one "error: ..." line on stderr
    (exit code 2, returned); anything else is raised again."""
    if not out_of_memory(error):
        raise error
    print(f"error: {out_of_memory_message(error, hint)}", file=sys.stderr)
    return 2
