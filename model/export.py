"""ONNX export of a LoFTR model at a fixed size, and matching with ONNX Runtime.

The exported graph follows the rules that make LoFTR-family models portable: static image sizes, a fixed number
of coarse candidates (the ``candidates`` most confident mutual nearest neighbours, so the fine stage has a
static shape), no data-dependent slicing and no einsum (``torch.onnx.is_in_onnx_export`` switches the
attention and the fine expectation to plain matrix products). The coarse threshold is applied after the graph,
so it stays a run-time setting.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch import nn

from .loftr import COARSE_STRIDE, LoFTR
from .matcher import MatchLimits, MatchResult, Resize, network_size, resize_array, to_gray_float
from .matching import CoarseMatches, _inside_border
from .timing import StageTimer

#: The ONNX operator set the export targets (ONNX Runtime 1.16 and later run it).
OPSET = 18

#: Default number of coarse candidates entering the fine stage (capped at the number of coarse cells).
DEFAULT_CANDIDATES = 1024

OUTPUT_NAMES = ("keypoints0", "keypoints1", "confidence", "fine_std")


class StaticLoFTR(nn.Module):
    """LoFTR with static shapes: ``image0``, ``image1`` [1, 1, H, W] in [0, 1] -> keypoints0 [K, 2], keypoints1
    [K, 2] (network pixels), confidence [K] (0 for candidates that are not mutual nearest neighbours inside the
    border), fine_std [K], sorted by confidence, descending.

    Args:
        model: the network (evaluation mode; its weights are shared, not copied).
        candidates: K, the most confident coarse matches kept for the fine stage.
        border_rm: coarse cells at each border that never match.
        fine_expectation: see ``model.matching.FINE_EXPECTATIONS``.
    """

    def __init__(self, model: LoFTR, candidates: int, border_rm: int, fine_expectation: str) -> None:
        super().__init__()
        self.model = model
        self.candidates = candidates
        self.border_rm = border_rm
        self.fine_expectation = fine_expectation

    def forward(self, image0: torch.Tensor, image1: torch.Tensor) -> tuple[torch.Tensor, ...]:
        model = self.model
        features0, features1 = model.extract(image0), model.extract(image1)
        tokens0, tokens1 = model.loftr_coarse(features0.tokens(), features1.tokens())
        conf = model.coarse_matching.confidence(tokens0, tokens1)  # [1, L, S]
        coarse = self._top_candidates(conf, features0.coarse_hw, features1.coarse_hw)
        expec_f = model.refine(features0, features1, tokens0, tokens1, coarse, self.fine_expectation)
        keypoints0, keypoints1 = model.keypoints(coarse, expec_f, features0.coarse_hw[1], features1.coarse_hw[1])
        return keypoints0, keypoints1, coarse.mconf, expec_f[:, 2]

    def _top_candidates(self, conf: torch.Tensor, hw0_c: tuple[int, int], hw1_c: tuple[int, int]) -> CoarseMatches:
        """The K best mutual nearest neighbours of ``conf`` [1, L, S]; the others' confidence set to 0."""
        row_max, j_of_row = conf.max(dim=2)
        col_max = conf.amax(dim=1)
        inside0 = _inside_border(1, *hw0_c, self.border_rm, conf.device, None)
        inside1 = _inside_border(1, *hw1_c, self.border_rm, conf.device, None)
        mutual = (torch.gather(col_max, 1, j_of_row) == row_max) & inside0 & torch.gather(inside1, 1, j_of_row)
        score = torch.where(mutual, row_max, torch.zeros_like(row_max))[0]
        count = min(self.candidates, score.shape[0])
        mconf, i_ids = torch.topk(score, count)
        return CoarseMatches(torch.zeros_like(i_ids), i_ids, j_of_row[0, i_ids], mconf)


@dataclass(frozen=True)
class ExportInfo:
    """What an exported file was made from, stored in its metadata so that the file describes itself."""

    preset: str
    width: int
    height: int
    candidates: int
    threshold: float
    border_rm: int
    fine_expectation: str
    source: str

    def metadata(self) -> dict[str, str]:
        return {key: str(value) for key, value in self.__dict__.items()}

    @classmethod
    def from_metadata(cls, metadata: dict[str, str]) -> ExportInfo:
        missing = [key for key in cls.__dataclass_fields__ if key not in metadata]
        if missing:
            raise ValueError(f"not a LoFTR Live export (its metadata lacks {', '.join(missing)}); export it with "
                             "python -m model export")
        return cls(metadata["preset"], int(metadata["width"]), int(metadata["height"]),
                   int(metadata["candidates"]), float(metadata["threshold"]), int(metadata["border_rm"]),
                   metadata["fine_expectation"], metadata["source"])


