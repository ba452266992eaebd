"""``Matcher``: LoFTR for applications. Images of any size in, matches in the caller's pixels out.

It owns pre-processing (grayscale, resize), device and precision, run-time matching settings, and anchor
caching: ``encode(image)`` runs the backbone (and the first transformer layer) once, and ``match(encoded, frame)``
runs them on the frame only.
"""

from __future__ import annotations

import copy
import functools
import math
import os
import re
import sys
import time
from dataclasses import dataclass, field, replace
from typing import Union

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .backbone import fold_batchnorm
from .checkpoints import LoadedWeights, load_weights
from .config import OFFICIAL_PRESETS
from .loftr import COARSE_STRIDE, FINE_BATCH_STEP, Features, LoFTR
from .matching import FINE_EXPECTATIONS
from .refine import REFINED, REFINEMENTS, DetailImage, FlowRefinement, detail_image, refine_keypoints
from .timing import StageTimer, maybe_stage

ImageLike = Union[np.ndarray, torch.Tensor]
#: (width, height) exactly, the longer side in pixels, or None for no resizing.
Resize = Union[tuple[int, int], int, None]

PRECISIONS = ("auto", "fp32", "fp16", "bf16")
_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


DEVICE_NAME = re.compile(r"cpu|cuda(:\d+)?")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """'auto' -> CUDA when available, else CPU. Asking for CUDA without it, or another device, is a ValueError."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not DEVICE_NAME.fullmatch(str(device)):
        raise ValueError(f"unknown device {str(device)!r}: use auto, cpu, cuda or cuda:N")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("CUDA was requested but no CUDA device is available; use --device cpu")
    return resolved


def device_argument(text: str) -> str:
    """argparse ``type`` of ``--device``: a name torch knows for a device this program runs on (whether CUDA is
    there is checked where the device is resolved, so commands for a GPU still parse on a machine without)."""
    import argparse

    if text != "auto" and not DEVICE_NAME.fullmatch(text):
        raise argparse.ArgumentTypeError(f"unknown device {text!r}: use auto, cpu, cuda or cuda:N")
    return text


def cpu_has_native_bf16() -> bool:
    """True when oneDNN reports native bf16 instructions (AVX512-BF16 or AMX) on this CPU."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """'auto' -> fp16 on CUDA, bf16 on a CPU with native bf16, fp32 otherwise."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "fp16"
    return "bf16" if cpu_has_native_bf16() else "fp32"


def network_size(height: int, width: int, resize: Resize) -> tuple[int, int]:
    """(height, width) the network sees. A resized image is snapped to multiples of 8, as LoFTR's grid wants."""
    if resize is None:
        return height, width
    if isinstance(resize, int):
        scale = resize / max(height, width)
        new_h, new_w = height * scale, width * scale
    else:
        new_w, new_h = resize
    return max(8, int(round(new_h / 8)) * 8), max(8, int(round(new_w / 8)) * 8)


def longer_side(resize: Resize) -> float:
    """The longer side ``resize`` brings an image to (infinite for None: images as they come)."""
    return math.inf if resize is None else float(resize if isinstance(resize, int) else max(resize))


def keeping_aspect(resize: Resize) -> Resize:
    """``resize`` for an image of another aspect ratio than the frames (e.g. a photo to find in them): (W, H)
    becomes the longer side max(W, H), so the image is not squashed; a longer side or None stays as it is."""
    return max(resize) if isinstance(resize, tuple) else resize


def resize_array(image: np.ndarray, resize: Resize) -> np.ndarray:
    """An image array at ``network_size``: area-averaged when shrunk (no aliasing), bilinear when enlarged
    (area interpolation enlarges into blocks, which the network matches as if they were structure)."""
    height, width = image.shape[:2]
    target = network_size(height, width, resize)
    if target == (height, width):
        return image
    interpolation = cv2.INTER_AREA if target[0] * target[1] < height * width else cv2.INTER_LINEAR
    return cv2.resize(image, (target[1], target[0]), interpolation=interpolation)


