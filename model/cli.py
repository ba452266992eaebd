"""Sub-commands of ``python -m model``: each is an (add_arguments, run) pair; errors are one-line CliErrors."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from .checkpoints import CheckpointError
from .config import PRESETS
from .matcher import PRECISIONS, Matcher, parse_resize


class CliError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", help="weights file (official .ckpt, kornia copy, plain state dict or ours); "
                                          "default: the bundled weights")
    parser.add_argument("--preset", choices=sorted(PRESETS), help="force the preset of a weights file")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--precision", default="auto", choices=PRECISIONS,
                        help="auto: fp16 on CUDA, bf16 on a CPU with native bf16, else fp32")


def _build_matcher(args: argparse.Namespace, resize: object, **settings: object) -> Matcher:
    try:
        return Matcher(args.weights, preset=args.preset, device=args.device, precision=args.precision,
                       resize=resize, **settings)  # type: ignore[arg-type]
    except (CheckpointError, ValueError) as error:
        raise CliError(str(error)) from None


def _read_image(path: str) -> np.ndarray:
    if not Path(path).is_file():
        raise CliError(f"image not found: {path}")
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise CliError(f"cannot decode image {path} (not an image, or an unsupported format)")
    return image


def add_match_arguments(parser: argparse.ArgumentParser) -> None:
    """match two images and save the matches (npz) and/or a picture of them"""
    parser.add_argument("image0")
    parser.add_argument("image1")
    _add_model_arguments(parser)
    parser.add_argument("--resize", type=int, nargs="+", default=[640, 480],
                        help="W H (exact), MAX (longer side) or -1 (no resizing)")
    parser.add_argument("--threshold", type=float, help="coarse confidence threshold (default: the preset's)")
    parser.add_argument("--max_matches", type=int, help="keep at most this many matches, the most confident")
    parser.add_argument("--output", help="write keypoints0, keypoints1 (N x 2, input-file pixels), confidence (N)")
    parser.add_argument("--viz", help="write a PNG showing the matches coloured by confidence")


def run_match(args: argparse.Namespace) -> int:
    try:
        resize = parse_resize(args.resize)
    except ValueError as error:
        raise CliError(str(error)) from None
    image0, image1 = _read_image(args.image0), _read_image(args.image1)
    matcher = _build_matcher(args, resize, threshold=args.threshold, max_matches=args.max_matches)
    result = matcher.match(image0, image1)
    timing = ", ".join(f"{k} {v:.0f} ms" for k, v in result.timings_ms.items())
    print(f"{len(result)} matches with {matcher.name} on {matcher.device.type}/{matcher.precision} ({timing})")
    if args.output:
        _writable(args.output)
        np.savez(args.output, keypoints0=result.keypoints0, keypoints1=result.keypoints1,
                 confidence=result.confidence)
        print(f"wrote {args.output}")
    if args.viz:
        from .visualize import draw_matches

        _writable(args.viz)
        canvas = draw_matches(image0, image1, result.keypoints0, result.keypoints1, result.confidence)
        if not cv2.imwrite(args.viz, canvas):
            raise CliError(f"cannot write {args.viz}")
        print(f"wrote {args.viz}")
    return 0


def _writable(path: str) -> None:
    folder = Path(path).resolve().parent
    if not folder.is_dir():
        raise CliError(f"output folder does not exist: {folder}")


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """train LoFTR weights on synthetic homography pairs made from a folder of photos (resumable)"""
    from .train.trainer import TrainSettings

    defaults = TrainSettings(images="", out="")
    parser.add_argument("--images", required=True, help="folder of photos (searched recursively)")
    parser.add_argument("--out", required=True, help="run folder: checkpoints, log.jsonl, best.pt")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    parser.add_argument("--preset", default=defaults.preset, choices=sorted(PRESETS))
    parser.add_argument("--init", help="start from these weights (fine-tuning)")
    parser.add_argument("--steps", type=int, default=defaults.steps, help="total optimizer steps of the run")
    parser.add_argument("--batch", type=int, default=defaults.batch)
    parser.add_argument("--size", type=int, nargs=2, default=list(defaults.size), metavar=("W", "H"))
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--warmup", type=int, default=defaults.warmup)
    parser.add_argument("--precision", default=defaults.precision, choices=("fp32", "bf16"))
    parser.add_argument("--threads", type=int, default=defaults.threads)
    parser.add_argument("--workers", type=int, default=defaults.workers, help="data worker processes")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--eval_every", type=int, default=defaults.eval_every)
    parser.add_argument("--max_rotation", type=float, default=defaults.warp.max_rotation_deg, help="degrees")
    parser.add_argument("--max_scale", type=float, default=defaults.warp.max_scale)
    parser.add_argument("--max_perspective", type=float, default=defaults.warp.max_perspective)
    parser.add_argument("--max_translation", type=float, default=defaults.warp.max_translation)


def run_train(args: argparse.Namespace) -> int:
    from .train.data import WarpRanges
    from .train.trainer import TrainSettings, train

    settings = TrainSettings(
        images=args.images, out=args.out, preset=args.preset, init=args.init, steps=args.steps, batch=args.batch,
        size=tuple(args.size), lr=args.lr, warmup=args.warmup, precision=args.precision, threads=args.threads,
        workers=args.workers, seed=args.seed, eval_every=args.eval_every,
        warp=WarpRanges(args.max_rotation, args.max_scale, args.max_perspective, args.max_translation))
    try:
        best = train(settings, resume=args.resume)
    except (CheckpointError, ValueError) as error:
        raise CliError(str(error)) from None
    print(f"best weights so far: {best}")
    return 0


Command = tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]
COMMANDS: dict[str, Command] = {
    "match": (add_match_arguments, run_match),
    "train": (add_train_arguments, run_train),
}
