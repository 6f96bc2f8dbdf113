"""Classification heads: the FC baseline (``fc``) and the activations every head applies at eval.

A head maps neck features ``(B, C)`` or ``(B, P, C)`` to ``(B, NUM_CLASSES)``: logits in
training, ``MODEL.HEAD_ACT`` scores at eval. ``state_prefix`` is where its keys sit in the
published state dict of the whole model.
"""
from typing import Dict

import torch
import torch.nn as nn
from fvcore.common.config import CfgNode

from m3a.config.errors import ConfigError
from m3a.models.build import HEAD_REGISTRY, register


def head_activation(name: str, dim: int = -1) -> nn.Module:
    """Eval-time activation: ``sigmoid`` (multi-label) or ``softmax`` over ``dim``."""
    if name == "sigmoid":
        return nn.Sigmoid()
    if name == "softmax":
        return nn.Softmax(dim=dim)
    raise ValueError(f"MODEL.HEAD_ACT must be sigmoid or softmax, got '{name}'")


def as_positions(x: torch.Tensor) -> torch.Tensor:
    """Neck features as (B, P, C): (B, C) becomes one position."""
    return x.unsqueeze(1) if x.dim() == 2 else x


class Head(nn.Module):
    """Base class of the registered heads, with the defaults of a head built from its config
    alone: keys at the top level of the state dict, no config keys, no inputs to read or store,
    nothing to shrink for tests. Heads that need more override these."""

    state_prefix = ""

    @classmethod
    def add_config(cls, cfg: CfgNode) -> None:
        """Add the head's own config keys (none by default)."""

    @classmethod
    def read_inputs(cls, cfg: CfgNode) -> Dict[str, object]:
        """The tensors the head is built with, read from the data folder (none by default)."""
        return {}

    @classmethod
    def stored_inputs(cls, cfg: CfgNode, inputs: Dict[str, object]) -> Dict[str, torch.Tensor]:
        """What a checkpoint stores of ``inputs`` (none by default)."""
        return {}

    @classmethod
    def make_tiny(cls, cfg: CfgNode) -> Dict[str, object]:
        """Shrink the head's keys for tests and return matching random inputs (none by default)."""
        return {}


@register(HEAD_REGISTRY, "fc")
class FCHead(Head):
    """The plain baseline (M3A.MODE NONE): dropout + Linear(C -> N) at every pooled position; at
    eval the activation is applied before the positions are averaged (as published).

    Published keys: ``projection.weight`` / ``projection.bias`` at the top level of the model.
    """

    def __init__(self, cfg: CfgNode, in_dim: int, inputs: Dict[str, object]) -> None:
        super().__init__()
        if cfg.MODEL.DROPOUT_RATE > 0:
            self.dropout = nn.Dropout(cfg.MODEL.DROPOUT_RATE)
        self.projection = nn.Linear(in_dim, cfg.MODEL.NUM_CLASSES)
        nn.init.normal_(self.projection.weight, std=0.01)
        nn.init.zeros_(self.projection.bias)
        self.act = head_activation(cfg.MODEL.HEAD_ACT, dim=-1)

    @classmethod
    def add_config(cls, cfg: CfgNode) -> None:
        """MODEL.DROPOUT_RATE."""
        # Dropout before the classifier of the FC head.
        cfg.MODEL.DROPOUT_RATE = 0.0

    @classmethod
    def check_config(cls, cfg: CfgNode, in_dim: int) -> None:
        """Validate MODEL.DROPOUT_RATE."""
        if not 0.0 <= cfg.MODEL.DROPOUT_RATE < 1.0:
            raise ConfigError(f"MODEL.DROPOUT_RATE must be in [0, 1), got {cfg.MODEL.DROPOUT_RATE}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scores (B, N): logits in training, activated (then averaged) at eval."""
        x = as_positions(x)
        if hasattr(self, "dropout"):
            x = self.dropout(x)
        x = self.projection(x)
        if not self.training:
            x = self.act(x)
        return x.mean(dim=1)
