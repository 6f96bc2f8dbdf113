"""The CLIP video encoder ``clip_video``: M2CLIP's image tower (published keys), OpenAI and
M2CLIP files load into it, adapters start as the identity, CLIP_VIDEO.TRAIN chooses what trains."""
import pytest
import torch

from m3a.config import ConfigError, get_cfg
from m3a.models import build_model
from m3a.models.build import check_model_cfg
from m3a.models.clip.model import CLIP
from m3a.models.clip_video import ClipVideo
from m3a.models.m2clip import M2Clip, clip_spec
from m3a.models.recognizer import Recognizer
from m3a.utils.checkpoint import load_checkpoint, save_checkpoint
from tests.models.clip_layouts import expanded, published, save_openai_b16_state



def clip_video_cfg(train: str = "adapters", tiny: bool = True):
    cfg = get_cfg()
    cfg.MODEL.BACKBONE, cfg.MODEL.NECK, cfg.MODEL.HEAD, cfg.M3A.MODE = "clip_video", "cls_token", "fc", "NONE"
    cfg.MODEL.NUM_CLASSES, cfg.LOG_MODEL_INFO = 4, False
    cfg.DATA.TRAIN_CROP_SIZE = cfg.DATA.TEST_CROP_SIZE = 224
    cfg.CLIP_VIDEO.TRAIN = train
    if tiny:
        ClipVideo.make_tiny(cfg)
    return cfg


def test_vit_b16_keys_are_the_m2clip_release_image_tower():
    """The K400 M2CLIP release's visual.* keys, in order, without its classifier adapter_fc."""
    cfg = clip_video_cfg(tiny=False)
    with torch.device("meta"):
        backbone = ClipVideo(cfg)
    ref = [[k, s] for k, s in published("k400")["state_dict"]
           if k.startswith("visual.") and not k.startswith("visual.adapter_fc.")]
    assert [[k, list(v.shape)] for k, v in backbone.state_dict().items()] == ref
    trainable = [k for k, p in backbone.named_parameters() if p.requires_grad]
    assert trainable and all("adapter" in k for k in trainable)
    assert backbone.out_dim == 512


def test_openai_and_m2clip_files_load_with_nothing_unexpected(tmp_path):
    cfg = clip_video_cfg(tiny=False)
    with torch.device("meta"):
        model = Recognizer(cfg, {})
    path = save_openai_b16_state(str(tmp_path / "ViT-B-16-state.pt"))
    info = load_checkpoint(path, model)
    assert info["layout"] == "openai_clip" and info["unexpected_keys"] == []
    assert info["missing_keys"] and all("adapter" in k or k.startswith("projection.") for k in info["missing_keys"])
    m2clip = published("k400")
    path = str(tmp_path / "m2clip.pth")
    torch.save({"model": expanded(m2clip["state_dict"])}, path)
    info = load_checkpoint(path, model)
    assert info["layout"] == "m2clip" and info["unexpected_keys"] == []
    assert info["missing_keys"] == ["projection.weight", "projection.bias"]


@pytest.mark.parametrize("mode", ["NONE", "GRAPH"])
def test_own_checkpoint_with_a_head_loads_back_strictly(tmp_path, mode):
    """A checkpoint of clip_video with the FC or M3A head (keys outside visual.*) is ours."""
    cfg = clip_video_cfg()
    if mode == "GRAPH":
        cfg.MODEL.HEAD, cfg.M3A.MODE, cfg.M3A.MODAL_TYPE = "m3a", "GRAPH", "RGB"
    torch.manual_seed(0)
    model = build_model(cfg, inputs={})
    assert any(not k.startswith("visual.") for k in model.state_dict())
    path = save_checkpoint(str(tmp_path), model, None, None, 1, cfg)
    torch.manual_seed(1)
    fresh = build_model(cfg, inputs={})
    info = load_checkpoint(path, fresh)
    assert info["layout"] == "native" and info["missing_keys"] == [] and info["unexpected_keys"] == []
    for key, value in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key