def export_onnx(model: LoFTR, info: ExportInfo, output: str | os.PathLike[str]) -> None:
    """Write ``model`` (as fp32, in evaluation mode) as a static-shape ONNX graph (``StaticLoFTR``) with ``info`` in its
    metadata, atomically."""
    import onnx

    model = copy.deepcopy(model).float().eval()
    # The positional encoding is a table for images up to 2048 px; the graph only needs its corner.
    encoding = model.pos_encoding
    encoding.pe = encoding.pe[:, :, : info.height // COARSE_STRIDE, : info.width // COARSE_STRIDE].contiguous()
    wrapper = StaticLoFTR(model, info.candidates, info.border_rm, info.fine_expectation).eval()
    images = (torch.rand(1, 1, info.height, info.width), torch.rand(1, 1, info.height, info.width))
    output = Path(output)
    with tempfile.TemporaryDirectory(dir=output.parent) as folder:
        staged = Path(folder) / "model.onnx"
        with torch.no_grad(), _quiet_exporter():
            program = torch.onnx.export(wrapper, images, dynamo=True, opset_version=OPSET, external_data=False,
                                        input_names=["image0", "image1"], output_names=list(OUTPUT_NAMES),
                                        verbose=False)
        assert program is not None
        proto = program.model_proto
        for key, value in info.metadata().items():
            proto.metadata_props.add(key=key, value=value)
        onnx.save_model(proto, staged)
        os.replace(staged, output)


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporter's notes (torchvision's missing operators, constant folding it skips, deprecations) are not the
    user's concern: hidden, errors kept."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript", "onnx_ir")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


class OnnxMatcher(MatchLimits):
    """Matching with an exported file on ONNX Runtime; the same ``match``/``encode`` interface and results as
    ``model.matcher.Matcher`` (keypoints in the pixels of the images passed in, sorted by confidence).

    The network size is the export's: images are resized to it (``resize`` is fixed). ``threads``: ONNX Runtime's
    intra-op threads (None: its default, one per core).
    """

    device = torch.device("cpu")
    precision = "fp32"

    def __init__(self, path: str | os.PathLike[str], threshold: float | None = None,
                 max_matches: int | None = None, threads: int | None = None) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.info = ExportInfo.from_metadata(self.session.get_modelmeta().custom_metadata_map)
        self.resize: Resize = (self.info.width, self.info.height)
        self.threshold = self.info.threshold if threshold is None else threshold
        self.max_matches = max_matches

    @property
    def name(self) -> str:
        return f"{self.info.preset} (ONNX Runtime)"

    def encode(self, image: np.ndarray) -> np.ndarray:
        """The image as the network's input (the graph has no cache to reuse, so this only saves the resize)."""
        return self._network_input(image)

    def _network_input(self, image: np.ndarray) -> np.ndarray:
        height, width = network_size(*image.shape[:2], self.resize)
        if (height, width) != (self.info.height, self.info.width):
            raise ValueError(f"this export runs at {self.info.width}x{self.info.height}; the image gives "
                             f"{width}x{height}")
        return to_gray_float(resize_array(image, self.resize)).numpy()

    def match(self, image0: np.ndarray, image1: np.ndarray, *_: object) -> MatchResult:
        """Match two BGR/gray images (or ``encode``'s results); zero matches gives empty arrays."""
        timer = StageTimer(self.device)
        inputs = [image if image.ndim == 4 else self._network_input(image) for image in (image0, image1)]
        with timer.stage("onnxruntime"):
            keypoints0, keypoints1, confidence, fine_std = self.session.run(
                list(OUTPUT_NAMES), {"image0": inputs[0], "image1": inputs[1]})
        keep = confidence > max(self.threshold, 0.0)
        if self.max_matches is not None:
            keep &= np.arange(len(keep)) < self.max_matches
        scales = [self._scale(image) for image in (image0, image1)]
        return MatchResult(keypoints0=keypoints0[keep] * scales[0], keypoints1=keypoints1[keep] * scales[1],
                           confidence=confidence[keep], fine_std=fine_std[keep], timings_ms=timer.ms)

    def _scale(self, image: np.ndarray) -> np.ndarray:
        if image.ndim == 4:
            return np.ones(2, np.float32)
        height, width = image.shape[:2]
        return np.array([width / self.info.width, height / self.info.height], np.float32)


def coarse_cells(width: int, height: int) -> int:
    """The number of coarse cells of a W x H network input."""
    return (height // COARSE_STRIDE) * (width // COARSE_STRIDE)
