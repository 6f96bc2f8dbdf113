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
    no weight decay; the rest use ``SOLVER.WEIGHT_DECAY``. Two things scale a parameter's
    learning rate (and weight decay): a hint of a module that defines ``optim_hints()`` (see
    :func:`optim_hints`; e.g. the TSN head's 5x / 10x classifier) and the
    ``SOLVER.LR_SCALE_PATTERNS`` entry its name contains (:func:`lr_scale_of`; e.g. M2CLIP's text
    adapters at 0.5x). Parameters with the same decay and multiplier share a group; the plain
    groups come first. A group's ``lr_mult`` scales the LR :func:`set_lr` sets. Empty groups are
    dropped.
    """
    hints = optim_hints(model)
    decays = (cfg.SOLVER.WEIGHT_DECAY, cfg.BN.WEIGHT_DECAY, 0.0)
    groups: Dict[tuple, List[nn.Parameter]] = {}
    for module_name, module in model.named_modules():
        is_norm = isinstance(module, _NORM_TYPES)
        for name, param in module.named_parameters(prefix=module_name, recurse=False):
            if not param.requires_grad:
                continue
            kind = 1 if is_norm else 2 if cfg.SOLVER.ZERO_WD_1D_PARAM and param.ndim <= 1 else 0
            hint = hints.get(id(param), {})
            lr_mult = lr_scale_of(name, cfg) * float(hint.get("lr_mult", 1.0))
            decay = decays[kind] * float(hint.get("weight_decay_mult", 1.0))
            groups.setdefault((lr_mult, kind, decay), []).append(param)
    ordered = sorted(groups.items(), key=lambda item: (item[0][0] != 1.0, item[0][1], -item[0][0]))
    return [{"params": params, "weight_decay": decay, "lr_mult": lr_mult,
             "lr": cfg.SOLVER.BASE_LR * lr_mult}
            for (lr_mult, kind, decay), params in ordered]


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
