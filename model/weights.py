"""Where weights live (bundled files, official checkpoints in ``weights/``) and fetching official ones.

``python -m model.weights download outdoor_ds indoor_ds_new`` downloads, resumes and verifies.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TextIO

from .checkpoints import CheckpointError, load_weights

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"

#: The project's own weights, trained on natural photos (see weights/README.md), by (domain, device kind): on a
#: CPU the most accurate model that runs at >= 20 FPS at 320x240 on 2 cores (with the app's match cap): with native
#: bf16 (AVX512-BF16, AMX) that is the GPU's model, for both domains (on real indoor pairs at 320x240 it beats the
#: indoor fine-tune too: training/eval_320_compact_vs_xfeat_indoor.txt), without it the XFeat-trunk one and its
#: fine-tune on indoor scenes; on a GPU (real-time with any of them) the most accurate one.
BUNDLED = {("outdoor", "cpu"): WEIGHTS_DIR / "loftr_live_xfeat_s.pt",
           ("indoor", "cpu"): WEIGHTS_DIR / "loftr_live_xfeat_s_indoor.pt",
           ("outdoor", "cpu_bf16"): WEIGHTS_DIR / "loftr_live_compact_s.pt",
           ("indoor", "cpu_bf16"): WEIGHTS_DIR / "loftr_live_compact_s.pt",
           ("outdoor", "cuda"): WEIGHTS_DIR / "loftr_live_compact_s.pt",
           ("indoor", "cuda"): WEIGHTS_DIR / "loftr_live_compact_s.pt"}
#: Official checkpoints, by preference, per domain, when a user placed them in weights/.
OFFICIAL = {"outdoor": ("outdoor_ds.ckpt", "loftr_outdoor.ckpt", "outdoor_ot.ckpt"),
            "indoor": ("indoor_ds_new.ckpt", "loftr_indoor_ds_new.ckpt", "indoor_ds.ckpt", "loftr_indoor.ckpt",
                       "indoor_ot.ckpt")}


def device_kind(device_type: str) -> str:
    """"cuda", "cpu_bf16" (a CPU with native bf16, where autocast runs bf16: the larger model is fast enough) or
    "cpu"."""
    if device_type == "cuda":
        return "cuda"
    from .matcher import cpu_has_native_bf16  # late import: matcher imports this module lazily

    return "cpu_bf16" if cpu_has_native_bf16() else "cpu"


def default_weights_path(domain: str = "outdoor", device_type: str = "cpu") -> Path:
    """Official weights for ``domain`` if present in weights/, else the bundled ones for ``domain`` on
    ``device_type`` ('cpu' or 'cuda'; another bundled file when the preferred one is missing)."""
    for name in OFFICIAL[domain]:
        if (WEIGHTS_DIR / name).is_file():
            return WEIGHTS_DIR / name
    preferred = BUNDLED[(domain, device_kind(device_type))]
    for path in (preferred, *BUNDLED.values()):
        if path.is_file():
            return path
    raise CheckpointError(f"no {domain} weights found in {WEIGHTS_DIR}; pass a weights file with --weights")


#: Public mirrors of the official checkpoints (kornia's Hugging Face copies, with a university fallback).
#: The optimal-transport files have no public mirror known to this project.
MIRRORS: dict[str, tuple[str, ...]] = {
    "outdoor_ds": ("https://huggingface.co/kornia/loftr/resolve/main/loftr_outdoor.ckpt",
                   "https://cmp.felk.cvut.cz/~mishkdmy/models/loftr_outdoor.ckpt"),
    "indoor_ds_new": ("https://huggingface.co/kornia/loftr/resolve/main/loftr_indoor_ds_new.ckpt",
                      "https://cmp.felk.cvut.cz/~mishkdmy/models/loftr_indoor_ds_new.ckpt"),
    "indoor_ds": ("https://huggingface.co/kornia/loftr/resolve/main/loftr_indoor.ckpt",
                  "https://cmp.felk.cvut.cz/~mishkdmy/models/loftr_indoor.ckpt"),
}


class DownloadError(Exception):
    """A download that did not produce a verified checkpoint; one line for the user."""


def _fetch(url: str, partial: Path, stream: TextIO, chunk: int = 1 << 16) -> None:
    """Download ``url`` into ``partial``, continuing an earlier partial download when the server allows."""
    have = partial.stat().st_size if partial.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=30)
    except urllib.error.HTTPError as error:
        if error.code == 416 and have:  # nothing left to fetch: the partial file is complete
            return
        raise
    with response:
        resumed = response.status == 206
        mode = "ab" if resumed else "wb"
        done = have if resumed else 0
        length = response.headers.get("Content-Length")
        total = done + int(length) if length else None
        started, last_print = time.perf_counter(), 0.0
        with partial.open(mode) as file:
            while True:
                block = response.read(chunk)
                if not block:
                    break
                file.write(block)
                done += len(block)
                now = time.perf_counter()
                if now - last_print > 0.2 or (total and done == total):
                    rate = (done - (have if resumed else 0)) / max(now - started, 1e-6) / 1e6
                    size = f"{done / 1e6:.1f}/{total / 1e6:.1f} MB" if total else f"{done / 1e6:.1f} MB"
                    stream.write(f"\r  {partial.name.removesuffix('.part')}: {size}  {rate:.1f} MB/s ")
                    stream.flush()
                    last_print = now
        stream.write("\n")
        if total is not None and done != total:
            raise DownloadError(f"download of {url} stopped at {done} of {total} bytes; run again to resume")


def download(name: str, folder: Path = WEIGHTS_DIR, urls: tuple[str, ...] | None = None,
             stream: TextIO = sys.stderr) -> Path:
    """Fetch official checkpoint ``name`` into ``folder``: resumable, verified by a strict load, atomic."""
    if urls is None:
        if name not in MIRRORS:
            known = ", ".join(MIRRORS)
            raise DownloadError(f"no public mirror known for {name!r}; downloadable: {known}")
        urls = MIRRORS[name]
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}.ckpt"
    partial = folder / f"{name}.ckpt.part"
    problems = []
    for url in urls:
        stream.write(f"downloading {name} from {url}\n")
        try:
            _fetch(url, partial, stream)
        except urllib.error.HTTPError as error:
            problems.append(f"{url}: HTTP {error.code} {error.reason}")
            continue
        except (urllib.error.URLError, OSError, DownloadError) as error:
            problems.append(f"{url}: {getattr(error, 'reason', error)}")
            continue
        try:
            load_weights(partial, preset=name)
        except CheckpointError as error:
            partial.unlink(missing_ok=True)
            problems.append(f"{url}: downloaded file is not a valid {name} checkpoint ({error})")
            continue
        os.replace(partial, target)
        stream.write(f"verified and saved {target}\n")
        return target
    raise DownloadError(f"could not download {name}: " + "; ".join(problems))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.weights",
                                     description="Fetch official LoFTR checkpoints (needs internet).")
    commands = parser.add_subparsers(dest="command", required=True)
    fetch = commands.add_parser("download", help="download, resume and verify official checkpoints")
    fetch.add_argument("names", nargs="+", help=f"any of: {', '.join(MIRRORS)}")
    fetch.add_argument("--dir", default=str(WEIGHTS_DIR), help="destination folder")
    fetch.add_argument("--url", action="append", help="use this URL instead of the known mirrors (repeatable)")
    args = parser.parse_args(argv)
    try:
        for name in args.names:
            download(name, Path(args.dir), tuple(args.url) if args.url else None)
    except DownloadError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted; run the same command again to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
