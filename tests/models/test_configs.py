"""The published recipe and model-zoo configs load and say what the released models used."""
import glob
import json
import os

import pytest

from m3a.config import load_config
from tests.models.test_published_layout import LAYOUT

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = os.path.join(REPO, "configs", "Mmit")
ZOO = sorted(glob.glob(os.path.join(CONFIGS, "v*", "*.yaml")))

# Model-zoo M3A settings (MODE, MODAL_TYPE, MODAL_JOINT_TYPE) of the released checkpoints.
ZOO_SETTINGS = {
    "BASELINE": ("NONE", "NONE", "NONE"),
    "G_VA": ("GRAPH", "AUDIO", "NONE"),
    "G_VT": ("GRAPH", "TEXT", "NONE"),
    "G_VAT": ("GRAPH", "AUDIO_TEXT", "SUM"),
    "T_VA": ("TRSFMR", "AUDIO", "NONE"),
    "T_VT": ("TRSFMR", "TEXT", "NONE"),
    "T_VAT": ("TRSFMR", "AUDIOTEXT", "NONE"),
}


@pytest.mark.parametrize("name", ["GRAPH", "TRSFMR"])
def test_recipe(name):
    cfg = load_config(os.path.join(CONFIGS, f"R2PLUS1D_{name}_8x2.yaml"))
    assert (cfg.MODEL.ARCH, cfg.MODEL.DEPTH, cfg.MODEL.NUM_CLASSES) == ("r2plus1d", 34, 313)
    assert (cfg.DATA.NUM_FRAMES, cfg.DATA.SAMPLING_RATE) == (8, 2)
    assert cfg.DATA.TRAIN_JITTER_SCALES == [128, 160]
    assert (cfg.DATA.TRAIN_CROP_SIZE, cfg.DATA.TEST_CROP_SIZE) == (112, 128)
    assert (cfg.TEST.NUM_ENSEMBLE_VIEWS, cfg.TEST.NUM_SPATIAL_CROPS) == (10, 3)
    assert cfg.DATA.ENSEMBLE_METHOD == "max" and cfg.DATA.PATH_LABEL_SEPARATOR == ","
    assert cfg.MODEL.LOSS_FUNC == "bce_logit" and cfg.MODEL.HEAD_ACT == "sigmoid"
    assert (cfg.SOLVER.BASE_LR, cfg.SOLVER.MOMENTUM, cfg.SOLVER.WEIGHT_DECAY) == (0.01, 0.9, 1e-4)
    assert cfg.SOLVER.MAX_EPOCH == 30 and cfg.TRAIN.BATCH_SIZE == 64 and cfg.NUM_GPUS == 8
    assert cfg.TRAIN.ENABLE_AMP and cfg.BN.USE_PRECISE_STATS and cfg.BN.NUM_BATCHES_PRECISE == 200
    assert cfg.DATA_LOADER.NUM_WORKERS == 8 and cfg.TRAIN.AUTO_RESUME
    assert cfg.M3A.MODE == name
    if name == "GRAPH":
        assert cfg.SOLVER.LR_POLICY == "steps_with_relative_lrs"
        assert cfg.SOLVER.STEPS == [0, 12, 24, 30] and cfg.SOLVER.LRS == [1, 0.1, 0.01, 0.001]
        assert cfg.SOLVER.WARMUP_EPOCHS == 0
    else:
        assert cfg.SOLVER.LR_POLICY == "cosine"
        assert (cfg.SOLVER.WARMUP_EPOCHS, cfg.SOLVER.WARMUP_START_LR) == (5.0, 1e-4)


def test_fourteen_zoo_configs():
    assert len(ZOO) == 14


@pytest.mark.parametrize("path", ZOO, ids=lambda p: os.path.relpath(p, CONFIGS))
def test_zoo_config(path):
    version = os.path.basename(os.path.dirname(path))
    row = os.path.basename(path)[len("R2PLUS1D_"):-len(".yaml")]
    cfg = load_config(path)
    mode, modal, joint = ZOO_SETTINGS[row]
    if version == "v2" and row == "T_VAT":
        joint = "SUM"  # the v2 release trained this row with SUM (same model as NONE)
    assert (cfg.M3A.MODE, cfg.M3A.MODAL_TYPE, cfg.M3A.MODAL_JOINT_TYPE) == (mode, modal, joint)
    assert cfg.DATA.MMIT_VERSION == version
    assert cfg.MODEL.NUM_CLASSES == {"v1": 313, "v2": 292}[version]
    assert (cfg.M3A.NLAYERS, cfg.M3A.HIDDEN_LAYER) == (1, 512)
    expected_policy = "cosine" if row.startswith("T_") else "steps_with_relative_lrs"
    assert cfg.SOLVER.LR_POLICY == expected_policy


@pytest.mark.parametrize("row, layout", [("G_VAT", "r2plus1d34_graph_audio_text_sum"),
                                         ("T_VAT", "r2plus1d34_trsfmr_audiotext")])
def test_zoo_configs_build_the_published_layouts(row, layout):
    cfg = load_config(os.path.join(CONFIGS, "v1", f"R2PLUS1D_{row}.yaml"))
    published = LAYOUT[layout]["config"]
    assert cfg.M3A.MODE == published["mode"] and cfg.M3A.MODAL_TYPE == published["modal"]
    assert (cfg.M3A.NLAYERS, cfg.M3A.HIDDEN_LAYER) == (published["nlayers"], published["hidden"])
    assert json.dumps(cfg.M3A.MODAL_JOINT_TYPE) == json.dumps(published["joint"])
