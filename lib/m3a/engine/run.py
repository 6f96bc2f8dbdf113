"""The job run_net.py runs in every process: train when TRAIN.ENABLE, then test when TEST.ENABLE;
with ``--validate CHECKPOINT`` only the validation of that checkpoint."""
import functools
from typing import Callable, Dict, Optional

from fvcore.common.config import CfgNode

from m3a.engine.test_loop import test
from m3a.engine.train_loop import train


def train_and_test(cfg: CfgNode) -> Optional[Dict]:
    """Train (TRAIN.ENABLE) and then test (TEST.ENABLE) the model of ``cfg``; return the test
    metrics (rank 0; None elsewhere or without testing)."""
    model = train(cfg) if cfg.TRAIN.ENABLE else None
    return test(cfg, model) if cfg.TEST.ENABLE else None


def validation_job(checkpoint: str) -> Callable[[CfgNode], object]:
    """The (picklable) job of ``run_net.py --validate CHECKPOINT``: m3a.engine.validate."""
    from m3a.engine.validate import validate_checkpoint

    return functools.partial(validate_checkpoint, checkpoint=checkpoint)
