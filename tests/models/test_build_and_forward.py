"""Every accepted M3A combination builds and trains on CPU; invalid ones fail at config time."""
import itertools
import logging
import os

import pytest
import torch
import torch.nn as nn

from m3a.config import ConfigError, load_config
from m3a.utils.lexicon import LexiconError
from m3a.models import MODEL_REGISTRY, build_model
from m3a.models.model_info import gflops, log_model_info, params_count
from m3a.models.norm import FrozenBatchNorm3d
from tests.models.helpers import TINY_CLASSES, tiny_cfg, write_lexicons

MODALITIES = ("RGB", "AUDIO", "TEXT", "AUDIOTEXT")
MODAL_TYPES = [
    "_".join(c) for r in (1, 2, 3, 4) for c in itertools.combinations(MODALITIES, r)
] + ["TEXT_RGB", "AUDIO_RGB_TEXT"]
COMBOS = list(itertools.product(("GRAPH", "TRSFMR"), MODAL_TYPES, ("NONE", "SUM", "CROSS")))


def is_valid(mode, modal, joint):
    n = len(modal.split("_"))
    return {"NONE": n == 1, "SUM": True, "CROSS": mode == "TRSFMR" and n in (2, 3)}[joint]


def _opts(data_dir, mode, modal, joint):
    return [
        "M3A.MODE", mode, "M3A.MODAL_TYPE", modal, "M3A.MODAL_JOINT_TYPE", joint,
        "DATA.PATH_TO_DATA_DIR", data_dir,
    ]


def _tiny_from(cfg_loaded, data_dir):
    m3a = cfg_loaded.M3A
    cfg = tiny_cfg(data_dir, m3a.MODE, m3a.MODAL_TYPE, m3a.MODAL_JOINT_TYPE)
    return cfg


def _train_step(model, clip):
    model.train()
    out = model(clip)
    out.sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    return out


@pytest.mark.parametrize("mode, modal, joint", [c for c in COMBOS if is_valid(*c)])
def test_valid_combination_builds_and_trains(mode, modal, joint, tiny_data_dir):
    data_dir, _ = tiny_data_dir
    loaded = load_config(None, _opts(data_dir, mode, modal, joint))
    model = build_model(_tiny_from(loaded, data_dir))
    clip = torch.randn(2, 3, 4, 16, 16)
    out = _train_step(model, clip)
    assert out.shape == (2, TINY_CLASSES)
    model.eval()
    with torch.no_grad():
        scores = model(clip)
    assert scores.shape == (2, TINY_CLASSES) and ((scores >= 0) & (scores <= 1)).all()


@pytest.mark.parametrize("mode, modal, joint", [c for c in COMBOS if not is_valid(*c)])
def test_invalid_combination_fails_at_config_time(mode, modal, joint, tiny_data_dir):
    with pytest.raises(ConfigError, match="valid M3A combinations"):
        load_config(None, _opts(tiny_data_dir[0], mode, modal, joint))


@pytest.mark.parametrize("modal", ["VIDEO", "RGB_RGB", "RGB_", "rgb"])
def test_unknown_or_repeated_modality_is_refused(modal):
    with pytest.raises(ConfigError, match="RGB, AUDIO, TEXT, AUDIOTEXT"):
        load_config(None, ["M3A.MODE", "GRAPH", "M3A.MODAL_TYPE", modal])


@pytest.mark.parametrize("key, value, words", [
    ("M3A.MODE", "GCN", "M3A.MODE"),
    ("MODEL.ARCH", "resnet", "MODEL.ARCH"),
    ("MODEL.DEPTH", "20", "MODEL.DEPTH"),
    ("MODEL.STAGE_BLOCKS", "[1,1]", "MODEL.STAGE_BLOCKS"),
    ("M3A.AUDIO_SAMPLING", "sometimes", "M3A.AUDIO_SAMPLING"),
    ("BN.NORM_TYPE", "groupnorm", "BN.NORM_TYPE"),
])
def test_bad_model_values_are_refused(key, value, words):
    with pytest.raises(ConfigError, match=words):
        load_config(None, [key, value])


