"""EPAM-Net: the published parameter counts, ordered keys and shapes, the X-ShiftNet shift, the
STA block, and (slow) the published implementation's logits on a deterministic input."""
import json
import math
import os
from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F

from m3a.config import ConfigError, get_cfg
from m3a.models import build_model
from m3a.models.build import check_model_cfg
from m3a.models.epam_net import (
    EPAMNet, SpatialTemporalAttention, XShiftBlock, se_width, temporal_shift,
)
from m3a.models.losses import get_loss_func, prepare_targets
from m3a.models.model_info import gflops, params_count

# Every state-dict key and shape of the release for NTU-60 / NTU-120 EPAM-Net and the NTU-60
# pose stream, with the parameter counts.
LAYOUT_FILE = os.path.join(os.path.dirname(__file__), "epam_net_layout.json")
with open(LAYOUT_FILE) as f:
    LAYOUT = json.load(f)


def epam_cfg(num_classes: int, backbone: str = "epam_net"):
    """The published model for ``num_classes`` (16 RGB frames of 224^2, 48 heatmaps of 56^2)."""
    cfg = get_cfg()
    cfg.MODEL.BACKBONE, cfg.MODEL.HEAD, cfg.MODEL.NUM_CLASSES = backbone, "i3d", num_classes
    cfg.MODEL.DROPOUT_RATE, cfg.MODEL.HEAD_ACT = 0.5, "softmax"
    cfg.DATA.NUM_FRAMES, cfg.DATA.TEST_CROP_SIZE = 16, 224
    cfg.LOG_MODEL_INFO = False
    return cfg


def layout_cfg(name: str):
    config = LAYOUT[name]["config"]
    backbone = "epam_net" if config["kind"] == "multimodal" else f"xshift_{config['kind']}"
    return epam_cfg(config["num_classes"], backbone)


@pytest.mark.parametrize("name, params", [
    ("ntu60_epam", 2_538_717), ("ntu120_epam", 2_577_717), ("ntu60_pose_xshift", 532_600),
])
def test_published_params_keys_shapes_and_order(name, params):
    model = build_model(layout_cfg(name))
    assert params_count(model) == params == LAYOUT[name]["params"]
    ours = [(k, list(v.shape)) for k, v in model.state_dict().items()]
    assert ours == [(k, list(s)) for k, s in LAYOUT[name]["state_dict"]]


def test_stream_and_part_sizes():
    model = build_model(epam_cfg(60))
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    body = model.backbone
    assert (count(body.rgb_backbone), count(body.pose_backbone), count(body.attention_module)) \
        == (1_980_030, 519_580, 107)
    assert count(model.head) == 650 * 60
    assert [m.se_module.fc1.out_channels for m in body.rgb_backbone.modules()
            if isinstance(m, XShiftBlock) and hasattr(m, "se_module")][::3] == [8, 8, 16, 16, 32]
    assert [se_width(p, 1 / 16) for p in (54, 108, 216, 432)] == [8, 8, 16, 32]


def test_temporal_shift_moves_the_first_two_folds_in_opposite_directions():
    # x[n, c, t] = 100 c + t + 1 (never 0), 16 channels, 4 frames.
    x = (100 * torch.arange(16.0)[:, None] + torch.arange(4.0) + 1)[None, :, :, None, None]
    out = temporal_shift(x, 8)
    f = 2
    assert torch.equal(out[:, :f, :-1], x[:, :f, 1:]) and (out[:, :f, -1] == 0).all()
    assert torch.equal(out[:, f:2 * f, 1:], x[:, f:2 * f, :-1]) and (out[:, f:2 * f, 0] == 0).all()
    assert torch.equal(out[:, 2 * f:], x[:, 2 * f:])
    half = temporal_shift(x, 4)  # the pose stream's 1/4: half of the channels move
    assert (half[:, :4, -1] == 0).all() and (half[:, 4:8, 0] == 0).all()
    assert torch.equal(half[:, 8:], x[:, 8:]) and not torch.equal(half[:, 4:8], x[:, 4:8])


def test_each_stream_shifts_its_own_fraction_and_the_residual_is_unshifted():
    body = build_model(epam_cfg(60)).backbone
    rgb = {m.fold_div for m in body.rgb_backbone.modules() if isinstance(m, XShiftBlock)}
    pose = {m.fold_div for m in body.pose_backbone.modules() if isinstance(m, XShiftBlock)}
    assert (rgb, pose) == ({8}, {4})
    # A block with a zero residual branch returns ReLU(input): the shortcut is not shifted.
    block = body.pose_backbone.layer1[1].eval()
    torch.nn.init.zeros_(block.conv3.bn.weight)
    torch.nn.init.zeros_(block.conv3.bn.bias)
    x = torch.randn(1, 24, 5, 4, 4)
    assert torch.equal(block(x), torch.relu(x))


