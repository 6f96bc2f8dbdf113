"""Model EMA (TRAIN.EMA): the average against a hand computation, saved beside the model in the
checkpoint, used by testing (and named in the result line), selectable with TEST.WEIGHTS."""
import json
import os

import pytest
import torch
import torch.nn as nn

from m3a.config.errors import ConfigError
from m3a.engine import test_loop
from m3a.engine.ema import ModelEma, choose_weights
from m3a.engine.predict import load_trained_model
from m3a.engine.run import train_and_test
from m3a.engine.test_loop import METRICS_FILE
from m3a.engine.train_loop import set_seed, train
from m3a.models import build_model
from m3a.utils import checkpoint as cu
from m3a.utils.checkpoint import CheckpointError
from m3a.utils.logging import read_json_stats
from tests.engine.conftest import tiny_cfg


def _set(model: nn.Module, weight: float, bias: float, mean: float, tracked: int) -> None:
    with torch.no_grad():
        model[0].weight.fill_(weight)
        model[0].bias.fill_(bias)
        model[1].running_mean.fill_(mean)
        model[1].num_batches_tracked.fill_(tracked)


def test_ema_matches_a_hand_computed_average():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    _set(model, 1.0, 0.0, 0.0, 0)
    ema = ModelEma(model, decay=0.9)
    assert not ema.module.training and not any(p.requires_grad for p in ema.module.parameters())
    _set(model, 2.0, 1.0, 10.0, 1)
    ema.update(model)
    _set(model, 4.0, -1.0, 20.0, 2)
    ema.update(model)
    state = ema.state_dict()
    # weight: 0.9 * 1 + 0.1 * 2 = 1.1, then 0.9 * 1.1 + 0.1 * 4 = 1.39
    torch.testing.assert_close(state["0.weight"], torch.full((2, 2), 1.39), rtol=0, atol=1e-6)
    # bias: 0.9 * 0 + 0.1 * 1 = 0.1, then 0.9 * 0.1 + 0.1 * -1 = -0.01
    torch.testing.assert_close(state["0.bias"], torch.full((2,), -0.01), rtol=0, atol=1e-6)
    # BN running mean (a float buffer) is averaged: 1.0, then 0.9 * 1 + 0.1 * 20 = 2.9
    torch.testing.assert_close(state["1.running_mean"], torch.full((2,), 2.9), rtol=0, atol=1e-6)
    assert int(state["1.num_batches_tracked"]) == 2  # integer buffers are copied
    assert float(model[0].weight.detach()[0, 0]) == 4.0  # the model itself is untouched


def _ema_cfg(data_dir: str, out: str, decay: float):
    cfg = tiny_cfg(data_dir, out)
    cfg.TRAIN.EMA.ENABLE, cfg.TRAIN.EMA.DECAY = True, decay
    cfg.SOLVER.MAX_EPOCH, cfg.TRAIN.MAX_ITERS_PER_EPOCH = 1, 1
    return cfg


def test_ema_follows_a_compiled_or_ddp_wrapped_model():
    """MODEL.COMPILE hands the EMA the torch.compile wrapper (keys `_orig_mod.*`): it averages
    the weights inside, as for the plain model."""
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    plain, wrapped = ModelEma(model, 0.5), ModelEma(torch.compile(model), 0.5)
    with torch.no_grad():
        model.weight.add_(1.0)
    plain.update(model)
    wrapped.update(torch.compile(model))
    for key, value in plain.state_dict().items():
        assert torch.equal(wrapped.state_dict()[key], value), key
    assert not torch.equal(plain.state_dict()["weight"], model.weight)


def test_training_saves_ema_and_testing_uses_it(tiny_data, tmp_path):
    out = str(tmp_path / "run")
    cfg = _ema_cfg(tiny_data, out, 0.5)
    set_seed(cfg.RNG_SEED)
    initial = build_model(cfg).state_dict()  # the weights train() starts from (same seed)
    train_and_test(cfg)
    ckpt = torch.load(cu.checkpoint_path(out, 1), weights_only=True)
    model_state, ema_state = ckpt["model_state"], ckpt["ema_state"]
    assert ema_state.keys() == model_state.keys()
    # One optimizer step with decay 0.5: ema = 0.5 * initial + 0.5 * trained.
    for key, value in model_state.items():
        if value.is_floating_point():
            torch.testing.assert_close(ema_state[key], 0.5 * initial[key] + 0.5 * value, rtol=0, atol=1e-6)
        else:
            assert torch.equal(ema_state[key], value)
    assert any(not torch.equal(ema_state[k], model_state[k]) for k in model_state)

    # Validation scored the EMA model; testing used the checkpoint's EMA weights and says so.
    assert [v["weights"] for v in read_json_stats(out, "val_epoch")] == ["ema"]
    with open(os.path.join(out, METRICS_FILE)) as f:
        metrics = json.load(f)
    assert metrics["weights"] == "ema" and metrics["epoch"] == 1
    line = [row for row in open(os.path.join(out, "stdout.log")) if "test results:" in row][-1]
    assert line.rstrip().endswith("(epoch 1) | ema weights")

    # Strict loading picks the weights TEST.WEIGHTS names.
    path = cu.checkpoint_path(out, 1)
    for mode, expected, weights in (("auto", ema_state, "ema"), ("ema", ema_state, "ema"),
                                    ("model", model_state, "model")):
        loaded = load_trained_model(path, opts=["TEST.WEIGHTS", mode])
        assert loaded.weights == weights
        for key, value in loaded.model.state_dict().items():
            assert torch.equal(value, expected[key]), (mode, key)


