"""Single-label M3A: a tiny R(2+1)D with the GCN head over RGB + text nodes trains and tests
through the engine on Kinetics-style ``path label`` lists (cross-entropy, softmax), the
lexicons read from the data folder as for M-MiT."""
import os
import shutil

import numpy as np
import yaml

from m3a.config import load_config
from m3a.engine.test_loop import PREDICTIONS_FILE
from m3a.engine.test_loop import test as run_test
from m3a.engine.train_loop import train
from m3a.utils.logging import read_json_stats
from tests.models.helpers import write_single_label_lists


def _path_label_lists(demo_dir: str, out_dir: str) -> None:
    """``path label`` lists of the demo videos (their first class) and the demo's lexicons."""
    write_single_label_lists(demo_dir, out_dir)
    shutil.copytree(os.path.join(demo_dir, "mmit-m3a"), os.path.join(out_dir, "mmit-m3a"))


def test_video_resnet_gcn_head_trains_and_tests_single_label(tiny_demo_dir, tmp_path):
    data = str(tmp_path / "lists")
    os.makedirs(data)
    _path_label_lists(tiny_demo_dir, data)
    cfg_file = str(tmp_path / "single.yaml")
    with open(cfg_file, "w") as f:
        yaml.safe_dump({
            "MODEL": {"NUM_CLASSES": 4, "ARCH": "r2plus1d", "DEPTH": 18, "BASE_WIDTH": 4, "STAGE_BLOCKS": [1, 1, 1, 1],
                      "LOSS_FUNC": "cross_entropy", "HEAD_ACT": "softmax"},
            "M3A": {"MODE": "GRAPH", "MODAL_TYPE": "RGB_TEXT", "MODAL_JOINT_TYPE": "SUM", "HIDDEN_LAYER": 8},
            "DATA": {"PATH_TO_DATA_DIR": data, "MMIT_VERSION": "demo", "MULTI_LABEL": False, "NUM_FRAMES": 2,
                     "SAMPLING_RATE": 2, "TRAIN_CROP_SIZE": 16, "TEST_CROP_SIZE": 16, "TRAIN_JITTER_SCALES": [16, 20]},
            "TRAIN": {"DATASET": "kinetics", "BATCH_SIZE": 4, "MAX_ITERS_PER_EPOCH": 1, "EVAL_PERIOD": 0},
            "TEST": {"DATASET": "kinetics", "NUM_ENSEMBLE_VIEWS": 1, "NUM_SPATIAL_CROPS": 1, "BATCH_SIZE": 2},
            "SOLVER": {"BASE_LR": 0.01, "LR_POLICY": "constant", "MAX_EPOCH": 1},
            "DATA_LOADER": {"NUM_WORKERS": 0}, "BN": {"USE_PRECISE_STATS": False},
            "NUM_GPUS": 0, "LOG_MODEL_INFO": False, "RNG_SEED": 0, "OUTPUT_DIR": str(tmp_path / "out"),
        }, f)
    cfg = load_config(cfg_file, [])
    train(cfg)
    losses = [e["loss"] for e in read_json_stats(cfg.OUTPUT_DIR, "train_epoch")]
    assert len(losses) == 1 and np.isfinite(losses[0])
    metrics = run_test(cfg)
    scores = np.load(os.path.join(cfg.OUTPUT_DIR, PREDICTIONS_FILE))["scores"]
    assert metrics["num_videos"] == 4 and scores.shape == (4, 4)
    assert np.allclose(scores.sum(axis=1), 1.0, atol=1e-5)  # softmax scores of one view
    assert "top1" in metrics
