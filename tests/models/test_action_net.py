"""ACTION-Net / TSM / TSN (backbone ``action_resnet``): the published layout and parameter counts,
the module's analytic properties (spec: ACTION-Net CVPR 2021, official code)."""
import json
import os
from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F

from m3a.config import get_cfg
from m3a.models import build_model
from m3a.models.action_resnet import ActionModule, TemporalShift
from m3a.models.model_info import params_count

# Every state-dict key and shape of the published ACTION-Net R50 models, per configuration.
LAYOUT_FILE = os.path.join(os.path.dirname(__file__), "action_net_layout.json")
with open(LAYOUT_FILE) as f:
    LAYOUT = json.load(f)


def action_cfg(num_classes=174, frames=8, variant="action", depth=50):
    """Our config of a published ACTION-Net / TSM / TSN ResNet."""
    cfg = get_cfg()
    cfg.MODEL.BACKBONE, cfg.MODEL.HEAD = "action_resnet", "tsn_fc"
    cfg.MODEL.NUM_CLASSES, cfg.MODEL.DROPOUT_RATE = num_classes, 0.5
    cfg.MODEL.HEAD_ACT, cfg.MODEL.LOSS_FUNC = "softmax", "cross_entropy"
    cfg.ACTION.VARIANT, cfg.ACTION.DEPTH = variant, depth
    cfg.DATA.NUM_FRAMES = frames
    cfg.LOG_MODEL_INFO = False
    return cfg


def tiny_cfg(variant="action", frames=4):
    """Stem width 8, one block per stage, reduction 4, 32-pixel clips, 5 classes."""
    cfg = action_cfg(num_classes=5, frames=frames, variant=variant)
    cfg.ACTION.BASE_WIDTH, cfg.ACTION.STAGE_BLOCKS, cfg.ACTION.REDUCTION = 8, [1, 1, 1, 1], 4
    cfg.DATA.TEST_CROP_SIZE = 32
    return cfg


def published_keys(name, variant="action"):
    """The release's (key, shape) list of ``name``; tsm drops the ACTION keys, tsn also unwraps
    ``conv1.net`` to ``conv1`` (TSM / TSN built by the TSM code)."""
    keys = [(k, shape) for k, shape in LAYOUT[name]["state_dict"]]
    if variant != "action":
        keys = [(k, s) for k, s in keys if ".action_" not in k]
    if variant == "tsn":
        keys = [(k.replace(".conv1.net.", ".conv1."), s) for k, s in keys]
    return keys


