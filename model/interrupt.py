"""Ctrl-C while the command lines start or end: one line and exit code 130 (or the run's own), never a traceback
or a hang; and ending a process that is done while another thread still runs torch."""

from __future__ import annotations

import os
import signal
import sys
import threading
from contextlib import contextmanager, suppress
from typing import Any, Iterator, NoReturn


def _quit_now(signum: int, frame: Any) -> None:
    os.write(2, b"interrupted\n")
    os._exit(128 + signum)


@contextmanager
def quit_at_once_on_ctrl_c() -> Iterator[None]:
    """While torch, OpenCV or Qt import, Ctrl-C ends the process at once: a KeyboardInterrupt raised inside an
    extension module's initialisation left the interpreter hanging at exit, or killed by the signal after all.
    Nothing has been written yet at that point, so nothing is lost. The previous handler comes back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, _quit_now)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def exit_at_once_on_ctrl_c(code: int) -> int:
    """Once a command is done (everything written and said): a Ctrl-C while the interpreter shuts down (joining
    writer threads, freeing the model) ends it at once with the command's exit ``code``, not with a
    KeyboardInterrupt in the middle of that. Returns ``code``."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, lambda signum, frame: end_process(code))
    return code


def finish_command(code: int) -> NoReturn:
    """Leave a command's process with exit ``code`` once the command is done (everything written and said).

    After a Ctrl-C (130) at once: CPython 3.11 remembers a KeyboardInterrupt that went through an ``exec`` of source
    text (a dataclass being made while torch imports a module) even after it was caught, and at the end of its
    shutdown kills its own process with SIGINT in place of the exit code. Otherwise through the interpreter's
    shutdown, which a Ctrl-C then ends at once too (``exit_at_once_on_ctrl_c``).
    """
    if code == 128 + signal.SIGINT:
        end_process(code)
    sys.exit(exit_at_once_on_ctrl_c(code))


def end_process(code: int) -> NoReturn:
    """End the process now with exit ``code``, printed output flushed, without the interpreter's shutdown.

    For a command that is done (everything written and said) while another thread still runs torch, e.g. a model
    compiled in the background: the shutdown stops such a thread where it next takes the GIL, which inside torch's
    C++ code aborts the whole process ("terminate called without an active exception", exit code 134).
    """
    for stream in (sys.stdout, sys.stderr):
        with suppress(OSError, ValueError):  # a closed pipe or stream: nothing more can be said anyway
            stream.flush()
    os._exit(code)
