"""Training keeps its checkpoint folder tidy (leftovers removed, old epochs pruned, the best
kept) and auto-resume never trusts a checkpoint it cannot use."""
import logging
import os

import torch

from m3a.engine.train_loop import load_training_state, train
from m3a.utils import checkpoint as cu
from m3a.utils.logging import read_json_stats
from tests.engine.conftest import tiny_cfg
from tests.engine.test_resume import _fresh_state
from tests.utils.test_checkpoint_housekeeping import _drop_first_tensor_record


def _warnings(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_training_cleans_prunes_and_keeps_the_best(tiny_data, tmp_path, caplog):
    out = str(tmp_path / "run")
    folder = os.path.join(out, cu.CHECKPOINT_DIR)
    os.makedirs(folder)
    for name, size in ((".tmp-k1b2x9.pyth", 3000), (".tmp-q8w7e6.pyth", 500)):  # interrupted saves
        with open(os.path.join(folder, name), "wb") as f:
            f.write(b"\0" * size)
    cfg = tiny_cfg(tiny_data, out)
    cfg.TRAIN.MAX_ITERS_PER_EPOCH = 1
    cfg.SOLVER.MAX_EPOCH = 3
    cfg.TRAIN.CHECKPOINT_KEEP = 2
    cfg.TRAIN.SAVE_BEST = True
    with caplog.at_level(logging.INFO):
        train(cfg)
    messages = [r.getMessage() for r in caplog.records]
    assert any("removed 2 leftover temporary file(s) of interrupted saves (0.0 MB)" in m for m in messages)
    assert sorted(os.listdir(folder)) == [cu.BEST_CHECKPOINT, "checkpoint_epoch_00002.pyth",
                                          "checkpoint_epoch_00003.pyth"]

    maps = {v["epoch"]: v["map_class"] for v in read_json_stats(out, "val_epoch")}
    assert sorted(maps) == [1, 2, 3]
    best_epoch = max(maps, key=lambda e: (maps[e], -e))  # the first epoch reaching the best mAP
    record = cu.read_best_record(out)
    assert record["epoch"] == best_epoch and record["metric"] == "map_class"
    assert abs(record["value"] - maps[best_epoch]) < 1e-5  # the log rounds to 6 digits
    best = torch.load(cu.best_checkpoint_path(out), weights_only=True)
    assert best["epoch"] == best_epoch and cu.first_nonfinite(best) is None

    # Auto-resume still continues after the newest epoch, never from the best file.
    model, optimizer, scaler = _fresh_state(cfg)
    assert load_training_state(cfg, model, optimizer, scaler) == 3


def _two_epochs(tiny_data, out: str):
    cfg = tiny_cfg(tiny_data, out)
    cfg.TRAIN.EVAL_PERIOD = 0
    cfg.TRAIN.MAX_ITERS_PER_EPOCH = 1
    cfg.SOLVER.MAX_EPOCH = 2
    train(cfg)
    return cfg, cu.checkpoint_path(out, 1), cu.checkpoint_path(out, 2)


def test_resume_falls_back_past_missing_record_and_nan_weights(tiny_data, tmp_path, caplog):
    cfg, first, second = _two_epochs(tiny_data, str(tmp_path / "run"))
    dropped = _drop_first_tensor_record(second)
    with caplog.at_level(logging.WARNING):
        model, optimizer, scaler = _fresh_state(cfg)
        assert load_training_state(cfg, model, optimizer, scaler) == 1  # not a CheckpointError
    assert any(second in m and dropped.split("/", 1)[1] in m for m in _warnings(caplog))

    cfg2, first, second = _two_epochs(tiny_data, str(tmp_path / "nan"))
    ckpt = torch.load(second, weights_only=True)
    key = next(k for k, v in ckpt["model_state"].items() if v.is_floating_point())
    ckpt["model_state"][key].view(-1)[0] = float("nan")
    torch.save(ckpt, second)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        model, optimizer, scaler = _fresh_state(cfg2)
        assert load_training_state(cfg2, model, optimizer, scaler) == 1
    assert any(second in m and f"model_state.{key} holds NaN/Inf" in m for m in _warnings(caplog))
    saved = torch.load(first, weights_only=True)["model_state"]
    torch.testing.assert_close(model.state_dict()[key], saved[key], rtol=0, atol=0)


def test_all_checkpoints_unusable_is_said_loudly(tiny_data, tmp_path, caplog):
    cfg, first, second = _two_epochs(tiny_data, str(tmp_path / "run"))
    for path in (first, second):
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) // 2)
    with caplog.at_level(logging.WARNING):
        model, optimizer, scaler = _fresh_state(cfg)
        assert load_training_state(cfg, model, optimizer, scaler) == 0
    loud = [m for m in _warnings(caplog) if "none of the 2 checkpoint(s)" in m]
    assert len(loud) == 1, _warnings(caplog)
    assert "checkpoint_epoch_00002.pyth, checkpoint_epoch_00001.pyth" in loud[0]
    assert "training starts from epoch 1" in loud[0]
