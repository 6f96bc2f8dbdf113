"""Config-time checks of every value: one-line ConfigErrors naming the key, the value and the
valid range or choices (with a "did you mean" for near-miss names).

Ranges and fixed choices are the tables below; names that registries define (datasets, losses, LR
policies, model components) are checked against the registries themselves.
"""
import difflib
import math
import os
from typing import Callable, Iterable, Tuple

from fvcore.common.config import CfgNode

from m3a.config.errors import ConfigError

# key -> (test, description of the valid values).
_RANGES = {
    "TRAIN.BATCH_SIZE": (lambda v: v >= 1, "an integer >= 1"),
    "TRAIN.EVAL_PERIOD": (lambda v: v >= 0, ">= 0 (0 disables validation)"),
    "TRAIN.CHECKPOINT_PERIOD": (lambda v: v >= 0, ">= 0"),
    "TRAIN.MAX_ITERS_PER_EPOCH": (lambda v: v >= 0, ">= 0 (0 = whole epochs)"),
    "TRAIN.CHECKPOINT_KEEP": (lambda v: v >= 0, ">= 0 (0 keeps all)"),
    "DATA.MULTI_SCALE_MAX_DISTORT": (lambda v: v >= 0, ">= 0"),
    "TRAIN.ACCUM_STEPS": (lambda v: v >= 1, "an integer >= 1"),
    "DATA_LOADER.WORKER_NICENESS": (lambda v: 0 <= v <= 19, "in 0..19 (0: the training process's priority)"),
    "TRAIN.EMA.DECAY": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "MIXUP.ALPHA": (lambda v: v >= 0, ">= 0 (0 disables mixup)"),
    "MIXUP.CUTMIX_ALPHA": (lambda v: v >= 0, ">= 0 (0 disables CutMix)"),
    "MIXUP.PROB": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "MIXUP.SWITCH_PROB": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "TEST.THRESHOLD": (lambda v: 0 <= v <= 1, "in [0, 1] (scores are probabilities)"),
    "TEST.BATCH_SIZE": (lambda v: v >= 1, "an integer >= 1"),
    "TEST.NUM_ENSEMBLE_VIEWS": (lambda v: v >= 1, "an integer >= 1"),
    "TEST.NUM_SPATIAL_CROPS": (lambda v: v in (1, 3, 4), "1, 3 or 4"),
    "SOLVER.BASE_LR": (lambda v: v > 0, "> 0"),
    "SOLVER.COSINE_END_LR": (lambda v: v >= 0, ">= 0"),
    "SOLVER.MAX_EPOCH": (lambda v: v >= 1, "an integer >= 1"),
    "SOLVER.MOMENTUM": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "SOLVER.DAMPENING": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "SOLVER.WEIGHT_DECAY": (lambda v: v >= 0, ">= 0"),
    "SOLVER.WARMUP_EPOCHS": (lambda v: v >= 0, ">= 0"),
    "SOLVER.WARMUP_START_LR": (lambda v: v >= 0, ">= 0"),
    "BN.WEIGHT_DECAY": (lambda v: v >= 0, ">= 0"),
    "BN.NUM_BATCHES_PRECISE": (lambda v: v >= 1, "an integer >= 1"),
    "BN.MOMENTUM": (lambda v: 0 < v <= 1, "in (0, 1]"),
    "BN.EPSILON": (lambda v: v > 0, "> 0"),
    "DATA.NUM_FRAMES": (lambda v: v >= 1, "an integer >= 1"),
    "DATA.SAMPLING_RATE": (lambda v: v >= 1, "an integer >= 1"),
    "DATA.TARGET_FPS": (lambda v: v > 0, "> 0"),
    "DATA.FRAMES_FPS": (lambda v: v > 0, "> 0"),
    "DATA.TRAIN_CROP_SIZE": (lambda v: v >= 1, "an integer >= 1"),
    "DATA.TEST_CROP_SIZE": (lambda v: v >= 1, "an integer >= 1"),
    "DATA.NUM_RETRIES": (lambda v: v >= 0, ">= 0"),
    "DATA_LOADER.NUM_WORKERS": (lambda v: v >= 0, ">= 0"),
    "NUM_GPUS": (lambda v: v >= 0, ">= 0"),
    "NUM_CPU_PROCESSES": (lambda v: v >= 1, "an integer >= 1"),
    "NUM_SHARDS": (lambda v: v >= 1, "an integer >= 1"),
    "SHARD_ID": (lambda v: v >= 0, ">= 0"),
    "LOG_PERIOD": (lambda v: v >= 1, "an integer >= 1"),
    "DIST_TIMEOUT_S": (lambda v: v >= 1, "a positive number of seconds"),
}
# key -> fixed choices.
_CHOICES = {
    "DATA.ENSEMBLE_METHOD": ("sum", "max"),
    "DATA.INPUT_FORMAT": ("video", "frames"),
    "SOLVER.OPTIMIZING_METHOD": ("sgd", "adamw"),
    "DIST_BACKEND": ("", "nccl", "gloo"),
    "TRAIN.CPU_AMP": ("auto", "on", "off"),
    "DATA.INTERPOLATION": ("bilinear", "bicubic", "pil_bilinear"),
    "DATA.RAND_AUGMENT_INTERPOLATION": ("bilinear", "bicubic", "random"),
    "DATA.TRAIN_RESIZE": ("short_side", "square", "none"),
    "DATA.TRAIN_CROP": ("random", "multi_scale", "random_resized"),
    "DATA.TEST_RESIZE": ("short_side", "square"),
    "TEST.CROP_OFFSETS": ("even", "quarter_steps"),
    "TEST.WEIGHTS": ("auto", "ema", "model"),
    "TRAIN.AMP_DTYPE": ("auto", "bfloat16", "float16"),
}


