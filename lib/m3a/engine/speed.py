"""Model speed switches of training: channels-last memory format (``TRAIN.CHANNELS_LAST``) and
torch.compile (``MODEL.COMPILE``). Mixed precision (``TRAIN.ENABLE_AMP``, ``TRAIN.AMP_DTYPE``)
lives in :mod:`m3a.engine.amp`.

Channels-last stores 5-D tensors (video convolutions: N, C, T, H, W) as ``channels_last_3d`` and
4-D ones as ``channels_last``; weights and inputs are converted, shapes and values stay the same.
torch.compile wraps the training model only: checkpoints are saved from the plain model, so their
keys carry no ``_orig_mod.`` prefix.
"""
import importlib.util
from typing import Optional

import torch
import torch.nn as nn
from fvcore.common.config import CfgNode

from m3a.config.loading import ConfigError
from m3a.engine.inputs import Inputs


def channels_last_format(tensor: torch.Tensor) -> Optional[torch.memory_format]:
    """The channels-last memory format of a 5-D or 4-D tensor, None for other ranks."""
    return {5: torch.channels_last_3d, 4: torch.channels_last}.get(tensor.dim())


def to_channels_last(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` in its channels-last format (unchanged when not 4-D or 5-D)."""
    fmt = channels_last_format(tensor)
    return tensor if fmt is None else tensor.contiguous(memory_format=fmt)


def convert_model(model: nn.Module, cfg: CfgNode) -> nn.Module:
    """Store the 4-D and 5-D parameters and buffers of ``model`` channels-last in place when
    ``TRAIN.CHANNELS_LAST`` (the Parameter objects stay the same); return ``model``."""
    if not cfg.TRAIN.CHANNELS_LAST:
        return model
    with torch.no_grad():
        for tensor in list(model.parameters()) + list(model.buffers()):
            tensor.data = to_channels_last(tensor.data)
    return model


def convert_inputs(inputs: Inputs, cfg: CfgNode) -> Inputs:
    """Every 4-D / 5-D pathway of ``inputs`` channels-last when ``TRAIN.CHANNELS_LAST``."""
    if not cfg.TRAIN.CHANNELS_LAST:
        return inputs
    if isinstance(inputs, (list, tuple)):
        return [to_channels_last(p) for p in inputs]
    return to_channels_last(inputs)


def check_compile_support(device_type: str) -> None:
    """ConfigError when torch.compile's inductor backend cannot build kernels for ``device_type``:
    it needs a C++ compiler on CPU (``g++`` or the ``CXX`` environment variable) and Triton on
    CUDA."""
    import torch._dynamo

    if not torch._dynamo.is_dynamo_supported():
        raise ConfigError("MODEL.COMPILE True: torch.compile does not support this Python/platform; "
                          "set MODEL.COMPILE False")
    if device_type == "cuda":
        if importlib.util.find_spec("triton") is None:
            raise ConfigError("MODEL.COMPILE True needs Triton on CUDA (pip install triton); "
                              "set MODEL.COMPILE False to train without torch.compile")
        return
    from torch._inductor.cpp_builder import get_cpp_compiler

    try:
        get_cpp_compiler()
    except Exception as err:  # inductor's own search: CXX, then g++ / clang++
        raise ConfigError(
            f"MODEL.COMPILE True needs a C++ compiler for torch.compile on CPU ({err}); install g++ "
            "or point CXX at one, or set MODEL.COMPILE False"
        ) from err


def compile_model(model: nn.Module, cfg: CfgNode, device: torch.device) -> nn.Module:
    """``torch.compile(model)`` when ``MODEL.COMPILE``, else ``model``. Keep the uncompiled
    ``model`` for saving: the compiled wrapper's state dict has ``_orig_mod.`` keys."""
    if not cfg.MODEL.COMPILE:
        return model
    check_compile_support(device.type)
    return torch.compile(model)
