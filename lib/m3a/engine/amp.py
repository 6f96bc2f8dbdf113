"""Mixed precision (``TRAIN.ENABLE_AMP``): fp16 autocast + GradScaler on CUDA; on CPU bf16
autocast only where it pays (``TRAIN.CPU_AMP``). ``TRAIN.AMP_DTYPE`` picks the autocast dtype:
``auto`` (fp16 on CUDA, bf16 on CPU), ``bfloat16`` (CPU or CUDA; no gradient scaler) or
``float16`` (CUDA only, with the gradient scaler; a ConfigError on CPU).

bf16 autocast on a CPU without native bf16 instructions is emulated and about 2.5x slower than
fp32, so with ``TRAIN.CPU_AMP auto`` (the default) a CPU run uses bf16 only when the CPU
advertises native bf16 (x86 ``avx512_bf16`` / ``amx_bf16``, ARM ``bf16``); ``on`` forces bf16 and
``off`` forces fp32. :func:`describe_precision` is the line the engine logs.

The settings are checked by config validation (m3a.config.validate: the choices of
TRAIN.AMP_DTYPE and TRAIN.CPU_AMP, float16 only with NUM_GPUS > 0); the dtype of a setting is
resolved once (:func:`autocast_dtype` is called at every forward).
"""
import contextlib
import functools
from typing import ContextManager, FrozenSet, Iterable, Optional, Tuple

import torch
from fvcore.common.config import CfgNode

from m3a.config.errors import ConfigError

# CPU feature flags (/proc/cpuinfo "flags" on x86, "Features" on ARM) of native bf16 arithmetic.
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})


@functools.lru_cache(maxsize=1)
def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> FrozenSet[str]:
    """The feature flags of the first CPU listed in ``cpuinfo`` (empty when unreadable)."""
    try:
        with open(cpuinfo) as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip().lower() in ("flags", "features"):
                    return frozenset(value.split())
    except OSError:
        pass
    return frozenset()


def cpu_autocast_decision(mode: str, flags: Iterable[str]) -> Tuple[bool, str]:
    """Whether CPU AMP runs bf16 autocast under ``TRAIN.CPU_AMP`` ``mode`` (auto, on, off) on a
    CPU with ``flags``, and why (for the log)."""
    if mode == "on":
        return True, "TRAIN.CPU_AMP on"
    if mode == "off":
        return False, "TRAIN.CPU_AMP off"
    native = sorted(NATIVE_BF16_FLAGS.intersection(flags))
    if native:
        return True, f"this CPU has native bf16 ({', '.join(native)})"
    return False, "this CPU has no native bf16 instructions (set TRAIN.CPU_AMP on to force bf16)"


def autocast_dtype(cfg: CfgNode, device: torch.device) -> Optional[torch.dtype]:
    """The autocast dtype of ``device`` under ``cfg`` (None: full fp32)."""
    return _resolved_dtype(cfg.TRAIN.ENABLE_AMP, cfg.TRAIN.AMP_DTYPE, cfg.TRAIN.CPU_AMP, device.type)


@functools.lru_cache(maxsize=None)
def _resolved_dtype(enabled: bool, amp_dtype: str, cpu_mode: str, device_type: str) -> Optional[torch.dtype]:
    if not enabled:
        return None
    if device_type == "cuda":
        return torch.bfloat16 if amp_dtype == "bfloat16" else torch.float16
    if amp_dtype == "float16":  # validation refuses it with NUM_GPUS 0; a model built on the CPU anyway
        raise ConfigError(f"TRAIN.AMP_DTYPE float16 needs a CUDA device (gradient scaling), not {device_type}")
    use_bf16, _ = cpu_autocast_decision(cpu_mode, cpu_flags())
    return torch.bfloat16 if use_bf16 else None


def describe_precision(cfg: CfgNode, device: torch.device) -> str:
    """One log line naming the precision that runs on ``device`` and why."""
    if not cfg.TRAIN.ENABLE_AMP:
        return "precision: fp32 (TRAIN.ENABLE_AMP False)"
    if device.type == "cuda":
        if autocast_dtype(cfg, device) == torch.bfloat16:
            return "precision: bf16 autocast on CUDA, no gradient scaling (TRAIN.AMP_DTYPE bfloat16)"
        return "precision: fp16 autocast with gradient scaling (TRAIN.ENABLE_AMP True, CUDA)"
    use_bf16, why = cpu_autocast_decision(cfg.TRAIN.CPU_AMP, cpu_flags())
    if use_bf16:
        return f"precision: bf16 autocast on CPU (TRAIN.ENABLE_AMP True; {why})"
    return f"precision: fp32 on CPU although TRAIN.ENABLE_AMP is True ({why})"


def autocast(cfg: CfgNode, device: torch.device) -> ContextManager:
    """Autocast context for the forward pass (a no-op context when it runs in fp32)."""
    dtype = autocast_dtype(cfg, device)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def build_grad_scaler(cfg: CfgNode, device: torch.device) -> torch.amp.GradScaler:
    """Gradient scaler, enabled only for fp16 on CUDA (bf16 needs none)."""
    enabled = autocast_dtype(cfg, device) == torch.float16
    return torch.amp.GradScaler(device.type if enabled else "cpu", enabled=enabled)
