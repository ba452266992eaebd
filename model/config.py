"""LoFTR configurations as frozen dataclasses, and the named presets.

Each official preset carries exactly the settings its released checkpoint was trained with. Configs are
immutable: changing one means building a new one (``dataclasses.replace``), so two models can never share
and silently modify the same settings (kornia's indoor/outdoor config bleed).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal

AttentionType = Literal["linear", "full"]
MatchType = Literal["dual_softmax", "sinkhorn"]


@dataclass(frozen=True)
class BackboneConfig:
    """ResNet-FPN 1/8 - 1/2 backbone widths (the official backbone)."""

    initial_dim: int = 128
    block_dims: tuple[int, int, int] = (128, 196, 256)
    kind: Literal["resnet_fpn"] = "resnet_fpn"

    @property
    def coarse_dim(self) -> int:
        return self.block_dims[2]

    @property
    def fine_dim(self) -> int:
        return self.block_dims[0]


@dataclass(frozen=True)
class XFeatBackboneConfig:
    """XFeat's CNN trunk (Potje et al., CVPR 2024) as LoFTR backbone: its 64-d 1/8 features projected to
    ``coarse_dim``, and a light 1/2-resolution branch of ``fine_dim`` channels built on its early layers."""

    coarse_dim: int = 128
    fine_dim: int = 32
    kind: Literal["xfeat"] = "xfeat"


@dataclass(frozen=True)
class TransformerConfig:
    """A stack of LoFTR encoder layers, interleaving self- and cross-attention."""

    d_model: int = 256
    nhead: int = 8
    layer_names: tuple[str, ...] = ("self", "cross") * 4
    attention: AttentionType = "linear"


@dataclass(frozen=True)
class CoarseMatchingConfig:
    """Coarse-level matching: dual-softmax or optimal transport, then thresholded mutual nearest neighbours."""

    thr: float = 0.2
    border_rm: int = 2
    match_type: MatchType = "dual_softmax"
    dsmax_temperature: float = 0.1
    skh_iters: int = 3
    skh_init_bin_score: float = 1.0
    skh_prefilter: bool = False


@dataclass(frozen=True)
class LoFTRConfig:
    """Everything that defines a LoFTR network and its default matching behaviour.

    ``temp_bug_fix=False`` selects the original positional encoding that the first released checkpoints
    (indoor_ds, outdoor_ds, indoor_ot, outdoor_ot) were trained with; ``True`` the corrected one.
    """

    name: str = "custom"
    backbone: BackboneConfig | XFeatBackboneConfig = field(default_factory=BackboneConfig)
    temp_bug_fix: bool = True
    coarse: TransformerConfig = field(default_factory=TransformerConfig)
    match_coarse: CoarseMatchingConfig = field(default_factory=CoarseMatchingConfig)
    fine_window_size: int = 5
    fine_concat_coarse_feat: bool = True
    fine: TransformerConfig = field(
        default_factory=lambda: TransformerConfig(d_model=128, nhead=8, layer_names=("self", "cross"))
    )

    def __post_init__(self) -> None:
        if self.backbone.coarse_dim != self.coarse.d_model:
            raise ValueError(
                f"coarse d_model ({self.coarse.d_model}) must equal the backbone's coarse width "
                f"({self.backbone.coarse_dim})"
            )
        if self.backbone.fine_dim != self.fine.d_model:
            raise ValueError(
                f"fine d_model ({self.fine.d_model}) must equal the backbone's fine width "
                f"({self.backbone.fine_dim})"
            )
        for transformer in (self.coarse, self.fine):
            if transformer.d_model % transformer.nhead:
                raise ValueError(f"d_model {transformer.d_model} is not divisible by nhead {transformer.nhead}")
            unknown = set(transformer.layer_names) - {"self", "cross"}
            if unknown:
                raise ValueError(f"unknown layer names {sorted(unknown)}; use 'self' and 'cross'")
        if self.fine_window_size % 2 == 0:
            raise ValueError(f"fine_window_size must be odd, got {self.fine_window_size}")

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-friendly dict (tuples become lists)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoFTRConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error so a file cannot be half-understood."""
        nested = {"backbone": BackboneConfig, "coarse": TransformerConfig, "match_coarse": CoarseMatchingConfig,
                  "fine": TransformerConfig}
        if data.get("backbone", {}).get("kind") == "xfeat":
            nested["backbone"] = XFeatBackboneConfig
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown config keys {sorted(unknown)}")
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key in nested:
                sub_cls = nested[key]
                sub_known = {f.name for f in fields(sub_cls)}
                if set(value) - sub_known:
                    raise ValueError(f"unknown keys in config.{key}: {sorted(set(value) - sub_known)}")
                value = sub_cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in value.items()})
            kwargs[key] = value
        return cls(**kwargs)


