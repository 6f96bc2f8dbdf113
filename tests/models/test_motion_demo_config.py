"""configs/demo/motion.yaml: TSN, TSM and ACTION-Net build from it and train end to end on a small
motion-direction data set (frame folders, frame_folder lists, TSN segments)."""
import json
import os

import pytest
import torch

from m3a.config import load_config
from m3a.engine.run import train_and_test
from m3a.models import build_model
from m3a.prep.motion_demo import make_motion_dataset
from m3a.utils.checkpoint import get_last_checkpoint, load_checkpoint

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(REPO, "configs", "demo", "motion.yaml")


@pytest.mark.parametrize("variant, params", [("tsn", 129_934), ("tsm", 129_934), ("action", 156_988)])
def test_demo_config_builds_each_variant(variant, params):
    cfg = load_config(CONFIG, ["ACTION.VARIANT", variant, "LOG_MODEL_INFO", "False"])
    assert (cfg.DATA.LIST_FORMAT, cfg.DATA.TEMPORAL_SAMPLER, cfg.DATA.INPUT_FORMAT) == ("frame_folder", "tsn", "frames")
    assert not cfg.DATA.RANDOM_FLIP  # a flip would swap "moving right" and "moving left"
    model = build_model(cfg)
    assert sum(p.numel() for p in model.parameters()) == params
    assert model(torch.zeros(2, 3, 8, 56, 56)).shape == (2, 6)


def test_action_net_trains_and_tests_on_frame_folders(tmp_path):
    data, out = tmp_path / "motion", tmp_path / "out"
    make_motion_dataset(str(data), clips_per_class=4, frames=8, size=32, seed=0)
    cfg = load_config(CONFIG, [
        "DATA.PATH_TO_DATA_DIR", str(data), "DATA.CLASS_NAMES_FILE", str(data / "classes.txt"),
        "OUTPUT_DIR", str(out), "SOLVER.MAX_EPOCH", "1", "TRAIN.MAX_ITERS_PER_EPOCH", "2",
        "TRAIN.EVAL_PERIOD", "1", "TRAIN.CHECKPOINT_PERIOD", "1", "TRAIN.BATCH_SIZE", "4",
        "DATA.TRAIN_JITTER_SCALES", "[32, 36]", "DATA.TRAIN_CROP_SIZE", "32", "DATA.TEST_CROP_SIZE", "32",
        "DATA_LOADER.NUM_WORKERS", "0", "LOG_MODEL_INFO", "False", "NUM_GPUS", "0",
    ])
    train_and_test(cfg)
    with open(out / "test_metrics.json") as f:
        metrics = json.load(f)
    assert metrics["num_videos"] == 6 and 0.0 <= metrics["top1"] <= 1.0
    model = build_model(cfg)
    info = load_checkpoint(get_last_checkpoint(str(out)), model)
    assert (info["layout"], info["missing_keys"], info["unexpected_keys"]) == ("native", [], [])
    assert "base_model.layer1.0.conv1.action_shift.weight" in model.state_dict()
