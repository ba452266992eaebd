"""The view of a matched frame (``MatchPacket``), as the window and headless runs show it, and the way back from
the view's pixels to its anchor's.

Dependency direction: ``session`` (matching, no drawing) -> this module -> ``render`` (pure drawing).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from model.geometry import Box
from model.views import UPRIGHT

from .render import GAP, Drawing, Overlay, ViewSettings, render_view, view_scales
from .session import MatchPacket


def render_packet(packet: MatchPacket, look: ViewSettings, model: str, device: str, status: str = "") -> np.ndarray:
    """The demo view of a packet (small frames enlarged, an anchor photo drawn as tall as the frame: see
    ``view_scales``) with its comparison's view below (``GAP`` rows apart, no help hint of its own)."""
    view_label = f" ({packet.anchor_view.describe()})" if packet.anchor_view not in (None, UPRIGHT) else ""
    overlay = Overlay(model=model, device=device, fps=packet.fps, latency_ms=packet.latency_ms,
                      frame_age_ms=packet.frame_age_ms, threshold=packet.threshold,
                      anchor=packet.anchor_label + view_label, frame_index=packet.frame_index, status=status,
                      size=packet.network_size, ratio_test=packet.ratio_test)
    anchor_scale, frame_scale = view_scales(packet.anchor.shape, packet.frame.shape)
    result = packet.result
    drawing = Drawing(packet.anchor, packet.frame, result.keypoints0, result.keypoints1, result.confidence,
                      frame_scale, anchor_scale, packet.geometry, packet.region)
    canvas = render_view(drawing, overlay, look)
    if packet.comparison is None:
        return canvas
    label, other = packet.comparison
    below = render_packet(other, replace(look, help_hint=False), label, other.device)
    gap = np.zeros((GAP, canvas.shape[1], 3), np.uint8)
    return np.concatenate([canvas, gap, below])  # as wide: the same anchor and frame


def anchor_box(packet: MatchPacket, box: Box) -> Box:
    """A box dragged over ``render_packet``'s view of ``packet`` (view pixels) in the anchor's pixels, clipped to
    the anchor; a box on the comparison's view below maps to the same anchor."""
    scale, frame_scale = view_scales(packet.anchor.shape, packet.frame.shape)
    height, width = packet.anchor.shape[:2]
    view_height = max(round(height * scale), packet.frame.shape[0] * frame_scale)
    if packet.comparison is not None and box[1] >= view_height + GAP:  # a box on the comparison's anchor
        box = (box[0], box[1] - view_height - GAP, box[2], box[3] - view_height - GAP)
    x0, y0, x1, y1 = (value / scale for value in box)
    return max(x0, 0.0), max(y0, 0.0), min(x1, float(width)), min(y1, float(height))