def image_px_per_network_px(shape: tuple[int, ...], resize: Resize) -> float:
    """How many pixels of a (height, width, ...) image one network pixel spans (the larger of x and y)."""
    height, width = shape[:2]
    network_height, network_width = network_size(height, width, resize)
    return max(width / network_width, height / network_height)


#: The largest side ``--resize`` accepts: LoFTR's coarse attention over a larger image would need tens of GB.
MAX_RESIZE = 4096


def parse_resize(values: list[int] | tuple[int, ...] | int | None) -> Resize:
    """Command-line ``--resize`` (W H | MAX | -1) -> Resize; impossible values raise ValueError."""
    if values is None:
        return None
    if isinstance(values, int):
        values = [values]
    values = list(values)
    if values != [-1] and max(values) > MAX_RESIZE:
        raise ValueError(f"--resize {' '.join(map(str, values))}: at most {MAX_RESIZE} pixels a side (a larger "
                         "network input would not fit in memory); use -1 to keep the frames' own size")
    if len(values) == 1:
        if values[0] == -1:
            return None
        if values[0] < 16:
            raise ValueError(f"--resize {values[0]}: the longer side must be at least 16 pixels (or -1 for none)")
        return int(values[0])
    if len(values) == 2:
        if min(values) < 16:
            raise ValueError(f"--resize {values[0]} {values[1]}: width and height must be at least 16 pixels")
        return int(values[0]), int(values[1])
    raise ValueError(f"--resize takes W H, MAX or -1, got {len(values)} numbers")


def gray_array(image: np.ndarray) -> np.ndarray:
    """A (H, W), (H, W, 1), BGR or BGRA array (OpenCV's layout) -> (H, W) in its own dtype."""
    array = image[:, :, 0] if image.ndim == 3 and image.shape[2] == 1 else image
    if array.ndim == 3 and array.shape[2] in (3, 4):
        code = cv2.COLOR_BGR2GRAY if array.shape[2] == 3 else cv2.COLOR_BGRA2GRAY
        array = cv2.cvtColor(np.ascontiguousarray(array), code)
    if array.ndim != 2:
        raise ValueError(f"unsupported image array shape {image.shape}; expected (H, W) or (H, W, 1|3|4)")
    return array


def to_gray_float(image: ImageLike) -> torch.Tensor:
    """Any supported image -> float32 tensor [1, 1, H, W] in [0, 1] (numpy: on the CPU; a tensor stays on its
    device, so a GPU pipeline's frames are not copied to the host and back).

    numpy: uint8/uint16/float arrays, (H, W), (H, W, 1), BGR (H, W, 3) or BGRA (H, W, 4), OpenCV's layout.
    torch: [H, W], [C, H, W] or [1, C, H, W] with C = 1 or 3 (RGB, torch's convention), float in [0, 1] or uint8.
    """
    if isinstance(image, np.ndarray):
        array = gray_array(image)
        if array.dtype == np.uint8:
            tensor = torch.from_numpy(np.ascontiguousarray(array)).float() / 255.0
        elif array.dtype == np.uint16:
            tensor = torch.from_numpy(array.astype(np.float32) / 65535.0)
        elif np.issubdtype(array.dtype, np.floating):
            tensor = torch.from_numpy(array.astype(np.float32))
        else:
            raise ValueError(f"unsupported image dtype {array.dtype}")
        return tensor[None, None]
    if isinstance(image, torch.Tensor):
        tensor = image.detach()
        tensor = tensor.float() / 255.0 if tensor.dtype == torch.uint8 else tensor.float()
        while tensor.dim() < 4:
            tensor = tensor.unsqueeze(0)
        if tensor.dim() != 4 or tensor.shape[0] != 1 or tensor.shape[1] not in (1, 3):
            raise ValueError(f"unsupported image tensor shape {tuple(image.shape)}; expected [H, W], [C, H, W] "
                             "or [1, C, H, W] with C = 1 or 3")
        if tensor.shape[1] == 3:
            weights = torch.tensor([0.299, 0.587, 0.114], device=tensor.device).view(1, 3, 1, 1)
            tensor = (tensor * weights).sum(1, keepdim=True)
        return tensor
    raise ValueError(f"unsupported image type {type(image).__name__}; pass a numpy array or a torch tensor")


