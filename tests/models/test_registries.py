"""Every registered backbone x compatible neck x head builds, runs forward and backward on CPU,
and round-trips its state dict; a new family is tested here without a test of its own."""
import itertools

import pytest
import torch

from m3a.config import ConfigError, get_cfg
from m3a.models import BACKBONE_REGISTRY, HEAD_REGISTRY, NECK_REGISTRY, build_model
from m3a.models.build import check_model_cfg, head_layouts_of, list_components
from m3a.models.losses import get_loss_func, prepare_targets

NUM_CLASSES = 5
# Head settings that the registry test runs for each head (the default one when absent).
HEAD_VARIANTS = {
    "fc": [{"M3A.MODE": "NONE"}],
    "m3a": [
        {"M3A.MODE": "GRAPH", "M3A.MODAL_TYPE": "RGB_AUDIO_TEXT", "M3A.MODAL_JOINT_TYPE": "SUM"},
        {"M3A.MODE": "TRSFMR", "M3A.MODAL_TYPE": "RGB_TEXT", "M3A.MODAL_JOINT_TYPE": "CROSS"},
    ],
}


def _combinations():
    for (b, backbone), (n, neck), (h, head) in itertools.product(
        sorted(BACKBONE_REGISTRY), sorted(NECK_REGISTRY), sorted(HEAD_REGISTRY)
    ):
        if backbone.LAYOUT in neck.LAYOUTS and backbone.LAYOUT in head_layouts_of(head):
            for i, _ in enumerate(HEAD_VARIANTS.get(h, [{}])):
                yield pytest.param(b, n, h, i, id=f"{b}-{n}-{h}-{i}")


def _persistent(model):
    """(internal name, tensor) of every parameter and persistent buffer, in state-dict order."""
    return [(k, v) for k, v in model.state_dict(keep_vars=True).items()] and [
        (k, v) for k, v in torch.nn.Module.state_dict(model, keep_vars=True).items()
    ]


def tiny_model_cfg(backbone: str, neck: str, head: str, variant: int):
    """A tiny config of one composition and the head's random inputs."""
    cfg = get_cfg()
    cfg.MODEL.BACKBONE, cfg.MODEL.NECK, cfg.MODEL.HEAD = backbone, neck, head
    cfg.MODEL.NUM_CLASSES = NUM_CLASSES
    cfg.LOG_MODEL_INFO = False
    for key, value in HEAD_VARIANTS.get(head, [{}])[variant].items():
        node, leaf = key.split(".")
        cfg[node][leaf] = value
    BACKBONE_REGISTRY.get(backbone).make_tiny(cfg)
    inputs = HEAD_REGISTRY.get(head).make_tiny(cfg)
    return cfg, inputs


@pytest.mark.parametrize("backbone, neck, head, variant", list(_combinations()))
def test_every_composition_trains_and_round_trips(backbone, neck, head, variant):
    cfg, inputs = tiny_model_cfg(backbone, neck, head, variant)
    check_model_cfg(cfg)
    torch.manual_seed(0)
    model = build_model(cfg, inputs=inputs)
    example = model.example_inputs(cfg, batch=2)
    model.train()
    out = model(example[0] if len(example) == 1 else example)
    # A head with its own training loss (e.g. M2CLIP's multi-task loss) returns what it needs.
    targets = prepare_targets(torch.tensor([0, 1]), NUM_CLASSES, cfg.MODEL.LOSS_FUNC)
    loss = model.training_loss(out, targets, get_loss_func(cfg.MODEL.LOSS_FUNC)(reduction="mean"))
    if loss is None:
        assert out.shape == (2, NUM_CLASSES)
        loss = out.sum()
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    model.eval()
    with torch.no_grad():
        scores = model(example[0] if len(example) == 1 else example)
    assert ((scores >= 0) & (scores <= 1)).all()
    # The state dict uses the published prefixes and loads back strictly into a fresh model.
    state = model.state_dict()
    assert list(state) == [model.published_key(k) for k, _ in _persistent(model)]
    fresh = build_model(cfg, inputs=model.checkpoint_inputs())
    fresh.load_state_dict(state, strict=True)
    with torch.no_grad():
        same = fresh.eval()(example[0] if len(example) == 1 else example)
    assert torch.allclose(same, scores, atol=1e-6)
    assert model.gradcam_layer() in set(model.modules())


def test_derived_component_names_keep_old_configs():
    from m3a.models.build import component_names

    cfg = get_cfg()
    assert component_names(cfg) == ("video_resnet", "video_avgpool", "m3a")
    cfg.M3A.MODE = "NONE"
    assert component_names(cfg) == ("video_resnet", "video_avgpool", "fc")


@pytest.mark.parametrize("key, value, words", [
    ("BACKBONE", "video_resnett", "did you mean 'video_resnet'"),
    ("NECK", "cls_token", "necks for it: global_avgpool, video_avgpool"),
    ("HEAD", "mlp", "MODEL.HEAD must be one of fc, i3d, m2clip, m3a"),
    ("HEAD", "m2clip", "MODEL.HEAD m2clip works on video_text backbones, but backbone video_resnet gives map3d; "
                       "heads for it: fc, i3d, m3a"),
    ("MODEL_NAME", "X", "MODEL.MODEL_NAME must be one of M3ANET"),
])
def test_unknown_or_incompatible_components_are_config_errors(key, value, words):
    cfg = get_cfg()
    cfg.MODEL[key] = value
    with pytest.raises(ConfigError, match=words):
        check_model_cfg(cfg)


def test_list_components_names_every_registry():
    listed = list_components()
    assert listed["MODEL.BACKBONE"] == sorted(n for n, _ in BACKBONE_REGISTRY)
    assert "video_resnet" in listed["MODEL.BACKBONE"] and "m3a" in listed["MODEL.HEAD"]
