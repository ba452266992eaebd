"""ResNet-FPN backbone giving LoFTR's coarse (1/8) and fine (1/2) feature maps.

Module and parameter names follow the official ``ResNetFPN_8_2`` so official state dicts load strictly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import BackboneConfig


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution without bias."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, padding=0, bias=False)


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution with padding, without bias."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and a residual connection."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_planes, planes, stride)
        self.conv2 = conv3x3(planes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1:
            self.downsample = nn.Sequential(conv1x1(in_planes, planes, stride=stride), nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C_in, H, W] -> [B, planes, H/stride, W/stride]."""
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        if self.downsample is not None:
            x = self.downsample(x)
        return self.relu(x + y)


def _upsample_to(x: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Upsample ``x`` by 2 (bilinear, aligned corners) and crop it to ``reference``'s size.

    The crop lets any image size through: with odd sizes the 2x map is one pixel larger than the finer one.
    """
    up = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=True)
    return up[..., : reference.shape[2], : reference.shape[3]]


class ResNetFPN_8_2(nn.Module):
    """ResNet-18-like encoder with an FPN decoder; outputs 1/8 and 1/2 resolution features."""

    def __init__(self, config: BackboneConfig) -> None:
        super().__init__()
        initial_dim, block_dims = config.initial_dim, config.block_dims
        self.in_planes = initial_dim
        self.conv1 = nn.Conv2d(1, initial_dim, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(initial_dim)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(block_dims[0], stride=1)  # 1/2
        self.layer2 = self._make_layer(block_dims[1], stride=2)  # 1/4
        self.layer3 = self._make_layer(block_dims[2], stride=2)  # 1/8

        self.layer3_outconv = conv1x1(block_dims[2], block_dims[2])
        self.layer2_outconv = conv1x1(block_dims[1], block_dims[2])
        self.layer2_outconv2 = nn.Sequential(
            conv3x3(block_dims[2], block_dims[2]),
            nn.BatchNorm2d(block_dims[2]),
            nn.LeakyReLU(),
            conv3x3(block_dims[2], block_dims[1]),
        )
        self.layer1_outconv = conv1x1(block_dims[0], block_dims[1])
        self.layer1_outconv2 = nn.Sequential(
            conv3x3(block_dims[1], block_dims[1]),
            nn.BatchNorm2d(block_dims[1]),
            nn.LeakyReLU(),
            conv3x3(block_dims[1], block_dims[0]),
        )
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def _make_layer(self, dim: int, stride: int) -> nn.Sequential:
        layers = (BasicBlock(self.in_planes, dim, stride=stride), BasicBlock(dim, dim, stride=1))
        self.in_planes = dim
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Grayscale images [B, 1, H, W] -> (coarse [B, C_c, ceil(H/8), ceil(W/8)], fine [B, C_f, ceil(H/2), ceil(W/2)])."""
        x0 = self.relu(self.bn1(self.conv1(x)))
        x1 = self.layer1(x0)  # 1/2
        x2 = self.layer2(x1)  # 1/4
        x3 = self.layer3(x2)  # 1/8

        x3_out = self.layer3_outconv(x3)
        x2_out = self.layer2_outconv(x2)
        x2_out = self.layer2_outconv2(x2_out + _upsample_to(x3_out, x2_out))
        x1_out = self.layer1_outconv(x1)
        x1_out = self.layer1_outconv2(x1_out + _upsample_to(x2_out, x1_out))
        return x3_out, x1_out


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """Fold every Conv2d -> BatchNorm2d pair into the convolution (in place); inference only.

    The BN becomes an identity and the convolution gets the affine transform as weight scale and bias,
    saving a full pass over each feature map. Only for eval mode: the folded module no longer trains BN.
    """
    children = list(module.named_children())
    # Registration order is execution order only inside a Sequential (BasicBlock registers conv2 before bn1).
    pairs = zip(children, children[1:]) if isinstance(module, nn.Sequential) else []
    for (_, first), (second_name, second) in pairs:
        if isinstance(first, nn.Conv2d) and isinstance(second, nn.BatchNorm2d):
            _fold_into(first, second)
            setattr(module, second_name, nn.Identity())
    for _, child in children:
        fold_batchnorm(child)
    if isinstance(module, BasicBlock):
        for conv, bn_name in ((module.conv1, "bn1"), (module.conv2, "bn2")):
            bn = getattr(module, bn_name)
            if isinstance(bn, nn.BatchNorm2d):
                _fold_into(conv, bn)
                setattr(module, bn_name, nn.Identity())
    if isinstance(module, ResNetFPN_8_2) and isinstance(module.bn1, nn.BatchNorm2d):
        _fold_into(module.conv1, module.bn1)
        module.bn1 = nn.Identity()
    return module


@torch.no_grad()
def _fold_into(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    conv.weight.mul_(scale[:, None, None, None])
    conv.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias)
