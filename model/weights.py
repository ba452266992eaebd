"""Where weights live: the project's bundled files and official checkpoints a user put in ``weights/``."""

from __future__ import annotations

from pathlib import Path

from .checkpoints import CheckpointError

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"

#: The project's own weights, trained on natural photos (see weights/README.md); used for both domains
#: until domain-specific fine-tunes exist.
BUNDLED = WEIGHTS_DIR / "loftr_live_compact_s.pt"
#: Official checkpoints, by preference, per domain, when a user placed them in weights/.
OFFICIAL = {"outdoor": ("outdoor_ds.ckpt", "loftr_outdoor.ckpt", "outdoor_ot.ckpt"),
            "indoor": ("indoor_ds_new.ckpt", "loftr_indoor_ds_new.ckpt", "indoor_ds.ckpt", "loftr_indoor.ckpt",
                       "indoor_ot.ckpt")}


def default_weights_path(domain: str = "outdoor") -> Path:
    """Official weights for ``domain`` if present in weights/, else the bundled ones."""
    for name in OFFICIAL[domain]:
        if (WEIGHTS_DIR / name).is_file():
            return WEIGHTS_DIR / name
    if BUNDLED.is_file():
        return BUNDLED
    raise CheckpointError(f"no {domain} weights found in {WEIGHTS_DIR}; pass a weights file with --weights")
