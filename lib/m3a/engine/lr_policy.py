"""Learning-rate policies as functions of the fractional epoch (``epoch + iter / iters``).

``SOLVER.LR_POLICY`` picks one of:

- ``steps_with_relative_lrs``: ``BASE_LR * LRS[i]`` where ``STEPS[i]`` is the last step start
  ``<= epoch`` (``STEPS`` may end with ``MAX_EPOCH``, e.g. ``[0, 12, 24, 30]`` with ``LRS``
  ``[1, 0.1, 0.01, 0.001]``),
- ``cosine``: ``END + (BASE_LR - END) * (1 + cos(pi * epoch / MAX_EPOCH)) / 2``,
- ``cosine_after_warmup``: the same cosine over the epochs after the warm-up,
  ``cos(pi * (epoch - WARMUP_EPOCHS) / (MAX_EPOCH - WARMUP_EPOCHS))``, so the warm-up ends at
  ``BASE_LR`` (ST-Adapter's and M2CLIP's schedule),
- ``constant``: ``BASE_LR``.

With ``SOLVER.WARMUP_EPOCHS`` > 0 the LR rises linearly from ``WARMUP_START_LR`` (at epoch 0)
to the policy's value at ``WARMUP_EPOCHS``, and follows the policy from there on.
"""
import math
from typing import Callable, Dict

from fvcore.common.config import CfgNode


def lr_func_steps_with_relative_lrs(cfg: CfgNode, cur_epoch: float) -> float:
    """Step policy: ``BASE_LR`` times the relative LR of the step ``cur_epoch`` falls in."""
    steps, lrs = list(cfg.SOLVER.STEPS), list(cfg.SOLVER.LRS)
    if not lrs or len(steps) < len(lrs):
        raise ValueError(
            f"steps_with_relative_lrs needs SOLVER.LRS and at least as many SOLVER.STEPS; "
            f"got STEPS={steps} LRS={lrs}"
        )
    index = 0
    for i, start in enumerate(steps[: len(lrs)]):
        if cur_epoch >= start:
            index = i
    return cfg.SOLVER.BASE_LR * lrs[index]


def lr_func_cosine(cfg: CfgNode, cur_epoch: float) -> float:
    """Cosine decay from ``BASE_LR`` at epoch 0 to ``COSINE_END_LR`` at ``MAX_EPOCH``."""
    end = cfg.SOLVER.COSINE_END_LR
    progress = cur_epoch / cfg.SOLVER.MAX_EPOCH
    return end + (cfg.SOLVER.BASE_LR - end) * 0.5 * (1.0 + math.cos(math.pi * progress))


def lr_func_cosine_after_warmup(cfg: CfgNode, cur_epoch: float) -> float:
    """Cosine decay from ``BASE_LR`` at the end of the warm-up to ``COSINE_END_LR`` at ``MAX_EPOCH``."""
    end, warmup = cfg.SOLVER.COSINE_END_LR, cfg.SOLVER.WARMUP_EPOCHS
    progress = max(0.0, cur_epoch - warmup) / max(cfg.SOLVER.MAX_EPOCH - warmup, 1e-8)
    return end + (cfg.SOLVER.BASE_LR - end) * 0.5 * (1.0 + math.cos(math.pi * progress))


def lr_func_constant(cfg: CfgNode, cur_epoch: float) -> float:
    """Constant ``BASE_LR``."""
    return cfg.SOLVER.BASE_LR


LR_POLICIES: Dict[str, Callable[[CfgNode, float], float]] = {
    "steps_with_relative_lrs": lr_func_steps_with_relative_lrs,
    "cosine": lr_func_cosine,
    "cosine_after_warmup": lr_func_cosine_after_warmup,
    "constant": lr_func_constant,
}


def get_lr_func(name: str) -> Callable[[CfgNode, float], float]:
    """Return the LR policy registered as ``name``."""
    if name not in LR_POLICIES:
        raise ValueError(f"unknown SOLVER.LR_POLICY '{name}'; choose from {sorted(LR_POLICIES)}")
    return LR_POLICIES[name]


def get_lr_at_epoch(cfg: CfgNode, cur_epoch: float) -> float:
    """LR at fractional epoch ``cur_epoch``, including the linear warm-up."""
    policy = get_lr_func(cfg.SOLVER.LR_POLICY)
    warmup = cfg.SOLVER.WARMUP_EPOCHS
    if cur_epoch < warmup:
        start, end = cfg.SOLVER.WARMUP_START_LR, policy(cfg, warmup)
        return start + (end - start) * cur_epoch / warmup
    return policy(cfg, cur_epoch)
