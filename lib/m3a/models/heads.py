"""Pieces shared by the classification heads: pooling of the last feature map and activations."""
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

# Spatial size of the published head's average pool (7 x 7 at a 112 x 112 training crop).
HEAD_SPATIAL_POOL = 7


def head_pool_size(arch: str, num_frames: int) -> tuple:
    """Published pool kernel (T_final, 7, 7): T_final = T/8, or T/2 for i3d (at least 1)."""
    t_final = num_frames // 2 if arch == "i3d" else num_frames // 8
    return (max(1, t_final), HEAD_SPATIAL_POOL, HEAD_SPATIAL_POOL)


def head_pool(x: torch.Tensor, kernel: Sequence[int]) -> torch.Tensor:
    """AvgPool3d(kernel, stride 1) of ``x`` (B, C, T, H, W); dims smaller than the kernel are
    pooled whole, so any input size works (the adaptive fallback)."""
    kernel = tuple(min(k, s) for k, s in zip(kernel, x.shape[2:]))
    return F.avg_pool3d(x, kernel, stride=1)


def head_activation(name: str, dim: int = -1) -> nn.Module:
    """Eval-time activation: ``sigmoid`` (multi-label) or ``softmax`` over ``dim``."""
    if name == "sigmoid":
        return nn.Sigmoid()
    if name == "softmax":
        return nn.Softmax(dim=dim)
    raise ValueError(f"MODEL.HEAD_ACT must be sigmoid or softmax, got '{name}'")
