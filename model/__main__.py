"""Command line: ``python -m model {match,bench,train,eval,export,label} ...``; ``--help`` on each for details."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .interrupt import finish_command, quit_at_once_on_ctrl_c


def main(argv: list[str] | None = None) -> int:
    """The command's exit code; Ctrl-C: "interrupted" and 130, while torch is still being imported too.

    match, bench and eval write nothing until they are done (and then atomically), and import more as they go
    (kornia, XFeat, LightGlue; the parser itself imports the trainer): Ctrl-C ends them at once. label writes each
    pair's file atomically as it goes, so Ctrl-C ends it at once too and a rerun resumes. train stops on Ctrl-C
    itself, after a checkpoint.
    """
    with quit_at_once_on_ctrl_c():
        from .cli import COMMANDS
        from .compile_cache import keep_compile_cache
        from .images import silence_opencv_warnings

        keep_compile_cache()  # bench --compile and the window share what was compiled

        parser = argparse.ArgumentParser(prog="python -m model",
                                         description="LoFTR matching, benchmarking and training.")
        commands = parser.add_subparsers(dest="command", required=True)
        for name, (add_arguments, _) in COMMANDS.items():
            add_arguments(commands.add_parser(name, help=add_arguments.__doc__,
                                              formatter_class=argparse.ArgumentDefaultsHelpFormatter))
        args = parser.parse_args(argv)
        silence_opencv_warnings()
        if args.command != "train":
            return _run(COMMANDS, args)
    return _run(COMMANDS, args)


def _run(commands: dict[str, Any], args: argparse.Namespace) -> int:
    from .errors import CliError, say_out_of_memory

    try:
        return commands[args.command][1](args) or 0
    except CliError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (RuntimeError, MemoryError) as error:
        return say_out_of_memory(error, "use a smaller --batch or --size" if args.command == "train" else
                                 "use a smaller --resize (e.g. --resize 640 480)")
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    finish_command(main())
