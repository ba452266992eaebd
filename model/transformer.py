"""Positional encoding and the LoFTR local feature transformer (linear or full attention)."""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import TransformerConfig


def sine_position_encoding(d_model: int, height: int, width: int, temp_bug_fix: bool) -> torch.Tensor:
    """2-D sinusoidal encoding [1, d_model, height, width], channels interleaved sin x, cos x, sin y, cos y.

    ``temp_bug_fix=False`` reproduces the original code's frequency term, ``-log(1e4) / d_model // 2``,
    whose floor division makes every exponent -1 per step; the released indoor_ds/outdoor_ds/OT
    checkpoints were trained with it.
    """
    y_position = torch.ones(height, width).cumsum(0).unsqueeze(0)
    x_position = torch.ones(height, width).cumsum(1).unsqueeze(0)
    if temp_bug_fix:
        step = -math.log(10000.0) / (d_model // 2)
    else:
        step = -math.log(10000.0) / d_model // 2
    div_term = torch.exp(torch.arange(0, d_model // 2, 2).float() * step)[:, None, None]
    pe = torch.zeros(d_model, height, width)
    pe[0::4] = torch.sin(x_position * div_term)
    pe[1::4] = torch.cos(x_position * div_term)
    pe[2::4] = torch.sin(y_position * div_term)
    pe[3::4] = torch.cos(y_position * div_term)
    return pe.unsqueeze(0)


class PositionEncodingSine(nn.Module):
    """Adds the sinusoidal position encoding to a coarse feature map; grows itself for large inputs."""

    pe: torch.Tensor

    def __init__(self, d_model: int, max_shape: tuple[int, int] = (256, 256), temp_bug_fix: bool = True) -> None:
        super().__init__()
        self.d_model = d_model
        self.temp_bug_fix = temp_bug_fix
        # Not persistent: official checkpoints do not store it, it is a pure function of the config.
        self.register_buffer("pe", sine_position_encoding(d_model, *max_shape, temp_bug_fix), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C, H, W] -> [B, C, H, W]."""
        if x.shape[2] > self.pe.shape[2] or x.shape[3] > self.pe.shape[3]:
            height, width = max(x.shape[2], self.pe.shape[2]), max(x.shape[3], self.pe.shape[3])
            self.pe = sine_position_encoding(self.d_model, height, width, self.temp_bug_fix).to(self.pe)
        return x + self.pe[:, :, : x.shape[2], : x.shape[3]].to(x.dtype)


class LinearAttention(nn.Module):
    """Linear attention with the elu(x)+1 feature map (Katharopoulos et al. 2020), O(L + S)."""

    def __init__(self, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                q_mask: torch.Tensor | None = None, kv_mask: torch.Tensor | None = None) -> torch.Tensor:
        """queries [N, L, H, D], keys/values [N, S, H, D], masks [N, L] / [N, S] -> [N, L, H, D]."""
        q = F.elu(queries) + 1
        k = F.elu(keys) + 1
        if q_mask is not None:
            q = q * q_mask[:, :, None, None]
        if kv_mask is not None:
            k = k * kv_mask[:, :, None, None]
            values = values * kv_mask[:, :, None, None]
        # Means over the S keys instead of the official sums, and eps / S: the same value, but in fp16 the
        # sums overflow at 640x480 (q . sum(k) reached 1e5 > 65504 with trained weights), which zeroed the
        # attention of those tokens and changed 15% of the matches.
        length = values.shape[1]
        if torch.onnx.is_in_onnx_export():
            return _linear_attention_matmul(q, k, values / length, self.eps / length)
        kv = torch.einsum("nshd,nshv->nhdv", k, values / length)
        z = 1 / (torch.einsum("nlhd,nhd->nlh", q, k.mean(dim=1)) + self.eps / length)
        return torch.einsum("nlhd,nhdv->nlhv", q, kv) * z[..., None]  # two-operand einsums: faster on a CPU


def _linear_attention_matmul(q: torch.Tensor, k: torch.Tensor, values: torch.Tensor, eps: float) -> torch.Tensor:
    """``LinearAttention``'s einsums as matrix products (ONNX export: some runtimes lack Einsum).

    q [N, L, H, D], k [N, S, H, D], values [N, S, H, V] (already divided by S) -> [N, L, H, V].
    """
    q_heads = q.transpose(1, 2)  # [N, H, L, D]
    kv = k.permute(0, 2, 3, 1) @ values.transpose(1, 2)  # [N, H, D, V]
    z = 1 / (q_heads @ k.mean(dim=1)[..., None] + eps)  # [N, H, L, 1]
    return ((q_heads @ kv) * z).transpose(1, 2)


class FullAttention(nn.Module):
    """Scaled dot-product softmax attention, O(L * S); no parameters."""

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                q_mask: torch.Tensor | None = None, kv_mask: torch.Tensor | None = None) -> torch.Tensor:
        """queries [N, L, H, D], keys/values [N, S, H, D], masks [N, L] / [N, S] -> [N, L, H, D]."""
        attn_mask = None
        if q_mask is not None and kv_mask is not None:
            attn_mask = (q_mask[:, None, :, None].bool() & kv_mask[:, None, None, :].bool())
        out = F.scaled_dot_product_attention(queries.transpose(1, 2), keys.transpose(1, 2), values.transpose(1, 2),
                                             attn_mask=attn_mask)
        return out.transpose(1, 2)


class LoFTREncoderLayer(nn.Module):
    """One attention layer: message = MLP([x, norm(merge(attention(x, source)))]), output x + norm(message)."""

    def __init__(self, d_model: int, nhead: int, attention: str = "linear") -> None:
        super().__init__()
        self.dim = d_model // nhead
        self.nhead = nhead
        self.q_proj = nn.Linear(d_model, d_model, bias=False)
        self.k_proj = nn.Linear(d_model, d_model, bias=False)
        self.v_proj = nn.Linear(d_model, d_model, bias=False)
        self.attention = LinearAttention() if attention == "linear" else FullAttention()
        self.merge = nn.Linear(d_model, d_model, bias=False)
        self.mlp = nn.Sequential(
            nn.Linear(d_model * 2, d_model * 2, bias=False),
            nn.ReLU(True),
            nn.Linear(d_model * 2, d_model, bias=False),
        )
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor, source: torch.Tensor, x_mask: torch.Tensor | None = None,
                source_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x [N, L, C], source [N, S, C], masks [N, L] / [N, S] -> [N, L, C]."""
        batch = x.shape[0]
        query = self.q_proj(x).view(batch, -1, self.nhead, self.dim)
        key = self.k_proj(source).view(batch, -1, self.nhead, self.dim)
        value = self.v_proj(source).view(batch, -1, self.nhead, self.dim)
        message = self.attention(query, key, value, q_mask=x_mask, kv_mask=source_mask)
        message = self.norm1(self.merge(message.reshape(batch, -1, self.nhead * self.dim)))
        message = self.norm2(self.mlp(torch.cat([x, message], dim=2)))
        return x + message


class LocalFeatureTransformer(nn.Module):
    """Self- and cross-attention layers applied to the two token sets in turn."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.d_model = config.d_model
        self.layer_names = tuple(config.layer_names)
        layer = LoFTREncoderLayer(config.d_model, config.nhead, config.attention)
        self.layers = nn.ModuleList([copy.deepcopy(layer) for _ in self.layer_names])
        for parameter in self.parameters():
            if parameter.dim() > 1:
                nn.init.xavier_uniform_(parameter)

    def forward(self, feat0: torch.Tensor, feat1: torch.Tensor, mask0: torch.Tensor | None = None,
                mask1: torch.Tensor | None = None, first0: torch.Tensor | None = None,
                first1: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """feat0 [N, L, C], feat1 [N, S, C] -> updated (feat0, feat1).

        In a cross layer feat1 attends to the *updated* feat0, as in the official code. ``first0`` /
        ``first1``: the first layer's output for feat0 / feat1 when it is a self layer already run (a cached
        anchor's); that layer is then skipped for them.
        """
        batch = feat0.shape[0]
        layers = list(zip(self.layers, self.layer_names, strict=True))
        if (first0 is not None or first1 is not None) and self.layer_names[:1] == ("self",):
            first_layer = self.layers[0]
            feat0 = first0 if first0 is not None else first_layer(feat0, feat0, mask0, mask0)
            feat1 = first1 if first1 is not None else first_layer(feat1, feat1, mask1, mask1)
            layers = layers[1:]
        same_shape = feat0.shape == feat1.shape and (mask0 is None) == (mask1 is None)
        for layer, name in layers:
            if name == "self" and same_shape:
                # One call over both images: same per-sample maths, half the kernel launches.
                both = torch.cat([feat0, feat1])
                mask = torch.cat([mask0, mask1]) if mask0 is not None and mask1 is not None else None
                feat0, feat1 = layer(both, both, mask, mask).split(batch)
            elif name == "self":
                feat0 = layer(feat0, feat0, mask0, mask0)
                feat1 = layer(feat1, feat1, mask1, mask1)
            else:
                feat0 = layer(feat0, feat1, mask0, mask1)
                feat1 = layer(feat1, feat0, mask1, mask0)
        return feat0, feat1
