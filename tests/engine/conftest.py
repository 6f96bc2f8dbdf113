"""A tiny real data set (H.264 mp4s, M-MiT style lists) and a tiny-model config for engine tests."""
import os

import pytest

from m3a.config import get_cfg
from m3a.utils.synthetic_video import write_video
from tests.datasets.conftest import write_list

NUM_CLASSES = 4
VERSION = "tiny"
CLASS_NAMES = ["jumping", "running", "waving", "sitting"]
# video name -> labels; each video has its own synthetic content (seed).
TRAIN = {f"v{i}.mp4": labels for i, labels in enumerate([(0,), (1,), (2, 3), (0, 1), (3,), (2,), (1, 3), (0, 2)])}
VAL = {"v0.mp4": (0,), "v2.mp4": (2, 3), "v4.mp4": (3,), "v7.mp4": (0, 2)}
# The test list names one missing video: it is left out of the metrics and counted as failed.
TEST = {"v1.mp4": (1,), "v3.mp4": (0, 1), "v5.mp4": (2,), "missing.mp4": (3,), "v6.mp4": (1, 3)}


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> str:
    """Folder with 8 short 48x64 videos, train/val/test-tiny.csv and categories-tiny.txt."""
    root = str(tmp_path_factory.mktemp("tiny_data"))
    for i in range(8):
        write_video(os.path.join(root, f"v{i}.mp4"), num_frames=24, height=48, width=64, seed=10 + i)
    for split, rows in (("train", TRAIN), ("val", VAL), ("test", TEST)):
        write_list(os.path.join(root, f"{split}-{VERSION}.csv"), rows)
    with open(os.path.join(root, f"categories-{VERSION}.txt"), "w") as f:
        f.write("".join(f"{name},{i}\n" for i, name in enumerate(CLASS_NAMES)))
    return root


def tiny_cfg(data_dir: str, output_dir: str):
    """Tiny R3D (width 8, one block per stage, FC head) on 4-frame 32-pixel clips, CPU, 4 epochs."""
    cfg = get_cfg()
    cfg.NUM_GPUS = 0
    cfg.OUTPUT_DIR = output_dir
    cfg.LOG_PERIOD = 1
    cfg.LOG_MODEL_INFO = False
    cfg.MODEL.ARCH = "r3d"
    cfg.MODEL.DEPTH = 18
    cfg.MODEL.BASE_WIDTH = 8
    cfg.MODEL.STAGE_BLOCKS = [1, 1, 1, 1]
    cfg.MODEL.NUM_CLASSES = NUM_CLASSES
    cfg.M3A.MODE = "NONE"
    cfg.DATA.PATH_TO_DATA_DIR = data_dir
    cfg.DATA.MMIT_VERSION = VERSION
    cfg.DATA.NUM_FRAMES = 4
    cfg.DATA.SAMPLING_RATE = 2
    cfg.DATA.TRAIN_JITTER_SCALES = [32, 36]
    cfg.DATA.TRAIN_CROP_SIZE = 32
    cfg.DATA.TEST_CROP_SIZE = 32
    cfg.DATA.ENSEMBLE_METHOD = "max"
    cfg.DATA_LOADER.NUM_WORKERS = 0
    cfg.TRAIN.BATCH_SIZE = 4
    cfg.TEST.BATCH_SIZE = 2
    cfg.TEST.NUM_ENSEMBLE_VIEWS = 2
    cfg.TEST.NUM_SPATIAL_CROPS = 1
    cfg.SOLVER.BASE_LR = 0.1
    cfg.SOLVER.LR_POLICY = "constant"
    cfg.SOLVER.MAX_EPOCH = 4
    cfg.SOLVER.WARMUP_EPOCHS = 0.0
    cfg.SOLVER.WEIGHT_DECAY = 1e-4
    return cfg