@dataclass(frozen=True)
class EncodedImage:
    """An image's backbone features plus what is needed to map matches back to its pixels."""

    features: Features
    image_size: tuple[int, int]  # (height, width) of the caller's image
    network_size: tuple[int, int]  # (height, width) the network saw
    model_token: int  # which model made the features; features of another model are refused
    detail: DetailImage | None = None  # the image for the refinement on the images (None when it is off)

    @property
    def scale_xy(self) -> tuple[float, float]:
        """Caller pixels per network pixel, (x, y)."""
        return self.image_size[1] / self.network_size[1], self.image_size[0] / self.network_size[0]


@dataclass
class MatchResult:
    """Matches in the callers' pixel coordinates, sorted by confidence, descending.

    keypoints0/keypoints1: [N, 2] float32 (x, y); confidence: [N] float32; fine_std: [N] float32;
    timings_ms: per-stage milliseconds of this call (backbone, coarse_transformer, coarse_matching, fine).
    """

    keypoints0: np.ndarray
    keypoints1: np.ndarray
    confidence: np.ndarray
    fine_std: np.ndarray
    timings_ms: dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.confidence.shape[0])


class MatchLimits:
    """The run-time settings every matcher has: a confidence ``threshold`` in [0, 1] and ``max_matches`` (the most
    confident ones kept; None: all), checked when set."""

    _threshold: float
    _max_matches: int | None

    @property
    def threshold(self) -> float:
        return self._threshold

    @threshold.setter
    def threshold(self, value: float) -> None:
        if not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {value}")
        self._threshold = float(value)

    @property
    def max_matches(self) -> int | None:
        return self._max_matches

    @max_matches.setter
    def max_matches(self, value: int | None) -> None:
        if value is not None and value < 0:
            raise ValueError(f"max_matches must be >= 0 or None, got {value}")
        self._max_matches = value


@functools.lru_cache(maxsize=None)
def device_memory_bytes(device: torch.device) -> int:
    """The device's memory in bytes (a GPU's total, the machine's RAM for the CPU); 0 when unknown. Read once per
    device: every match checks against it."""
    if device.type == "cuda":
        return int(torch.cuda.get_device_properties(device).total_memory)
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # not every platform has these
        return 0


def cast_matrix_weights(model: nn.Module, dtype: torch.dtype) -> None:
    """Store the weights of every linear and convolution layer in ``dtype``, in place.

    Autocast runs those layers in half precision and otherwise casts their fp32 weights again on every call, a
    kernel per weight and frame. Weights stored in the autocast dtype are used as they are; norms and everything
    autocast keeps in fp32 keep fp32 parameters.
    """
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            module.to(dtype)


#: The modules ``Matcher.compile`` compiles: their shapes are fixed by the image size (the fine stage runs on
#: buckets of FINE_BATCH_STEP windows).
COMPILED_STAGES = ("backbone", "loftr_coarse", "loftr_fine")


def _shrink(frame: EncodedImage) -> float:
    """How much the network sees the frame shrunk (1: at its own size)."""
    return max(frame.image_size[0] / frame.network_size[0], frame.image_size[1] / frame.network_size[1])


