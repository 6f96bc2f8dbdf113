"""Model statistics logged at build time: parameter count and GFLOPs."""
import logging
import warnings
from typing import Optional

import torch.nn as nn
from fvcore.common.config import CfgNode

logger = logging.getLogger(__name__)


def params_count(model: nn.Module) -> int:
    """Number of parameters of ``model`` (buffers such as BN statistics are not counted)."""
    return sum(p.numel() for p in model.parameters())


def gflops(model: nn.Module, cfg: CfgNode) -> Optional[float]:
    """GFLOPs (fvcore: one multiply-add = one flop) of one eval forward of the model's
    ``example_inputs`` (one clip at the test size); None when counting fails."""
    was_training = model.training
    model.eval()
    try:
        with warnings.catch_warnings():  # tracing warnings say nothing about the model
            warnings.simplefilter("ignore")
            from fvcore.nn import FlopCountAnalysis

            inputs = model.example_inputs(cfg)
            counter = FlopCountAnalysis(model, (inputs[0] if len(inputs) == 1 else inputs,))
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
