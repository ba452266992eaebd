"""The LoFTR network, with the official module names so official state dicts load with ``strict=True``.

Two ways in:
- typed: ``extract(image) -> Features`` once per image, then ``match(features0, features1) -> Matches``;
  an anchor's features can be cached and reused against every new frame.
- official: ``LoFTR(config)(batch)`` fills ``batch`` with ``mkpts0_f``, ``mkpts1_f``, ``mconf``, ... like
  the reference implementation.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from .backbone import build_backbone
from .config import LoFTRConfig
from .matching import CoarseMatches, CoarseMatching, FineMatching, FinePreprocess
from .timing import StageTimer, maybe_stage
from .transformer import LocalFeatureTransformer, PositionEncodingSine

COARSE_STRIDE = 8
FINE_STRIDE = 2
#: The fine transformer runs on a multiple of this many windows (see ``LoFTR.refine``); a round number, so that
#: the usual caps on matches (--max_matches 200, 300, 500, ...) need no windows added.
FINE_BATCH_STEP = 50


@dataclass
class Features:
    """Backbone output for a batch of images; independent of the image they will be matched with.

    coarse: [B, C_c, ceil(H/8), ceil(W/8)] with the positional encoding added.
    fine: [B, C_f, ceil(H/2), ceil(W/2)].
    first_layer: the coarse tokens after the coarse transformer's first layer [B, Hc*Wc, C_c], when that
        layer is self-attention (which sees this image only) and was run ahead (see ``LoFTR.run_first_layer``).
    """

    coarse: torch.Tensor
    fine: torch.Tensor
    first_layer: torch.Tensor | None = None

    @property
    def coarse_hw(self) -> tuple[int, int]:
        return int(self.coarse.shape[2]), int(self.coarse.shape[3])

    def tokens(self) -> torch.Tensor:
        """Coarse map as a token sequence [B, Hc*Wc, C_c]."""
        return self.coarse.flatten(2).transpose(1, 2)


@dataclass
class Matches:
    """Matches in network-input pixel coordinates (x, y), pixel (i, j) covering [i, i+1) x [j, j+1).

    keypoints0, keypoints1: [M, 2] float32; confidence: [M] coarse score; batch_indexes: [M];
    fine_std: [M] spread of the fine heatmap (normalised window units), small = certain.
    """

    keypoints0: torch.Tensor
    keypoints1: torch.Tensor
    confidence: torch.Tensor
    batch_indexes: torch.Tensor
    fine_std: torch.Tensor


class LoFTR(nn.Module):
    """Detector-free local feature matching with transformers (Sun et al., CVPR 2021)."""

    def __init__(self, config: LoFTRConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = build_backbone(config.backbone)
        self.pos_encoding = PositionEncodingSine(config.coarse.d_model, temp_bug_fix=config.temp_bug_fix)
        self.loftr_coarse = LocalFeatureTransformer(config.coarse)
        self.coarse_matching = CoarseMatching(config.match_coarse)
        self.fine_preprocess = FinePreprocess(config.coarse.d_model, config.fine.d_model, config.fine_window_size,
                                              config.fine_concat_coarse_feat)
        self.loftr_fine = LocalFeatureTransformer(config.fine)
        self.fine_matching = FineMatching()

    def extract(self, image: torch.Tensor) -> Features:
        """Grayscale [B, 1, H, W] in [0, 1] -> Features."""
        coarse, fine = self.backbone(image)
        return Features(self.pos_encoding(coarse), fine)

    def run_first_layer(self, features: Features) -> Features:
        """``features`` with the coarse transformer's first layer already applied, when it is self-attention.

        That layer depends on one image only, so an anchor that is matched against every frame of a stream
        needs it once instead of once per frame. Unmasked images only (what ``Matcher`` gives).
        """
        if self.loftr_coarse.layer_names[:1] != ("self",):
            return features
        tokens = features.tokens()
        return replace(features, first_layer=self.loftr_coarse.layers[0](tokens, tokens))

    def coarse_matches(self, features0: Features, features1: Features, thr: float, border_rm: int,
                       mask0: torch.Tensor | None = None, mask1: torch.Tensor | None = None,
                       timer: StageTimer | None = None,
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, CoarseMatches]:
        """Coarse transformer and matching.

        Masks are padding masks at coarse resolution [B, Hc, Wc] (1 = valid).

        Returns:
            tokens0 [B, L, C], tokens1 [B, S, C], conf_matrix [B, L, S] (fp32), coarse matches.
        """
        flat0 = mask0.flatten(-2) if mask0 is not None else None
        flat1 = mask1.flatten(-2) if mask1 is not None else None
        with maybe_stage(timer, "coarse_transformer"):
            tokens0, tokens1 = self.loftr_coarse(features0.tokens(), features1.tokens(), flat0, flat1,
                                                 first0=features0.first_layer, first1=features1.first_layer)
        with maybe_stage(timer, "coarse_matching"):
            conf = self.coarse_matching.confidence(tokens0, tokens1, flat0, flat1)
            coarse = self.coarse_matching.select(conf, features0.coarse_hw, features1.coarse_hw, thr, border_rm,
                                                 mask0, mask1)
        return tokens0, tokens1, conf, coarse

    def refine(self, features0: Features, features1: Features, tokens0: torch.Tensor, tokens1: torch.Tensor,
               coarse: CoarseMatches, expectation: str = "window") -> torch.Tensor:
        """Fine stage on given coarse matches -> expec_f [M, 3] (x, y offset in [-1, 1] window units, std);
        ``expectation``: see ``model.matching.FINE_EXPECTATIONS``."""
        win0, win1 = self.fine_preprocess(features0.fine, features1.fine, tokens0, tokens1, coarse,
                                          features0.coarse_hw[1], features1.coarse_hw[1],
                                          stride=COARSE_STRIDE // FINE_STRIDE)
        count = win0.shape[0]
        if count:
            # The windows go through the fine transformer in batches of a multiple of FINE_BATCH_STEP (zero
            # windows added, dropped after): each window is attended to alone, so the others do not change, and
            # the CPU's oneDNN makes and caches kernels per shape. With a new count every frame its cache grew
            # by hundreds of MiB over a few hundred frames (the app's --any_rotation --any_scale: 1.3 GiB in all).
            padded = -(-count // FINE_BATCH_STEP) * FINE_BATCH_STEP
            win0, win1 = (torch.cat([win, win.new_zeros(padded - count, *win.shape[1:])]) for win in (win0, win1))
            win0, win1 = (win[:count] for win in self.loftr_fine(win0, win1))
        return self.fine_matching(win0, win1, expectation)

    def match(self, features0: Features, features1: Features, thr: float | None = None,
              border_rm: int | None = None, max_matches: int | None = None, mask0: torch.Tensor | None = None,
              mask1: torch.Tensor | None = None, timer: StageTimer | None = None,
              allowed0: torch.Tensor | None = None, fine_expectation: str = "window") -> Matches:
        """Match two batches of features.

        Args:
            thr, border_rm: coarse threshold and border width in cells; default from the config.
            max_matches: keep only the most confident coarse matches before the fine stage (which costs
                time per match). When given, the result is sorted by confidence, descending.
            mask0, mask1: padding masks at coarse resolution [B, Hc, Wc].
            timer: collects per-stage milliseconds when given.
            allowed0: [B, Hc * Wc] bool, the coarse cells of image 0 whose matches are kept (a region of
                interest); applied to the mutual nearest neighbours, before ``max_matches``.
            fine_expectation: see ``model.matching.FINE_EXPECTATIONS`` (default: the official one).
        """
        settings = self.config.match_coarse
        thr = settings.thr if thr is None else thr
        border_rm = settings.border_rm if border_rm is None else border_rm
        tokens0, tokens1, _, coarse = self.coarse_matches(features0, features1, thr, border_rm, mask0, mask1, timer)
        if allowed0 is not None:
            coarse = coarse.take(allowed0[coarse.b_ids, coarse.i_ids])
        with maybe_stage(timer, "fine"):
            if max_matches is not None:
                order = torch.argsort(coarse.mconf, descending=True)[:max_matches]
                coarse = coarse.take(order)
            expec_f = self.refine(features0, features1, tokens0, tokens1, coarse, fine_expectation)
            kpts0, kpts1 = self.keypoints(coarse, expec_f, features0.coarse_hw[1], features1.coarse_hw[1])
        return Matches(kpts0, kpts1, coarse.mconf, coarse.b_ids, expec_f[:, 2])

    def keypoints(self, coarse: CoarseMatches, expec_f: torch.Tensor, coarse_width0: int,
                  coarse_width1: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Coarse cell positions (x 8) plus, in image 1, the fine offset (x window radius x 2) -> [M, 2] each."""
        kpts0 = self._cell_xy(coarse.i_ids, coarse_width0)
        kpts1 = self._cell_xy(coarse.j_ids, coarse_width1)
        half_window = self.config.fine_window_size // 2
        kpts1 = kpts1.to(expec_f.dtype) + expec_f[:, :2] * (half_window * FINE_STRIDE)
        return kpts0, kpts1

    @staticmethod
    def _cell_xy(ids: torch.Tensor, width: int) -> torch.Tensor:
        return torch.stack([ids % width, ids // width], dim=1).float() * COARSE_STRIDE

    def forward(self, data: dict[str, Any]) -> dict[str, Any]:
        """The official dict interface.

        Reads ``image0``, ``image1`` [B, 1, H, W]; optional ``mask0``/``mask1`` (coarse-resolution padding
        masks) and ``scale0``/``scale1`` [B, 2] (multiplied into the keypoints). Adds ``hw0_i``, ``hw0_c``,
        ``hw0_f`` (and for 1), ``conf_matrix``, ``b_ids``, ``i_ids``, ``j_ids``, ``mconf``, ``m_bids``,
        ``mkpts0_c``, ``mkpts1_c``, ``expec_f``, ``mkpts0_f``, ``mkpts1_f`` and returns ``data``.
        """
        image0, image1 = data["image0"], data["image1"]
        batch = image0.shape[0]
        if image0.shape[2:] == image1.shape[2:]:
            both = self.extract(torch.cat([image0, image1], dim=0))
            features0 = Features(both.coarse[:batch], both.fine[:batch])
            features1 = Features(both.coarse[batch:], both.fine[batch:])
        else:
            features0, features1 = self.extract(image0), self.extract(image1)
        data.update(bs=batch, hw0_i=image0.shape[2:], hw1_i=image1.shape[2:],
                    hw0_c=features0.coarse.shape[2:], hw1_c=features1.coarse.shape[2:],
                    hw0_f=features0.fine.shape[2:], hw1_f=features1.fine.shape[2:])
        settings = self.config.match_coarse
        tokens0, tokens1, conf, coarse = self.coarse_matches(features0, features1, settings.thr, settings.border_rm,
                                                             data.get("mask0"), data.get("mask1"))
        expec_f = self.refine(features0, features1, tokens0, tokens1, coarse)
        kpts0_f, kpts1_f = self.keypoints(coarse, expec_f, features0.coarse_hw[1], features1.coarse_hw[1])
        kpts0_c = kpts0_f  # image 0's points are not refined
        kpts1_c = self._cell_xy(coarse.j_ids, features1.coarse_hw[1])
        if "scale0" in data:
            kpts0_c, kpts0_f = (k * data["scale0"][coarse.b_ids] for k in (kpts0_c, kpts0_f))
        if "scale1" in data:
            kpts1_c, kpts1_f = (k * data["scale1"][coarse.b_ids] for k in (kpts1_c, kpts1_f))
        data.update(conf_matrix=conf, b_ids=coarse.b_ids, i_ids=coarse.i_ids, j_ids=coarse.j_ids,
                    m_bids=coarse.b_ids, mconf=coarse.mconf, mkpts0_c=kpts0_c, mkpts1_c=kpts1_c,
                    expec_f=expec_f, mkpts0_f=kpts0_f, mkpts1_f=kpts1_f)
        return data

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
        """Accepts official Lightning keys (``matcher.`` prefix) as well as plain ones."""
        state_dict = {(k[len("matcher."):] if k.startswith("matcher.") else k): v for k, v in state_dict.items()}
        return super().load_state_dict(state_dict, strict=strict, assign=assign)
