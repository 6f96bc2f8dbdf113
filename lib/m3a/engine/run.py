"""The job run_net.py runs in every process: train when TRAIN.ENABLE, then test when TEST.ENABLE."""
from fvcore.common.config import CfgNode

from m3a.engine.test_loop import test
from m3a.engine.train_loop import train


def train_and_test(cfg: CfgNode) -> None:
    """Train (TRAIN.ENABLE) and then test (TEST.ENABLE) the model of ``cfg``."""
    model = train(cfg) if cfg.TRAIN.ENABLE else None
    if cfg.TEST.ENABLE:
        test(cfg, model)
