"""A storm of random keys against the real window under X: every key of the window's action table (``app/actions.py``)
but quit and the file dialog, a few per second, then q; what went wrong, if anything.

Run it under a virtual X server (Debian's xvfb and xdotool, and Qt's X11 libraries: see ``tools/screenshot_gui.sh``):

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python tools/key_storm.py [--seconds 60] [--seed N] [app flags]

It prints the keys pressed last and one line: the app's exit code, whether its stderr has a traceback or an abort,
and whether an output file was left half written (snapshots and recordings go to a temporary folder). Exit code 1
when something went wrong: the key sequence is printed, and ``--seed`` repeats it.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from hostile_pass import half_written  # noqa: E402

from app.actions import ACTIONS  # noqa: E402

#: Qt's key names (``Action.keys``) that xdotool spells otherwise; a single letter is its lower case.
XDOTOOL_NAMES = {"Space": "space", "Backspace": "BackSpace", "BracketLeft": "bracketleft",
                 "BracketRight": "bracketright", "Comma": "comma", "Period": "period", "PageUp": "Prior",
                 "PageDown": "Next", "Delete": "Delete", "Left": "Left", "Right": "Right", "Home": "Home",
                 "End": "End", "F11": "F11", "Escape": "Escape"}
LEFT_OUT = ("quit", "open")  # quit ends the storm; open waits in a file dialog


def storm_keys() -> list[str]:
    """xdotool's names of every key the window binds, but quit's and the file dialog's."""
    keys = []
    for action in ACTIONS:
        if action.name in LEFT_OUT:
            continue
        for key in action.keys:
            if len(key) == 1:
                keys.append(key.lower())
            elif key in XDOTOOL_NAMES:
                keys.append(XDOTOOL_NAMES[key])
            else:
                raise SystemExit(f"error: no xdotool name for the key {key!r} of {action.name}: add it to "
                                 "XDOTOOL_NAMES")
    return keys


def window_id(app: subprocess.Popen[str], seconds: float) -> str | None:
    """The app's window (xdotool's id), once it is shown; None when the app ended or ``seconds`` passed first."""
    end = time.monotonic() + seconds
    while app.poll() is None and time.monotonic() < end:
        found = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", "LoFTR Live"], capture_output=True,
                               text=True).stdout.split()
        if found:
            return found[0]
        time.sleep(0.5)
    return None


def press(window: str, keys: list[str], seconds: float, rng: random.Random) -> list[str]:
    """Random keys to ``window`` for ``seconds``, 0.02-0.25 s apart; the keys pressed."""
    pressed = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        key = rng.choice(keys)
        pressed.append(key)
        subprocess.run(["xdotool", "key", "--window", window, key], check=False, capture_output=True)
        time.sleep(rng.uniform(0.02, 0.25))
    return pressed


def main() -> int:
    tool = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    tool.add_argument("--seconds", type=float, default=60.0, help="how long to press keys")
    tool.add_argument("--seed", type=int, help="repeat a storm (default: a new one each run, printed)")
    options, app_flags = tool.parse_known_args()
    if not os.environ.get("DISPLAY"):
        print('error: no X display: run it under one, e.g. xvfb-run -a -s "-screen 0 1920x1080x24" ...')
        return 2
    seed = options.seed if options.seed is not None else random.randrange(10**6)
    keys = storm_keys()
    out = Path(tempfile.mkdtemp(prefix="key_storm_"))
    app = subprocess.Popen([sys.executable, "-m", "app", "--output_dir", str(out), *app_flags], cwd=ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    window = window_id(app, 60)
    if window is None:
        app.kill()
        said = app.communicate()[1].strip().splitlines()
        print(f"error: the app showed no window ({said[-1] if said else 'no X display?'})")
        return 2
    time.sleep(5)  # the first results
    pressed = press(window, keys, options.seconds, random.Random(seed))
    subprocess.run(["xdotool", "key", "--window", window, "q"], check=False, capture_output=True)
    try:
        _, stderr = app.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        app.kill()
        _, stderr = app.communicate()
        stderr += "\n(still running 120 s after q)"
    checks = (("a traceback", "Traceback" in stderr), ("an abort", "terminate called" in stderr),
              (f"exit code {app.returncode}", app.returncode != 0), ("no exit after q", "still running" in stderr))
    problems = [text for text, bad in checks if bad]
    problems += [f"half written: {', '.join(names)}" for names in [half_written(out)] if names]
    print(f"seed {seed}: {len(pressed)} keys in {options.seconds:g} s, the last: {' '.join(pressed[-40:])}")
    print(f"{len(list(out.iterdir()))} files written in {out}; "
          + (f"went wrong: {'; '.join(problems)}\n{stderr[-3000:]}" if problems else "nothing went wrong"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
