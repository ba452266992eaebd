"""Copy a folder of photos as smaller grayscale JPEGs, keeping relative paths (and so the train/held-out split).

Used to send the training photos to a GPU machine whose upload is limited; training crops 320x240 views,
so a shorter side of 256 px loses little. Example:
    python tools/shrink_images.py ../shared/data/train_images .gpu_data/train_images --short_side 256
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from model.images import decode_file  # noqa: E402
from model.train.data import list_images  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source")
    parser.add_argument("destination")
    parser.add_argument("--short_side", type=int, default=256)
    parser.add_argument("--quality", type=int, default=75)
    args = parser.parse_args()
    source, destination = Path(args.source), Path(args.destination)
    total = 0
    for path in list_images(source):
        image = decode_file(path, cv2.IMREAD_GRAYSCALE)
        if image is None:
            continue
        scale = args.short_side / min(image.shape)
        if scale < 1:
            size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        target = destination / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, args.quality])
        target.write_bytes(data.tobytes())
        total += len(data)
    print(f"wrote {total / 1e6:.1f} MB to {destination}")


if __name__ == "__main__":
    main()
