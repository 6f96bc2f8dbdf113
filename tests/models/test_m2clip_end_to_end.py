"""A tiny M2CLIP trains through the engine on real demo videos (multi-task loss, masked LM on),
its checkpoint tests, and zero-shot transfer (TEST.ZERO_SHOT) scores another class list by
name: the same classes listed in another order give the same scores, columns permuted."""
import os

import numpy as np
import yaml

from m3a.config import load_config
from m3a.engine.test_loop import PREDICTIONS_FILE
from m3a.engine.test_loop import test as run_test
from m3a.engine.train_loop import train
from m3a.utils.checkpoint import get_last_checkpoint, read_checkpoint
from tests.models.helpers import write_single_label_lists


def _cfg_file(path: str, data_dir: str) -> str:
    cfg = {
        "MODEL": {"BACKBONE": "m2clip", "HEAD": "m2clip", "NUM_CLASSES": 4},
        "M2CLIP": {"ARCH": "custom", "ADAPTER_WIDTH": 8, "TEXT_ADAPTER_WIDTH": 8, "VIS_ADAPTER_LAYERS": 2,
                   "MLM": {"ENABLE": True, "VOCAB_SIZE": 0},
                   "CUSTOM": {"EMBED_DIM": 16, "VISION_WIDTH": 16, "VISION_LAYERS": 2, "PATCH_SIZE": 4,
                              "VISION_HEAD_WIDTH": 8, "TEXT_WIDTH": 16, "TEXT_HEADS": 2, "TEXT_LAYERS": 2}},
        "DATA": {"PATH_TO_DATA_DIR": data_dir, "MMIT_VERSION": "demo", "NUM_FRAMES": 2, "SAMPLING_RATE": 4,
                 "TARGET_FPS": 15, "TEST_CROP_SIZE": 16, "TRAIN_CROP_SIZE": 16, "TRAIN_JITTER_SCALES": [16, 20],
                 "ENSEMBLE_METHOD": "sum"},
        "SOLVER": {"OPTIMIZING_METHOD": "adamw", "BASE_LR": 0.001, "LR_POLICY": "constant", "MAX_EPOCH": 1,
                   "LR_SCALE_PATTERNS": ["textad_"], "LR_SCALES": [0.5]},
        "TRAIN": {"BATCH_SIZE": 2, "MAX_ITERS_PER_EPOCH": 2, "EVAL_PERIOD": 0},
        "TEST": {"NUM_ENSEMBLE_VIEWS": 1, "NUM_SPATIAL_CROPS": 1, "BATCH_SIZE": 2},
        "DATA_LOADER": {"NUM_WORKERS": 0},
        "NUM_GPUS": 0, "LOG_MODEL_INFO": False, "RNG_SEED": 0,
    }
    with open(path, "w") as f:
        yaml.safe_dump(cfg, f)
    return path


def _vocab_size(data_dir: str) -> int:
    from m3a.models.m2clip_head import prompt_vocab
    from m3a.utils.class_names import read_class_names

    names = read_class_names(os.path.join(data_dir, "categories-demo.txt"), 4)
    return len(prompt_vocab([f"A video of {n}" for n in names]))


def test_m2clip_trains_tests_and_transfers_zero_shot(tiny_demo_dir, tmp_path):
    cfg_file = _cfg_file(str(tmp_path / "m2clip.yaml"), tiny_demo_dir)
    out = str(tmp_path / "out")
    cfg = load_config(cfg_file, ["OUTPUT_DIR", out, "M2CLIP.MLM.VOCAB_SIZE", str(_vocab_size(tiny_demo_dir))])
    train(cfg)
    ckpt = get_last_checkpoint(out)
    stored = read_checkpoint(ckpt)
    assert stored["model_inputs"]["prompts"][0].startswith("A video of ")

    cfg.TEST.CHECKPOINT_FILE_PATH = ckpt
    metrics = run_test(cfg)
    scores = np.load(os.path.join(out, PREDICTIONS_FILE))["scores"]
    assert scores.shape == (4, 4) and metrics["num_videos"] == 4

    # Zero-shot: the demo's classes listed in reverse order are scored by name.
    names = stored["class_names"]
    reversed_file = tmp_path / "reversed.txt"
    reversed_file.write_text("\n".join(reversed(names)) + "\n")
    zero_out = str(tmp_path / "zero")
    zero = load_config(cfg_file, ["OUTPUT_DIR", zero_out, "TEST.ZERO_SHOT", "True", "TRAIN.ENABLE", "False",
                                  "TEST.CHECKPOINT_FILE_PATH", ckpt, "DATA.CLASS_NAMES_FILE", str(reversed_file),
                                  "M2CLIP.MLM.VOCAB_SIZE", str(_vocab_size(tiny_demo_dir))])
    run_test(zero)
    transferred = np.load(os.path.join(zero_out, PREDICTIONS_FILE))["scores"]
    assert not np.allclose(scores, scores[:, ::-1], atol=1e-3)  # the reversal is visible
    assert np.allclose(transferred, scores[:, ::-1], atol=1e-5)


def _path_label_lists(demo_dir: str, out_dir: str) -> None:
    """Single-label ``path label`` lists (the demo's primary class) and a class-name file."""
    write_single_label_lists(demo_dir, out_dir)
    with open(os.path.join(demo_dir, "categories-demo.txt")) as f:
        names = [line.strip().split(",")[0] for line in f if line.strip()]
    with open(os.path.join(out_dir, "class_names.txt"), "w") as f:
        f.write("\n".join(names) + "\n")


def test_m2clip_recipe_data_path_label_lists_with_tsn_frames(tiny_demo_dir, tmp_path):
    """The SSv2 recipe's data settings: ``path label`` lists (kinetics), single-label softmax,
    TSN frame sampling; one training epoch, then a test over 3 crops."""
    data = str(tmp_path / "lists")
    os.makedirs(data)
    _path_label_lists(tiny_demo_dir, data)
    out = str(tmp_path / "out")
    cfg = load_config(_cfg_file(str(tmp_path / "m2clip.yaml"), data), [
        "OUTPUT_DIR", out, "TRAIN.DATASET", "kinetics", "TEST.DATASET", "kinetics", "DATA.MULTI_LABEL", "False",
        "DATA.CLASS_NAMES_FILE", os.path.join(data, "class_names.txt"), "DATA.TEMPORAL_SAMPLER", "tsn",
        "MODEL.LOSS_FUNC", "cross_entropy", "MODEL.HEAD_ACT", "softmax", "TEST.NUM_SPATIAL_CROPS", "3",
        "M2CLIP.MLM.ENABLE", "False", "M2CLIP.MLM.VOCAB_SIZE", str(_vocab_size(tiny_demo_dir))])
    train(cfg)
    metrics = run_test(cfg)
    scores = np.load(os.path.join(out, PREDICTIONS_FILE))["scores"]
    assert metrics["num_videos"] == 4 and metrics["num_views"] == 3
    assert np.allclose(scores.sum(axis=1), 3.0, atol=1e-4)  # 3 views of softmax scores, summed
