"""Ground truth for LoFTR from known correspondences (a homography, or depth and poses), and LoFTR's losses.

Coarse: cell i of image 0 sits at 8 * (x, y); its warp lands nearest to cell j of image 1; (i, j) is a true
match when that holds both ways (mutual) and both points have a true position in the other image (real photo
content under a homography; seen, not hidden, under depth and poses).
Fine: the true position of cell i's point inside the 5x5 window around cell j, in [-1, 1] window units.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..loftr import COARSE_STRIDE, FINE_STRIDE


def warp_points(points: torch.Tensor, homography: torch.Tensor) -> torch.Tensor:
    """points [B, N, 2] through homographies [B, 3, 3] -> [B, N, 2] (points behind the camera -> inf)."""
    homogeneous = F.pad(points, (0, 1), value=1.0) @ homography.transpose(1, 2)
    z = homogeneous[..., 2:]
    safe = torch.where(z.abs() > 1e-8, z, torch.full_like(z, 1e-8))
    warped = homogeneous[..., :2] / safe
    return torch.where(z > 1e-8, warped, torch.full_like(warped, float("inf")))


def cell_points(height_c: int, width_c: int, device: torch.device) -> torch.Tensor:
    """[Hc*Wc, 2] keypoint positions 8 * (x, y) of a coarse grid, row-major."""
    ys, xs = torch.meshgrid(torch.arange(height_c, device=device), torch.arange(width_c, device=device),
                            indexing="ij")
    return torch.stack([xs, ys], -1).reshape(-1, 2).double() * COARSE_STRIDE


def _lookup(valid: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """valid [B, H, W] bool at points [B, N, 2] (corner convention); outside -> False."""
    height, width = valid.shape[1:]
    x, y = points[..., 0].floor(), points[..., 1].floor()
    inside = (x >= 0) & (y >= 0) & (x < width) & (y < height)
    xi = x.clamp(0, width - 1).nan_to_num(0).long()
    yi = y.clamp(0, height - 1).nan_to_num(0).long()
    flat = valid.flatten(1).gather(1, yi * width + xi)
    return inside & flat


def _nearest_cell(points: torch.Tensor, height_c: int, width_c: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Flattened index of the cell whose keypoint is nearest, and whether it is on the grid."""
    cell = torch.round(points / COARSE_STRIDE)
    on_grid = (cell[..., 0] >= 0) & (cell[..., 1] >= 0) & (cell[..., 0] < width_c) & (cell[..., 1] < height_c)
    cell = cell.nan_to_num(0, posinf=0, neginf=0).long()
    return cell[..., 1].clamp(0, height_c - 1) * width_c + cell[..., 0].clamp(0, width_c - 1), on_grid


@dataclass
class CoarseTruth:
    """True coarse matches of a batch: index triplets [M], plus image 0's points warped into image 1 [B, L, 2]."""

    b_ids: torch.Tensor
    i_ids: torch.Tensor
    j_ids: torch.Tensor
    warped0: torch.Tensor

    def dense(self, batch: int, length0: int, length1: int) -> torch.Tensor:
        """[B, L, S] boolean ground-truth confidence matrix."""
        truth = torch.zeros(batch, length0, length1, dtype=torch.bool, device=self.b_ids.device)
        truth[self.b_ids, self.i_ids, self.j_ids] = True
        return truth


