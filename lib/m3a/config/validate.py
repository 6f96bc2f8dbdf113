"""Checks of value combinations that the type-checked merge cannot catch."""
from fvcore.common.config import CfgNode

from m3a.config.errors import ConfigError


def _fail(msg: str) -> None:
    raise ConfigError(msg)


def assert_and_infer_cfg(cfg: CfgNode) -> CfgNode:
    """Validate ``cfg`` in place and return it; raise ConfigError naming the offending key."""
    if cfg.DATA.ENSEMBLE_METHOD not in ("sum", "max"):
        _fail(f"DATA.ENSEMBLE_METHOD must be sum or max, got '{cfg.DATA.ENSEMBLE_METHOD}'")
    if cfg.DATA.INPUT_FORMAT not in ("video", "frames"):
        _fail(f"DATA.INPUT_FORMAT must be video or frames, got '{cfg.DATA.INPUT_FORMAT}'")
    if cfg.TEST.NUM_SPATIAL_CROPS not in (1, 3):
        _fail(f"TEST.NUM_SPATIAL_CROPS must be 1 or 3, got {cfg.TEST.NUM_SPATIAL_CROPS}")
    if cfg.NUM_GPUS < 0:
        _fail(f"NUM_GPUS must be >= 0, got {cfg.NUM_GPUS}")
    from m3a.models.build import check_model_cfg  # each model component checks its own keys

    check_model_cfg(cfg)
    return cfg
