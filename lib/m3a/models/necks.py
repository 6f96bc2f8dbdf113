"""Necks: pooling of a backbone's features into clip features for the head.

A neck returns ``(B, C)`` or ``(B, P, C)``: P pooled positions that the head reduces in its own
published way (the FC baseline scores every position and averages the activated scores; the M3A
head averages the positions first).
"""
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from fvcore.common.config import CfgNode

from m3a.models.backbone import Backbone
from m3a.models.build import NECK_REGISTRY, register

# Spatial size of the published head's average pool (7 x 7 at a 112 x 112 training crop).
HEAD_SPATIAL_POOL = 7


def head_pool(x: torch.Tensor, kernel: Sequence[int]) -> torch.Tensor:
    """AvgPool3d(kernel, stride 1) of ``x`` (B, C, T, H, W); dims smaller than the kernel are
    pooled whole, so any input size works (the adaptive fallback)."""
    kernel = tuple(min(k, s) for k, s in zip(kernel, x.shape[2:]))
    return F.avg_pool3d(x, kernel, stride=1)


class Neck(nn.Module):
    """Base class of the necks: ``LAYOUTS`` lists the backbone layouts a neck accepts; built as
    ``cls(cfg, backbone)``."""

    LAYOUTS: Sequence[str] = ()

    def __init__(self, cfg: CfgNode, backbone: Backbone) -> None:
        super().__init__()

    @classmethod
    def add_config(cls, cfg: CfgNode) -> None:
        """Add the neck's own config keys (none by default)."""


@register(NECK_REGISTRY, "video_avgpool")
class VideoAvgPool(Neck):
    """The published M3A pool: AvgPool3d((T/s, 7, 7), stride 1) over a 3D map -> (B, P, C).

    s is the backbone's temporal stride (T_final = NUM_FRAMES / s, at least 1); at the training
    crop there is one position, at a larger test crop several.
    """

    LAYOUTS = ("map3d",)

    def __init__(self, cfg: CfgNode, backbone: Backbone) -> None:
        super().__init__(cfg, backbone)
        t_final = max(1, cfg.DATA.NUM_FRAMES // backbone.temporal_stride)
        self.pool_size = (t_final, HEAD_SPATIAL_POOL, HEAD_SPATIAL_POOL)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> (B, P, C)."""
        return head_pool(x, self.pool_size).flatten(2).transpose(1, 2)


@register(NECK_REGISTRY, "global_avgpool")
class GlobalAvgPool(Neck):
    """Average over all of (T, H, W) of a 3D map -> (B, C)."""

    LAYOUTS = ("map3d",)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> (B, C)."""
        return x.mean(dim=(2, 3, 4))


@register(NECK_REGISTRY, "segment_consensus")
class SegmentConsensus(Neck):
    """TSN segment consensus for per-frame 2D maps: spatial average per frame -> (B, T, C).

    The head scores every segment and averages (TSN's average consensus).
    """

    LAYOUTS = ("frames2d",)

    def __init__(self, cfg: CfgNode, backbone: Backbone) -> None:
        super().__init__(cfg, backbone)
        self.num_frames = backbone.num_frames

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B * T, C, H, W) -> (B, T, C)."""
        pooled = x.mean(dim=(2, 3))
        return pooled.reshape(-1, self.num_frames, pooled.shape[1])


@register(NECK_REGISTRY, "cls_token")
class ClsToken(Neck):
    """The class token (index 0) of every frame, averaged over frames -> (B, D)."""

    LAYOUTS = ("tokens",)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, N, D) -> (B, D)."""
        return x[:, :, 0].mean(dim=1)


@register(NECK_REGISTRY, "token_mean")
class TokenMean(Neck):
    """The mean of all tokens of all frames -> (B, D)."""

    LAYOUTS = ("tokens",)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, N, D) -> (B, D)."""
        return x.mean(dim=(1, 2))
