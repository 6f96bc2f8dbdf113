"""TSN's classifier with average segment consensus (head ``tsn_fc``), as TSN, TSM and ACTION-Net
publish it.

Dropout + ``new_fc`` (Linear C -> N, weight ~ N(0, TSN_HEAD.INIT_STD), bias 0) scores every
segment (position); the segment logits are averaged, and at eval the activation is applied to the
average (the FC head ``fc`` instead averages activated scores). Published key: ``new_fc.*`` at the
top level of the model. The head asks the optimiser for the published learning-rate multipliers
of its weight and bias through :meth:`TSNHead.optim_hints`.
"""
from typing import Dict

import torch
import torch.nn as nn
from fvcore.common.config import CfgNode

from m3a.config.errors import ConfigError
from m3a.models.build import HEAD_REGISTRY, register
from m3a.models.heads import Head, as_positions, head_activation


@register(HEAD_REGISTRY, "tsn_fc")
class TSNHead(Head):
    """(B, C) or (B, T, C) -> (B, N): mean over T of ``new_fc(dropout(x_t))``; logits in
    training, ``MODEL.HEAD_ACT`` of the mean at eval."""


    def __init__(self, cfg: CfgNode, in_dim: int, inputs: Dict[str, object]) -> None:
        super().__init__()
        self.dropout = nn.Dropout(cfg.MODEL.DROPOUT_RATE)
        self.new_fc = nn.Linear(in_dim, cfg.MODEL.NUM_CLASSES)
        nn.init.normal_(self.new_fc.weight, std=cfg.TSN_HEAD.INIT_STD)
        nn.init.zeros_(self.new_fc.bias)
        self.act = head_activation(cfg.MODEL.HEAD_ACT, dim=-1)
        self.lr_mults = (cfg.TSN_HEAD.WEIGHT_LR_MULT, cfg.TSN_HEAD.BIAS_LR_MULT)

    @classmethod
    def add_config(cls, cfg: CfgNode) -> None:
        """The TSN_HEAD section (documented below); dropout is MODEL.DROPOUT_RATE."""
        cfg.TSN_HEAD = CfgNode()
        # Standard deviation of the normal initialisation of new_fc.weight (TSN: 0.001).
        cfg.TSN_HEAD.INIT_STD = 0.001
        # Learning-rate multipliers of new_fc.weight and new_fc.bias (TSM / ACTION-Net `fc_lr5`,
        # on when training from ImageNet weights: 5 and 10); new_fc.bias is never weight-decayed,
        # as published.
        cfg.TSN_HEAD.WEIGHT_LR_MULT = 5.0
        cfg.TSN_HEAD.BIAS_LR_MULT = 10.0

    @classmethod
    def check_config(cls, cfg: CfgNode, in_dim: int) -> None:
        """Validate MODEL.DROPOUT_RATE and the TSN_HEAD keys."""
        if not 0.0 <= cfg.MODEL.DROPOUT_RATE < 1.0:
            raise ConfigError(f"MODEL.DROPOUT_RATE must be in [0, 1), got {cfg.MODEL.DROPOUT_RATE}")
        for key in ("INIT_STD", "WEIGHT_LR_MULT", "BIAS_LR_MULT"):
            if cfg.TSN_HEAD[key] <= 0:
                raise ConfigError(f"TSN_HEAD.{key} must be > 0, got {cfg.TSN_HEAD[key]}")

    def optim_hints(self) -> Dict[str, Dict[str, float]]:
        """Per-parameter optimiser hints (see m3a.engine.optimizer.get_param_groups)."""
        weight, bias = self.lr_mults
        return {"new_fc.weight": {"lr_mult": weight},
                "new_fc.bias": {"lr_mult": bias, "weight_decay_mult": 0.0}}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scores (B, N): averaged segment logits in training, their activation at eval."""
        x = self.new_fc(self.dropout(as_positions(x))).mean(dim=1)
        return x if self.training else self.act(x)
