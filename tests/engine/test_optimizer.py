"""Optimiser groups, clipping and the AMP train step on a small real module."""
import pytest
import torch
import torch.nn as nn

from m3a.config import get_cfg
from m3a.engine import amp
from m3a.engine.optimizer import clip_gradients, construct_optimizer, get_param_groups, set_lr
from m3a.engine.train_loop import train_step
from m3a.models.losses import get_loss_func


class SmallNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm3d(4)
        self.fc = nn.Linear(4, 5)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).mean(dim=(2, 3, 4)))


def _cfg(**solver):
    cfg = get_cfg()
    cfg.SOLVER.WEIGHT_DECAY = 1e-4
    cfg.BN.WEIGHT_DECAY = 0.0
    for key, value in solver.items():
        setattr(cfg.SOLVER, key, value)
    return cfg


def test_param_groups_weight_decay():
    model = SmallNet()
    groups = get_param_groups(model, _cfg(ZERO_WD_1D_PARAM=True))
    by_wd = {}
    for g in groups:
        by_wd.setdefault(g["weight_decay"], set()).update(id(p) for p in g["params"])
    assert by_wd[1e-4] == {id(model.conv.weight), id(model.fc.weight)}
    bn = {id(model.bn.weight), id(model.bn.bias)}
    assert bn <= by_wd[0.0] and {id(model.conv.bias), id(model.fc.bias)} <= by_wd[0.0]
    groups = get_param_groups(model, _cfg(ZERO_WD_1D_PARAM=False))
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    assert {id(p) for g in groups if g["weight_decay"] == 1e-4 for p in g["params"]} == {
        id(model.conv.weight), id(model.conv.bias), id(model.fc.weight), id(model.fc.bias)}


def test_sgd_step_matches_hand_computation():
    w = nn.Linear(1, 1, bias=False)
    w.weight.data.fill_(2.0)
    cfg = _cfg(BASE_LR=0.1, MOMENTUM=0.9, NESTEROV=False, DAMPENING=0.0, WEIGHT_DECAY=0.5)
    opt = construct_optimizer(w, cfg)
    assert isinstance(opt, torch.optim.SGD)
    for _ in range(2):
        opt.zero_grad()
        (w(torch.ones(1, 1)) ** 2).sum().backward()  # grad = 2w
        opt.step()
    # step 1: g = 2*2 + 0.5*2 = 5, v = 5, w = 2 - 0.5 = 1.5
    # step 2: g = 3 + 0.75 = 3.75, v = 0.9*5 + 3.75 = 8.25, w = 1.5 - 0.825 = 0.675
    assert w.weight.item() == pytest.approx(0.675)
    set_lr(opt, 0.01)
    assert all(g["lr"] == 0.01 for g in opt.param_groups)


class HintedNet(SmallNet):
    """SmallNet whose classifier asks for 5x / 10x the learning rate (bias without decay)."""

    def optim_hints(self):
        return {"fc.weight": {"lr_mult": 5.0}, "fc.bias": {"lr_mult": 10.0, "weight_decay_mult": 0.0}}


def test_optim_hints_give_lr_multiplied_groups():
    model = HintedNet()
    opt = construct_optimizer(model, _cfg(BASE_LR=0.02, NESTEROV=False))
    groups = {id(p): g for g in opt.param_groups for p in g["params"]}
    assert opt.param_groups[0]["params"][0] is model.conv.weight  # the base group stays first
    assert (groups[id(model.fc.weight)]["lr"], groups[id(model.fc.weight)]["weight_decay"]) == (0.1, 1e-4)
    assert (groups[id(model.fc.bias)]["lr"], groups[id(model.fc.bias)]["weight_decay"]) == (0.2, 0.0)
    assert groups[id(model.conv.weight)]["lr"] == 0.02 and groups[id(model.bn.weight)]["weight_decay"] == 0.0
    set_lr(opt, 0.01)
    assert groups[id(model.fc.weight)]["lr"] == pytest.approx(0.05)
    assert groups[id(model.fc.bias)]["lr"] == pytest.approx(0.1)
    assert groups[id(model.conv.bias)]["lr"] == 0.01
    # One SGD step moves the classifier bias 10x as far as a plain group would.
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    before = model.fc.bias.detach().clone()
    torch.optim.SGD.step(opt)
    assert torch.allclose(before - model.fc.bias.detach(), torch.full_like(before, 0.1))


def test_optim_hints_naming_no_parameter_fail():
    class Bad(SmallNet):
        def optim_hints(self):
            return {"fc.weights": {"lr_mult": 5.0}}

    with pytest.raises(ValueError, match="names no parameter 'fc.weights'"):
        get_param_groups(Bad(), _cfg())


def test_adamw_selected():
    opt = construct_optimizer(SmallNet(), _cfg(OPTIMIZING_METHOD="adamw"))
    assert isinstance(opt, torch.optim.AdamW)


def test_gradient_clipping_by_value_and_norm():
    p = nn.Parameter(torch.zeros(4))
    p.grad = torch.tensor([3.0, -4.0, 0.5, 0.0])
    clip_gradients([p], _cfg(CLIP_GRAD_VAL=1.0))
    assert p.grad.tolist() == [1.0, -1.0, 0.5, 0.0]
    p.grad = torch.tensor([3.0, -4.0, 0.0, 0.0])
    clip_gradients([p], _cfg(CLIP_GRAD_L2NORM=1.0))
    assert torch.linalg.vector_norm(p.grad).item() == pytest.approx(1.0, rel=1e-5)


@pytest.mark.parametrize("enable_amp", [False, True])
def test_train_step_on_cpu_with_and_without_amp(enable_amp):
    torch.manual_seed(0)
    model = SmallNet()
    cfg = _cfg(BASE_LR=0.05)
    cfg.TRAIN.ENABLE_AMP = enable_amp
    cfg.TRAIN.CPU_AMP = "on"  # bf16 whatever this CPU offers
    device = torch.device("cpu")
    opt = construct_optimizer(model, cfg)
    scaler = amp.build_grad_scaler(cfg, device)
    assert not scaler.is_enabled()  # bf16 on CPU needs no scaler
    x = torch.randn(6, 3, 2, 8, 8)
    y = (torch.rand(6, 5) > 0.5).float()
    loss_fn = get_loss_func("bce_logit")()
    with amp.autocast(cfg, device):
        dtype = model(x).dtype
    assert dtype == (torch.bfloat16 if enable_amp else torch.float32)
    losses = [train_step(model, x, y, loss_fn, opt, scaler, cfg, device) for _ in range(15)]
    assert losses[-1] < losses[0]
    assert all(p.dtype == torch.float32 for p in model.parameters())
