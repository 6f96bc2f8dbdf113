"""M3A heads on every family: each family's backbone (video ResNet, ACTION-Net, the CLIP video
encoder, EPAM-Net's two streams) with the FC, GCN and transformer heads over RGB, AUDIO, TEXT and
AUDIOTEXT nodes builds from its tiny config and lexicon files on disk, and one optimiser step of
the engine's train step changes its trainable parameters, multi-label (BCE, sigmoid) and
single-label (cross-entropy, softmax)."""
import pytest
import torch

from m3a.config import ConfigError, get_cfg
from m3a.engine.amp import build_grad_scaler
from m3a.engine.optimizer import construct_optimizer
from m3a.engine.train_loop import train_step
from m3a.models import BACKBONE_REGISTRY, build_model
from m3a.models.build import check_model_cfg
from m3a.models.losses import get_loss_func, prepare_targets
from tests.models.helpers import write_lexicons

NUM_CLASSES = 5
# Width of the text lexicon files: the head must take it from the file (M3A.TEXT_VEC_SIZE 0).
TEXT_WIDTH = 10
AUDIO_WIDTH = 4
# Backbone of each family, with its default neck.
FAMILIES = {
    "video_resnet": "video_resnet",   # M3A's R(2+1)D / R3D / I3D
    "action_resnet": "action_resnet",  # ACTION-Net / TSM / TSN
    "m2clip": "clip_video",           # M2CLIP's CLIP ViT video encoder with TED adapters
    "epam_net": "epam_net",           # EPAM-Net's RGB + pose streams
}
HEADS = [("FC", None)] + [(mode, modal) for mode in ("GRAPH", "TRSFMR")
                          for modal in ("RGB", "AUDIO", "TEXT", "AUDIOTEXT")]
LABELS = {"multi": ("bce_logit", "sigmoid"), "single": ("cross_entropy", "softmax")}


@pytest.fixture(scope="module")
def lexicon_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("family_lexicons")
    write_lexicons(root, NUM_CLASSES, AUDIO_WIDTH, TEXT_WIDTH)
    return str(root)


def family_cfg(family: str, mode: str, modal, labels: str, data_dir: str):
    cfg = get_cfg()
    cfg.MODEL.BACKBONE = FAMILIES[family]
    cfg.MODEL.NUM_CLASSES, cfg.LOG_MODEL_INFO, cfg.DATA.PATH_TO_DATA_DIR = NUM_CLASSES, False, data_dir
    cfg.MODEL.LOSS_FUNC, cfg.MODEL.HEAD_ACT = LABELS[labels]
    cfg.DATA.MULTI_LABEL = labels == "multi"
    BACKBONE_REGISTRY.get(cfg.MODEL.BACKBONE).make_tiny(cfg)
    if mode == "FC":
        cfg.M3A.MODE, cfg.MODEL.HEAD = "NONE", "fc"
    else:
        cfg.MODEL.HEAD = "m3a"
        cfg.M3A.MODE, cfg.M3A.MODAL_TYPE, cfg.M3A.MODAL_JOINT_TYPE = mode, modal, "NONE"
        cfg.M3A.AUDIO_VEC_SIZE, cfg.M3A.TEXT_VEC_SIZE, cfg.M3A.HIDDEN_LAYER = AUDIO_WIDTH, 0, 8
    cfg.SOLVER.BASE_LR, cfg.SOLVER.OPTIMIZING_METHOD = 0.1, "sgd"
    return cfg


def _targets(cfg, generator):
    if cfg.DATA.MULTI_LABEL:
        labels = torch.tensor([[1.0, 0.0, 1.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0, 1.0]])
    else:
        labels = torch.tensor([2, 4])
    return prepare_targets(labels, NUM_CLASSES, cfg.MODEL.LOSS_FUNC)


@pytest.mark.parametrize("labels", sorted(LABELS))
@pytest.mark.parametrize("mode, modal", HEADS, ids=[m if m == "FC" else f"{m}-{x}" for m, x in HEADS])
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_family_head_and_modality_trains_a_step(family, mode, modal, labels, lexicon_dir):
    cfg = family_cfg(family, mode, modal, labels, lexicon_dir)
    check_model_cfg(cfg)
    torch.manual_seed(0)
    model = build_model(cfg)  # the head reads the lexicon files of the data folder
    if modal in ("TEXT", "AUDIOTEXT"):
        assert model.checkpoint_inputs()["text"].shape == (NUM_CLASSES, TEXT_WIDTH)
    gen = torch.Generator().manual_seed(1)
    inputs = [torch.randn(x.shape, generator=gen) for x in model.example_inputs(cfg, batch=2)]
    before = {k: p.detach().clone() for k, p in model.named_parameters()}
    optimizer = construct_optimizer(model, cfg)
    loss_fn = get_loss_func(cfg.MODEL.LOSS_FUNC)(reduction="mean")
    device = torch.device("cpu")
    model.train()
    loss = train_step(model, inputs if len(inputs) > 1 else inputs[0], _targets(cfg, gen), loss_fn, optimizer,
                      build_grad_scaler(cfg, device), cfg, device)
    assert torch.isfinite(torch.tensor(loss)) and loss > 0
    changed = {k for k, p in model.named_parameters() if not torch.equal(p.detach(), before[k])}
    graded = {k for k, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    frozen = {k for k, p in model.named_parameters() if not p.requires_grad}
    assert graded <= changed and not (changed & frozen)
    assert any(k.startswith("head.") for k in changed) and any(k.startswith("backbone.") for k in changed)
    model.eval()
    with torch.no_grad():
        scores = model(inputs if len(inputs) > 1 else inputs[0])
    assert scores.shape == (2, NUM_CLASSES) and ((scores >= 0) & (scores <= 1)).all()
    if labels == "single":
        assert torch.allclose(scores.sum(dim=1), torch.ones(2), atol=1e-5)


def test_lexicon_width_is_checked_against_transformer_heads_at_build(lexicon_dir):
    """With the width taken from the file, the head-count check runs when the head is built."""
    cfg = family_cfg("video_resnet", "TRSFMR", "TEXT", "multi", lexicon_dir)
    cfg.M3A.TRSFMR_NHEAD = 4
    check_model_cfg(cfg)  # the config alone does not know the width
    with pytest.raises(ConfigError, match="NHEAD 4 does not divide the TEXT token width 10"):
        build_model(cfg)