def test_ema_weights_of_a_checkpoint_without_them_is_an_error(tiny_data, tmp_path):
    out = str(tmp_path / "plain")
    cfg = _ema_cfg(tiny_data, out, 0.5)
    cfg.TRAIN.EMA.ENABLE, cfg.TRAIN.EVAL_PERIOD, cfg.TEST.ENABLE = False, 0, False
    train_and_test(cfg)
    path = cu.checkpoint_path(out, 1)
    assert load_trained_model(path).weights == "model"  # auto: the model weights
    with pytest.raises(CheckpointError, match=f"TEST.WEIGHTS ema, but the checkpoint {path} holds no EMA weights"):
        load_trained_model(path, opts=["TEST.WEIGHTS", "ema"])


@pytest.mark.parametrize("mode, has_ema, expected", [
    ("auto", True, "ema"), ("auto", False, "model"), ("ema", True, "ema"),
    ("model", True, "model"), ("model", False, "model"),
])
def test_one_rule_selects_the_tested_weights(mode, has_ema, expected):
    assert choose_weights(mode, has_ema, "x", ValueError) == expected


def test_training_for_ema_weights_without_ema_stops_before_training(tiny_data, tmp_path):
    """TEST.WEIGHTS ema with TRAIN.EMA.ENABLE False: the run stops at once by the rule a
    checkpoint without EMA weights meets, rather than training and then testing the model's
    weights (unsaved model) or failing after training (saved one)."""
    out = str(tmp_path / "run")
    cfg = _ema_cfg(tiny_data, out, 0.5)
    cfg.TRAIN.EMA.ENABLE, cfg.TRAIN.EVAL_PERIOD, cfg.TRAIN.CHECKPOINT_PERIOD = False, 0, 0
    cfg.TEST.WEIGHTS = "ema"
    with pytest.raises(ConfigError, match="TEST.WEIGHTS ema, but the model this run trains holds no EMA weights"):
        train_and_test(cfg)
    assert not os.path.exists(os.path.join(out, METRICS_FILE)) and not os.path.exists(os.path.join(out, "stdout.log"))


@pytest.mark.parametrize("mode, expected", [("auto", "ema"), ("model", "model")])
def test_unsaved_trained_model_is_tested_and_named_by_the_same_rule(tiny_data, tmp_path, mode, expected):
    out = str(tmp_path / "run")
    cfg = _ema_cfg(tiny_data, out, 0.5)
    cfg.TRAIN.EVAL_PERIOD, cfg.TRAIN.CHECKPOINT_PERIOD, cfg.TEST.WEIGHTS = 0, 0, mode
    set_seed(cfg.RNG_SEED)
    model = train(cfg)
    metrics = test_loop.test(cfg, model)
    assert metrics["checkpoint"] == "(model trained in this run, not saved)" and metrics["weights"] == expected


def test_resuming_a_run_without_ema_starts_the_average_from_its_weights(tiny_data, tmp_path, caplog):
    from m3a.engine.train_loop import train

    out = str(tmp_path / "run")
    cfg = _ema_cfg(tiny_data, out, 0.0)  # decay 0: the average is the model after every step
    cfg.TRAIN.EMA.ENABLE, cfg.TRAIN.EVAL_PERIOD = False, 0
    train(cfg)
    cfg.TRAIN.EMA.ENABLE, cfg.SOLVER.MAX_EPOCH = True, 2
    with caplog.at_level("WARNING"):
        train(cfg)
    assert f"{cu.checkpoint_path(out, 1)} holds no EMA weights; the EMA starts from its model weights" in [
        r.getMessage() for r in caplog.records]
    ckpt = torch.load(cu.checkpoint_path(out, 2), weights_only=True)
    for key, value in ckpt["model_state"].items():
        assert torch.equal(ckpt["ema_state"][key], value), key
