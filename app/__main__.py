"""``python -m app``: start LoFTR Live (see ``--help``)."""

from model.interrupt import finish_command, quit_at_once_on_ctrl_c


def run() -> int:
    """The app's exit code (``app.cli.main``; Ctrl-C while it starts: "interrupted" and 130)."""
    with quit_at_once_on_ctrl_c():
        from model.compile_cache import keep_compile_cache

        from .cli import main

        keep_compile_cache()  # the window compiles LoFTR in the background: seconds from a kept cache
    return main()


if __name__ == "__main__":
    finish_command(run())
