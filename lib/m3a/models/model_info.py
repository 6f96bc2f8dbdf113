"""Model statistics logged at build time: parameter count and GFLOPs."""
import logging
import warnings
from typing import Optional

import torch
import torch.nn as nn
from fvcore.common.config import CfgNode

logger = logging.getLogger(__name__)


def params_count(model: nn.Module) -> int:
    """Number of parameters of ``model`` (buffers such as BN statistics are not counted)."""
    return sum(p.numel() for p in model.parameters())


def gflops(model: nn.Module, cfg: CfgNode) -> Optional[float]:
    """GFLOPs (fvcore: one multiply-add = one flop) of one eval forward of a
    (1, 3, NUM_FRAMES, TEST_CROP_SIZE, TEST_CROP_SIZE) clip; None when counting fails."""
    device = next(model.parameters()).device
    size = cfg.DATA.TEST_CROP_SIZE
    clip = torch.zeros(1, 3, cfg.DATA.NUM_FRAMES, size, size, device=device)
    was_training = model.training
    model.eval()
    try:
        with warnings.catch_warnings():  # tracing warnings say nothing about the model
            warnings.simplefilter("ignore")
            from fvcore.nn import FlopCountAnalysis

            counter = FlopCountAnalysis(model, (clip,))
            counter.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            return counter.total() / 1e9
    except Exception as err:  # flop counting is informative only; never fail the build
        logger.warning("could not count FLOPs: %s: %s", type(err).__name__, err)
        return None
    finally:
        model.train(was_training)


def log_model_info(model: nn.Module, cfg: CfgNode) -> None:
    """Log the parameter count and GFLOPs of ``model``."""
    logger.info("Model: %s", model.__class__.__name__)
    logger.info("Params: %s", f"{params_count(model):,}")
    flops = gflops(model, cfg)
    if flops is not None:
        logger.info(
            "GFLOPs: %.3f (input 1x3x%dx%dx%d)", flops, cfg.DATA.NUM_FRAMES,
            cfg.DATA.TEST_CROP_SIZE, cfg.DATA.TEST_CROP_SIZE,
        )
