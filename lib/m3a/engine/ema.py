"""Exponential moving average (EMA) of a model's weights (``TRAIN.EMA``).

After every optimizer step, for each parameter and floating-point buffer (e.g. BN running
statistics) ``ema = decay * ema + (1 - decay) * model``; other buffers (BN's integer
``num_batches_tracked``) are copied. The average starts as a copy of the model when training
starts (or is fine-tuned from a file) and is restored from the checkpoint's ``ema_state`` on
resume. It lives in a separate model in eval mode, on the model's device.
"""
import copy
import logging
from typing import Optional, Type

import torch
import torch.nn as nn
from fvcore.common.config import CfgNode

from m3a.utils.checkpoint import strip_ddp_prefix, unwrap_model

logger = logging.getLogger(__name__)

# Checkpoint field holding the EMA model's state dict.
EMA_FIELD = "ema_state"


class ModelEma:
    """The EMA copy ``module`` of a model, updated with :meth:`update`."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay = float(decay)
        self.module = copy.deepcopy(unwrap_model(model)).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """One EMA step towards ``model``'s current weights."""
        current = unwrap_model(model).state_dict()
        for name, value in self.module.state_dict().items():
            new = current[name].detach()
            if value.is_floating_point():
                value.mul_(self.decay).add_(new.to(value.dtype), alpha=1.0 - self.decay)
            else:
                value.copy_(new)

    def state_dict(self) -> dict:
        """The EMA model's state dict (saved as the checkpoint's ``ema_state``)."""
        return self.module.state_dict()

    def load_state_dict(self, state: dict) -> None:
        """Load an ``ema_state`` (strict: the keys must be the model's)."""
        self.module.load_state_dict(strip_ddp_prefix(state), strict=True)


def build_ema(cfg: CfgNode, model: nn.Module, resumed_from: Optional[str]) -> Optional[ModelEma]:
    """The EMA of ``model`` when ``TRAIN.EMA.ENABLE`` (else None), restored from the
    ``ema_state`` of ``resumed_from`` (the checkpoint training continues from) when it has one."""
    if not cfg.TRAIN.EMA.ENABLE:
        return None
    from m3a.utils.checkpoint import read_checkpoint

    ema = ModelEma(model, cfg.TRAIN.EMA.DECAY)
    if resumed_from:
        state = read_checkpoint(resumed_from).get(EMA_FIELD)
        if state:
            ema.load_state_dict(state)
            logger.info("EMA (decay %g) restored from %s", ema.decay, resumed_from)
            return ema
        logger.warning("%s holds no EMA weights; the EMA starts from its model weights", resumed_from)
    logger.info("EMA of the model weights, decay %g per optimizer step", ema.decay)
    return ema


def ema_fields(ema: Optional[ModelEma]) -> dict:
    """Checkpoint fields of ``ema``: {"ema_state": ...}, or {} without EMA."""
    return {EMA_FIELD: ema.state_dict()} if ema is not None else {}


def choose_weights(mode: str, has_ema: bool, source: str, error: Type[Exception]) -> str:
    """``ema`` or ``model``: the weights of ``source`` (a checkpoint, or the model a run trains;
    ``has_ema``: whether it holds EMA weights) that TEST.WEIGHTS ``mode`` selects for testing,
    prediction, visualisation and validation. ``auto`` takes the EMA weights when there are
    some, else the model's; ``model`` the model's; ``ema`` the EMA weights, and ``error`` naming
    ``source`` when there are none (never a silent fallback to the model's)."""
    if mode == "ema" and not has_ema:
        raise error(f"TEST.WEIGHTS ema, but {source} holds no EMA weights (trained without TRAIN.EMA.ENABLE); "
                    "use TEST.WEIGHTS auto or model")
    return "ema" if has_ema and mode != "model" else "model"