def test_baseline_ignores_modal_settings_and_reads_no_lexicon(tmp_path):
    loaded = load_config(None, ["M3A.MODE", "NONE", "M3A.MODAL_TYPE", "NONE",
                                "M3A.MODAL_JOINT_TYPE", "NONE"])
    cfg = tiny_cfg(str(tmp_path), "NONE", loaded.M3A.MODAL_TYPE, "NONE")
    model = build_model(cfg)  # tmp_path has no lexicons: none is read
    assert hasattr(model.head, "projection") and not hasattr(model.head, "m3a_joint_learning")


@pytest.mark.parametrize("arch, depth", [("r2plus1d", 18), ("r3d", 34), ("i3d", 50),
                                         ("ir_csn", 101), ("r2plus1d", 152)])
def test_backbones_forward_backward(arch, depth, tiny_data_dir):
    cfg = tiny_cfg(tiny_data_dir[0], "GRAPH", "RGB_TEXT", "SUM", arch=arch, depth=depth)
    cfg.MODEL.BASE_WIDTH = 2
    model = build_model(cfg)
    assert _train_step(model, torch.randn(2, 3, 8, 16, 16)).shape == (2, TINY_CLASSES)
    with torch.no_grad():
        feat = model.eval().forward_features(torch.randn(1, 3, 8, 32, 32))
    expansion = 4 if depth >= 50 else 1
    assert feat.shape[:2] == (1, 2 * 8 * expansion)
    assert feat.shape[2] == (4 if arch == "i3d" else 1)  # T/2 for i3d, T/8 otherwise


def test_fc_head_eval_activates_then_averages(tiny_data_dir):
    cfg = tiny_cfg(tiny_data_dir[0], "NONE")
    cfg.MODEL.DROPOUT_RATE = 0.5
    model = build_model(cfg).eval()
    clip = torch.randn(2, 3, 4, 160, 160)  # final map 1 x 10 x 10: 4 x 4 windows of 7 x 7
    with torch.no_grad():
        fmap = model.forward_features(clip)
        assert fmap.shape[2:] == (1, 10, 10)
        pooled = nn.functional.avg_pool3d(fmap, (1, 7, 7), stride=1).permute(0, 2, 3, 4, 1)
        assert pooled.shape[1:4] == (1, 4, 4)
        expected = torch.sigmoid(model.head.projection(pooled)).mean(dim=(1, 2, 3))
        assert torch.allclose(model(clip), expected, atol=1e-6)
    assert isinstance(model.head.dropout, nn.Dropout)


def test_pool_stride_one_then_average_at_eval(tiny_data_dir):
    cfg = tiny_cfg(tiny_data_dir[0], "GRAPH", "RGB", "NONE")
    model = build_model(cfg).eval()
    with torch.no_grad():
        small = torch.randn(1, 3, 8, 80, 80)  # final 5 x 5 < 7 x 7: pooled whole (fallback)
        fmap = model.forward_features(small)
        assert fmap.shape[-2:] == (5, 5)
        assert torch.allclose(model.pooled_features(small), fmap.mean(dim=(2, 3, 4)), atol=1e-6)
        big = torch.randn(1, 3, 8, 160, 160)  # final 10 x 10: 4 x 4 windows of 7 x 7, stride 1
        fmap = model.forward_features(big)
        windows = nn.functional.avg_pool3d(fmap, (1, 7, 7), stride=1)
        assert windows.shape[-2:] == (4, 4)
        x = windows.mean(dim=(2, 3, 4))
        expected = torch.sigmoid(model.head.m3a_joint_learning(x))
        assert torch.allclose(model(big), expected, atol=1e-6)
    model.train()  # training: the same pooling, logits without activation
    x_train = model.pooled_features(big)
    assert torch.allclose(model(big), model.head.m3a_joint_learning(x_train), atol=1e-5)


