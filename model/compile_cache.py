"""Where ``torch.compile`` keeps what it compiled, for the command lines: in the user's cache folder."""

from __future__ import annotations

import os
from pathlib import Path

from .images import make_writable_folder

CACHE_VARIABLE = "TORCHINDUCTOR_CACHE_DIR"


def keep_compile_cache() -> Path | None:
    """Point torch's compile cache at ``$XDG_CACHE_HOME/loftr_live/torchinductor`` (``~/.cache/...``) unless
    ``TORCHINDUCTOR_CACHE_DIR`` is set; the folder in use, or None for torch's own default.

    Torch's default, ``/tmp/torchinductor_USER``, is emptied at every boot on most Linux systems, and compiling the
    CPU default from nothing takes about 40 s on two cores (``python -m model bench --compile`` prints it), during
    which the window matches a few frames per second; from a kept cache it takes seconds. A folder that cannot be
    made or written leaves torch's default.
    """
    if os.environ.get(CACHE_VARIABLE):
        return Path(os.environ[CACHE_VARIABLE])
    try:
        folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "loftr_live" / "torchinductor"
        make_writable_folder(folder)
    except (OSError, RuntimeError):  # RuntimeError: no home folder to be found
        return None
    os.environ[CACHE_VARIABLE] = str(folder)
    return folder
