"""A checkpoint written by training holds its config, class names and the M3A head's lexicons:
prediction works from the checkpoint alone after the data folder is deleted, and the scores do
not depend on the data folder or on RNG_SEED at test time."""
import logging
import os
import shutil
import subprocess
import sys

import torch

from m3a.config import load_config
from m3a.engine.predict import load_model, load_trained_model, load_video_views, score_views
from m3a.engine.train_loop import train
from m3a.utils.checkpoint import get_last_checkpoint
from tests.visualization.tiny_setup import ROOT, write_tiny_cfg

VIDEO = "videos/test/test-0000.mp4"


def _train_copy(data_dir: str, tmp_path) -> tuple:
    cfg_file = write_tiny_cfg(str(tmp_path / "graph.yaml"), data_dir, "GRAPH", "RGB_AUDIO_TEXT", "SUM")
    cfg = load_config(cfg_file, [
        "OUTPUT_DIR", str(tmp_path / "out"), "SOLVER.MAX_EPOCH", "1", "TRAIN.BATCH_SIZE", "2",
        "TRAIN.MAX_ITERS_PER_EPOCH", "1", "TRAIN.EVAL_PERIOD", "0", "DATA_LOADER.NUM_WORKERS", "0",
        "SOLVER.BASE_LR", "0.01", "SOLVER.LR_POLICY", "constant",
    ])
    train(cfg)
    return cfg, get_last_checkpoint(cfg.OUTPUT_DIR)


def test_checkpoint_predicts_without_the_data_folder(tiny_demo_dir, tmp_path, caplog):
    data = str(tmp_path / "data")
    shutil.copytree(tiny_demo_dir, data)
    cfg, ckpt = _train_copy(data, tmp_path)
    video = str(tmp_path / "clip.mp4")
    shutil.copy(os.path.join(data, VIDEO), video)
    with torch.no_grad():
        expected = score_views(load_model(cfg, ckpt), load_video_views(cfg, video), "max")
    # Another seed draws other audio nodes from the data folder: a warning, and the stored ones.
    cfg.RNG_SEED = 1
    with caplog.at_level(logging.WARNING, logger="m3a.engine.predict"), torch.no_grad():
        model = load_trained_model(ckpt, cfg).model
        assert torch.allclose(score_views(model, load_video_views(cfg, video), "max"), expected, atol=1e-6)
    assert "audio_nodes in the data folder differs from the checkpoint's" in caplog.text
    assert "text in the data folder" not in caplog.text
    names = open(os.path.join(data, "categories-demo.txt")).read().split("\n")
    shutil.rmtree(data)

    trained = load_trained_model(ckpt)  # config, class names and lexicons from the file alone
    assert trained.cfg.M3A.MODAL_TYPE == "RGB_AUDIO_TEXT" and trained.epoch == 1
    assert [n.split(",")[0] for n in names if n][:4] == trained.class_names[:4]
    with torch.no_grad():
        alone = score_views(trained.model, load_video_views(trained.cfg, video), "max")
        reseeded = load_trained_model(ckpt, opts=["RNG_SEED", "1"]).model
        other_seed = score_views(reseeded, load_video_views(trained.cfg, video), "max")
    assert torch.allclose(alone, expected, atol=1e-6)
    assert torch.allclose(other_seed, expected, atol=1e-6)  # the audio node picks are stored

    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tools", "predict.py"), "--checkpoint", ckpt,
         "--topk", "2", video], capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    best = int(torch.argmax(expected))
    assert f"{trained.class_names[best]} ({best})" in proc.stdout.splitlines()[1]
