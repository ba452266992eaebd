"""``python -m app``: start LoFTR Live (see ``--help``)."""

import sys

from model.interrupt import quit_at_once_on_ctrl_c


def run() -> int:
    """The app's exit code (``app.cli.main``; Ctrl-C while it starts: "interrupted" and 130)."""
    with quit_at_once_on_ctrl_c():
        from .cli import main
    return main()


if __name__ == "__main__":
    sys.exit(run())