def test_adapters_start_as_identity_on_openai_weights(tmp_path):
    """Loaded from a TorchScript file like OpenAI's, every frame token is CLIP's image embedding."""
    cfg = clip_video_cfg()
    torch.manual_seed(0)
    model = build_model(cfg, inputs={}).eval()
    torch.manual_seed(1)
    clip = CLIP(clip_spec(cfg)).eval()
    for name, value in (("input_resolution", 16), ("context_length", 77), ("vocab_size", 49408)):
        clip.register_buffer(name, torch.tensor(value))
    path = str(tmp_path / "ViT-tiny.pt")
    torch.jit.save(torch.jit.trace_module(clip, {"encode_image": torch.randn(1, 3, 16, 16)}), path)
    info = load_checkpoint(path, model)
    assert info["layout"] == "openai_clip" and info["unexpected_keys"] == []
    video = torch.randn(2, 3, cfg.DATA.NUM_FRAMES, 16, 16)
    with torch.no_grad():
        tokens = model.forward_features(video)
        expected = clip.encode_image(video.transpose(1, 2).flatten(0, 1)).unflatten(0, (2, cfg.DATA.NUM_FRAMES))
        assert tokens.shape == (2, cfg.DATA.NUM_FRAMES, 1, 16)
        assert (tokens[:, :, 0] - expected).abs().max() < 1e-6
        assert (model.pooled_features(video) - expected.mean(dim=1)).abs().max() < 1e-6


def test_train_all_fine_tunes_the_whole_tower_and_bad_values_are_config_errors():
    model = build_model(clip_video_cfg("all"), inputs={})
    assert all(p.requires_grad for p in model.parameters())
    frozen = build_model(clip_video_cfg("adapters"), inputs={})
    assert sum(p.requires_grad for p in frozen.parameters()) < sum(1 for _ in frozen.parameters())
    with pytest.raises(ConfigError, match="CLIP_VIDEO.TRAIN must be one of adapters, all"):
        check_model_cfg(clip_video_cfg("some"))


def test_only_the_image_tower_keys_are_checked():
    """clip_video has no text tower, masked-LM head or visual classifier: their M2CLIP keys are not
    its concern; the image tower's still fail with M2CLIP's messages."""
    cfg = clip_video_cfg()
    cfg.M2CLIP.CUSTOM.TEXT_WIDTH = 24  # != EMBED_DIM 16: only M2CLIP's masked-LM block needs them equal
    cfg.M2CLIP.TEXT_ADAPTER_LAYERS, cfg.M2CLIP.TEXT_ADAPTER_POS, cfg.M2CLIP.TEXT_ADAPTER_WIDTH = 99, ["nowhere"], 0
    cfg.M2CLIP.MLM.VOCAB_SIZE, cfg.M2CLIP.FC_DROPOUT = 0, 1.5
    check_model_cfg(cfg)
    assert build_model(cfg, inputs={}).backbone.out_dim == 16
    with pytest.raises(ConfigError, match="M2CLIP.TEXT_ADAPTER_POS must list distinct values"):
        M2Clip.check_config(cfg)  # M2CLIP itself, with its text tower, still checks them
    for key, value, message in (
        ("VIS_ADAPTER_LAYERS", 3, r"M2CLIP.VIS_ADAPTER_LAYERS must be in \[0, 2\], got 3"),
        ("VIS_ADAPTER_POS", ["pre_mlp", "pre_mlp"], "M2CLIP.VIS_ADAPTER_POS must list distinct values"),
        ("ADAPTER_WIDTH", 0, "M2CLIP.ADAPTER_WIDTH must be >= 1, got 0"),
        ("T_ADAPTER_WIDTH", -1, "M2CLIP.T_ADAPTER_WIDTH must be >= 0, got -1"),
        ("ARCH", "ViT-X", "M2CLIP.ARCH must be one of"),
    ):
        bad = clip_video_cfg()
        bad.M2CLIP[key] = value
        with pytest.raises(ConfigError, match=message):
            check_model_cfg(bad)
    bad = clip_video_cfg()
    bad.DATA.TEST_CROP_SIZE = 32
    with pytest.raises(ConfigError, match="DATA.TEST_CROP_SIZE must be 16 for M2CLIP.ARCH custom, got 32"):
        check_model_cfg(bad)
