"""LR policies against hand-computed values."""
import math

import pytest

from m3a.config import get_cfg
from m3a.engine.lr_policy import get_lr_at_epoch


def _cfg(**solver):
    cfg = get_cfg()
    for key, value in solver.items():
        setattr(cfg.SOLVER, key, value)
    return cfg


def test_steps_with_relative_lrs_published_graph_schedule():
    cfg = _cfg(LR_POLICY="steps_with_relative_lrs", BASE_LR=0.01, STEPS=[0, 12, 24, 30],
               LRS=[1, 0.1, 0.01, 0.001], MAX_EPOCH=30, WARMUP_EPOCHS=0.0)
    for epoch, lr in [(0, 0.01), (11.99, 0.01), (12, 0.001), (23.5, 0.001), (24, 1e-4), (29.9, 1e-4)]:
        assert get_lr_at_epoch(cfg, epoch) == pytest.approx(lr, rel=1e-12)


def test_cosine_with_warmup_published_transformer_schedule():
    cfg = _cfg(LR_POLICY="cosine", BASE_LR=0.01, COSINE_END_LR=0.0, MAX_EPOCH=30,
               WARMUP_EPOCHS=5.0, WARMUP_START_LR=1e-4)
    end_of_warmup = 0.01 * 0.5 * (1 + math.cos(math.pi * 5 / 30))  # 0.0093301
    assert get_lr_at_epoch(cfg, 0) == pytest.approx(1e-4)
    assert get_lr_at_epoch(cfg, 2.5) == pytest.approx(1e-4 + (end_of_warmup - 1e-4) * 0.5)
    assert get_lr_at_epoch(cfg, 5) == pytest.approx(end_of_warmup)
    assert get_lr_at_epoch(cfg, 15) == pytest.approx(0.005)
    assert get_lr_at_epoch(cfg, 30) == pytest.approx(0.0, abs=1e-15)


def test_cosine_after_warmup_is_m2clips_schedule():
    # M2CLIP K400: factor e / 2 for e < 2, then 0.5 + 0.5 cos(pi (e - 2) / 10), per iteration.
    cfg = _cfg(LR_POLICY="cosine_after_warmup", BASE_LR=2.8125e-4, COSINE_END_LR=0.0, MAX_EPOCH=12,
               WARMUP_EPOCHS=2.0, WARMUP_START_LR=0.0)
    for epoch in (0.0, 0.5, 1.999, 2.0, 3.3, 7.0, 11.5, 12.0):
        factor = epoch / 2 if epoch < 2 else 0.5 + 0.5 * math.cos(math.pi * (epoch - 2) / 10)
        assert get_lr_at_epoch(cfg, epoch) == pytest.approx(2.8125e-4 * factor, abs=1e-15)


def test_cosine_end_lr_and_constant():
    cfg = _cfg(LR_POLICY="cosine", BASE_LR=0.1, COSINE_END_LR=0.02, MAX_EPOCH=10, WARMUP_EPOCHS=0.0)
    assert get_lr_at_epoch(cfg, 2.5) == pytest.approx(0.02 + 0.08 * 0.5 * (1 + math.cos(math.pi / 4)))
    cfg = _cfg(LR_POLICY="constant", BASE_LR=0.3, WARMUP_EPOCHS=1.0, WARMUP_START_LR=0.1)
    assert get_lr_at_epoch(cfg, 0.25) == pytest.approx(0.15)
    assert get_lr_at_epoch(cfg, 7.0) == pytest.approx(0.3)


def test_bad_policy_settings_raise():
    with pytest.raises(ValueError, match="LR_POLICY"):
        get_lr_at_epoch(_cfg(LR_POLICY="poly", WARMUP_EPOCHS=0.0), 1.0)
    with pytest.raises(ValueError, match="LRS"):
        get_lr_at_epoch(_cfg(LR_POLICY="steps_with_relative_lrs", STEPS=[0], LRS=[1, 0.1], WARMUP_EPOCHS=0.0), 1.0)
