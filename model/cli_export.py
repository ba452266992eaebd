"""``python -m model export``: a weights file as a static-size ONNX graph, checked against PyTorch's matches."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from .checkpoints import CheckpointError
from .config import PRESETS
from .errors import CliError
from .matching import FINE_EXPECTATIONS

if TYPE_CHECKING:
    from .export import OnnxMatcher
    from .matcher import Matcher

ONNX_PACKAGES = "onnx onnxscript onnxruntime"


def require_onnx(runtime_only: bool = False) -> None:
    """One clear error when the ONNX packages are missing."""
    modules = ("onnxruntime",) if runtime_only else ("onnx", "onnxscript", "onnxruntime")
    for module in modules:
        try:
            __import__(module)
        except ImportError:
            raise CliError(f"the {module} package is not installed: pip install {ONNX_PACKAGES} (they are in "
                              "requirements-dev.txt)") from None


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    """write a weights file as an ONNX graph at one image size, checked against PyTorch's matches"""
    parser.add_argument("weights", help="weights file (official .ckpt, kornia copy or ours)")
    parser.add_argument("--resize", type=int, nargs=2, metavar=("W", "H"), default=[640, 480],
                        help="the network's input size (ONNX graphs have static sizes; images are resized to it)")
    parser.add_argument("--output", required=True, help="the .onnx file to write")
    parser.add_argument("--preset", choices=sorted(PRESETS), help="force the preset of the weights file")
    parser.add_argument("--candidates", type=int, default=1024,
                        help="coarse matches entering the fine stage, the most confident (capped at the number of "
                             "coarse cells): the graph's static number of matches before the threshold")
    parser.add_argument("--threshold", type=float, help="default coarse threshold stored in the file (default: the "
                                                        "preset's); applied after the graph, changeable at run time")
    parser.add_argument("--fine_expectation", default="auto", choices=("auto", *FINE_EXPECTATIONS),
                        help="sub-pixel refinement (see python -m model match --help)")
    parser.add_argument("--no_check", action="store_true",
                        help="skip matching the sample pair with both PyTorch and ONNX Runtime")


def run_export(args: argparse.Namespace) -> int:
    from .bench import agreement, sample_pair
    from .export import OnnxMatcher, coarse_cells

    width, height = args.resize
    if min(width, height) < 32 or max(width, height) > 4096 or width % 8 or height % 8:
        raise CliError(f"--resize {width} {height}: each side must be a multiple of 8 from 32 to 4096")
    if args.candidates < 1:
        raise CliError("--candidates must be at least 1")
    output = Path(args.output)
    if output.suffix.lower() != ".onnx" or not output.parent.is_dir():
        raise CliError(f"--output {output}: give a .onnx path in an existing folder")
    require_onnx()
    candidates = min(args.candidates, coarse_cells(width, height))
    matcher = _export(args, (width, height), candidates, args.threshold, output)
    matcher.max_matches = candidates  # PyTorch's matches as the graph's: the most confident candidates
    print(f"wrote {output} ({output.stat().st_size / 1e6:.1f} MB): {matcher.name} at {width}x{height}, "
          f"{candidates} coarse candidates, threshold {matcher.threshold:g}")
    if not args.no_check:
        image0, image1 = sample_pair()
        expected, exported = matcher.match(image0, image1), OnnxMatcher(output).match(image0, image1)
        share, shift = agreement(expected, exported)
        print(f"check on the sample pair: PyTorch {len(expected)} matches, ONNX Runtime {len(exported)}; "
              f"{share * 100:.1f}% of PyTorch's found again, median keypoint difference {shift:.4f} px")
        if share < 0.99:
            raise CliError("the exported graph does not reproduce PyTorch's matches; please report it")
    return 0


def add_backend_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", default="torch", choices=("torch", "onnxruntime"),
                        help="onnxruntime: run an exported graph on ONNX Runtime (CPU): --weights a .onnx from "
                             "python -m model export, or weights exported for this run")


def onnx_matcher(args: argparse.Namespace, resize: tuple[int, int], folder: str, threshold: float | None = None,
                 max_matches: int | None = None) -> OnnxMatcher:
    """``--backend onnxruntime``'s matcher: ``args.weights`` if it is a .onnx, else those weights (or the bundled
    ones) exported into ``folder`` at ``resize`` with ``max_matches`` (or 1024) candidates."""
    from .export import DEFAULT_CANDIDATES, OnnxMatcher, coarse_cells

    require_onnx(runtime_only=bool(args.weights and args.weights.endswith(".onnx")))
    if args.device not in ("auto", "cpu"):
        raise CliError("--backend onnxruntime runs on the CPU; leave --device out")
    if args.weights and args.weights.endswith(".onnx"):
        if not Path(args.weights).is_file():
            raise CliError(f"weights file not found: {args.weights}")
        try:
            return OnnxMatcher(args.weights, threshold, max_matches)
        except ValueError as error:
            raise CliError(f"{args.weights}: {error}") from None
    if not isinstance(resize, tuple) or len(resize) != 2:
        raise CliError("--backend onnxruntime exports at one size: give --resize W H")
    path = Path(folder) / "model.onnx"
    _export(args, resize, min(max_matches or DEFAULT_CANDIDATES, coarse_cells(*resize)), threshold, path)
    return OnnxMatcher(path, threshold, max_matches)


def _export(args: argparse.Namespace, resize: tuple[int, int], candidates: int, threshold: float | None,
            output: Path) -> Matcher:
    """Export ``args.weights`` (``--preset``, ``--fine_expectation``) at ``resize`` to ``output``; the fp32 matcher
    it was made from, or one clear CliError."""
    from .export import ExportInfo, export_onnx
    from .matcher import Matcher

    try:
        matcher = Matcher(args.weights, preset=args.preset, device="cpu", precision="fp32", resize=resize,
                          threshold=threshold, fine_expectation=args.fine_expectation)
    except (CheckpointError, ValueError) as error:
        raise CliError(str(error)) from None
    matcher.refinement = "none"  # the graph is the network alone; the refinement on the images runs on the host
    source = matcher.loaded.description if matcher.loaded else str(args.weights)
    info = ExportInfo(matcher.name, *resize, candidates, matcher.threshold, matcher.border_rm,
                      matcher.fine_expectation, source)
    export_onnx(matcher.model, info, output)
    return matcher
