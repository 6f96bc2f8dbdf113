"""Resuming from the newest complete checkpoint; truncated checkpoints are skipped."""
import logging
import os

import pytest
import torch

from m3a.engine import amp
from m3a.engine.optimizer import construct_optimizer
from m3a.engine.train_loop import load_training_state, train
from m3a.models import build_model
from m3a.utils import checkpoint as cu
from m3a.utils.logging import read_json_stats
from tests.engine.conftest import tiny_cfg


def _fresh_state(cfg):
    model = build_model(cfg)
    optimizer = construct_optimizer(model, cfg)
    return model, optimizer, amp.build_grad_scaler(cfg, torch.device("cpu"))


def _trained_one_epoch(tiny_data, out: str):
    """Config of a one-epoch, one-iteration run into ``out``, after running it (one checkpoint)."""
    cfg = tiny_cfg(tiny_data, out)
    cfg.TRAIN.EVAL_PERIOD = 0
    cfg.TRAIN.MAX_ITERS_PER_EPOCH = 1
    cfg.SOLVER.MAX_EPOCH = 1
    train(cfg)
    return cfg


def test_restart_resumes_next_epoch_with_same_optimizer_state(tiny_data, tmp_path, caplog):
    out = str(tmp_path / "run")
    cfg = _trained_one_epoch(tiny_data, out)  # the "killed" run: stops after its first checkpoint
    first = cu.get_last_checkpoint(out)
    saved = torch.load(first, map_location="cpu", weights_only=True)

    # A restart loads model, optimizer (momentum buffers) and epoch from that checkpoint.
    model, optimizer, scaler = _fresh_state(cfg)
    assert load_training_state(cfg, model, optimizer, scaler) == 1
    momenta = [s["momentum_buffer"] for s in optimizer.state_dict()["state"].values()]
    expected = [s["momentum_buffer"] for s in saved["optimizer_state"]["state"].values()]
    assert len(momenta) == len(expected) > 0 and any(m.abs().sum() > 0 for m in momenta)
    for got, want in zip(momenta, expected):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, saved["model_state"][key], rtol=0, atol=0)

    # The restarted run trains only epoch 2.
    cfg.SOLVER.MAX_EPOCH = 2
    train(cfg)
    assert [e["epoch"] for e in read_json_stats(out, "train_epoch")] == [1, 2]
    second = cu.get_last_checkpoint(out)
    assert first.endswith("_00001.pyth") and second.endswith("_00002.pyth")
    assert torch.load(second, weights_only=True)["epoch"] == 2

    # A checkpoint truncated on disk is skipped with a warning, never loaded.
    with open(second, "rb") as f:
        data = f.read()
    with open(second, "wb") as f:
        f.write(data[: len(data) // 2])
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert cu.get_last_checkpoint(out) == first
    assert any(os.path.basename(second) in r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
    model, optimizer, scaler = _fresh_state(cfg)
    assert load_training_state(cfg, model, optimizer, scaler) == 1


def _demo_cfg(tiny_demo_dir, out: str, epochs: int, workers: int = 0, extras=()):
    cfg = tiny_cfg(tiny_demo_dir, out)
    cfg.DATA.MMIT_VERSION = "demo"
    cfg.TRAIN.EVAL_PERIOD = 0
    cfg.SOLVER.MAX_EPOCH = epochs
    cfg.DATA_LOADER.NUM_WORKERS = workers
    cfg.merge_from_list(list(extras))
    return cfg


# Training extras whose state must survive a restart: the EMA weights, the mixup draws (seeded by
# epoch), accumulated steps (never spanning an epoch end).
EXTRAS = ["TRAIN.EMA.ENABLE", True, "TRAIN.EMA.DECAY", 0.9, "TRAIN.ACCUM_STEPS", 2, "MIXUP.ENABLE", True]


@pytest.mark.parametrize("extras", [(), EXTRAS], ids=["plain", "ema_accum_mixup"])
def test_resumed_run_matches_uninterrupted_run(tiny_demo_dir, tmp_path, caplog, extras):
    straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
    train(_demo_cfg(tiny_demo_dir, straight, 2, extras=extras))
    train(_demo_cfg(tiny_demo_dir, resumed, 1, extras=extras))
    # The restart has fresh RNGs, a fresh loader (here with 2 workers): epoch 2 is the same.
    train(_demo_cfg(tiny_demo_dir, resumed, 2, workers=2, extras=extras))
    losses = [[e["loss"] for e in read_json_stats(out, "train_epoch")] for out in (straight, resumed)]
    assert len(losses[0]) == len(losses[1]) == 2 and losses[0][0] != losses[0][1]
    assert abs(losses[0][1] - losses[1][1]) <= 1e-5
    fields = ("model_state", "ema_state") if extras else ("model_state",)
    saved = [torch.load(cu.checkpoint_path(out, 2), weights_only=True) for out in (straight, resumed)]
    assert all(("ema_state" in ckpt) == bool(extras) for ckpt in saved)
    for field in fields:
        for key, value in saved[0][field].items():
            torch.testing.assert_close(saved[1][field][key], value, rtol=0, atol=1e-5)
    weights = [ckpt["model_state"] for ckpt in saved]

    # Re-running the finished run says so, trains nothing and returns the trained model.
    caplog.clear()
    with caplog.at_level(logging.INFO):
        model = train(_demo_cfg(tiny_demo_dir, resumed, 2, extras=extras))
    messages = [r.getMessage() for r in caplog.records]
    assert f"training already finished: 2 of 2 epochs in {cu.checkpoint_path(resumed, 2)}; nothing to train" in messages
    assert not any(m.startswith("start epoch") for m in messages)
    assert len(read_json_stats(resumed, "train_epoch")) == 2
    torch.testing.assert_close(model.state_dict(), weights[1], rtol=0, atol=0)


def test_finetune_from_checkpoint_starts_at_epoch_zero(tiny_data, tmp_path):
    src = str(tmp_path / "src")
    cfg = _trained_one_epoch(tiny_data, src)
    # Fine-tune into a model with another class count: the classifier stays fresh.
    cfg.OUTPUT_DIR = str(tmp_path / "ft")
    cfg.MODEL.NUM_CLASSES = 6
    cfg.TRAIN.CHECKPOINT_FILE_PATH = cu.get_last_checkpoint(src)
    model, optimizer, scaler = _fresh_state(cfg)
    assert load_training_state(cfg, model, optimizer, scaler) == 0
    assert optimizer.state_dict()["state"] == {}  # fine-tuning starts a fresh optimiser
    saved = torch.load(cfg.TRAIN.CHECKPOINT_FILE_PATH, weights_only=True)["model_state"]
    state = model.state_dict()
    assert saved.keys() == state.keys()
    differing = [k for k in state if state[k].shape != saved[k].shape]
    assert differing and all(state[k].shape[0] == 6 for k in differing)
    for key in state.keys() - set(differing):
        torch.testing.assert_close(state[key], saved[key])


def test_without_auto_resume_an_existing_run_is_named_in_a_warning(tiny_data, tmp_path, caplog):
    out = str(tmp_path / "run")
    cfg = _trained_one_epoch(tiny_data, out)
    cfg.TRAIN.AUTO_RESUME = False
    model, optimizer, scaler = _fresh_state(cfg)
    with caplog.at_level(logging.WARNING):
        assert load_training_state(cfg, model, optimizer, scaler) == 0
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("checkpoint_epoch_00001.pyth" in m and "AUTO_RESUME is False" in m for m in warned)
    assert optimizer.state_dict()["state"] == {}


def test_resuming_with_another_seed_is_named_in_a_warning(tiny_data, tmp_path, caplog):
    out = str(tmp_path / "run")
    cfg = _trained_one_epoch(tiny_data, out)
    cfg.RNG_SEED = 5
    model, optimizer, scaler = _fresh_state(cfg)
    with caplog.at_level(logging.WARNING):
        assert load_training_state(cfg, model, optimizer, scaler) == 1
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warned == [f"{cu.checkpoint_path(out, 1)} was trained with RNG_SEED 0, this run uses 5: the remaining "
                      "epochs see another data order than an uninterrupted run would"]