def reference_shift(x, frames, fold):
    """TSM's shift written with explicit frame loops: channels [0, fold) from t+1, [fold, 2 fold)
    from t-1, zero where the frame does not exist."""
    nt, c, h, w = x.shape
    clips = x.view(nt // frames, frames, c, h, w)
    out = clips.clone()
    for t in range(frames):
        out[:, t, :fold] = clips[:, t + 1, :fold] if t + 1 < frames else 0
        out[:, t, fold:2 * fold] = clips[:, t - 1, fold:2 * fold] if t > 0 else 0
    return out.view(nt, c, h, w)


def action_module(channels=32, frames=4, seed=0):
    torch.manual_seed(seed)
    return ActionModule(torch.nn.Conv2d(channels, 16, 1, bias=False), frames, 8, 16)


def test_layout_file_has_the_published_configurations():
    assert set(LAYOUT) == {"ssv2_action_r50_8f", "ssv2_action_r50_16f", "egogesture_action_r50_8f",
                           "jester_action_r50_8f"}
    assert all(len(entry["state_dict"]) == 528 for entry in LAYOUT.values())


@pytest.mark.parametrize("name", sorted(LAYOUT))
def test_published_params_and_ordered_keys(name):
    config = LAYOUT[name]["config"]
    model = build_model(action_cfg(config["num_classes"], config["num_segments"]))
    assert params_count(model) == LAYOUT[name]["params"]
    ours = [(k, list(v.shape)) for k, v in model.state_dict().items()]
    assert ours == published_keys(name)
    assert sum(".action_" in k for k, _ in ours) == 16 * 13


@pytest.mark.parametrize("variant, params", [("tsm", 23_864_558), ("tsn", 23_864_558)])
def test_tsm_and_tsn_variants_params_and_keys(variant, params):
    model = build_model(action_cfg(174, 8, variant))
    assert params_count(model) == params  # spec 1.8: TSN/TSM R50 8f, K 174
    ours = [(k, list(v.shape)) for k, v in model.state_dict().items()]
    assert ours == published_keys("ssv2_action_r50_8f", variant)


def test_resnet101_wraps_every_second_block():
    model = build_model(action_cfg(174, 8, "action", depth=101))
    # torchvision R101 without fc 42,500,160 + ACTION in blocks 0, 2, ... of every stage
    # (layer1: 1,335 + 18,123; layer2: 18,123 + 70,523; layer3: 70,523 + 11 x 278,235;
    # layer4: 278,235 + 1,105,307) + new_fc 356,526.
    assert params_count(model) == 42_500_160 + 4_622_754 + 356_526
    keys = model.state_dict()
    assert "base_model.layer3.22.conv1.net.weight" in keys
    assert "base_model.layer3.21.conv1.weight" in keys
    assert "base_model.layer1.1.conv1.weight" in keys


def test_shift_is_initialised_to_tsm_shift_and_trainable():
    model = build_model(action_cfg(174, 8))
    modules = [m for m in model.modules() if isinstance(m, ActionModule)]
    assert len(modules) == 16
    for m in modules:
        c = m.net.in_channels
        fold = c // 8
        w = m.action_shift.weight
        assert w.requires_grad and w.shape == (c, 1, 3)
        x = torch.randn(8 * 2, c, 1, 1)
        assert torch.equal(m.shift(x), reference_shift(x, 8, fold))


def test_zero_gates_give_conv_of_4_5_times_shift():
    m = action_module()
    with torch.no_grad():
        for conv in (m.action_p1_conv1, m.action_p2_expand, m.action_p3_expand):
            conv.weight.zero_()
    x = torch.randn(2 * 4, 32, 5, 6)
    expected = m.net(4.5 * reference_shift(x, 4, 32 // 8))
    for mode in (True, False):
        m.train(mode)
        assert torch.allclose(m(x), expected, atol=1e-5)


def test_last_frame_motion_gate_is_one_half():
    m = action_module(seed=1)
    with torch.no_grad():
        for p in m.parameters():
            p.normal_()
    x = torch.randn(3 * 4, 32, 5, 5)
    m3 = m.gates(m.shift(x))[2].view(3, 4, 32)
    assert torch.equal(m3[:, -1], torch.full_like(m3[:, -1], 0.5))
    assert not torch.allclose(m3[:, 0], torch.full_like(m3[:, 0], 0.5))


def test_excitation_paths_follow_the_spec():
    """Each gate recomputed from the spec's formulas (sections 1.3-1.5) with plain tensor ops."""
    m = action_module(seed=2).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(std=0.3)
    n, t, c, h, w = 2, 4, 32, 5, 5
    xs = torch.randn(n * t, c, h, w)
    m1, m2, m3 = m.gates(xs)
    clips = xs.view(n, t, c, h, w)
    ste = F.conv3d(clips.mean(2).unsqueeze(1), m.action_p1_conv1.weight, padding=1)
    assert torch.allclose(m1, ste[:, 0].reshape(n * t, 1, h, w).sigmoid(), atol=1e-6)
    pooled = clips.mean((3, 4))  # (n, t, c)
    sq = pooled @ m.action_p2_squeeze.weight[:, :, 0, 0].T  # (n, t, r)
    tc = F.relu(F.conv1d(sq.transpose(1, 2), m.action_p2_conv1.weight, padding=1)).transpose(1, 2)
    ce = (tc @ m.action_p2_expand.weight[:, :, 0, 0].T).sigmoid()
    assert torch.allclose(m2.view(n, t, c), ce, atol=1e-6)
    f = m.action_p3_bn1(F.conv2d(xs, m.action_p3_squeeze.weight)).view(n, t, -1, h, w)
    for b in range(n):
        for i in range(t):
            if i + 1 < t:
                later = F.conv2d(f[b, i + 1:i + 2], m.action_p3_conv1.weight, padding=1, groups=f.shape[2])
                d = (later[0] - f[b, i]).mean((1, 2))
            else:
                d = torch.zeros(f.shape[2])
            me = (m.action_p3_expand.weight[:, :, 0, 0] @ d).sigmoid()
            assert torch.allclose(m3.view(n, t, c)[b, i], me, atol=1e-6)


def test_tsm_variant_is_conv_of_fixed_shift():
    net = torch.nn.Conv2d(16, 8, 1, bias=False)
    x = torch.randn(3 * 4, 16, 3, 3)
    assert torch.equal(TemporalShift(net, 4, 8)(x), net(reference_shift(x, 4, 2)))
    assert list(TemporalShift(net, 4, 8).state_dict()) == ["net.weight"]


def test_clips_of_a_batch_are_independent():
    torch.manual_seed(0)
    model = build_model(tiny_cfg()).eval()
    x = torch.randn(3, 3, 4, 32, 32)
    y = x.clone()
    y[1] = torch.randn(3, 4, 32, 32)
    with torch.no_grad():
        a, b = model(x), model(y)
    assert torch.allclose(a[[0, 2]], b[[0, 2]], atol=1e-6) and not torch.allclose(a[1], b[1])


def test_action_with_zero_gates_equals_tsm_with_scaled_conv():
    torch.manual_seed(0)
    action = build_model(tiny_cfg("action")).eval()
    tsm = build_model(tiny_cfg("tsm")).eval()
    state = OrderedDict((k, v) for k, v in action.state_dict().items() if ".action_" not in k)
    for key in state:
        if key.endswith("conv1.net.weight"):
            state[key] = 4.5 * state[key]
    tsm.load_state_dict(state, strict=True)
    with torch.no_grad():
        for m in action.modules():
            if isinstance(m, ActionModule):
                for conv in (m.action_p1_conv1, m.action_p2_expand, m.action_p3_expand):
                    conv.weight.zero_()
        x = torch.randn(2, 3, 4, 32, 32)
        assert torch.allclose(action(x), tsm(x), atol=1e-5)


def test_wrong_frame_count_is_a_clear_error():
    model = build_model(tiny_cfg())
    with pytest.raises(ValueError, match="built for 4 frames per clip, got 8"):
        model(torch.zeros(1, 3, 8, 32, 32))


def test_partial_bn_freezes_every_bn_but_the_first():
    cfg = tiny_cfg()
    cfg.ACTION.PARTIAL_BN = True
    torch.manual_seed(0)
    model = build_model(cfg).train()
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns[0].training and bns[0].weight.requires_grad
    assert all(not bn.training and not bn.weight.requires_grad for bn in bns[1:])
    before = [bn.running_mean.clone() for bn in bns]
    model(torch.randn(2, 3, 4, 32, 32)).sum().backward()
    assert not torch.equal(bns[0].running_mean, before[0])
    assert all(torch.equal(bn.running_mean, b) for bn, b in zip(bns[1:], before[1:]))


@pytest.mark.slow
def test_fvcore_flops_match_the_published_count():
    from m3a.models.model_info import gflops

    cfg = action_cfg(174, 8)
    cfg.DATA.TEST_CROP_SIZE = 224
    assert gflops(build_model(cfg), cfg) == pytest.approx(34.669, abs=0.01)
    cfg.ACTION.VARIANT = "tsm"
    assert gflops(build_model(cfg), cfg) == pytest.approx(32.879, abs=0.01)


def test_torchvision_resnet50_has_our_names():
    torchvision = pytest.importorskip("torchvision")
    theirs = [(k, list(v.shape)) for k, v in torchvision.models.resnet50().state_dict().items()
              if not k.startswith("fc.")]
    model = build_model(action_cfg(174, 8, "tsn"))
    ours = [(k[len("base_model."):], list(v.shape)) for k, v in model.state_dict().items()
            if not k.startswith("new_fc.")]
    assert ours == theirs


def test_gradcam_of_a_2d_backbone_gives_maps_per_frame():
    from m3a.visualization.gradcam import GradCAM

    torch.manual_seed(0)
    model = build_model(tiny_cfg())
    clip = torch.randn(1, 3, 4, 64, 64)
    explain = GradCAM(model, head_act="softmax")
    cams, scores = explain(clip, list(range(5)))
    assert cams.shape == (5, 4, 64, 64) and cams.min() >= 0 and cams.max() == 1
    assert explain.feature_shape == (256, 4, 2, 2)  # layer4: C, T, H', W'
    with torch.no_grad():
        assert torch.allclose(scores, model.eval()(clip)[0])
    # Hand computation on the stacked per-frame maps (T, C, h, w) -> (C, T, h, w), scaled by the
    # common maximum of the classes' maps.
    fmap = model.forward_features(clip).detach().requires_grad_(True)
    probs = model.head(model.neck(fmap))[0]
    ups = []
    for c in range(5):
        (grad,) = torch.autograd.grad(torch.log(probs[c]), fmap, retain_graph=True)
        raw = torch.relu((grad.mean(dim=(0, 2, 3))[:, None, None] * fmap).sum(1))  # (T, h, w)
        ups.append(F.interpolate(raw[None, None], size=(4, 64, 64), mode="trilinear", align_corners=False)[0, 0])
    ups = torch.stack(ups).clamp_min(0)
    assert torch.allclose(cams, ups / ups.max(), atol=1e-5)
    assert sum(bool(u.max() > u.min()) for u in ups) >= 2


def test_sync_batchnorm_converts_every_bn_and_keeps_partial_bn_frozen():
    cfg = tiny_cfg()
    cfg.BN.NORM_TYPE, cfg.ACTION.PARTIAL_BN = "sync_batchnorm", True
    model = build_model(cfg)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert len(norms) == 1 + 4 * (3 + 1 + 1)  # stem; per block bn1-3, downsample, action_p3_bn1
    assert all(type(m) is torch.nn.SyncBatchNorm for m in norms)
    assert list(model.state_dict()) == list(build_model(tiny_cfg()).state_dict())
    model.train()
    assert norms[0].training and norms[0].weight.requires_grad
    assert all(not m.training and not m.weight.requires_grad for m in norms[1:])
