"""configs/EPAM: the published recipe loads, validates and builds the published model."""
import os

import pytest

from m3a.config import load_config
from m3a.models import build_model
from m3a.models.model_info import params_count

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = os.path.join(REPO, "configs", "EPAM")


@pytest.mark.parametrize("name, classes, split, params", [
    ("NTU60_XSUB_EPAM", 60, "xsub", 2_538_717),
    ("NTU60_XVIEW_EPAM", 60, "xview", 2_538_717),
    ("NTU120_XSUB_EPAM", 120, "xsub", 2_577_717),
    ("NTU120_XSET_EPAM", 120, "xset", 2_577_717),
])
def test_dataset_configs_load_and_build_the_published_model(name, classes, split, params):
    cfg = load_config(os.path.join(CONFIGS, f"{name}.yaml"))
    assert cfg.MODEL.NUM_CLASSES == classes and cfg.TRAIN.DATASET == cfg.TEST.DATASET == "pose_rgb"
    assert (cfg.POSE.TRAIN_SPLIT, cfg.POSE.TEST_SPLIT) == (f"{split}_train", f"{split}_val")
    assert cfg.POSE.ANN_FILE == f"ntu{classes}_2d.pkl"
    cfg.LOG_MODEL_INFO, cfg.BN.NORM_TYPE = False, "batchnorm"  # sync BN needs a process group
    assert params_count(build_model(cfg)) == params


@pytest.mark.parametrize("name, classes, ann_file, splits, params", [
    ("PKUMMD_XSUB_EPAM", 51, "pkummd_2d.pkl", ("xsub_train", "xsub_val", "xsub_val"), 2_532_867),
    ("PKUMMD_XVIEW_EPAM", 51, "pkummd_2d.pkl", ("xview_train", "xview_val", "xview_val"), 2_532_867),
    ("TOYOTA_CS_EPAM", 31, "toyota_cs_2d.pkl", ("cs_train", "cs_val", "cs_test"), 2_519_867),
    ("TOYOTA_CV2_EPAM", 19, "toyota_cv2_2d.pkl", ("cv2_train", "cv2_val", "cv2_test"), 2_512_067),
])
def test_pku_and_toyota_configs(name, classes, ann_file, splits, params):
    cfg = load_config(os.path.join(CONFIGS, f"{name}.yaml"))
    assert cfg.MODEL.NUM_CLASSES == classes and cfg.POSE.ANN_FILE == ann_file
    assert (cfg.POSE.TRAIN_SPLIT, cfg.POSE.VAL_SPLIT, cfg.POSE.TEST_SPLIT) == splits
    assert cfg.POSE.VIDEO_TEMPLATE == "{}.mp4" and not cfg.DATA.MULTI_LABEL  # mean class accuracy reported
    assert cfg.SOLVER.MAX_EPOCH == (20 if name.startswith("TOYOTA") else 10)
    assert (cfg.SOLVER.BASE_LR, cfg.MODEL.LOSS_FUNC) == (0.0015, "stream_cross_entropy")
    cfg.LOG_MODEL_INFO, cfg.BN.NORM_TYPE = False, "batchnorm"
    model = build_model(cfg)
    assert params_count(model) == params == 2_499_717 + 650 * classes
    assert model.extra_score_names() == ["rgb", "pose"]


def test_recipe():
    cfg = load_config(os.path.join(CONFIGS, "NTU60_XSUB_EPAM.yaml"))
    assert (cfg.MODEL.BACKBONE, cfg.MODEL.NECK, cfg.MODEL.HEAD) == ("epam_net", "stream_avgpool", "i3d")
    assert (cfg.DATA.NUM_FRAMES, cfg.DATA.TEST_CROP_SIZE) == (16, 224)
    assert (cfg.EPAM.POSE_FRAMES, cfg.EPAM.HEATMAP_SIZE, cfg.POSE.HEATMAP_SIGMA) == (48, 56, 0.6)
    assert (cfg.SOLVER.BASE_LR, cfg.TRAIN.BATCH_SIZE, cfg.NUM_GPUS) == (0.0015, 24, 2)
    assert (cfg.SOLVER.MOMENTUM, cfg.SOLVER.NESTEROV, cfg.SOLVER.WEIGHT_DECAY) == (0.9, False, 3e-4)
    assert cfg.BN.WEIGHT_DECAY == 3e-4 and not cfg.SOLVER.ZERO_WD_1D_PARAM
    assert (cfg.SOLVER.LR_POLICY, cfg.SOLVER.WARMUP_EPOCHS, cfg.SOLVER.CLIP_GRAD_L2NORM) == ("cosine", 0.0, 40.0)
    assert cfg.BN.NORM_TYPE == "sync_batchnorm" and cfg.MODEL.DROPOUT_RATE == 0.5
    assert (cfg.MODEL.LOSS_FUNC, cfg.MODEL.HEAD_ACT, cfg.DATA.MULTI_LABEL) == (
        "stream_cross_entropy", "softmax", False)
    assert (cfg.TEST.NUM_ENSEMBLE_VIEWS, cfg.TEST.NUM_SPATIAL_CROPS, cfg.RNG_SEED) == (1, 1, 100)
    assert cfg.DATA.MEAN == pytest.approx([123.675 / 255, 116.28 / 255, 103.53 / 255], abs=1e-6)
    assert cfg.DATA.STD == pytest.approx([58.395 / 255, 57.12 / 255, 57.375 / 255], abs=1e-6)


@pytest.mark.parametrize("name, backbone, streams, params", [
    ("NTU60_XSUB_POSE_XSHIFT", "xshift_pose", ["pose"], 532_600),
    ("NTU60_XSUB_RGB_XSHIFT", "xshift_rgb", ["rgb"], 1_980_030 + 433 * 60),
])
def test_single_stream_configs(name, backbone, streams, params):
    cfg = load_config(os.path.join(CONFIGS, f"{name}.yaml"))
    assert (cfg.MODEL.BACKBONE, cfg.MODEL.HEAD, cfg.POSE.STREAMS) == (backbone, "i3d", streams)
    cfg.LOG_MODEL_INFO, cfg.BN.NORM_TYPE = False, "batchnorm"
    model = build_model(cfg)
    assert params_count(model) == params
    assert list(model.state_dict())[-2:] == ["cls_head.fc_cls.weight", "cls_head.fc_cls.bias"]
