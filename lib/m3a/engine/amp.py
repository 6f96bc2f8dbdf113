"""Mixed precision (``TRAIN.ENABLE_AMP``): fp16 autocast + GradScaler on CUDA, bf16 autocast on CPU."""
import contextlib
from typing import ContextManager

import torch
from fvcore.common.config import CfgNode


def autocast(cfg: CfgNode, device: torch.device) -> ContextManager:
    """Autocast context for the forward pass (a no-op context when AMP is off)."""
    if not cfg.TRAIN.ENABLE_AMP:
        return contextlib.nullcontext()
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return torch.autocast(device.type, dtype=torch.bfloat16)


def build_grad_scaler(cfg: CfgNode, device: torch.device) -> torch.amp.GradScaler:
    """Gradient scaler, enabled only for fp16 on CUDA (bf16 on CPU needs none)."""
    enabled = bool(cfg.TRAIN.ENABLE_AMP) and device.type == "cuda"
    return torch.amp.GradScaler(device.type if enabled else "cpu", enabled=enabled)
