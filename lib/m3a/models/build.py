"""Model registry and builder."""
from typing import Optional

import torch
import torch.nn as nn
from fvcore.common.config import CfgNode
from fvcore.common.registry import Registry

MODEL_REGISTRY = Registry("MODEL")
MODEL_REGISTRY.__doc__ = """Models by MODEL.MODEL_NAME; each is built as ``cls(cfg)``."""


def build_model(cfg: CfgNode, device: Optional[torch.device] = None) -> nn.Module:
    """Build ``cfg.MODEL.MODEL_NAME`` from the registry and move it to ``device`` (default CPU).

    Checks the model/M3A settings (ConfigError), reads the lexicons the M3A head needs from
    ``DATA.PATH_TO_DATA_DIR/mmit-m3a`` (LexiconError naming a missing file), converts BN to
    SyncBatchNorm for ``BN.NORM_TYPE sync_batchnorm`` and logs parameters/GFLOPs when
    ``LOG_MODEL_INFO``.
    """
    from m3a.config.validate import check_model_cfg
    from m3a.models.model_info import log_model_info
    from m3a.models.norm import convert_sync_batchnorm

    check_model_cfg(cfg)
    model = MODEL_REGISTRY.get(cfg.MODEL.MODEL_NAME)(cfg)
    if cfg.BN.NORM_TYPE == "sync_batchnorm":
        model = convert_sync_batchnorm(model)
    model = model.to(device if device is not None else torch.device("cpu"))
    if cfg.LOG_MODEL_INFO:
        log_model_info(model, cfg)
    return model
