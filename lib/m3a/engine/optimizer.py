"""Optimiser construction (SGD / AdamW with per-group weight decay), LR setting, clipping."""
import logging
from typing import Dict, Iterable, List

import torch
import torch.nn as nn
from fvcore.common.config import CfgNode

logger = logging.getLogger(__name__)

_NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)


def get_param_groups(model: nn.Module, cfg: CfgNode) -> List[Dict]:
    """Split trainable parameters into weight-decay groups.

    Parameters of normalisation layers (BatchNorm, SyncBatchNorm, LayerNorm, GroupNorm) use
    ``BN.WEIGHT_DECAY``; with ``SOLVER.ZERO_WD_1D_PARAM`` every other 1-d parameter (biases) has
    no weight decay; the rest use ``SOLVER.WEIGHT_DECAY``. Empty groups are dropped.
    """
    norm_params, zero_wd_params, decay_params = [], [], []
    for module in model.modules():
        is_norm = isinstance(module, _NORM_TYPES)
        for param in module.parameters(recurse=False):
            if not param.requires_grad:
                continue
            if is_norm:
                norm_params.append(param)
            elif cfg.SOLVER.ZERO_WD_1D_PARAM and param.ndim <= 1:
                zero_wd_params.append(param)
            else:
                decay_params.append(param)
    groups = [
        {"params": decay_params, "weight_decay": cfg.SOLVER.WEIGHT_DECAY},
        {"params": norm_params, "weight_decay": cfg.BN.WEIGHT_DECAY},
        {"params": zero_wd_params, "weight_decay": 0.0},
    ]
    return [g for g in groups if g["params"]]


def construct_optimizer(model: nn.Module, cfg: CfgNode) -> torch.optim.Optimizer:
    """Build the optimiser named by ``SOLVER.OPTIMIZING_METHOD`` (sgd or adamw)."""
    groups = get_param_groups(model, cfg)
    method = cfg.SOLVER.OPTIMIZING_METHOD.lower()
    if method == "sgd":
        return torch.optim.SGD(
            groups,
            lr=cfg.SOLVER.BASE_LR,
            momentum=cfg.SOLVER.MOMENTUM,
            dampening=cfg.SOLVER.DAMPENING,
            nesterov=cfg.SOLVER.NESTEROV,
            weight_decay=cfg.SOLVER.WEIGHT_DECAY,
        )
    if method == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.SOLVER.BASE_LR, weight_decay=cfg.SOLVER.WEIGHT_DECAY)
    raise ValueError(f"unknown SOLVER.OPTIMIZING_METHOD '{cfg.SOLVER.OPTIMIZING_METHOD}'; use sgd or adamw")


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set the learning rate of every parameter group."""
    for group in optimizer.param_groups:
        group["lr"] = lr


def clip_gradients(parameters: Iterable[torch.Tensor], cfg: CfgNode) -> None:
    """Clip gradients by value (``SOLVER.CLIP_GRAD_VAL``) and/or global L2 norm (``CLIP_GRAD_L2NORM``)."""
    params = [p for p in parameters if p.grad is not None]
    if cfg.SOLVER.CLIP_GRAD_VAL is not None:
        torch.nn.utils.clip_grad_value_(params, cfg.SOLVER.CLIP_GRAD_VAL)
    if cfg.SOLVER.CLIP_GRAD_L2NORM is not None:
        torch.nn.utils.clip_grad_norm_(params, cfg.SOLVER.CLIP_GRAD_L2NORM)