def test_sta_with_zero_convs_and_fresh_eval_bn_gives_a_quarter_everywhere():
    sta = SpatialTemporalAttention(torch.nn.BatchNorm3d).eval()
    torch.nn.init.zeros_(sta.spatial.conv.weight)
    torch.nn.init.zeros_(sta.conv_temporal_attention.weight)
    attention = sta(torch.randn(2, 216, 16, 7, 7))
    assert attention.shape == (2, 1, 16, 7, 7)
    assert torch.allclose(attention, torch.full_like(attention, 0.25))  # sigmoid(0)^2
    assert sta.spatial.bn.momentum == 0.01


def test_sta_pools_channel_max_then_mean():
    sta = SpatialTemporalAttention(torch.nn.BatchNorm3d).eval()
    with torch.no_grad():
        sta.spatial.conv.weight.zero_()
        sta.spatial.conv.weight[0, 0, 0, 3, 3] = 1.0  # centre tap of the max channel only
        sta.conv_temporal_attention.weight.zero_()
    pose = torch.randn(1, 5, 2, 3, 3)
    expected = torch.sigmoid(pose.amax(dim=1, keepdim=True) / math.sqrt(1 + 1e-5)) * 0.5
    assert torch.allclose(sta(pose), expected, atol=1e-6)


def test_attention_reads_the_pose_features_at_every_third_frame():
    cfg = epam_cfg(5)
    cfg.EPAM.RGB_STAGE_BLOCKS, cfg.EPAM.POSE_STAGE_BLOCKS = [1, 1, 1, 1], [1, 1, 1]
    cfg.DATA.NUM_FRAMES, cfg.EPAM.POSE_FRAMES = 4, 12
    cfg.DATA.TEST_CROP_SIZE, cfg.EPAM.HEATMAP_SIZE = 64, 16
    model = build_model(cfg).eval()
    seen = {}
    model.backbone.attention_module.register_forward_hook(
        lambda m, args, out: seen.update(inp=args[0], out=out))
    model.backbone.pose_backbone.register_forward_hook(lambda m, args, out: seen.update(f_s=out))
    model.backbone.rgb_backbone.register_forward_hook(lambda m, args, out: seen.update(f_r=out))
    rgb, pose = torch.randn(2, 3, 4, 64, 64), torch.rand(2, 17, 12, 16, 16)
    with torch.no_grad():
        guided, f_s = model.forward_features([rgb, pose])
    assert torch.equal(seen["inp"], seen["f_s"][:, :, [0, 3, 6, 9]])
    assert torch.equal(guided, seen["f_r"] + seen["f_r"] * seen["out"]) and torch.equal(f_s, seen["f_s"])
    with torch.no_grad():
        logits = model.head.stream_logits(model.neck([guided, f_s]))
    with torch.no_grad():
        scores = model([rgb, pose])
    assert torch.allclose(scores, torch.softmax(logits["rgb"] + logits["pose"], dim=1), atol=1e-6)


@pytest.mark.parametrize("key, value, words", [
    ("EPAM.POSE_FRAMES", 40, "multiple of DATA.NUM_FRAMES"),
    ("EPAM.HEATMAP_SIZE", 64, "attention needs one size"),
    ("EPAM.RGB_SHIFT_DIV", 1, "EPAM.RGB_SHIFT_DIV must be >= 2"),
    ("EPAM.POSE_STAGE_BLOCKS", [], "EPAM.POSE_STAGE_BLOCKS must list"),
])
def test_bad_epam_values_are_config_errors(key, value, words):
    cfg = epam_cfg(60)
    node, leaf = key.split(".")
    cfg[node][leaf] = value
    with pytest.raises(ConfigError, match=words):
        check_model_cfg(cfg)


def test_two_streams_are_required():
    model = build_model(epam_cfg(5))
    with pytest.raises(ValueError, match=r"\[rgb clips, pose heatmaps\]"):
        model.forward_features(torch.zeros(1, 3, 16, 224, 224))


def golden_state(model) -> OrderedDict:
    """The reference fill: key i of the sorted state dict, flat element j, base sin(0.7 j + 0.3 i)."""
    state = OrderedDict()
    for i, (key, value) in enumerate(sorted(model.state_dict().items())):
        if not value.is_floating_point():
            state[key] = value
            continue
        base = torch.sin(0.7 * torch.arange(value.numel(), dtype=torch.float64) + 0.3 * i)
        if key.endswith("running_var"):
            fill = 1 + 0.1 * base ** 2
        elif key.endswith(("running_mean", "bias")):
            fill = 0.01 * base
        elif value.dim() == 1:
            fill = 1 + 0.1 * base
        else:
            fill = base * 2 / math.sqrt(value.numel() / value.shape[0])
        state[key] = fill.reshape(value.shape)
    return state


