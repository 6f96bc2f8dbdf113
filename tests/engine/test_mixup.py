"""Mixup / CutMix (MIXUP): exact input and label mixing, CutMix's area-corrected lambda, video and
multi-pathway layouts, refusals with one-line ConfigErrors."""
import pytest
import torch

from m3a.config import ConfigError, load_config
from m3a.engine.mixup import Mixup, build_mixup
from m3a.models import build_model
from tests.engine.conftest import tiny_cfg

B, C, T, H, W, N = 4, 3, 4, 10, 12, 5


def _cfg(alpha: float, cutmix: float, prob: float = 1.0, switch: float = 0.5, loss: str = "bce_logit"):
    cfg = tiny_cfg("", "")
    cfg.MODEL.NUM_CLASSES, cfg.MODEL.LOSS_FUNC = N, loss
    cfg.MIXUP.ENABLE, cfg.MIXUP.ALPHA, cfg.MIXUP.CUTMIX_ALPHA = True, alpha, cutmix
    cfg.MIXUP.PROB, cfg.MIXUP.SWITCH_PROB = prob, switch
    return cfg


def _batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(B, C, T, H, W, generator=g)
    y = torch.tensor([[1, 0, 0, 1, 0], [0, 1, 0, 0, 0], [0, 0, 1, 1, 1], [1, 1, 0, 0, 0]], dtype=torch.float32)
    return x, y


def test_mixup_mixes_inputs_and_multi_hot_labels_with_one_lambda():
    mixup = Mixup(_cfg(0.8, 0.0))
    mixup.set_epoch(0)
    x, y = _batch()
    out, targets, info = mixup(x, y)
    assert info.kind == "mixup" and 0 < info.lam < 1
    x1, x2 = x, x.flip(0)  # item i is mixed with item B-1-i
    assert torch.equal(out, info.lam * x1 + (1 - info.lam) * x2)
    assert torch.equal(targets, info.lam * y + (1 - info.lam) * y.flip(0))
    # e.g. video 0 (labels 0, 3) mixed with video 3 (labels 0, 1)
    torch.testing.assert_close(targets[0], torch.tensor([1.0, 1 - info.lam, 0.0, info.lam, 0.0]))


def test_single_label_targets_become_mixed_one_hot_distributions():
    mixup = Mixup(_cfg(0.8, 0.0, loss="cross_entropy"))
    mixup.set_epoch(0)
    x, _ = _batch()
    labels = torch.tensor([2, 0, 4, 1])
    _, targets, info = mixup(x, labels)
    lam = info.lam
    expected = torch.tensor([[0, 1 - lam, lam, 0, 0], [lam, 0, 0, 0, 1 - lam],
                             [1 - lam, 0, 0, 0, lam], [0, lam, 1 - lam, 0, 0]], dtype=torch.float32)
    torch.testing.assert_close(targets, expected, rtol=0, atol=1e-7)
    torch.testing.assert_close(targets.sum(dim=1), torch.ones(B))
    # Soft targets train nn.CrossEntropyLoss directly.
    assert torch.isfinite(torch.nn.CrossEntropyLoss()(torch.randn(B, N), targets))


def test_cutmix_pastes_one_box_in_every_frame_and_corrects_lambda_to_its_area():
    mixup = Mixup(_cfg(0.0, 1.0))
    seen_clipped = False
    for epoch in range(20):
        mixup.set_epoch(epoch)
        x, y = _batch(epoch)
        out, targets, info = mixup(x, y)
        assert info.kind == "cutmix"
        top, bottom, left, right = info.box
        inside = torch.zeros(H, W, dtype=torch.bool)
        inside[top:bottom, left:right] = True
        area = int(inside.sum())
        assert info.lam == pytest.approx(1 - area / (H * W), abs=1e-12)
        x2 = x.flip(0)
        assert torch.equal(out[..., inside], x2[..., inside])  # every item, channel and frame
        assert torch.equal(out[..., ~inside], x[..., ~inside])
        assert torch.equal(targets, info.lam * y + (1 - info.lam) * y.flip(0))
        seen_clipped |= top == 0 or left == 0 or bottom == H or right == W
    assert seen_clipped  # boxes cut by the frame border were corrected too


def test_probability_and_switch_choose_what_happens():
    x, y = _batch()
    never = Mixup(_cfg(0.8, 1.0, prob=0.0))
    never.set_epoch(0)
    out, targets, info = never(x, y)
    assert info.kind == "none" and out is x and torch.equal(targets, y)
    always_cut = Mixup(_cfg(0.8, 1.0, switch=1.0))
    always_cut.set_epoch(0)
    assert {always_cut(x, y)[2].kind for _ in range(5)} == {"cutmix"}
    # The draws follow (RNG_SEED, epoch): a resumed epoch mixes as the uninterrupted one did.
    a, b = Mixup(_cfg(0.8, 1.0)), Mixup(_cfg(0.8, 1.0))
    a.set_epoch(3)
    b.set_epoch(3)
    assert [a(x, y)[2].lam for _ in range(4)] == [b(x, y)[2].lam for _ in range(4)]


def test_pathway_lists_share_lambda_and_cutmix_needs_one_frame_size():
    x, y = _batch()
    pose = torch.rand(B, 17, T, 6, 6)
    mixup = Mixup(_cfg(0.8, 0.0))
    mixup.set_epoch(0)
    (rgb_out, pose_out), _, info = mixup([x, pose], y)
    assert torch.equal(rgb_out, info.lam * x + (1 - info.lam) * x.flip(0))
    assert torch.equal(pose_out, info.lam * pose + (1 - info.lam) * pose.flip(0))
    same_size = Mixup(_cfg(0.0, 1.0))
    same_size.set_epoch(0)
    (a, b), _, info = same_size([x, x[:, :1]], y)
    assert torch.equal(a[:, :1], b)  # the same box in both pathways
    cfg = _cfg(0.0, 1.0)
    cfg.MODEL.MODEL_NAME = "EPAM"
    refusing = Mixup(cfg)
    refusing.set_epoch(0)
    with pytest.raises(ConfigError, match=r"model EPAM takes pathways of shapes \(3, 4, 10, 12\), "
                                          r"\(17, 4, 6, 6\).*set MIXUP.CUTMIX_ALPHA 0") as err:
        refusing([x, pose], y)
    assert "\n" not in str(err.value)


def test_mixup_refuses_what_it_cannot_mix():
    with pytest.raises(ConfigError, match="needs MIXUP.ALPHA > 0 .* or MIXUP.CUTMIX_ALPHA > 0"):
        load_config(None, ["MIXUP.ENABLE", "True", "MIXUP.ALPHA", "0.0", "MIXUP.CUTMIX_ALPHA", "0.0"])
    with pytest.raises(ConfigError, match="does not fit MODEL.LOSS_FUNC wlsep"):
        load_config(None, ["MIXUP.ENABLE", "True", "MODEL.LOSS_FUNC", "wlsep"])
    cfg = _cfg(0.8, 0.0)
    assert isinstance(build_mixup(cfg, build_model(cfg)), Mixup)
    cfg.MIXUP.ENABLE = False
    assert build_mixup(cfg, build_model(cfg)) is None


def test_a_head_with_its_own_multi_task_loss_is_refused():
    from tests.models.test_m2clip import tiny

    cfg, model = tiny(mlm=False)
    cfg.MIXUP.ENABLE = True
    with pytest.raises(ConfigError, match="MIXUP.ENABLE True: model M3ANET trains with the M2ClipHead's own "
                                          "multi-task loss"):
        build_mixup(cfg, model)
