"""CUDA and fp16: the same matches as on the CPU. Skipped where there is no GPU (CI); run on a GPU machine with
``python -m pytest tests/test_cuda.py``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from model.bench import agreement
from model.checkpoints import load_weights
from model.loftr import LoFTR
from model.matcher import Matcher
from model.train.data import PhotometricRanges, WarpRanges, make_pair
from model.train.trainer import TrainSettings, parameter_groups, training_losses

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module",
                params=["loftr_live_compact_s.pt", "loftr_live_xfeat_s.pt", "loftr_live_xfeat_lite.pt"])
def model(request: pytest.FixtureRequest) -> LoFTR:
    """The bundled trained weights: random ones give near-ties that any rounding flips."""
    return load_weights(ROOT / "weights" / request.param).model


def test_cuda_fp32_gives_the_cpu_matches(model: LoFTR, photo_pair: tuple[np.ndarray, np.ndarray]) -> None:
    settings = dict(precision="fp32", threshold=0.0, resize=(640, 480))
    on_cpu = Matcher(model, device="cpu", **settings).match(*photo_pair)
    on_cuda = Matcher(model, device="cuda", **settings).match(*photo_pair)
    found, shift = agreement(on_cpu, on_cuda)
    assert len(on_cpu) > 50
    # cuDNN convolutions use TF32 by default (PyTorch's choice): close to, not bitwise, the CPU.
    assert found > 0.97 and shift < 0.05, (found, shift)


def test_fp16_autocast_keeps_the_match_set(model: LoFTR, photo_pair: tuple[np.ndarray, np.ndarray]) -> None:
    fp32 = Matcher(model, device="cuda", precision="fp32", threshold=0.0, resize=(640, 480)).match(*photo_pair)
    matcher = Matcher(model, device="cuda", threshold=0.0, resize=(640, 480))
    assert matcher.precision == "fp16"
    anchor = matcher.encode(photo_pair[0])
    fp16 = matcher.match(anchor, photo_pair[1])
    found, shift = agreement(fp32, fp16)
    assert found > 0.95 and shift < 0.05, (found, shift)
    assert np.isfinite(fp16.keypoints1).all() and np.isfinite(fp16.confidence).all()


def test_odd_sizes_and_blank_images_on_cuda(model: LoFTR) -> None:
    matcher = Matcher(model, device="cuda", resize=None)
    rng = np.random.default_rng(0)
    odd = (rng.random((241, 333)) * 255).astype(np.uint8)
    result = matcher.match(odd, odd)
    assert result.keypoints0.shape[1] == 2
    blank = np.zeros((120, 160), np.uint8)
    assert len(matcher.match(blank, blank)) == 0


def test_a_training_step_on_cuda(model: LoFTR) -> None:
    settings = TrainSettings(images="", out="", batch=2, device="cuda")
    trainee = LoFTR(model.config).cuda().train()
    trainee.load_state_dict(model.state_dict())
    rng = np.random.default_rng(1)
    photo = (rng.random((300, 400)) * 255).astype(np.uint8)
    pairs = [make_pair(rng, photo, (240, 320), WarpRanges(), PhotometricRanges()) for _ in range(2)]
    batch = {key: torch.from_numpy(np.stack([pair[key] for pair in pairs])) for key in pairs[0]}
    optimizer = torch.optim.AdamW(parameter_groups(trainee, 0.1), lr=1e-3)
    before = trainee.loftr_coarse.layers[0].q_proj.weight.detach().clone()
    losses = training_losses(trainee, batch, settings, step=0, generator=torch.Generator().manual_seed(0))
    losses["loss"].backward()
    optimizer.step()
    assert torch.isfinite(losses["loss"])
    assert not torch.equal(before, trainee.loftr_coarse.layers[0].q_proj.weight)


def test_stage_timings_on_cuda_add_up_to_the_frame(model: LoFTR, photo_pair: tuple[np.ndarray, np.ndarray]) -> None:
    """Stage times come from CUDA events (no synchronisation between stages) and still cover the frame."""
    import time

    matcher = Matcher(model, device="cuda", resize=(640, 480))
    anchor = matcher.encode(photo_pair[0])
    matcher.match(anchor, photo_pair[1])
    start = time.perf_counter()
    result = matcher.match(anchor, photo_pair[1])
    frame_ms = (time.perf_counter() - start) * 1000.0
    stages = result.timings_ms
    assert set(stages) == {"backbone", "coarse_transformer", "coarse_matching", "fine"}
    assert all(value > 0 for value in stages.values())
    assert sum(stages.values()) <= frame_ms * 1.05, (stages, frame_ms)
