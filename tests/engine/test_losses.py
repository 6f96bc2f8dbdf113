"""Losses against direct computations on small inputs."""
import math

import numpy as np
import pytest
import torch

from m3a.models.losses import compute_loss, get_loss_func, prepare_targets

LOGITS = torch.tensor([[2.0, -1.0, 0.5, 0.0], [-0.3, 1.2, 3.0, -2.0]])
TARGETS = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]])


def _bce_direct(x, y):
    total = 0.0
    for xi, yi in zip(x.flatten().tolist(), y.flatten().tolist()):
        p = 1 / (1 + math.exp(-xi))
        total += -(yi * math.log(p) + (1 - yi) * math.log(1 - p))
    return total / x.numel()


def _wlsep_direct(x, y):
    losses = []
    for row, labels in zip(x.tolist(), y.tolist()):
        pos = [i for i, t in enumerate(labels) if t > 0]
        neg = [i for i, t in enumerate(labels) if t <= 0]
        s = sum(math.exp(row[v] - row[u]) for u in pos for v in neg)
        w = 1.0 / (len(pos) * len(neg)) if pos and neg else 0.0
        losses.append(math.log(1 + w * s))
    return sum(losses) / len(losses)


def test_bce_logit_and_bce_match_direct_formula():
    expected = _bce_direct(LOGITS, TARGETS)
    for name in ("bce_logit", "bce"):
        loss = compute_loss(get_loss_func(name)(reduction="mean"), LOGITS, TARGETS, name)
        assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_wlsep_matches_direct_formula():
    loss = get_loss_func("wlsep")(reduction="mean")(LOGITS, TARGETS)
    assert loss.item() == pytest.approx(_wlsep_direct(LOGITS, TARGETS), rel=1e-6)


def test_wlsep_without_pairs_is_zero_and_stable_for_large_gaps():
    fn = get_loss_func("wlsep")(reduction="none")
    x = torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [500.0, -500.0, 0.0]])
    y = torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [0.0, 1.0, 0.0]])
    out = fn(x, y)
    assert out[0].item() == 0.0 and out[1].item() == 0.0
    # One positive (-500), two negatives: log(1 + (e^1000 + e^500) / 2) ~ 1000 - log 2.
    assert out[2].item() == pytest.approx(1000 - math.log(2), rel=1e-6)


def test_wlsep_gradient_pushes_positives_up():
    x = LOGITS.clone().requires_grad_(True)
    get_loss_func("wlsep")()(x, TARGETS).backward()
    pos = TARGETS > 0
    assert (x.grad[pos] <= 0).all() and (x.grad[~pos] >= 0).all()


def test_cross_entropy_and_soft_cross_entropy():
    idx = torch.tensor([2, 1])
    ce = get_loss_func("cross_entropy")()(LOGITS, prepare_targets(idx, 4, "cross_entropy"))
    logp = torch.log_softmax(LOGITS, 1)
    assert ce.item() == pytest.approx(-(logp[0, 2] + logp[1, 1]).item() / 2, rel=1e-6)
    soft = get_loss_func("soft_cross_entropy")()(LOGITS, prepare_targets(TARGETS, 4, "soft_cross_entropy"))
    expected = (-(0.5 * logp[0, 0] + 0.5 * logp[0, 2]) - logp[1, 3]).item() / 2
    assert soft.item() == pytest.approx(expected, rel=1e-6)


def test_prepare_targets_converts_between_forms():
    one_hot = prepare_targets(torch.tensor([1, 3]), 4, "bce_logit")
    np.testing.assert_array_equal(one_hot.numpy(), [[0, 1, 0, 0], [0, 0, 0, 1]])
    assert prepare_targets(TARGETS, 4, "cross_entropy").tolist() == [0, 3]


def test_unknown_loss_names_the_choices():
    with pytest.raises(ValueError, match="wlsep"):
        get_loss_func("hinge")
