"""configs/Mmit/families: every config loads, validates and builds its full-size model structure
(on the meta device), its lexicon widths are consistent (text width from the lexicon file, GloVe
or CLIP; audio the VGGish lexicon's; every transformer token width splits over the heads), and the
fine-tuned CLIP configs give CLIP's weights their smaller LR."""
import glob
import os

import pytest
import torch

from m3a.config import load_config
from m3a.engine.optimizer import get_param_groups
from m3a.models.build import component_classes, component_names
from m3a.models.recognizer import Recognizer

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FAMILY_CONFIGS = sorted(glob.glob(os.path.join(REPO, "configs", "Mmit", "families", "*.yaml")))
# (backbone, neck, clip feature width) of each family's configs, by file-name prefix.
EXPECTED = {
    "ACTION_R50": ("action_resnet", "segment_consensus", 2048),
    "CLIP_B16": ("clip_video", "cls_token", 512),
    "EPAM": ("epam_net", "stream_avgpool", 648),
}
# Widths of the lexicon files: GloVe 6B and CLIP ViT-B/16 text lexicons, VGGish audio lexicon.
TEXT_WIDTHS = (300, 512)
AUDIO_WIDTH = 384


def _family(path: str) -> str:
    return next(p for p in EXPECTED if os.path.basename(path).startswith(p))


def _inputs(cfg, text_width: int) -> dict:
    """Random head inputs of the lexicon widths (psi only for the GCN heads)."""
    n = cfg.MODEL.NUM_CLASSES
    inputs = {"text": torch.randn(n, text_width), "audio_nodes": torch.randn(n, AUDIO_WIDTH)}
    if cfg.M3A.MODE == "GRAPH":
        inputs["psi"] = torch.rand(n, n, dtype=torch.float64)
    return inputs


def test_every_family_has_gcn_and_transformer_configs():
    names = {os.path.basename(p) for p in FAMILY_CONFIGS}
    for prefix in ("ACTION_R50", "CLIP_B16_ADAPTER", "CLIP_B16_FINETUNE", "EPAM"):
        assert {f"{prefix}_GRAPH.yaml", f"{prefix}_TRSFMR.yaml"} <= names


@pytest.mark.parametrize("text_width", TEXT_WIDTHS)
@pytest.mark.parametrize("path", FAMILY_CONFIGS, ids=os.path.basename)
def test_family_config_validates_and_builds_with_consistent_widths(path, text_width):
    cfg = load_config(path, [])  # validates every key, the model's included
    backbone, neck, width = EXPECTED[_family(path)]
    assert tuple(component_names(cfg)) == (backbone, neck, "m3a")
    assert cfg.MODEL.NUM_CLASSES == 313 and cfg.DATA.MULTI_LABEL and cfg.MODEL.LOSS_FUNC == "bce_logit"
    assert cfg.MODEL.HEAD_ACT == "sigmoid" and cfg.M3A.MODAL_TYPE == "RGB_AUDIO_TEXT"
    assert cfg.M3A.TEXT_VEC_SIZE == 0 and cfg.M3A.AUDIO_VEC_SIZE == AUDIO_WIDTH
    assert cfg.M3A.MODE == ("GRAPH" if "GRAPH" in os.path.basename(path) else "TRSFMR")
    backbone_cls, neck_cls, head_cls = component_classes(cfg)
    with torch.device("meta"):  # the full-size backbone, without memory
        backbone = backbone_cls(cfg)
        neck_cls(cfg, backbone)
    assert backbone.out_dim == width == backbone_cls.feature_dim(cfg)
    head = head_cls(cfg, width, _inputs(cfg, text_width))
    learners = head.m3a_joint_learning.multi_modal
    with torch.no_grad():
        assert head.eval()(torch.randn(2, width)).shape == (2, cfg.MODEL.NUM_CLASSES)
    n = cfg.MODEL.NUM_CLASSES
    # Each learner maps its nodes' width to the clip feature width (RGB: to N scores per node).
    for modality, (dim_in, dim_out) in {"RGB": (width, n), "AUDIO": (AUDIO_WIDTH, width),
                                        "TEXT": (text_width, width)}.items():
        shapes = [tuple(p.shape) for p in learners[modality].parameters() if p.dim() == 2]
        assert dim_in in shapes[0] and dim_out in shapes[-1], (modality, shapes)
    for mod_width in (width, AUDIO_WIDTH, text_width):
        assert mod_width % cfg.M3A.TRSFMR_NHEAD == 0


@pytest.mark.parametrize("name", ["CLIP_B16_ADAPTER_TRSFMR.yaml", "CLIP_B16_FINETUNE_TRSFMR.yaml"])
def test_clip_configs_train_adapters_or_everything_at_their_lrs(name):
    cfg = load_config(os.path.join(REPO, "configs", "Mmit", "families", name), [])
    inputs = _inputs(cfg, 512)
    with torch.device("meta"):
        model = Recognizer(cfg, inputs)
    scale = {id(p): g["lr_mult"]
             for g in get_param_groups(model, cfg) for p in g["params"]}
    params = dict(model.named_parameters())
    clip_weight, adapter = "backbone.visual.conv1.weight", "backbone.visual.t_adapter.fc1.weight"
    head = next(k for k in params if k.startswith("head."))
    if "ADAPTER" in name:
        assert not params[clip_weight].requires_grad and id(params[clip_weight]) not in scale
        assert scale[id(params[adapter])] == scale[id(params[head])] == 1.0
    else:
        assert all(p.requires_grad for p in model.backbone.parameters())
        assert scale[id(params[clip_weight])] == pytest.approx(0.04)
        assert scale[id(params[adapter])] == scale[id(params[head])] == 1.0