def _fail(msg: str) -> None:
    raise ConfigError(msg)


def _get(cfg: CfgNode, key: str):
    node = cfg
    for part in key.split("."):
        node = node[part]
    return node


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """``; did you mean 'X'?`` for the closest choice, or "" when none is close."""
    close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def check_choice(key: str, value: str, choices: Iterable[str]) -> None:
    """ConfigError naming ``key`` when ``value`` is not one of ``choices``."""
    choices = list(choices)
    if value not in choices:
        shown = ", ".join(repr(c) if c == "" else str(c) for c in choices)
        _fail(f"{key} must be one of {shown}, got '{value}'{did_you_mean(value, choices)}")


def _check_ranges(cfg: CfgNode) -> None:
    for key, (test, valid) in _RANGES.items():
        value = _get(cfg, key)
        if isinstance(value, float) and not math.isfinite(value) or not test(value):
            _fail(f"{key} must be {valid}, got {value}")
    for key, choices in _CHOICES.items():
        check_choice(key, _get(cfg, key), choices)


def _check_lists(cfg: CfgNode) -> None:
    data = cfg.DATA
    channels = list(data.INPUT_CHANNEL_NUM)
    if not channels or any(c < 1 for c in channels):
        _fail(f"DATA.INPUT_CHANNEL_NUM must list one positive channel count per pathway, got {channels}")
    for key in ("MEAN", "STD"):
        values = list(data[key])
        if len(values) != channels[0]:
            _fail(f"DATA.{key} must have {channels[0]} values (DATA.INPUT_CHANNEL_NUM[0]), got {values}")
    if any(s <= 0 for s in data.STD):
        _fail(f"DATA.STD values must be > 0, got {list(data.STD)}")
    scales = list(data.TRAIN_JITTER_SCALES)
    if len(scales) != 2 or scales[0] > scales[1] or scales[0] < 1:
        _fail(f"DATA.TRAIN_JITTER_SCALES must be [min, max] with 1 <= min <= max, got {scales}")


def _check_names(cfg: CfgNode) -> None:
    """Names that registries define, checked against the registries (imported here, lazily, so
    that the config package imports none of them at load time)."""
    from m3a.datasets.list_formats import list_format_names
    from m3a.datasets.temporal_sampler import TEMPORAL_SAMPLER_REGISTRY
    from m3a.datasets.video_dataset import DATASET_REGISTRY
    from m3a.engine.lr_policy import LR_POLICIES
    from m3a.models.losses import LOSSES

    datasets = sorted(name for name, _ in DATASET_REGISTRY)
    check_choice("TRAIN.DATASET", cfg.TRAIN.DATASET.lower(), datasets)
    check_choice("TEST.DATASET", cfg.TEST.DATASET.lower(), datasets)
    check_choice("DATA.LIST_FORMAT", cfg.DATA.LIST_FORMAT, [""] + list_format_names())
    check_choice("DATA.TEMPORAL_SAMPLER", cfg.DATA.TEMPORAL_SAMPLER, sorted(n for n, _ in TEMPORAL_SAMPLER_REGISTRY))
    check_sampler_test_clips(cfg)
    check_choice("MODEL.LOSS_FUNC", cfg.MODEL.LOSS_FUNC, sorted(LOSSES))
    check_choice("SOLVER.LR_POLICY", cfg.SOLVER.LR_POLICY, sorted(LR_POLICIES))
    if cfg.SOLVER.LR_POLICY == "steps_with_relative_lrs":
        steps, lrs = list(cfg.SOLVER.STEPS), list(cfg.SOLVER.LRS)
        if not lrs or len(steps) < len(lrs):
            _fail(f"SOLVER.LR_POLICY steps_with_relative_lrs needs SOLVER.LRS and at least as many "
                  f"SOLVER.STEPS; got STEPS={steps} LRS={lrs}")


