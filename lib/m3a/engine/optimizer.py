"""Optimiser construction (SGD / AdamW with per-group weight decay), LR setting, clipping."""
import logging
from typing import Dict, Iterable, List

import torch
import torch.nn as nn
from fvcore.common.config import CfgNode

logger = logging.getLogger(__name__)

_NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)


def optim_hints(model: nn.Module) -> Dict[int, Dict[str, float]]:
    """Hints per parameter (by ``id``) from every submodule that defines ``optim_hints()``.

    A module's ``optim_hints()`` maps names of its own parameters (as in ``named_parameters()``)
    to ``{"lr_mult": x, "weight_decay_mult": y}`` (either may be left out; both default to 1).
    E.g. the TSN head asks for 5x / 10x the learning rate of its classifier weight / bias.
    """
    hints: Dict[int, Dict[str, float]] = {}
    for module in model.modules():
        get = getattr(module, "optim_hints", None)
        if not callable(get):
            continue
        params = dict(module.named_parameters())
        for name, hint in get().items():
            if name not in params:
                raise ValueError(f"{type(module).__name__}.optim_hints names no parameter '{name}'")
            hints[id(params[name])] = hint
    return hints


def get_param_groups(model: nn.Module, cfg: CfgNode) -> List[Dict]:
    """Split trainable parameters into weight-decay groups.

    Parameters of normalisation layers (BatchNorm, SyncBatchNorm, LayerNorm, GroupNorm) use
    ``BN.WEIGHT_DECAY``; with ``SOLVER.ZERO_WD_1D_PARAM`` every other 1-d parameter (biases) has
    no weight decay; the rest use ``SOLVER.WEIGHT_DECAY``. Parameters a module hints for (see
    :func:`optim_hints`) go to extra groups, one per (``lr_mult``, weight decay), after those
    three; the decay is the base group's times ``weight_decay_mult``, and each group's
    ``lr_mult`` scales the learning rate :func:`set_lr` sets. Empty groups are dropped.
    """
    hints = optim_hints(model)
    norm_params, zero_wd_params, decay_params = [], [], []
    hinted: Dict[tuple, List[nn.Parameter]] = {}
    for module in model.modules():
        is_norm = isinstance(module, _NORM_TYPES)
        for param in module.parameters(recurse=False):
            if not param.requires_grad:
                continue
            if is_norm:
                group, decay = norm_params, cfg.BN.WEIGHT_DECAY
            elif cfg.SOLVER.ZERO_WD_1D_PARAM and param.ndim <= 1:
                group, decay = zero_wd_params, 0.0
            else:
                group, decay = decay_params, cfg.SOLVER.WEIGHT_DECAY
            hint = hints.get(id(param))
            if hint is not None:
                key = (float(hint.get("lr_mult", 1.0)), decay * float(hint.get("weight_decay_mult", 1.0)))
                group = hinted.setdefault(key, [])
            group.append(param)
    groups = [
        {"params": decay_params, "weight_decay": cfg.SOLVER.WEIGHT_DECAY},
        {"params": norm_params, "weight_decay": cfg.BN.WEIGHT_DECAY},
        {"params": zero_wd_params, "weight_decay": 0.0},
    ]
    groups += [{"params": params, "weight_decay": decay, "lr_mult": lr_mult,
                "lr": cfg.SOLVER.BASE_LR * lr_mult}
               for (lr_mult, decay), params in hinted.items()]
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
    """Set the learning rate of every parameter group: ``lr`` times the group's ``lr_mult``
    (1 when absent)."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_mult", 1.0)


def clip_gradients(parameters: Iterable[torch.Tensor], cfg: CfgNode) -> None:
    """Clip gradients by value (``SOLVER.CLIP_GRAD_VAL``) and/or global L2 norm (``CLIP_GRAD_L2NORM``)."""
    params = [p for p in parameters if p.grad is not None]
    if cfg.SOLVER.CLIP_GRAD_VAL is not None:
        torch.nn.utils.clip_grad_value_(params, cfg.SOLVER.CLIP_GRAD_VAL)
    if cfg.SOLVER.CLIP_GRAD_L2NORM is not None:
        torch.nn.utils.clip_grad_norm_(params, cfg.SOLVER.CLIP_GRAD_L2NORM)