def homography_warps(homography: torch.Tensor, valid0: torch.Tensor, valid1: torch.Tensor,
                     hw0_c: tuple[int, int], hw1_c: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Cell points of each image in the other under homographies [B, 3, 3] (image 0 -> 1): ([B, L, 2], [B, S, 2]),
    float64. Image 0's points off real content in either image are inf; image 1's are all kept (the mutual check
    only needs them to lead back)."""
    homography = homography.double()
    batch = homography.shape[0]
    points0 = cell_points(*hw0_c, homography.device).expand(batch, -1, -1)
    points1 = cell_points(*hw1_c, homography.device).expand(batch, -1, -1)
    warped0 = warp_points(points0, homography)
    on_content = _lookup(valid0, points0) & _lookup(valid1, warped0)
    warped0 = torch.where(on_content[..., None], warped0, torch.full_like(warped0, float("inf")))
    return warped0, warp_points(points1, torch.linalg.inv(homography))


def coarse_truth_from_warps(warped0: torch.Tensor, warped1: torch.Tensor, hw0_c: tuple[int, int],
                            hw1_c: tuple[int, int]) -> CoarseTruth:
    """Mutual nearest cells from each image's cell points seen in the other.

    warped0 [B, L, 2]: image 0's cell points (``cell_points``) in image 1's pixels, inf where a point has no true
    position there; warped1 [B, S, 2]: the same from image 1 to image 0.
    """
    j_of_i, on_grid0 = _nearest_cell(warped0, *hw1_c)
    i_of_j, on_grid1 = _nearest_cell(warped1, *hw0_c)
    valid = on_grid0 & on_grid1.gather(1, j_of_i)
    valid &= i_of_j.gather(1, j_of_i) == torch.arange(warped0.shape[1], device=warped0.device)[None]
    b_ids, i_ids = torch.where(valid)
    return CoarseTruth(b_ids, i_ids, j_of_i[b_ids, i_ids], warped0.float())


def coarse_truth(homography: torch.Tensor, valid0: torch.Tensor, valid1: torch.Tensor,
                 hw0_c: tuple[int, int], hw1_c: tuple[int, int]) -> CoarseTruth:
    """Mutual nearest cells under the homography (image 0 -> 1), on real content in both images."""
    return coarse_truth_from_warps(*homography_warps(homography, valid0, valid1, hw0_c, hw1_c), hw0_c, hw1_c)


def batch_truth(batch: dict[str, torch.Tensor], hw0_c: tuple[int, int], hw1_c: tuple[int, int]) -> CoarseTruth:
    """The coarse truth of a training batch: from its ``warp0``/``warp1`` (any pairs), else from its homographies."""
    if "warp0" in batch:
        return coarse_truth_from_warps(batch["warp0"], batch["warp1"], hw0_c, hw1_c)
    return coarse_truth(batch["homography"], batch["valid0"], batch["valid1"], hw0_c, hw1_c)


def labelled_entries(batch: dict[str, torch.Tensor]) -> torch.Tensor | None:
    """[B, L, S] bool: the confidence entries whose row or column has a known truth (NaN in ``warp0`` / ``warp1``
    marks an unknown cell point: ``pseudo_labels``), or None when every cell point's truth is known."""
    if "warp0" not in batch:
        return None
    known0, known1 = (~batch[key].isnan().any(-1) for key in ("warp0", "warp1"))
    if bool(known0.all()) and bool(known1.all()):
        return None
    return known0[:, :, None] | known1[:, None, :]


def fine_truth(truth: CoarseTruth, b_ids: torch.Tensor, i_ids: torch.Tensor, j_ids: torch.Tensor,
               width1_c: int, window: int) -> torch.Tensor:
    """[M, 2] true offset of image 0's point in the window around cell j, in window units ([-1, 1] inside)."""
    cell_j = torch.stack([j_ids % width1_c, j_ids // width1_c], -1).float() * COARSE_STRIDE
    radius_px = (window // 2) * FINE_STRIDE
    return (truth.warped0[b_ids, i_ids] - cell_j) / radius_px


def coarse_focal_loss(log_conf: torch.Tensor, truth: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0,
                      pos_weight: float = 1.0, neg_weight: float = 1.0,
                      labelled: torch.Tensor | None = None) -> torch.Tensor:
    """LoFTR's focal loss on the log dual-softmax confidence matrix [B, L, S] against a boolean truth.

    Mean over the true matches plus mean over the other entries: all of them, or only those that ``labelled``
    (bool, broadcastable to [B, L, S]) marks, where the truth knows there is no match. Works from log-confidences
    so that tiny confidences still get gradients (the official clamp to 1e-6 stalls a freshly initialised model),
    and with masks rather than boolean indexing, which would copy the millions of negatives.
    """
    conf = log_conf.exp()
    truth = truth.to(conf.dtype)
    negative = 1 - truth if labelled is None else (1 - truth) * labelled.to(conf.dtype)
    num_pos = truth.sum()
    num_neg = truth.numel() - num_pos if labelled is None else negative.sum()
    log_not_conf = torch.log1p(-conf.clamp(max=1 - 1e-6))
    loss_neg = (-alpha * conf.pow(gamma) * log_not_conf * negative).sum() / num_neg.clamp(min=1)
    loss_pos = (-alpha * (1 - conf).pow(gamma) * log_conf * truth).sum() / num_pos.clamp(min=1)
    return neg_weight * loss_neg + pos_weight * loss_pos


def fine_l2_std_loss(expec_f: torch.Tensor, target: torch.Tensor, use_std_weight: bool = True) -> torch.Tensor:
    """LoFTR's fine loss: L2 between expectation and truth, weighted by inverse std (normalised, no gradient).

    Matches whose truth falls outside the window (|offset| >= 1) are ignored. expec_f [M, 3], target [M, 2].
    """
    inside = target.abs().amax(-1) < 1.0
    if not inside.any():
        return expec_f.sum() * 0.0
    expec_f, target = expec_f[inside], target[inside]
    error = ((target - expec_f[:, :2]) ** 2).sum(-1)
    if not use_std_weight:
        return error.mean()
    inverse_std = 1.0 / expec_f[:, 2].clamp(min=1e-10)
    weight = (inverse_std / inverse_std.mean()).detach()
    return (error * weight).mean()