def check_sampler_test_clips(cfg: CfgNode) -> None:
    """DATA.TEMPORAL_SAMPLER tsn_rounded takes one test clip: TEST.NUM_ENSEMBLE_VIEWS must be 1
    (checked at load time and by the sampler's builder, for configs built in code)."""
    views = cfg.TEST.NUM_ENSEMBLE_VIEWS
    if cfg.DATA.TEMPORAL_SAMPLER == "tsn_rounded" and views != 1:
        _fail("DATA.TEMPORAL_SAMPLER tsn_rounded takes one test clip (the segments' middle frames, as "
              f"released): TEST.NUM_ENSEMBLE_VIEWS must be 1, got {views}")


def _check_paths(cfg: CfgNode) -> None:
    if os.path.exists(cfg.OUTPUT_DIR) and not os.path.isdir(cfg.OUTPUT_DIR):
        _fail(f"OUTPUT_DIR {cfg.OUTPUT_DIR} exists and is not a folder")
    if not 0 <= cfg.SHARD_ID < cfg.NUM_SHARDS:
        _fail(f"SHARD_ID must be in [0, NUM_SHARDS = {cfg.NUM_SHARDS}), got {cfg.SHARD_ID}")


def _check_training_extras(cfg: CfgNode) -> None:
    """Gradient accumulation and mixup settings that fit each other and the loss."""
    batch, accum = cfg.TRAIN.BATCH_SIZE, cfg.TRAIN.ACCUM_STEPS
    if batch % accum:
        _fail(f"TRAIN.BATCH_SIZE {batch} must be a multiple of TRAIN.ACCUM_STEPS {accum} (each optimizer "
              f"step accumulates {accum} micro-batches of TRAIN.BATCH_SIZE / TRAIN.ACCUM_STEPS videos)")
    if not cfg.MIXUP.ENABLE:
        return
    if cfg.MIXUP.ALPHA <= 0 and cfg.MIXUP.CUTMIX_ALPHA <= 0:
        _fail("MIXUP.ENABLE True needs MIXUP.ALPHA > 0 (mixup) or MIXUP.CUTMIX_ALPHA > 0 (CutMix); both are 0")
    if cfg.MODEL.LOSS_FUNC == "wlsep":
        _fail("MIXUP.ENABLE True does not fit MODEL.LOSS_FUNC wlsep (it ranks positives against negatives "
              "and ignores the mixed label weights); use bce_logit or disable mixup")


def _check_speed_switches(cfg: CfgNode) -> None:
    """TRAIN.AMP_DTYPE float16 needs CUDA. (MODEL.COMPILE's compiler is checked when training
    starts, so that testing or predicting with such a config works on a machine without one.)"""
    if cfg.TRAIN.ENABLE_AMP and cfg.TRAIN.AMP_DTYPE == "float16" and cfg.NUM_GPUS <= 0:
        _fail("TRAIN.AMP_DTYPE float16 needs CUDA (NUM_GPUS > 0; it trains with a gradient scaler); "
              "on CPU use TRAIN.AMP_DTYPE bfloat16 or auto")


def _check_augmentation(cfg: CfgNode) -> None:
    """The crop-recipe lists and the RandAugment policy (m3a.datasets.clip_pipeline)."""
    from m3a.datasets.rand_augment import parse_policy

    data = cfg.DATA
    scales = list(data.MULTI_SCALES)
    if not scales or any(not 0 < s <= 1 for s in scales):
        _fail(f"DATA.MULTI_SCALES must list scales in (0, 1], got {scales}")
    area, ratio = list(data.RRC_SCALE), list(data.RRC_RATIO)
    if len(area) != 2 or not 0 < area[0] <= area[1] <= 1:
        _fail(f"DATA.RRC_SCALE must be [min, max] with 0 < min <= max <= 1, got {area}")
    if len(ratio) != 2 or not 0 < ratio[0] <= ratio[1]:
        _fail(f"DATA.RRC_RATIO must be [min, max] with 0 < min <= max, got {ratio}")
    if data.RAND_AUGMENT:
        try:
            parse_policy(data.RAND_AUGMENT)
        except ValueError as err:
            _fail(f"DATA.RAND_AUGMENT: {err}")


# The checks in order; each raises ConfigError on the first bad value it finds.
CHECKS: Tuple[Callable[[CfgNode], None], ...] = (_check_ranges, _check_lists, _check_names, _check_paths,
                                                 _check_training_extras, _check_speed_switches, _check_augmentation)



def assert_and_infer_cfg(cfg: CfgNode) -> CfgNode:
    """Validate ``cfg`` in place and return it; raise ConfigError naming the offending key."""
    for check in CHECKS:
        check(cfg)
    from m3a.models.build import check_model_cfg  # each model component checks its own keys

    check_model_cfg(cfg)
    return cfg
