"""Optimiser construction (SGD / AdamW with per-group weight decay), LR setting, clipping."""
import logging
from typing import Dict, Iterable, List

import torch
import torch.nn as nn
from fvcore.common.config import CfgNode

logger = logging.getLogger(__name__)

_NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)


def lr_scale_of(name: str, cfg: CfgNode) -> float:
    """LR multiplier of the parameter ``name``: the ``SOLVER.LR_SCALES`` entry of the first
    ``SOLVER.LR_SCALE_PATTERNS`` entry it contains, else 1."""
    if len(cfg.SOLVER.LR_SCALE_PATTERNS) != len(cfg.SOLVER.LR_SCALES):
        raise ValueError(f"SOLVER.LR_SCALE_PATTERNS ({len(cfg.SOLVER.LR_SCALE_PATTERNS)}) and SOLVER.LR_SCALES "
                         f"({len(cfg.SOLVER.LR_SCALES)}) must have the same length")
    for pattern, scale in zip(cfg.SOLVER.LR_SCALE_PATTERNS, cfg.SOLVER.LR_SCALES):
        if pattern in name:
            return float(scale)
    return 1.0


def get_param_groups(model: nn.Module, cfg: CfgNode) -> List[Dict]:
    """Split trainable parameters into weight-decay groups (and LR-scale groups).

    Parameters of normalisation layers (BatchNorm, SyncBatchNorm, LayerNorm, GroupNorm) use
    ``BN.WEIGHT_DECAY``; with ``SOLVER.ZERO_WD_1D_PARAM`` every other 1-d parameter (biases) has
    no weight decay; the rest use ``SOLVER.WEIGHT_DECAY``. A group's ``lr_scale`` multiplies the
    LR :func:`set_lr` sets (``SOLVER.LR_SCALE_PATTERNS``). Empty groups are dropped.
    """
    decays = (cfg.SOLVER.WEIGHT_DECAY, cfg.BN.WEIGHT_DECAY, 0.0)
    groups: Dict[tuple, List[torch.nn.Parameter]] = {}
    for module_name, module in model.named_modules():
        is_norm = isinstance(module, _NORM_TYPES)
        for name, param in module.named_parameters(prefix=module_name, recurse=False):
            if not param.requires_grad:
                continue
            kind = 1 if is_norm else 2 if cfg.SOLVER.ZERO_WD_1D_PARAM and param.ndim <= 1 else 0
            groups.setdefault((lr_scale_of(name, cfg), kind), []).append(param)
    ordered = sorted(groups.items(), key=lambda item: (item[0][0] != 1.0, item[0][1], -item[0][0]))
    return [{"params": params, "weight_decay": decays[kind], "lr_scale": scale}
            for (scale, kind), params in ordered]


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
    """Set the learning rate of every parameter group (times its ``lr_scale``)."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)


def clip_gradients(parameters: Iterable[torch.Tensor], cfg: CfgNode) -> None:
    """Clip gradients by value (``SOLVER.CLIP_GRAD_VAL``) and/or global L2 norm (``CLIP_GRAD_L2NORM``)."""
    params = [p for p in parameters if p.grad is not None]
    if cfg.SOLVER.CLIP_GRAD_VAL is not None:
        torch.nn.utils.clip_grad_value_(params, cfg.SOLVER.CLIP_GRAD_VAL)
    if cfg.SOLVER.CLIP_GRAD_L2NORM is not None:
        torch.nn.utils.clip_grad_norm_(params, cfg.SOLVER.CLIP_GRAD_L2NORM)