def test_softmax_head(tiny_data_dir):
    cfg = tiny_cfg(tiny_data_dir[0], "TRSFMR", "TEXT", "NONE")
    cfg.MODEL.HEAD_ACT = "softmax"
    model = build_model(cfg).eval()
    with torch.no_grad():
        scores = model(torch.randn(3, 3, 4, 16, 16))
    assert torch.allclose(scores.sum(1), torch.ones(3), atol=1e-5)


def test_frozen_bn_keeps_statistics_and_parameters(tiny_data_dir):
    cfg = tiny_cfg(tiny_data_dir[0], "NONE")
    cfg.BN.FREEZE_PARAMS = True
    model = build_model(cfg)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm3d)]
    assert bns and all(isinstance(m, FrozenBatchNorm3d) for m in bns)
    before = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    model.train()
    model(torch.randn(2, 3, 4, 16, 16)).sum().backward()
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(not m.weight.requires_grad and m.weight.grad is None for m in bns)
    assert all(not m.training for m in bns)


def test_sync_batchnorm_conversion(tiny_data_dir):
    cfg = tiny_cfg(tiny_data_dir[0], "GRAPH", "RGB_AUDIO", "SUM")
    cfg.BN.NORM_TYPE = "sync_batchnorm"
    model = build_model(cfg)
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert norms and all(isinstance(m, nn.SyncBatchNorm) for m in norms)
    plain = build_model(tiny_cfg(tiny_data_dir[0], "GRAPH", "RGB_AUDIO", "SUM"))
    assert list(model.state_dict()) == list(plain.state_dict())
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 4, 16, 16)).shape == (1, TINY_CLASSES)


def test_squeeze_excitation(tiny_data_dir):
    cfg = tiny_cfg(tiny_data_dir[0], "NONE")
    cfg.MODEL.SE_RATIO = 0.25
    model = build_model(cfg)
    assert len([k for k in model.state_dict() if ".se.fc1.weight" in k]) == 4
    assert _train_step(model, torch.randn(2, 3, 4, 16, 16)).shape == (2, TINY_CLASSES)


def test_reduced_width_and_depth_keep_published_names(tiny_data_dir):
    model = build_model(tiny_cfg(tiny_data_dir[0], "NONE"))
    keys = list(model.state_dict())
    assert keys[:2] == ["conv1_middle.weight", "bn1_middle.weight"]
    assert "layer2.0.block.shortcut.weight" in keys and "layer2.1.block.conv1.weight" not in keys
    assert model.state_dict()["layer4.0.block.conv2.weight"].shape[0] == 32


def test_buffers_are_non_persistent_and_follow_the_model(tiny_data_dir):
    model = build_model(tiny_cfg(tiny_data_dir[0]), device=torch.device("cpu"))
    joint = model.head.m3a_joint_learning
    names = dict(model.named_buffers())
    for name in ("adj_hat", "text_lexicon", "audio_features", "audio_fixed_index"):
        assert f"head.m3a_joint_learning.{name}" in names
        assert not any(name in k for k in model.state_dict())
    model.to(torch.float64)
    assert joint.adj_hat.dtype == torch.float64 and joint.text_lexicon.dtype == torch.float64
    with torch.no_grad():
        clip = torch.randn(1, 3, 4, 16, 16, dtype=torch.float64)
        assert model.eval()(clip).dtype == torch.float64


