"""``python -m app``: start LoFTR Live (see ``--help``)."""

import sys

from model.interrupt import exit_at_once_on_ctrl_c, quit_at_once_on_ctrl_c


def run() -> int:
    """The app's exit code (``app.cli.main``; Ctrl-C while it starts: "interrupted" and 130; once it is done, the
    run's own exit code at once)."""
    with quit_at_once_on_ctrl_c():
        from model.compile_cache import keep_compile_cache

        from .cli import main

        keep_compile_cache()  # the window compiles LoFTR in the background: seconds from a kept cache
    return exit_at_once_on_ctrl_c(main())


if __name__ == "__main__":
    sys.exit(run())
