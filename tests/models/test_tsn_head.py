"""The TSN head (``tsn_fc``): average consensus of segment logits, TSN's init and the published
optimiser groups of ACTION-Net (lr x5 / x10 for the classifier, no decay on BN and the bias)."""
import pytest
import torch

from m3a.config import get_cfg
from m3a.engine.optimizer import construct_optimizer, set_lr
from m3a.models import HEAD_REGISTRY, build_model
from m3a.models.heads import FCHead
from tests.models.test_action_net import tiny_cfg


def head_cfg(num_classes=7, act="softmax"):
    cfg = get_cfg()
    cfg.MODEL.NUM_CLASSES, cfg.MODEL.HEAD_ACT, cfg.MODEL.DROPOUT_RATE = num_classes, act, 0.5
    return cfg


def test_init_is_normal_0_001_and_zero_bias():
    torch.manual_seed(0)
    head = HEAD_REGISTRY.get("tsn_fc")(head_cfg(174), 2048, {})
    assert list(head.state_dict()) == ["new_fc.weight", "new_fc.bias"]
    assert head.new_fc.weight.std().item() == pytest.approx(0.001, rel=0.02)
    assert abs(head.new_fc.weight.mean().item()) < 1e-5
    assert torch.equal(head.new_fc.bias, torch.zeros(174))


def test_segment_consensus_averages_logits_and_activates_the_average():
    torch.manual_seed(0)
    head = HEAD_REGISTRY.get("tsn_fc")(head_cfg(), 16, {})
    with torch.no_grad():
        head.new_fc.weight.normal_()
        head.new_fc.bias.normal_()
    x = torch.randn(3, 8, 16)  # (B, T, C) from the segment_consensus neck
    per_segment = torch.stack([x[:, t] @ head.new_fc.weight.T + head.new_fc.bias for t in range(8)], 1)
    logits = per_segment.mean(1)
    head.train()
    head.dropout.p = 0.0
    assert torch.allclose(head(x), logits, atol=1e-5)
    # Linear then mean equals mean then linear: TSN's consensus of the FC-head-style scores.
    assert torch.allclose(head.new_fc(x.mean(1)), logits, atol=1e-5)
    head.eval()
    assert torch.allclose(head(x), logits.softmax(-1), atol=1e-6)
    # The FC head averages activated scores instead (so it is not TSN's test output).
    fc = FCHead(head_cfg(), 16, {}).eval()
    fc.projection.load_state_dict(head.new_fc.state_dict())
    assert not torch.allclose(fc(x), head(x), atol=1e-3)


def test_published_optimizer_groups_of_action_net():
    cfg = tiny_cfg()
    cfg.SOLVER.BASE_LR, cfg.SOLVER.WEIGHT_DECAY, cfg.BN.WEIGHT_DECAY = 0.01, 5e-4, 0.0
    cfg.SOLVER.NESTEROV = False
    model = build_model(cfg)
    opt = construct_optimizer(model, cfg)
    set_lr(opt, 0.01)
    group_of = {id(p): g for g in opt.param_groups for p in g["params"]}
    names = {model.published_key(n): p for n, p in model.named_parameters()}

    def lr_wd(key):
        group = group_of[id(names[key])]
        return pytest.approx(group["lr"]), group["weight_decay"]

    assert lr_wd("new_fc.weight") == (0.05, 5e-4)
    assert lr_wd("new_fc.bias") == (0.1, 0.0)
    assert lr_wd("base_model.conv1.weight") == (0.01, 5e-4)
    assert lr_wd("base_model.layer1.0.conv1.net.weight") == (0.01, 5e-4)
    assert lr_wd("base_model.layer1.0.conv1.action_shift.weight") == (0.01, 5e-4)
    assert lr_wd("base_model.layer4.0.conv1.action_p3_bn1.weight") == (0.01, 0.0)
    assert lr_wd("base_model.layer2.0.bn3.bias") == (0.01, 0.0)
    assert sum(len(g["params"]) for g in opt.param_groups) == len(names)
