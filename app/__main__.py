"""``python -m app``: start LoFTR Live (see ``--help``)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