def test_node_embeddings_and_features(tiny_data_dir):
    model = build_model(tiny_cfg(tiny_data_dir[0], "GRAPH", "RGB_AUDIO_TEXT", "SUM")).eval()
    clip = torch.randn(1, 3, 4, 16, 16)
    feats = model.pooled_features(clip)
    emb = model.node_embeddings(feats)
    assert set(emb) == {"RGB", "AUDIO", "TEXT"}
    assert [tuple(t.shape) for t in emb["RGB"]] == [(5, 32), (5, 8), (5, 5)]
    assert [tuple(t.shape) for t in emb["AUDIO"]] == [(5, 4), (5, 8), (5, 32)]
    assert set(model.node_embeddings()) == {"AUDIO", "TEXT"}
    cross = build_model(tiny_cfg(tiny_data_dir[0], "TRSFMR", "RGB_TEXT", "CROSS")).eval()
    emb = cross.node_embeddings(cross.pooled_features(clip))
    assert [tuple(t.shape) for t in emb["CROSS_FUSION"]] == [(5, 32), (5, 32)]


def test_missing_lexicon_names_the_path(tmp_path):
    with pytest.raises(LexiconError, match=str(tmp_path / "mmit-m3a" / "text-lexicon-v1")):
        build_model(tiny_cfg(str(tmp_path), "TRSFMR", "TEXT", "NONE"))


def test_wrong_lexicon_width_is_a_clear_error(tiny_data_dir):
    cfg = tiny_cfg(tiny_data_dir[0], "GRAPH", "TEXT", "NONE")
    cfg.M3A.TEXT_VEC_SIZE = 300
    with pytest.raises(LexiconError, match="TEXT_VEC_SIZE"):
        build_model(cfg)


def test_published_pickle_lexicons(tmp_path):
    write_lexicons(tmp_path, 5, 4, 6, version="v2", ext=".pkl")
    assert sorted(os.listdir(tmp_path / "mmit-m3a"))[0].endswith(".pkl")
    cfg = tiny_cfg(str(tmp_path), "GRAPH", "RGB_AUDIO_TEXT", "SUM")
    cfg.DATA.MMIT_VERSION = "v2"
    model = build_model(cfg)
    assert _train_step(model, torch.randn(2, 3, 4, 16, 16)).shape == (2, 5)


def test_registry_and_model_info(tiny_data_dir, caplog):
    assert "M3ANET" in MODEL_REGISTRY
    cfg = tiny_cfg(tiny_data_dir[0], "NONE")
    model = build_model(cfg)
    assert params_count(model) == sum(p.numel() for p in model.parameters())
    flops = gflops(model, cfg)
    assert flops is not None and flops > 0
    cfg.LOG_MODEL_INFO = True
    with caplog.at_level(logging.INFO, logger="m3a.models.model_info"):
        build_model(cfg)
    assert "GFLOPs" in caplog.text and f"{params_count(model):,}" in caplog.text


def test_flop_count_failure_does_not_break_the_build(tiny_data_dir, caplog):
    cfg = tiny_cfg(tiny_data_dir[0], "NONE")
    cfg.DATA.TEST_CROP_SIZE = 0  # an empty clip: the stem convolution fails while counting
    cfg.LOG_MODEL_INFO = True
    with caplog.at_level(logging.WARNING, logger="m3a.models.model_info"):
        model = build_model(cfg)
    assert "could not count FLOPs" in caplog.text
    assert isinstance(model, nn.Module)
    log_model_info(model, cfg)  # logs again without raising


def test_heads_must_divide_token_widths():
    with pytest.raises(ConfigError, match="NHEAD 7 does not divide the TEXT token width 300"):
        load_config(None, ["M3A.MODE", "TRSFMR", "M3A.MODAL_TYPE", "TEXT",
                           "M3A.MODAL_JOINT_TYPE", "NONE", "M3A.TRSFMR_NHEAD", "7", "M3A.TEXT_VEC_SIZE", "300"])
    load_config(None, ["M3A.MODE", "TRSFMR", "M3A.MODAL_TYPE", "RGB_TEXT",
                       "M3A.MODAL_JOINT_TYPE", "SUM", "M3A.TRSFMR_NHEAD", "4"])
