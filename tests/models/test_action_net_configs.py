"""The ACTION-Net configs load, build the published models and hold the published recipes."""
import glob
import os

import pytest

from m3a.config import load_config
from m3a.engine.lr_policy import get_lr_at_epoch
from m3a.models import build_model
from m3a.models.model_info import params_count

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FOLDER = os.path.join(REPO, "configs", "ActionNet")
# File -> (classes, frames, variant, epochs, 0-based epochs from which the LR is 0.1x, 0.01x,
# 0.001x, parameters).
EXPECTED = {
    "SSV2_ACTION_R50_8F.yaml": (174, 8, "action", 50, (31, 41, 46), 28_082_378),
    "SSV2_ACTION_R50_16F.yaml": (174, 16, "action", 50, (31, 41, 46), 28_082_378),
    "SSV2_TSM_R50_8F.yaml": (174, 8, "tsm", 50, (31, 41, 46), 23_864_558),
    "JESTER_ACTION_R50_8F.yaml": (27, 8, "action", 25, (6, 11, 16), 27_781_175),
    "JESTER_ACTION_R50_16F.yaml": (27, 16, "action", 25, (6, 11, 16), 27_781_175),
    "EGOGESTURE_ACTION_R50_8F.yaml": (83, 8, "action", 20, (6, 11, 16), 27_895_919),
    "EGOGESTURE_ACTION_R50_16F.yaml": (83, 16, "action", 20, (6, 11, 16), 27_895_919),
}


def test_every_config_is_listed():
    names = {os.path.basename(p) for p in glob.glob(os.path.join(FOLDER, "*.yaml"))}
    assert names == set(EXPECTED) | {"ACTION_R50_BASE.yaml"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_config_builds_the_published_model_and_recipe(name):
    classes, frames, variant, epochs, steps, params = EXPECTED[name]
    cfg = load_config(os.path.join(FOLDER, name), ["LOG_MODEL_INFO", "False"])
    assert (cfg.MODEL.NUM_CLASSES, cfg.DATA.NUM_FRAMES, cfg.ACTION.VARIANT) == (classes, frames, variant)
    assert (cfg.MODEL.BACKBONE, cfg.MODEL.NECK, cfg.MODEL.HEAD) == ("action_resnet", "segment_consensus", "tsn_fc")
    assert params_count(build_model(cfg)) == params
    data = cfg.DATA
    assert (data.INPUT_FORMAT, data.LIST_FORMAT, data.TEMPORAL_SAMPLER) == ("frames", "frame_folder", "tsn_tsm")
    assert (cfg.TRAIN.DATASET, cfg.TEST.DATASET) == ("kinetics", "kinetics")
    # SGD momentum 0.9, lr 0.01 at batch 64, wd 5e-4 (0 on BN), clip 20, fc lr x5 / x10.
    solver = cfg.SOLVER
    assert (solver.OPTIMIZING_METHOD, solver.MOMENTUM, solver.NESTEROV) == ("sgd", 0.9, False)
    assert (solver.BASE_LR, cfg.TRAIN.BATCH_SIZE, solver.WEIGHT_DECAY, cfg.BN.WEIGHT_DECAY) == (0.01, 64, 5e-4, 0.0)
    assert solver.CLIP_GRAD_L2NORM == 20 and solver.WARMUP_EPOCHS == 0
    assert (cfg.TSN_HEAD.WEIGHT_LR_MULT, cfg.TSN_HEAD.BIAS_LR_MULT, cfg.TSN_HEAD.INIT_STD) == (5, 10, 0.001)
    assert cfg.MODEL.DROPOUT_RATE == 0.5 and not cfg.ACTION.PARTIAL_BN and not cfg.DATA.RANDOM_FLIP
    assert (cfg.MODEL.LOSS_FUNC, cfg.MODEL.HEAD_ACT, cfg.DATA.MULTI_LABEL) == ("cross_entropy", "softmax", False)
    assert cfg.DATA.MEAN == [0.485, 0.456, 0.406] and cfg.DATA.STD == [0.229, 0.224, 0.225]
    assert solver.MAX_EPOCH == epochs
    lrs = [get_lr_at_epoch(cfg, e) for e in range(epochs)]
    expected = [0.01 * 0.1 ** sum(e >= s for s in steps) for e in range(epochs)]
    assert lrs == pytest.approx(expected)
    views = (10, 1, 224) if name.startswith("EGOGESTURE") else (10, 3, 256)
    assert (cfg.TEST.NUM_ENSEMBLE_VIEWS, cfg.TEST.NUM_SPATIAL_CROPS, cfg.DATA.TEST_CROP_SIZE) == views
    # Published augmentation: multi-scale crop to 224 after the dataset's resize, PIL's bilinear,
    # no RandAugment; test crops at quarter steps.
    assert (data.TRAIN_CROP, data.MULTI_SCALES, data.MULTI_SCALE_MAX_DISTORT) == ("multi_scale", [1.0, 0.875, 0.75, 0.66], 1)
    assert (data.TRAIN_CROP_SIZE, data.INTERPOLATION, data.RAND_AUGMENT, cfg.TEST.CROP_OFFSETS) == (
        224, "pil_bilinear", "", "quarter_steps")
    resize = {"SSV2": ("none", "short_side", [256, 256]), "JESTER": ("short_side", "short_side", [256, 256]),
              "EGOGESTURE": ("square", "square", [224, 224])}[name.split("_")[0]]
    assert (data.TRAIN_RESIZE, data.TEST_RESIZE, data.TRAIN_JITTER_SCALES) == resize
