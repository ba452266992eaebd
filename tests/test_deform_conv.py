"""``model.deform_conv``: the deformable convolution ALIKED needs, against a direct per-pixel reference."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from model.deform_conv import deform_conv2d


def _bilinear(image: torch.Tensor, y: float, x: float) -> float:
    """torchvision's sampling: zero beyond one pixel outside, each corner inside the image weighted."""
    height, width = image.shape
    if y <= -1 or y >= height or x <= -1 or x >= width:
        return 0.0
    y0, x0 = math.floor(y), math.floor(x)
    total = 0.0
    for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
        for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
            if 0 <= yy < height and 0 <= xx < width:
                total += wy * wx * float(image[yy, xx])
    return total


def _reference(input: torch.Tensor, offset: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,  # noqa: A002
               stride: int, padding: int, dilation: int, mask: torch.Tensor) -> torch.Tensor:
    batch, channels = input.shape[:2]
    out_channels, _, kernel_h, kernel_w = weight.shape
    out_h, out_w = offset.shape[2:]
    out = torch.zeros(batch, out_channels, out_h, out_w, dtype=torch.float64)
    for b in range(batch):
        for oy in range(out_h):
            for ox in range(out_w):
                for i in range(kernel_h):
                    for j in range(kernel_w):
                        k = i * kernel_w + j
                        y = oy * stride - padding + i * dilation + float(offset[b, 2 * k, oy, ox])
                        x = ox * stride - padding + j * dilation + float(offset[b, 2 * k + 1, oy, ox])
                        for c in range(channels):
                            value = _bilinear(input[b, c], y, x) * float(mask[b, k, oy, ox])
                            out[b, :, oy, ox] += value * weight[:, c, i, j].double()
    return out + bias.double()[None, :, None, None]


@pytest.mark.parametrize("stride, padding, dilation", [(1, 1, 1), (2, 1, 1), (1, 2, 2)])
def test_matches_the_direct_definition(stride: int, padding: int, dilation: int) -> None:
    torch.manual_seed(stride * 10 + dilation)
    input = torch.randn(2, 2, 5, 6)  # noqa: A001
    weight, bias = torch.randn(3, 2, 3, 3), torch.randn(3)
    out_h = (5 + 2 * padding - dilation * 2 - 1) // stride + 1
    out_w = (6 + 2 * padding - dilation * 2 - 1) // stride + 1
    offset = torch.randn(2, 18, out_h, out_w) * 1.5  # some taps land outside the image
    mask = torch.rand(2, 9, out_h, out_w)
    expected = _reference(input, offset, weight, bias, stride, padding, dilation, mask)
    got = deform_conv2d(input, offset, weight, bias, stride, padding, dilation, mask)
    torch.testing.assert_close(got.double(), expected, atol=1e-4, rtol=1e-4)


def test_zero_offsets_are_a_plain_convolution() -> None:
    torch.manual_seed(0)
    input, weight, bias = torch.randn(1, 4, 9, 7), torch.randn(5, 4, 3, 3), torch.randn(5)  # noqa: A001
    offset = torch.zeros(1, 18, 9, 7)
    torch.testing.assert_close(deform_conv2d(input, offset, weight, bias, padding=1),
                               F.conv2d(input, weight, bias, padding=1), atol=1e-5, rtol=1e-5)


def test_other_groupings_are_refused() -> None:
    with pytest.raises(ValueError, match="one weight group and one offset group"):
        deform_conv2d(torch.zeros(1, 4, 5, 5), torch.zeros(1, 36, 5, 5), torch.zeros(2, 4, 3, 3), padding=1)
