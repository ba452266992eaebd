"""Speed benchmark: per-stage milliseconds and frames per second, against kornia's LoFTR in the same run."""

from __future__ import annotations

import copy
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from .classical import AnyMatcher
from .matcher import Matcher, MatchResult
from .op_counts import OpCounts, count_ops

SAMPLE_VIDEO = Path(__file__).resolve().parent.parent / "assets" / "sample.mp4"


def sample_pair(first: int = 0, second: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Two BGR frames of the bundled sample video (a real camera-like motion apart)."""
    capture = cv2.VideoCapture(str(SAMPLE_VIDEO))
    frames: dict[int, np.ndarray] = {}
    index = 0
    while len(frames) < 2:
        ok, frame = capture.read()
        if not ok:
            raise RuntimeError(f"cannot read frames {first} and {second} of {SAMPLE_VIDEO}")
        if index in (first, second):
            frames[index] = frame
        index += 1
    capture.release()
    return frames[first], frames[second]


@dataclass
class BenchResult:
    """Median milliseconds per call and per stage, and the number of matches."""

    label: str
    ms: float
    stages: dict[str, float]
    matches: int

    @property
    def fps(self) -> float:
        return 1000.0 / self.ms if self.ms > 0 else float("inf")

    def line(self) -> str:
        stages = " | ".join(f"{k} {v:.1f}" for k, v in self.stages.items())
        return f"{self.label:<28} {self.ms:9.1f} ms  {self.fps:7.2f} fps  [{stages}]  {self.matches} matches"


def _median_stages(results: list[MatchResult]) -> dict[str, float]:
    names = results[0].timings_ms.keys()
    return {name: statistics.median(r.timings_ms.get(name, 0.0) for r in results) for name in names}


def time_matcher(matcher: AnyMatcher, image0: np.ndarray, image1: np.ndarray | torch.Tensor, runs: int, cached: bool,
                 label: str) -> tuple[BenchResult, MatchResult]:
    """Median over ``runs`` calls (after one warm-up) of matching image1 against image0."""
    anchor = matcher.encode(image0) if cached else image0
    matcher.match(anchor, image1)
    times, results = [], []
    for _ in range(runs):
        start = time.perf_counter()
        results.append(matcher.match(anchor, image1))
        times.append((time.perf_counter() - start) * 1000.0)
    return BenchResult(label, statistics.median(times), _median_stages(results), len(results[-1])), results[-1]


def kornia_pair(matcher: Matcher, image0: np.ndarray,
                image1: np.ndarray) -> tuple[torch.nn.Module, dict[str, torch.Tensor]] | None:
    """kornia's LoFTR with the same weights and threshold (fp32, on the matcher's device) and its input batch of
    the two network-size images; None without kornia or a kornia equivalent of the preset."""
    try:
        from kornia.feature.loftr.loftr import LoFTR as KorniaLoFTR
        from kornia.feature.loftr.loftr import default_cfg
    except ImportError:
        return None
    config = matcher.config
    if config.match_coarse.match_type != "dual_softmax" or config.backbone.kind != "resnet_fpn":
        return None  # kornia ships neither optimal-transport matching nor other backbones
    kornia_config = copy.deepcopy(default_cfg)
    kornia_config["resnetfpn"] = {"initial_dim": config.backbone.initial_dim,
                                  "block_dims": list(config.backbone.block_dims)}
    kornia_config["coarse"].update(d_model=config.coarse.d_model, d_ffn=config.coarse.d_model,
                                   nhead=config.coarse.nhead, layer_names=list(config.coarse.layer_names),
                                   temp_bug_fix=config.temp_bug_fix)
    kornia_config["fine"].update(d_model=config.fine.d_model, d_ffn=config.fine.d_model, nhead=config.fine.nhead,
                                 layer_names=list(config.fine.layer_names))
    kornia_config["match_coarse"]["thr"] = matcher.threshold
    reference = KorniaLoFTR(pretrained=None, config=kornia_config)
    reference.load_state_dict(matcher.source_model.state_dict())
    reference.eval().to(matcher.device)
    tensors = [matcher.preprocess(image)[0].contiguous() for image in (image0, image1)]
    return reference, {"image0": tensors[0], "image1": tensors[1]}


def time_kornia(matcher: Matcher, image0: np.ndarray, image1: np.ndarray, runs: int) -> BenchResult | None:
    """kornia's LoFTR with the same weights and threshold, fp32, on the same network-size images."""
    built = kornia_pair(matcher, image0, image1)
    if built is None:
        return None
    reference, batch = built
    with torch.inference_mode():
        reference(dict(batch))
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            out = reference(dict(batch))
            if matcher.device.type == "cuda":
                torch.cuda.synchronize()
            times.append((time.perf_counter() - start) * 1000.0)
    return BenchResult("kornia LoFTR fp32, pair", statistics.median(times), {}, len(out["keypoints0"]))


def agreement(reference: MatchResult, other: MatchResult) -> tuple[float, float]:
    """(share of reference matches found again with the same image-0 cell, median |dkp1| px over those)."""
    if len(reference) == 0:
        return 1.0 if len(other) == 0 else 0.0, 0.0
    index = {tuple(np.round(p, 2)): i for i, p in enumerate(other.keypoints0)}
    pairs = [(i, index[tuple(np.round(p, 2))]) for i, p in enumerate(reference.keypoints0)
             if tuple(np.round(p, 2)) in index]
    if not pairs:
        return 0.0, float("nan")
    shift = [float(np.linalg.norm(reference.keypoints1[i] - other.keypoints1[j])) for i, j in pairs]
    return len(pairs) / len(reference), statistics.median(shift)


def profile_counts(matcher: Matcher, image0: np.ndarray, image1: np.ndarray) -> list[tuple[str, OpCounts]]:
    """Launched operators and host syncs per matched frame (``model.op_counts``): ours with a cached anchor and as
    a full pair, and kornia's pair with the same weights when it has an equivalent."""
    anchor = matcher.encode(image0)
    rows = [("ours, cached anchor", count_ops(lambda: matcher.match(anchor, image1))),
            ("ours, full pair", count_ops(lambda: matcher.match(image0, image1)))]
    built = kornia_pair(matcher, image0, image1)
    if built is not None:
        reference, batch = built
        with torch.inference_mode():
            rows.append(("kornia LoFTR, pair", count_ops(lambda: reference(dict(batch)))))
    return rows
