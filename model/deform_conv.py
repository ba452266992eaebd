"""Modulated deformable convolution (Dai et al. 2017, Zhu et al. 2019) in plain torch.

ALIKED (the keypoints behind ALIKED + LightGlue) needs ``torchvision.ops.deform_conv2d``, and torchvision has no
CPU build for this project's torch on the package registry (its CUDA build breaks the CPU torch). This is the
same operation, built from ``grid_sample``: each of the K = kh * kw kernel taps samples the input bilinearly at
its regular position plus a learned offset (zero outside the image, as torchvision), scaled by its mask, and
one matrix product applies the weights to the K sampled copies.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _pair(value: int | tuple[int, int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def deform_conv2d(input: torch.Tensor, offset: torch.Tensor, weight: torch.Tensor,  # noqa: A002 - torchvision's name
                  bias: torch.Tensor | None = None, stride: int | tuple[int, int] = 1,
                  padding: int | tuple[int, int] = 0, dilation: int | tuple[int, int] = 1,
                  mask: torch.Tensor | None = None) -> torch.Tensor:
    """``torchvision.ops.deform_conv2d`` for one weight group and one offset group.

    Args:
        input: [B, Cin, H, W].
        offset: [B, 2 * K, Hout, Wout], for each kernel tap k (row-major) its (dy, dx) in input pixels.
        weight: [Cout, Cin, kh, kw]; bias: [Cout] or None.
        mask: [B, K, Hout, Wout] modulation of each tap, or None (all ones).

    Returns:
        [B, Cout, Hout, Wout].
    """
    batch, channels, height, width = input.shape
    out_channels, in_channels, kernel_h, kernel_w = weight.shape
    taps = kernel_h * kernel_w
    if in_channels != channels or offset.shape[1] != 2 * taps:
        raise ValueError("deform_conv2d here supports one weight group and one offset group: weight [Cout, Cin, kh, "
                         f"kw] with Cin = {channels} and offset [B, {2 * taps}, Hout, Wout]; got weight "
                         f"{tuple(weight.shape)} and offset {tuple(offset.shape)}")
    (stride_h, stride_w), (pad_h, pad_w), (dil_h, dil_w) = _pair(stride), _pair(padding), _pair(dilation)
    out_h, out_w = offset.shape[2:]
    rows = torch.arange(out_h, device=input.device, dtype=input.dtype) * stride_h - pad_h
    cols = torch.arange(out_w, device=input.device, dtype=input.dtype) * stride_w - pad_w
    tap_rows = (torch.arange(kernel_h, device=input.device, dtype=input.dtype) * dil_h).repeat_interleave(kernel_w)
    tap_cols = (torch.arange(kernel_w, device=input.device, dtype=input.dtype) * dil_w).repeat(kernel_h)
    offset = offset.view(batch, taps, 2, out_h, out_w)
    y = rows[None, None, :, None] + tap_rows[None, :, None, None] + offset[:, :, 0]  # [B, K, Hout, Wout]
    x = cols[None, None, None, :] + tap_cols[None, :, None, None] + offset[:, :, 1]
    # grid_sample with align_corners=True puts -1 and 1 on the first and last pixel centres.
    grid = torch.stack([2 * x / max(width - 1, 1) - 1, 2 * y / max(height - 1, 1) - 1], dim=-1)
    sampled = F.grid_sample(input, grid.view(batch, taps * out_h, out_w, 2), mode="bilinear", padding_mode="zeros",
                            align_corners=True).view(batch, channels, taps, out_h, out_w)
    if mask is not None:
        sampled = sampled * mask.view(batch, 1, taps, out_h, out_w)
    columns = sampled.reshape(batch, channels * taps, out_h * out_w)
    out = weight.reshape(out_channels, channels * taps) @ columns  # [B, Cout, Hout * Wout]
    if bias is not None:
        out = out + bias[None, :, None]
    return out.view(batch, out_channels, out_h, out_w)
