"""Helpers of the model tests: small lexicon files on disk and tiny model configs."""
import os
from collections import OrderedDict

import numpy as np
import pytest

from m3a.config import get_cfg
from m3a.utils import lexicon

# Widths of the tiny lexicons used by the tiny models.
TINY_AUDIO, TINY_TEXT, TINY_CLASSES = 4, 6, 5


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory):
    """A data folder with tiny lexicons (5 classes, audio width 4, text width 6) and its arrays."""
    root = tmp_path_factory.mktemp("tiny_data")
    arrays = write_lexicons(root, TINY_CLASSES, TINY_AUDIO, TINY_TEXT)
    return str(root), arrays


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """Tiny models run fastest on one intra-op thread; restore the setting afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def write_lexicons(root, num_classes, audio_dim, text_dim, version="v1", ext=".npz", seed=0):
    """Write graph-adj, text-lexicon and audio-lexicon files under ``root/mmit-m3a``."""
    rng = np.random.default_rng(seed)
    folder = os.path.join(str(root), "mmit-m3a")
    os.makedirs(folder, exist_ok=True)
    psi = rng.random((num_classes, num_classes))
    np.fill_diagonal(psi, 0.0)
    text = rng.standard_normal((num_classes, text_dim))
    keys = [f"clip{i:03d}" for i in range(2 * num_classes)]
    label = OrderedDict(
        (c if ext == ".pkl" else f"class{c}",
         [keys[2 * c], keys[2 * c + 1], keys[(2 * c + 2) % len(keys)]])
        for c in range(num_classes)
    )
    audio = {k: rng.standard_normal(audio_dim).astype(np.float32) for k in keys}
    lexicon.save_graph_adj(os.path.join(folder, f"graph-adj-{version}{ext}"), psi)
    lexicon.save_text_lexicon(os.path.join(folder, f"text-lexicon-{version}{ext}"), text)
    lexicon.save_audio_lexicon(
        os.path.join(folder, f"audio-lexicon-{version}{ext}"), {"label": label, "audio": audio}
    )
    return {"psi": psi, "text": text, "label": label, "audio": audio}


def tiny_cfg(
    data_dir, mode="GRAPH", modal="RGB_AUDIO_TEXT", joint="SUM", arch="r2plus1d", depth=18
):
    """A config of a tiny model: base width 4, one block per stage, 5 classes, 4x16x16 clips."""
    cfg = get_cfg()
    cfg.MODEL.ARCH, cfg.MODEL.DEPTH = arch, depth
    cfg.MODEL.BASE_WIDTH, cfg.MODEL.STAGE_BLOCKS = 4, [1, 1, 1, 1]
    cfg.MODEL.NUM_CLASSES = TINY_CLASSES
    cfg.M3A.MODE, cfg.M3A.MODAL_TYPE, cfg.M3A.MODAL_JOINT_TYPE = mode, modal, joint
    cfg.M3A.AUDIO_VEC_SIZE, cfg.M3A.TEXT_VEC_SIZE, cfg.M3A.HIDDEN_LAYER = TINY_AUDIO, TINY_TEXT, 8
    cfg.DATA.PATH_TO_DATA_DIR = data_dir
    cfg.DATA.NUM_FRAMES, cfg.DATA.TEST_CROP_SIZE = 4, 16
    cfg.LOG_MODEL_INFO = False
    return cfg


def write_single_label_lists(demo_dir: str, out_dir: str) -> None:
    """``path label`` lists {train,val,test}.csv in ``out_dir`` of the demo videos, each with its
    first (primary) class, paths joined to ``demo_dir``."""
    for split in ("train", "val", "test"):
        with open(os.path.join(demo_dir, f"{split}-demo.csv")) as f:
            rows = [line.strip().split(",") for line in f if line.strip()]
        with open(os.path.join(out_dir, f"{split}.csv"), "w") as f:
            f.writelines(f"{os.path.join(demo_dir, r[0])} {r[1]}\n" for r in rows)