_BUGGY_PE = dict(temp_bug_fix=False)
_OT = CoarseMatchingConfig(match_type="sinkhorn")

#: The five official presets, keyed by the name of the checkpoint they belong to.
OFFICIAL_PRESETS: dict[str, LoFTRConfig] = {
    "indoor_ds": LoFTRConfig(name="indoor_ds", **_BUGGY_PE),
    "indoor_ds_new": LoFTRConfig(name="indoor_ds_new", temp_bug_fix=True),
    "outdoor_ds": LoFTRConfig(name="outdoor_ds", **_BUGGY_PE),
    "indoor_ot": LoFTRConfig(name="indoor_ot", match_coarse=_OT, **_BUGGY_PE),
    "outdoor_ot": LoFTRConfig(name="outdoor_ot", match_coarse=_OT, **_BUGGY_PE),
}


def compact_config(name: str, initial_dim: int, block_dims: tuple[int, int, int], coarse_layers: int,
                   nhead: int = 8, fine_layers: int = 1) -> LoFTRConfig:
    """A smaller LoFTR for the live demo: other widths and depths, same architecture.

    ``coarse_layers`` and ``fine_layers`` count self/cross pairs.
    """
    return _live_config(name, BackboneConfig(initial_dim=initial_dim, block_dims=block_dims), coarse_layers, nhead,
                        fine_layers)


def xfeat_config(name: str, coarse_dim: int, fine_dim: int, coarse_layers: int, nhead: int = 4,
                 fine_layers: int = 1, fine_layer_names: tuple[str, ...] | None = None) -> LoFTRConfig:
    """LoFTR on XFeat's pretrained CNN trunk (faster on a CPU than ResNet-FPN); same transformer and matching."""
    return _live_config(name, XFeatBackboneConfig(coarse_dim=coarse_dim, fine_dim=fine_dim), coarse_layers, nhead,
                        fine_layers, fine_layer_names)


def _live_config(name: str, backbone: BackboneConfig | XFeatBackboneConfig, coarse_layers: int, nhead: int,
                 fine_layers: int, fine_layer_names: tuple[str, ...] | None = None) -> LoFTRConfig:
    """A project preset: transformers as wide as the backbone's outputs, corrected positional encoding.

    ``fine_layer_names`` replaces the ``fine_layers`` self/cross pairs with any sequence of layers.
    """
    if fine_layer_names is None:
        fine_layer_names = ("self", "cross") * fine_layers
    return LoFTRConfig(
        name=name,
        backbone=backbone,
        temp_bug_fix=True,
        coarse=TransformerConfig(d_model=backbone.coarse_dim, nhead=nhead,
                                 layer_names=("self", "cross") * coarse_layers),
        fine=TransformerConfig(d_model=backbone.fine_dim, nhead=nhead, layer_names=fine_layer_names),
    )


#: The project's own compact presets (weights trained by ``python -m model train``).
COMPACT_PRESETS: dict[str, LoFTRConfig] = {
    "compact_s": compact_config("compact_s", 32, (32, 64, 128), coarse_layers=2, nhead=4),
    "compact_m": compact_config("compact_m", 64, (64, 96, 128), coarse_layers=2),
    "xfeat_s": xfeat_config("xfeat_s", coarse_dim=128, fine_dim=32, coarse_layers=2),
    # xfeat_s with a fine transformer of one cross layer instead of a self/cross pair: the fine stage's cost
    # grows with the matches, and the pair took ~40% of a 320x240 CPU frame (~560 matches).
    "xfeat_lite": xfeat_config("xfeat_lite", coarse_dim=128, fine_dim=32, coarse_layers=2,
                               fine_layer_names=("cross",)),
}

PRESETS: dict[str, LoFTRConfig] = {**OFFICIAL_PRESETS, **COMPACT_PRESETS}


def get_preset(name: str) -> LoFTRConfig:
    """The preset called ``name``; a clear error lists the valid names."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None


def with_matching(config: LoFTRConfig, **changes: Any) -> LoFTRConfig:
    """A copy of ``config`` with some coarse-matching settings changed (e.g. ``thr=0``)."""
    return replace(config, match_coarse=replace(config.match_coarse, **changes))
