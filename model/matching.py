"""Coarse matching (dual-softmax or optimal transport), fine-window preprocessing and fine matching.

Precision: the coarse similarity/softmax and the fine expectation always run in fp32, whatever autocast is
active around them; in half precision the dual-softmax saturates and changes which matches are mutual.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .config import CoarseMatchingConfig


def _fp32(*tensors: torch.Tensor) -> list[torch.Tensor]:
    """Half-precision tensors upcast to fp32; fp32 and fp64 kept as they are."""
    return [t.float() if t.dtype in (torch.float16, torch.bfloat16) else t for t in tensors]


def _no_autocast(device: torch.device) -> torch.autocast:
    return torch.autocast(device_type=device.type, enabled=False)


def log_optimal_transport(scores: torch.Tensor, bin_score: torch.Tensor, iterations: int) -> torch.Tensor:
    """Entropic optimal transport with a dustbin row and column, in the log domain.

    The score matrix is augmented with a learned dustbin score ``bin_score`` in an extra row and column.
    The target marginals give mass 1 to each of the ``m`` (``n``) points and ``n`` (``m``) to the dustbin,
    everything divided by ``m + n``. Sinkhorn alternately rescales rows and columns (in log space:
    ``u = log_mu - logsumexp(Z + v)``, ``v = log_nu - logsumexp(Z + u)``), starting from ``u = v = 0``.
    The returned log-plan is scaled by ``m + n`` so a non-dustbin row sums to one.

    Args:
        scores: [B, M, N] similarity scores.
        bin_score: scalar dustbin score.
        iterations: number of Sinkhorn iterations (row then column normalisation each).

    Returns:
        [B, M + 1, N + 1] log assignment matrix.
    """
    batch, m, n = scores.shape
    one = scores.new_tensor(1.0)
    bins_col = (bin_score * one).expand(batch, m, 1)
    bins_row = (bin_score * one).expand(batch, 1, n)
    corner = (bin_score * one).expand(batch, 1, 1)
    couplings = torch.cat([torch.cat([scores, bins_col], -1), torch.cat([bins_row, corner], -1)], 1)

    log_total = math.log(m + n)
    log_mu = torch.cat([scores.new_full((m,), -log_total), scores.new_full((1,), math.log(n) - log_total)])
    log_nu = torch.cat([scores.new_full((n,), -log_total), scores.new_full((1,), math.log(m) - log_total)])
    log_mu, log_nu = log_mu.expand(batch, -1), log_nu.expand(batch, -1)

    u = torch.zeros_like(log_mu)
    v = torch.zeros_like(log_nu)
    for _ in range(iterations):
        u = log_mu - torch.logsumexp(couplings + v[:, None, :], dim=2)
        v = log_nu - torch.logsumexp(couplings + u[:, :, None], dim=1)
    return couplings + u[:, :, None] + v[:, None, :] + log_total


@dataclass
class CoarseMatches:
    """Mutual-nearest-neighbour coarse matches. All tensors have length M.

    ``i_ids`` / ``j_ids`` index the flattened 1/8 grids of image 0 / image 1.
    """

    b_ids: torch.Tensor
    i_ids: torch.Tensor
    j_ids: torch.Tensor
    mconf: torch.Tensor

    def __len__(self) -> int:
        return int(self.i_ids.shape[0])

    def take(self, index: torch.Tensor) -> CoarseMatches:
        """The subset selected by ``index`` (indices or a boolean mask)."""
        return CoarseMatches(self.b_ids[index], self.i_ids[index], self.j_ids[index], self.mconf[index])


def _inside_border(batch: int, height: int, width: int, border: int, device: torch.device,
                   valid_hw: torch.Tensor | None) -> torch.Tensor:
    """[B, H*W] boolean: grid cells at least ``border`` cells away from the (unpadded) image edge."""
    rows = torch.arange(height, device=device)[None, :, None]
    cols = torch.arange(width, device=device)[None, None, :]
    if valid_hw is None:
        h_end = torch.full((batch, 1, 1), height, device=device)
        w_end = torch.full((batch, 1, 1), width, device=device)
    else:
        h_end, w_end = valid_hw[:, 0].view(batch, 1, 1), valid_hw[:, 1].view(batch, 1, 1)
    border = max(border, 0)
    keep = (rows >= border) & (cols >= border) & (rows < h_end - border) & (cols < w_end - border)
    return keep.expand(batch, height, width).reshape(batch, height * width)


def _valid_hw(mask: torch.Tensor | None) -> torch.Tensor | None:
    """Valid (height, width) of each padded [B, H, W] mask, or None."""
    if mask is None:
        return None
    return torch.stack([mask.sum(1).amax(-1), mask.sum(-1).amax(-1)], dim=1).long()


def _dual_softmax_(sim: torch.Tensor) -> torch.Tensor:
    """softmax(sim, 1) * softmax(sim, 2) for [N, L, S], overwriting ``sim``.

    The column softmax is done in place, which on a CPU is ~30% faster than two out-of-place softmaxes
    and a product (the matrix is 23M entries at 640x480).
    """
    rows = torch.softmax(sim, 2)
    columns = sim.sub_(sim.amax(1, keepdim=True)).exp_()
    columns.div_(columns.sum(1, keepdim=True))
    return rows.mul_(columns)


class CoarseMatching(nn.Module):
    """Confidence matrix between coarse tokens, then thresholded mutual nearest neighbours."""

    def __init__(self, config: CoarseMatchingConfig) -> None:
        super().__init__()
        self.config = config
        self.match_type = config.match_type
        if self.match_type == "sinkhorn":
            self.bin_score = nn.Parameter(torch.tensor(config.skh_init_bin_score))

    def confidence(self, feat0: torch.Tensor, feat1: torch.Tensor, mask0: torch.Tensor | None = None,
                   mask1: torch.Tensor | None = None, log: bool = False) -> torch.Tensor:
        """Tokens [N, L, C] and [N, S, C] (masks [N, L] / [N, S]) -> confidence matrix [N, L, S], fp32.

        ``log=True`` returns its logarithm, computed stably (for training losses: a clamped confidence
        has no gradient where it is tiny, which is everywhere at initialisation).
        """
        with _no_autocast(feat0.device):
            feat0, feat1 = _fp32(feat0, feat1)
            dual_softmax = self.match_type == "dual_softmax"
            # Every scale factor goes on feat0 ([L, C]) rather than on the [L, S] matrix: one pass less.
            scale = 1.0 / feat0.shape[-1] / (self.config.dsmax_temperature if dual_softmax else 1.0)
            sim = torch.bmm(feat0 * scale, feat1.transpose(1, 2))
            invalid = None
            if mask0 is not None and mask1 is not None:
                invalid = ~(mask0.bool()[:, :, None] & mask1.bool()[:, None, :])
            # A large finite value, not -inf: a fully masked row must give a finite uniform softmax.
            very_negative = torch.finfo(sim.dtype).min / 2
            if dual_softmax:
                if invalid is not None:
                    sim = sim.masked_fill(invalid, very_negative)
                if log:
                    log_conf = F.log_softmax(sim, 1) + F.log_softmax(sim, 2)
                else:
                    conf = _dual_softmax_(sim)
            else:
                if invalid is not None:
                    sim = sim.masked_fill(invalid, very_negative)
                log_assign = log_optimal_transport(sim, self.bin_score.to(sim.dtype), self.config.skh_iters)
                if log:
                    log_conf = log_assign[:, :-1, :-1]
                else:
                    assign = log_assign.exp()
                    conf = assign[:, :-1, :-1]
                    if self.config.skh_prefilter and not self.training:
                        length0, length1 = sim.shape[1], sim.shape[2]
                        to_bin0 = (assign.argmax(dim=2) == length1)[:, :-1]
                        to_bin1 = (assign.argmax(dim=1) == length0)[:, :-1]
                        conf = conf.masked_fill(to_bin0[:, :, None] | to_bin1[:, None, :], 0.0)
            if log:
                return log_conf if invalid is None else log_conf.masked_fill(invalid, very_negative)
            if invalid is not None:
                conf = conf.masked_fill(invalid, 0.0)
        return conf

    @torch.no_grad()
    def select(self, conf: torch.Tensor, hw0_c: tuple[int, int], hw1_c: tuple[int, int], thr: float,
               border_rm: int, mask0: torch.Tensor | None = None,
               mask1: torch.Tensor | None = None) -> CoarseMatches:
        """Mutual nearest neighbours of ``conf`` [N, L, S] above ``thr``, away from the borders.

        Equivalent to the official 5-D border mask + mutual-max mask, without materialising either.
        ``mask0`` / ``mask1`` are the padding masks at coarse resolution [N, Hc, Wc].
        """
        batch = conf.shape[0]
        row_max, j_of_row = conf.max(dim=2)
        col_max = conf.amax(dim=1)
        inside0 = _inside_border(batch, *hw0_c, border_rm, conf.device, _valid_hw(mask0))
        inside1 = _inside_border(batch, *hw1_c, border_rm, conf.device, _valid_hw(mask1))
        keep = ((row_max > max(thr, 0.0)) & (torch.gather(col_max, 1, j_of_row) == row_max)
                & inside0 & torch.gather(inside1, 1, j_of_row))
        b_ids, i_ids = torch.where(keep)
        j_ids = j_of_row[b_ids, i_ids]
        return CoarseMatches(b_ids, i_ids, j_ids, row_max[b_ids, i_ids])


def gather_windows(feat: torch.Tensor, b_ids: torch.Tensor, ids: torch.Tensor, coarse_width: int,
                   window: int, stride: int) -> torch.Tensor:
    """Fine feature windows centred on coarse cells, without unfolding the whole map.

    Gives the same values and layout as ``F.unfold(feat, window, stride=stride, padding=window // 2)``
    indexed at ``ids``, at ``1/window**2`` of its memory.

    Args:
        feat: fine feature map [B, C, Hf, Wf].
        b_ids, ids: batch index and flattened coarse index of each window, [M].
        coarse_width: width of the coarse grid, to unflatten ``ids``.
        window: window size W (odd).
        stride: fine pixels per coarse cell (4 for LoFTR's 1/8 -> 1/2).

    Returns:
        [M, W*W, C]
    """
    pad = window // 2
    padded = F.pad(feat, (pad, pad, pad, pad)).permute(0, 2, 3, 1)  # [B, Hp, Wp, C]
    offsets = torch.arange(window, device=ids.device)
    rows = (ids // coarse_width * stride)[:, None] + offsets
    cols = (ids % coarse_width * stride)[:, None] + offsets
    windows = padded[b_ids[:, None, None], rows[:, :, None], cols[:, None, :]]  # [M, W, W, C]
    return windows.reshape(ids.shape[0], window * window, feat.shape[1])


class FinePreprocess(nn.Module):
    """Crops W x W windows of fine features around each coarse match and mixes in the coarse token."""

    def __init__(self, d_model_c: int, d_model_f: int, window: int, concat_coarse_feat: bool = True) -> None:
        super().__init__()
        self.W = window
        self.d_model_f = d_model_f
        self.cat_c_feat = concat_coarse_feat
        if concat_coarse_feat:
            self.down_proj = nn.Linear(d_model_c, d_model_f, bias=True)
            self.merge_feat = nn.Linear(2 * d_model_f, d_model_f, bias=True)
        for parameter in self.parameters():
            if parameter.dim() > 1:
                nn.init.kaiming_normal_(parameter, mode="fan_out", nonlinearity="relu")

    def forward(self, feat_f0: torch.Tensor, feat_f1: torch.Tensor, feat_c0: torch.Tensor, feat_c1: torch.Tensor,
                matches: CoarseMatches, coarse_width0: int, coarse_width1: int,
                stride: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
        """Fine maps [B, Cf, Hf, Wf], coarse tokens [B, L, Cc] -> windows (feat0, feat1), each [M, W*W, Cf]."""
        if len(matches) == 0:
            empty = feat_f0.new_empty(0, self.W**2, self.d_model_f)
            return empty, empty.clone()
        win0 = gather_windows(feat_f0, matches.b_ids, matches.i_ids, coarse_width0, self.W, stride)
        win1 = gather_windows(feat_f1, matches.b_ids, matches.j_ids, coarse_width1, self.W, stride)
        if not self.cat_c_feat:
            return win0, win1
        coarse = self.down_proj(torch.cat([feat_c0[matches.b_ids, matches.i_ids],
                                           feat_c1[matches.b_ids, matches.j_ids]], 0))  # [2M, Cf]
        # merge_feat(cat[fine, coarse]) split into its fine and coarse halves: the coarse half is the same
        # for all W*W positions of a window, so it is computed once per window instead of W*W times.
        weight_fine, weight_coarse = self.merge_feat.weight.split(self.d_model_f, dim=1)
        merged = (F.linear(torch.cat([win0, win1], 0), weight_fine)
                  + F.linear(coarse, weight_coarse, self.merge_feat.bias)[:, None, :])
        return merged[: len(matches)], merged[len(matches):]


def normalized_grid(window: int, device: torch.device) -> torch.Tensor:
    """[W*W, 2] (x, y) positions of a W x W window in [-1, 1], row-major."""
    line = torch.linspace(-1.0, 1.0, window, device=device)
    ys, xs = torch.meshgrid(line, line, indexing="ij")
    return torch.stack([xs, ys], dim=-1).reshape(-1, 2)


#: Where the fine stage takes the expectation of its heatmap: "window", the official LoFTR's, over the whole
#: window (what training optimises); "peak", over the 3 x 3 positions around the heatmap's maximum. A heatmap's
#: tails pull the whole window's expectation towards the window's centre; "peak" leaves them out (see
#: ``Matcher``'s ``fine_expectation`` and weights/README.md for what it gains).
FINE_EXPECTATIONS = ("window", "peak")


class FineMatching(nn.Module):
    """Sub-pixel refinement: expectation of a softmax heatmap over image 1's window, with its spread."""

    def forward(self, feat_f0: torch.Tensor, feat_f1: torch.Tensor, expectation: str = "window") -> torch.Tensor:
        """Windows [M, W*W, C] -> expec_f [M, 3]: offset (x, y) in [-1, 1] window units and std (sum over x, y,
        always of the whole window's heatmap). ``expectation``: one of FINE_EXPECTATIONS."""
        if expectation not in FINE_EXPECTATIONS:
            raise ValueError(f"unknown fine expectation {expectation!r}; choose one of {', '.join(FINE_EXPECTATIONS)}")
        num, ww, channels = feat_f0.shape
        if num == 0:
            return feat_f0.new_zeros(0, 3, dtype=torch.float32)
        window = int(math.isqrt(ww))
        with _no_autocast(feat_f0.device):
            feat_f0, feat_f1 = _fp32(feat_f0, feat_f1)
            center = feat_f0[:, ww // 2, :]
            sim = (feat_f1 @ center[:, :, None])[..., 0] / channels**0.5  # [M, WW]
            heatmap = F.softmax(sim, dim=1)  # [M, WW]
            grid = normalized_grid(window, heatmap.device).to(heatmap.dtype)  # [WW, 2]
            coords = heatmap @ grid  # [M, 2]
            var = heatmap @ grid**2 - coords**2
            std = var.clamp(min=1e-10).sqrt().sum(-1)
            if expectation == "peak":
                coords = _peak_expectation(heatmap, grid, window)
        return torch.cat([coords, std[:, None]], -1)


def _peak_expectation(heatmap: torch.Tensor, grid: torch.Tensor, window: int) -> torch.Tensor:
    """[M, W*W] heatmaps -> [M, 2]: the expectation over the 3 x 3 positions around each maximum (fewer at the
    window's border), the heatmap renormalised over them."""
    peak = heatmap.argmax(dim=1)
    rows = torch.arange(window, device=heatmap.device).repeat_interleave(window)  # [W*W]
    cols = torch.arange(window, device=heatmap.device).repeat(window)
    near = ((rows[None] - (peak // window)[:, None]).abs() <= 1) & ((cols[None] - (peak % window)[:, None]).abs() <= 1)
    local = heatmap * near
    return (local @ grid) / local.sum(dim=1, keepdim=True)
