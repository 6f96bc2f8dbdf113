"""End to end on real mp4s: train with validation, precise BN, checkpoints, then multi-view test."""
import csv
import json
import os

import numpy as np
import pytest
import torch

from m3a.engine.run import train_and_test
from m3a.engine.test_loop import METRICS_FILE, PER_CLASS_AP_FILE, PREDICTIONS_FILE
from m3a.models import build_model
from m3a.utils import checkpoint as cu
from m3a.utils.logging import read_json_stats
from m3a.utils.safe_pickle import load_pickle
from tests.engine.conftest import CLASS_NAMES, TEST, tiny_cfg


def test_train_then_test_writes_everything(tiny_data, tmp_path):
    out = str(tmp_path / "run")
    cfg = tiny_cfg(tiny_data, out)
    cfg.TRAIN.EVAL_PERIOD = 2
    cfg.TRAIN.CHECKPOINT_PERIOD = 2
    cfg.BN.USE_PRECISE_STATS = True
    cfg.BN.NUM_BATCHES_PRECISE = 2
    cfg.TENSORBOARD.ENABLE = True
    cfg.TEST.SAVE_RESULTS_PATH = str(tmp_path / "results.pkl")
    train_and_test(cfg)

    # Training loss went down; stats lines are complete.
    epochs = read_json_stats(out, "train_epoch")
    assert [e["epoch"] for e in epochs] == [1, 2, 3, 4]
    assert epochs[-1]["loss"] < epochs[0]["loss"]
    iters = read_json_stats(out, "train_iter")
    assert len(iters) == 8 and {"loss", "lr", "data_time", "iter_time", "eta", "epoch", "iter"} <= set(iters[0])
    assert iters[0]["epoch"] == "1/4" and iters[0]["iter"] == "1/2"
    assert [v["epoch"] for v in read_json_stats(out, "val_epoch")] == [2, 4]
    assert os.path.isfile(os.path.join(out, "stdout.log"))
    assert any(name.startswith("events.") for name in os.listdir(os.path.join(out, "runs")))

    # Checkpoints every 2 epochs; the newest reloads into a fresh model.
    names = sorted(os.listdir(os.path.join(out, "checkpoints")))
    assert len([n for n in names if n.endswith(".pyth")]) == 2
    last = cu.get_last_checkpoint(out)
    model = build_model(cfg)
    state = cu.load_checkpoint(last, model)
    assert state["epoch"] == 4 and last.endswith("checkpoint_epoch_00004.pyth")  # epochs completed
    saved = torch.load(last, map_location="cpu", weights_only=True)["model_state"]
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, saved[key])

    # Test outputs.
    with open(os.path.join(out, METRICS_FILE)) as f:
        metrics = json.load(f)
    for key in ("map_class", "map_sample", "top1", "top5"):
        assert 0.0 <= metrics[key] <= 1.0
    assert metrics["num_videos"] == len(TEST) - 1 and metrics["num_views"] == 2
    assert metrics["failed_videos"] == 1 and metrics["failed_paths"][0].endswith("missing.mp4")
    preds = np.load(os.path.join(out, PREDICTIONS_FILE))
    assert preds["scores"].shape == (4, 4) and preds["labels"].shape == (4, 4)
    assert [os.path.basename(p) for p in preds["paths"]] == ["v1.mp4", "v3.mp4", "v5.mp4", "v6.mp4"]
    assert ((preds["scores"] >= 0) & (preds["scores"] <= 1)).all()  # max of sigmoid scores
    scores, labels = load_pickle(cfg.TEST.SAVE_RESULTS_PATH)
    np.testing.assert_array_equal(scores, preds["scores"])
    np.testing.assert_array_equal(labels, preds["labels"])
    with open(os.path.join(out, PER_CLASS_AP_FILE)) as f:
        rows = list(csv.DictReader(f))
    assert [r["class_name"] for r in rows] == CLASS_NAMES
    assert [int(r["positives"]) for r in rows] == [1, 3, 1, 1]
    assert metrics["map_class"] == pytest.approx(np.mean([float(r["ap"]) for r in rows]), abs=1e-6)


def test_a_run_tests_what_it_trained_not_an_older_runs_newer_file(tiny_data, tmp_path):
    out = str(tmp_path / "run")
    older = tiny_cfg(tiny_data, out)
    older.SOLVER.MAX_EPOCH, older.TEST.ENABLE = 2, False
    train_and_test(older)  # leaves checkpoint_epoch_00002.pyth
    cfg = tiny_cfg(tiny_data, out)
    cfg.SOLVER.MAX_EPOCH, cfg.TRAIN.AUTO_RESUME, cfg.SOLVER.BASE_LR = 1, False, 0.0
    train_and_test(cfg)  # a 1-epoch run with lr 0: its model is the fresh initialisation
    with open(os.path.join(out, METRICS_FILE)) as f:
        metrics = json.load(f)
    assert metrics["checkpoint"] == cu.checkpoint_path(out, 1) and metrics["epoch"] == 1
    result_line = [line for line in open(os.path.join(out, "stdout.log")) if "test results:" in line][-1]
    assert f"{cu.checkpoint_path(out, 1)} (epoch 1)" in result_line