class Matcher(MatchLimits):
    """LoFTR matching for applications.

    Args:
        weights: a weights file, a built :class:`LoFTR`, or None for the default weights of the device
            (official ones placed in weights/, else the project's bundled ones; see ``model.weights``).
        preset: force a preset for a weights file (see ``model.config.PRESETS``).
        device: 'auto', 'cpu', 'cuda' or 'cuda:N'.
        precision: 'auto', 'fp32', 'fp16' or 'bf16' (autocast; coarse matching and fine expectation stay fp32).
        resize: (W, H), longer side, or None; images are resized before the network and keypoints are mapped
            back, so results are always in the pixels of the images passed in.
        threshold, max_matches, border_rm: matching settings, changeable at run time.
        fine_expectation: 'auto', 'window' or 'peak' (``model.matching.FINE_EXPECTATIONS``), changeable at run
            time. 'auto' is 'window', the official expectation, for the official presets (their results stay
            the paper's and kornia's), and 'peak' for the project's weights, which it makes more accurate
            (``python -m model eval --compare W --compare_fine_expectation window``).

    ``refinement`` ('auto', 'none', 'flow', 'corners' or 'affine', ``model.refine``; changeable at run time, for
    images encoded from then on): each match refined on the images themselves after the network ('flow': keypoint 1
    from the network's keypoint 0; 'corners': keypoint 0 first moved to the most corner-like pixel of its coarse
    cell; 'affine': corners, and affine windows where the neighbouring matches show the content turned or scaled).
    'auto' (the start): 'affine' for the project's weights when the network sees the frame shrunk
    (``FlowRefinement.auto_min_shrink``), never for the official presets (the paper's and kornia's results).
    ``unverified`` ('auto', 'drop' or 'keep'; changeable at run time): the matches whose refinement did not hold are
    dropped or kept at the network's positions; 'auto' drops them where the network sees the frame shrunk, as the
    refinement's 'auto' refines (weights/README.md, Verified matches).
    """

    def __init__(self, weights: str | os.PathLike[str] | LoFTR | None = None, preset: str | None = None,
                 device: str | torch.device = "auto", precision: str = "auto", resize: Resize = (640, 480),
                 threshold: float | None = None, max_matches: int | None = None,
                 border_rm: int | None = None, fine_expectation: str = "auto") -> None:
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        self.loaded: LoadedWeights | None = None
        if isinstance(weights, LoFTR):
            model = weights
        else:
            from .weights import default_weights_path  # late import: weights imports this module's siblings

            path = weights if weights is not None else default_weights_path(device_type=self.device.type)
            self.loaded = load_weights(path, preset)
            model = self.loaded.model
        self.source_model = model
        # An inference copy: BN folded into the convolutions, channels-last layout for oneDNN/cuDNN convs.
        self.model = copy.deepcopy(model).eval()
        fold_batchnorm(self.model.backbone)
        self.model = self.model.to(self.device, memory_format=torch.channels_last)
        if self.precision != "fp32":
            cast_matrix_weights(self.model, _DTYPES[self.precision])
        self.config = model.config
        self.resize = resize
        self.threshold = model.config.match_coarse.thr if threshold is None else threshold
        self.max_matches = max_matches
        self.border_rm = model.config.match_coarse.border_rm if border_rm is None else border_rm
        if fine_expectation == "auto":
            fine_expectation = "window" if model.config.name in OFFICIAL_PRESETS else "peak"
        self.fine_expectation = fine_expectation
        self.refinement = "auto"
        self.flow_refinement = FlowRefinement()

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def compiled(self) -> bool:
        # Asked before every run; torch._dynamo is imported only by compiling (importing it takes seconds).
        dynamo = sys.modules.get("torch._dynamo.eval_frame")
        return dynamo is not None and isinstance(self.model.backbone, dynamo.OptimizedModule)

    def compile(self) -> None:
        """Compile the network's stages with ``torch.compile`` from the next match on (the backbone, the coarse and
        the fine transformers: 1.5x faster matching on a 2-core CPU at 320x240). Compiling happens at the first
        calls (about a minute the first time on a machine, seconds once its cache has them): call ``warm_up``."""
        if not self.compiled:
            for name in COMPILED_STAGES:
                setattr(self.model, name, torch.compile(getattr(self.model, name)))

    def warm_up(self) -> str | None:
        """Match a random frame against a random cached anchor at the matcher's size, with two numbers of matches
        (so that the fine stage's shapes are compiled too); None, or why compiling failed (e.g. no C++ compiler),
        the matcher then eager."""
        width, height = self.resize if isinstance(self.resize, tuple) else (640, 480)
        images = np.random.default_rng(0).integers(0, 255, (2, height, width), dtype=np.uint8)
        limits = (self.threshold, self.max_matches)
        try:
            self.threshold = 0.0
            anchor = self.encode(images[0])
            for count in (FINE_BATCH_STEP, 2 * FINE_BATCH_STEP):
                self.max_matches = count
                self.match(anchor, images[1])
        except Exception as error:  # noqa: BLE001 - a compiler missing or failing: matching goes on without it
            if not self.compiled:
                raise
            for name in COMPILED_STAGES:
                setattr(self.model, name, getattr(self.model, name)._orig_mod)
            return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        finally:
            self.threshold, self.max_matches = limits
        return None

    @property
    def fine_expectation(self) -> str:
        return self._fine_expectation

    @fine_expectation.setter
    def fine_expectation(self, value: str) -> None:
        if value not in FINE_EXPECTATIONS:
            raise ValueError(f"fine_expectation must be one of {', '.join(FINE_EXPECTATIONS)} (or 'auto' when "
                             f"constructing), got {value!r}")
        self._fine_expectation = value

    @property
    def refinement(self) -> str:
        return self._refinement

    @refinement.setter
    def refinement(self, value: str) -> None:
        if value not in ("auto", *REFINEMENTS):
            raise ValueError(f"refinement must be one of auto, {', '.join(REFINEMENTS)}, got {value!r}")
        self._refinement = value

    @property
    def unverified(self) -> str:
        """auto, drop or keep the matches whose refinement on the images did not hold (``FlowRefinement``)."""
        return self.flow_refinement.unverified

    @unverified.setter
    def unverified(self, value: str) -> None:
        self.flow_refinement = replace(self.flow_refinement, unverified=value)

    def _may_refine(self) -> bool:
        """Whether images are encoded with what the refinement needs."""
        return self.refinement in REFINED or (self.refinement == "auto" and self.config.name not in OFFICIAL_PRESETS)

    def _refines(self, frame: EncodedImage) -> bool:
        """Whether this frame's matches are refined: always with 'flow', 'corners' or 'affine'; with 'auto' (the
        project's weights) when the network sees the frame shrunk, where the refinement gains (weights/README.md,
        Refinement on the images)."""
        return self._may_refine() and (self.refinement in REFINED
                                        or _shrink(frame) >= self.flow_refinement.auto_min_shrink)

    @property
    def border_rm(self) -> int:
        return self._border_rm

    @border_rm.setter
    def border_rm(self, value: int) -> None:
        if value < 0:
            raise ValueError(f"border_rm must be >= 0, got {value}")
        self._border_rm = int(value)

    def _autocast(self) -> torch.autocast:
        if self.precision == "fp32":
            return torch.autocast(self.device.type, enabled=False)
        return torch.autocast(self.device.type, dtype=_DTYPES[self.precision])

    def preprocess(self, image: ImageLike, keep_aspect: bool = False,
                   network_scale: float = 1.0) -> tuple[torch.Tensor, tuple[int, int]]:
        """Image -> (network input [1, 1, h, w] on the device, caller's (height, width)).

        keep_aspect: when ``resize`` is (W, H), bring the image's longer side to max(W, H) instead of squashing it
            to W x H (for an image of another aspect ratio than the frames, e.g. a photo to find in them).
        network_scale: the network sees the image at this fraction of the size ``resize`` gives it (e.g. 0.5: an
            anchor for frames in which its content appears half as large).
        """
        resize = keeping_aspect(self.resize) if keep_aspect else self.resize
        tensor = None if isinstance(image, np.ndarray) else to_gray_float(image)
        height, width = image.shape[:2] if tensor is None else tensor.shape[2:]
        if network_scale != 1.0:
            full_height, full_width = network_size(int(height), int(width), resize)
            resize = (max(8, round(full_width * network_scale)), max(8, round(full_height * network_scale)))
        if tensor is None:
            assert isinstance(image, np.ndarray)
            tensor = to_gray_float(resize_array(image, resize))
        else:
            target = network_size(height, width, resize)
            if target != (height, width):
                tensor = F.interpolate(tensor, size=target, mode="bilinear", align_corners=False, antialias=True)
        tensor = tensor.to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        return tensor, (int(height), int(width))

    @torch.inference_mode()
    def encode(self, image: ImageLike, keep_aspect: bool = False, network_scale: float = 1.0) -> EncodedImage:
        """Everything about one image that does not depend on the other: to cache (e.g. the anchor of a
        live stream). Backbone features plus the coarse transformer's first (self-attention) layer.
        ``keep_aspect``, ``network_scale``: see ``preprocess``. MemoryError at once for an image too large to be
        matched against one of its own size (see ``check_fits``)."""
        size = self._network_hw(image)
        self.check_fits(size, size)
        encoded = self._extract(image, timer=None, keep_aspect=keep_aspect, network_scale=network_scale)
        with self._autocast():
            features = self.model.run_first_layer(encoded.features)
        # Kept with the encoding: a cached anchor's image is not at hand when a frame is matched against it.
        detail = detail_image(image, encoded.network_size, self.flow_refinement) if self._may_refine() else None
        return replace(encoded, features=features, detail=detail)

    def _extract(self, image: ImageLike, timer: StageTimer | None, keep_aspect: bool = False,
                 network_scale: float = 1.0) -> EncodedImage:
        """Backbone features of one image (timed as "backbone" when a timer is given)."""
        tensor, size = self.preprocess(image, keep_aspect, network_scale)
        with maybe_stage(timer, "backbone"), self._autocast():
            features = self.model.extract(tensor)
        return EncodedImage(features, size, (int(tensor.shape[2]), int(tensor.shape[3])), id(self.model))

    @torch.inference_mode()
    def match(self, image0: ImageLike | EncodedImage, image1: ImageLike | EncodedImage,
              region0: tuple[float, float, float, float] | None = None) -> MatchResult:
        """Match two images (or cached encodings). Zero matches gives empty arrays.

        region0: (x0, y0, x1, y1) in image 0's pixels: keep only matches whose keypoint0 lies in it. It is
            applied before ``max_matches``, so the cap selects the most confident matches of the region.
        """
        self.check_fits(self._network_hw(image0), self._network_hw(image1))
        timer = StageTimer(self.device)
        encoded = [self._encoded(image, timer) for image in (image0, image1)]
        allowed0 = None if region0 is None else self._cells_in_region(encoded[0], region0)
        with self._autocast():
            matches = self.model.match(encoded[0].features, encoded[1].features, thr=self.threshold,
                                       border_rm=self.border_rm, max_matches=self.max_matches, timer=timer,
                                       allowed0=allowed0, fine_expectation=self.fine_expectation)
        # One [M, 6] table, sorted and scaled on the device, then a single copy to the host (one sync on CUDA).
        table = torch.cat([matches.keypoints0.float(), matches.keypoints1.float(),
                           matches.confidence.float()[:, None], matches.fine_std.float()[:, None]], dim=1)
        table = table[torch.argsort(table[:, 4], descending=True)]
        table = (table * table.new_tensor([*encoded[0].scale_xy, *encoded[1].scale_xy, 1.0, 1.0])).cpu().numpy()
        keypoints0, keypoints1 = np.ascontiguousarray(table[:, 0:2]), np.ascontiguousarray(table[:, 2:4])
        timings = timer.ms
        start = time.perf_counter()  # host work after the copy: counted with the fine stage it continues
        refines = self._refines(encoded[1])
        details = (self._detail(image0, encoded[0]), self._detail(image1, encoded[1])) if refines else (None, None)
        if details[0] is not None and details[1] is not None:  # not with an encoding made while it was off
            network_px = (max(encoded[0].scale_xy), max(encoded[1].scale_xy))
            mode = "affine" if self.refinement == "auto" else self.refinement
            refined = refine_keypoints(details[0], details[1], keypoints0, keypoints1, network_px,
                                       self.flow_refinement, mode)
            kept = self.flow_refinement.kept(refined.verified, _shrink(encoded[1]))
            keypoints0, keypoints1, table = refined.keypoints0[kept], refined.keypoints1[kept], table[kept]
            timings["fine"] = timings.get("fine", 0.0) + (time.perf_counter() - start) * 1000.0
        return MatchResult(keypoints0=keypoints0, keypoints1=keypoints1, confidence=np.ascontiguousarray(table[:, 4]),
                           fine_std=np.ascontiguousarray(table[:, 5]), timings_ms=timings)

    def _network_hw(self, image: ImageLike | EncodedImage) -> tuple[int, int]:
        """The (height, width) the network sees an image at (an encoding's own; an image's at ``resize``)."""
        if isinstance(image, EncodedImage):
            return image.network_size
        height, width = image.shape[:2] if isinstance(image, np.ndarray) else image.shape[-2:]
        return network_size(int(height), int(width), self.resize)

    def check_fits(self, size0: tuple[int, int], size1: tuple[int, int]) -> None:
        """MemoryError, before any work, when matching at these network sizes (height, width) needs more memory than
        the device has: coarse matching holds two fp32 score matrices of (cells0 x cells1) at once (frames matched
        at their own size, ``resize=None``: a 8000x6000 photo would need terabytes)."""
        cells0, cells1 = (math.prod(size) // COARSE_STRIDE**2 for size in (size0, size1))
        needed = 2 * 4 * cells0 * cells1
        available = device_memory_bytes(self.device)
        if available and needed > available:
            sizes = " and ".join(f"{width}x{height}" for height, width in (size0, size1))
            where = "this machine" if self.device.type == "cpu" else "this GPU"
            raise MemoryError(f"matching at {sizes} needs about {needed / 1e9:.0f} GB for coarse matching, more than "
                              f"the {available / 1e9:.0f} GB of {where}")

    def _cells_in_region(self, encoded: EncodedImage, region: tuple[float, float, float, float]) -> torch.Tensor:
        """[1, Hc * Wc] bool: the coarse cells whose keypoint (in the caller's pixels) lies in ``region``."""
        height, width = encoded.features.coarse_hw
        scale_x, scale_y = encoded.scale_xy
        x = torch.arange(width, device=self.device, dtype=torch.float32) * (COARSE_STRIDE * scale_x)
        y = torch.arange(height, device=self.device, dtype=torch.float32) * (COARSE_STRIDE * scale_y)
        x0, y0, x1, y1 = region
        inside = ((y >= y0) & (y < y1))[:, None] & ((x >= x0) & (x < x1))[None, :]
        return inside.reshape(1, -1)

    def _detail(self, image: ImageLike | EncodedImage, encoded: EncodedImage) -> DetailImage | None:
        """The refinement's view of an image: an encoding's own (``encode``), else made now, only for a pair that is
        refined (not for every frame the network sees at its own size)."""
        if isinstance(image, EncodedImage):
            return image.detail
        return detail_image(image, encoded.network_size, self.flow_refinement)

    def _encoded(self, image: ImageLike | EncodedImage, timer: StageTimer) -> EncodedImage:
        if isinstance(image, EncodedImage):
            if image.model_token != id(self.model):
                raise ValueError("these features were encoded by another model; encode the image again")
            return image
        return self._extract(image, timer)