def golden_inputs(batch: int = 2):
    def volume(shape, fn):
        k = torch.arange(math.prod(shape), dtype=torch.float64)
        return torch.stack([fn(k, n).reshape(shape) for n in range(batch)])

    rgb = volume((3, 16, 224, 224), lambda k, n: torch.sin(0.01 * k + n))
    pose = volume((17, 48, 56, 56), lambda k, n: 0.5 + 0.5 * torch.sin(0.013 * k + n))
    return rgb, pose


@pytest.mark.slow
def test_outputs_equal_the_published_implementation():
    """Values computed with the release's modules (float64; they agree with an independent
    restatement to 1e-16)."""
    model = build_model(epam_cfg(60)).double().eval()
    model.load_state_dict(golden_state(model))
    seen = {}
    body = model.backbone
    for name in ("rgb_backbone", "pose_backbone", "attention_module"):
        getattr(body, name).register_forward_hook(lambda m, a, out, n=name: seen.update({n: out}))
    rgb, pose = golden_inputs()
    with torch.no_grad():
        logits = model.head.stream_logits(model.neck(body.forward_features([rgb, pose])))
    sums = lambda t: t.sum(dim=tuple(range(1, t.dim()))).tolist()  # noqa: E731
    assert sums(seen["rgb_backbone"]) == pytest.approx([10981.0923575484, 10973.2027483275], abs=1e-7)
    assert sums(seen["pose_backbone"]) == pytest.approx([31167.9271266163, 31168.7999116260], abs=1e-7)
    assert sums(seen["attention_module"]) == pytest.approx([253.8075838734, 253.8096904538], abs=1e-9)
    assert sums(logits["rgb"]) == pytest.approx([0.1430106191, 0.1429633399], abs=1e-10)
    assert sums(logits["pose"]) == pytest.approx([0.0083416290, 0.0083213901], abs=1e-10)
    assert logits["rgb"][:, :3].flatten().tolist() == pytest.approx(
        [-0.0321681163, 0.0225029905, 0.0644919535, -0.0321158121, 0.0225313250, 0.0644788411], abs=1e-10)
    assert logits["pose"][:, :3].flatten().tolist() == pytest.approx(
        [-0.0269031808, -0.0368321159, -0.0430727391, -0.0268999604, -0.0368333724, -0.0430782707], abs=1e-10)


def test_two_stream_loss_is_the_sum_of_the_streams_cross_entropies():
    cfg = epam_cfg(5)
    EPAMNet.make_tiny(cfg)
    cfg.MODEL.LOSS_FUNC, cfg.MODEL.DROPOUT_RATE = "stream_cross_entropy", 0.0
    check_model_cfg(cfg)
    torch.manual_seed(0)
    model = build_model(cfg).train()
    inputs = [torch.randn(4, 3, 2, 32, 32), torch.rand(4, 3, 6, 8, 8)]
    targets = prepare_targets(torch.tensor([0, 3, 4, 3]), 5, cfg.MODEL.LOSS_FUNC)
    outputs = model(inputs)
    assert outputs.shape == (4, 2, 5)
    logits = model.head.stream_logits(model.neck(model.forward_features(inputs)))
    assert torch.equal(outputs[:, 0], logits["rgb"]) and torch.equal(outputs[:, 1], logits["pose"])
    loss = get_loss_func(cfg.MODEL.LOSS_FUNC)()(outputs, targets)
    expected = F.cross_entropy(logits["rgb"], targets) + F.cross_entropy(logits["pose"], targets)
    assert torch.allclose(loss, expected)
    assert not torch.allclose(loss, F.cross_entropy(logits["rgb"] + logits["pose"], targets))
    model.eval()
    with torch.no_grad():
        scores = model(inputs)
        logits = model.head.stream_logits(model.neck(model.forward_features(inputs)))
    assert torch.allclose(scores, torch.softmax(logits["rgb"] + logits["pose"], dim=1))


@pytest.mark.slow
def test_flops_equal_the_published_count():
    """fvcore, one multiply-add = one FLOP, 16 x 224^2 RGB + 48 x 56^2 heatmaps: 7.939 G
    (the paper reports 8.1 G with mmcv's counter, which also counts ReLU and pooling)."""
    cfg = epam_cfg(60)
    assert gflops(build_model(cfg), cfg) == pytest.approx(7.939, abs=5e-4)
