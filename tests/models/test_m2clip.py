"""M2CLIP: the release's key layout, parameter counts and checkpoint keys; OpenAI and release
checkpoints load through load_checkpoint; adapters start as the identity; the TED math; the
multi-task losses (masked LM included) train in float32 and under autocast."""
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from m3a.config import get_cfg
from m3a.engine.train_loop import train_step
from m3a.models import build_model
from m3a.models.clip.adapters import TEDAdapter
from m3a.models.clip.model import CLIP
from m3a.models.clip.tokenizer import tokenize
from m3a.models.losses import get_loss_func
from m3a.models.m2clip import M2Clip, clip_spec
from m3a.models.m2clip_head import M2ClipHead, prompt_vocab, read_mlm_vocab
from m3a.models.recognizer import Recognizer
from m3a.utils.checkpoint import load_checkpoint
from tests.models.clip_layouts import expanded, published, save_openai_b16_state

# The published recipes' model settings (K400: 12x384, SSv2: 24x384 with 26 text adapters).
RECIPES = {
    "k400": {"MODEL.NUM_CLASSES": 400, "M2CLIP.MLM.VOCAB_SIZE": 520},
    "ssv2": {"MODEL.NUM_CLASSES": 174, "M2CLIP.MLM.VOCAB_SIZE": 234,
             "M2CLIP.VIS_ADAPTER_POS": ["pre_attn", "pre_mlp"], "M2CLIP.TEXT_ADAPTER_POS": ["pre_attn", "pre_mlp"],
             "M2CLIP.TEXT_ADAPTER_LAYERS": 13},
}


def m2clip_cfg(**overrides):
    cfg = get_cfg()
    cfg.MODEL.BACKBONE, cfg.MODEL.HEAD = "m2clip", "m2clip"
    cfg.MODEL.HEAD_ACT, cfg.MODEL.LOSS_FUNC = "softmax", "cross_entropy"
    cfg.DATA.TRAIN_CROP_SIZE = cfg.DATA.TEST_CROP_SIZE = 224
    cfg.LOG_MODEL_INFO = False
    for key, value in overrides.items():
        node, *rest = key.split(".")
        target = cfg[node]
        for part in rest[:-1]:
            target = target[part]
        target[rest[-1]] = value
    return cfg


def full_model(name: str):
    """The published model on the meta device (keys, shapes and counts without memory)."""
    cfg = m2clip_cfg(**RECIPES[name])
    prompts = [f"A video of class {i}" for i in range(cfg.MODEL.NUM_CLASSES)]
    with torch.device("meta"):
        return Recognizer(cfg, {"prompts": prompts, "mlm_vocab": []})


def tiny(mlm: bool = True, classes: int = 4, **overrides):
    cfg = m2clip_cfg(**overrides)
    cfg.MODEL.NUM_CLASSES = classes
    M2Clip.make_tiny(cfg)
    inputs = M2ClipHead.make_tiny(cfg)
    cfg.M2CLIP.MLM.ENABLE = mlm
    torch.manual_seed(0)
    return cfg, build_model(cfg, inputs=inputs)


@pytest.mark.parametrize("name", ["k400", "ssv2"])
def test_published_keys_counts_and_checkpoint_keys(name):
    ref = published(name)
    model = full_model(name)
    assert [[k, list(v.shape)] for k, v in model.state_dict().items()] == ref["state_dict"]
    assert sum(p.numel() for p in model.parameters()) == ref["params"]
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == ref["trainable_params"]
    trainable = [model.published_key(k) for k, p in model.named_parameters() if p.requires_grad]
    assert trainable == ref["checkpoint_keys"]


def test_release_and_openai_files_load_with_nothing_unexpected(tmp_path):
    ref = published("k400")
    model = full_model("k400")
    shapes = dict((k, s) for k, s in ref["state_dict"])
    # The release's checkpoint-<epoch>.pth: trainable keys only, plus optimiser/schedule states.
    release = str(tmp_path / "checkpoint-11.pth")
    torch.save({"model": expanded((k, shapes[k]) for k in ref["checkpoint_keys"]), "optimizer": {},
                "lr_sched": {}, "loss_scaler": {}, "next_epoch": 12}, release)
    info = load_checkpoint(release, model)
    assert info["unexpected_keys"] == [] and info["layout"] == "native"
    assert set(info["missing_keys"]) == set(shapes) - set(ref["checkpoint_keys"])
    # OpenAI's ViT-B/16 layout (state dict of the TorchScript file, with its integer entries).
    openai = save_openai_b16_state(str(tmp_path / "ViT-B-16-state.pt"))
    info = load_checkpoint(openai, model)
    assert info["layout"] == "openai_clip" and info["unexpected_keys"] == []
    assert info["missing_keys"] == ref["checkpoint_keys"]


def test_openai_torchscript_archive_builds_m2clip_and_adapters_start_as_identity(tmp_path):
    cfg, model = tiny(mlm=False)
    spec = clip_spec(cfg)
    torch.manual_seed(1)
    clip = CLIP(spec).eval()
    for name, value in (("input_resolution", 16), ("context_length", 77), ("vocab_size", 49408)):
        clip.register_buffer(name, torch.tensor(value))
    path = str(tmp_path / "ViT-tiny.pt")
    torch.jit.save(torch.jit.trace_module(clip, {"encode_image": torch.randn(1, 3, 16, 16)}), path)
    info = load_checkpoint(path, model)  # as TRAIN.CHECKPOINT_FILE_PATH loads it
    assert info["layout"] == "openai_clip" and info["unexpected_keys"] == []
    assert all("adapter" in k for k in info["missing_keys"])
    model.eval()
    backbone = model.backbone
    blocks = backbone.transformer.resblocks
    for key, value in blocks[2].state_dict().items():
        if "adapter" not in key:
            assert torch.equal(value, blocks[1].state_dict()[key]), key
    video = torch.randn(2, 3, cfg.DATA.NUM_FRAMES, 16, 16)
    frames = video.transpose(1, 2).flatten(0, 1)
    with torch.no_grad():
        ours = backbone.forward_features(video)["frames"].flatten(0, 1)
        theirs = clip.encode_image(frames)
        assert (ours - theirs).abs().max() < 1e-6  # TED and temporal adapters are the identity
        for block in blocks:  # text adapters are not (release init): zero them to compare
            for slot in ("adapter_pre_attn", "adapter_pre_mlp"):
                if hasattr(block, slot):
                    getattr(block, slot).textad_fc2.weight.zero_()
        tokens = tokenize(["A video of abseiling", "a photo of a dog."])
        assert (backbone.encode_prompts(tokens)[0] - clip.encode_text(tokens)).abs().max() < 1e-6


def _ted_numpy(x, fc1, conv, fc2, ofc1, oconv, ofc2, frames):
    """Independent TED adapter: TE over every token's track, D over patch differences."""
    bt, length, dim = x.shape
    b, side = bt // frames, int(round((length - 1) ** 0.5))
    h = (x @ fc1[0].T + fc1[1]).reshape(b, frames, length, -1)
    te = np.zeros_like(h)
    for t in range(frames):
        for k in range(3):
            s = t + k - 1
            if 0 <= s < frames:
                te[:, t] += h[:, s] * conv[0][:, 0, k]
    te = (te + conv[1]).reshape(bt, length, -1) @ fc2[0].T + fc2[1]
    p = x[:, 1:].reshape(b, frames, length - 1, dim)
    delta = p - np.concatenate([p[:, :1], p[:, :-1]], axis=1)
    d = (delta @ ofc1[0].T + ofc1[1]).reshape(b, frames, side, side, -1)
    pad = np.pad(d, ((0, 0), (0, 0), (1, 1), (1, 1), (0, 0)))
    out = np.zeros_like(d)
    for i in range(3):
        for j in range(3):
            out += pad[:, :, i:i + side, j:j + side] * oconv[0][:, 0, 0, i, j]
    off = (out + oconv[1]).reshape(bt, length - 1, -1) @ ofc2[0].T + ofc2[1]
    result = x + te
    result[:, 1:] += off
    return result


def test_ted_adapter_math_matches_an_independent_implementation():
    torch.manual_seed(0)
    adapter = TEDAdapter(dim=8, width=4, frames=3)
    for p in adapter.parameters():
        torch.nn.init.normal_(p)
    x = torch.randn(2 * 3, 1 + 4, 8)
    a, o = adapter, adapter.offset_adapter
    as_np = lambda m: (m.weight.detach().double().numpy(), m.bias.detach().double().numpy())  # noqa: E731
    expected = _ted_numpy(x.double().numpy(), as_np(a.fc1), as_np(a.conv), as_np(a.fc2), as_np(o.fc1),
                          as_np(o.conv), as_np(o.fc2), 3)
    assert np.abs(adapter(x).detach().double().numpy() - expected).max() < 1e-4


def test_eval_scores_are_the_softmax_of_100_cosines():
    cfg, model = tiny(mlm=False)
    model.eval()
    video = torch.randn(2, 3, cfg.DATA.NUM_FRAMES, 16, 16)
    with torch.no_grad():
        scores = model(video)
        features = model.backbone.forward_features(video)
        v = F.normalize(features["frames"].mean(1), dim=-1)
        t = F.normalize(model.backbone.encode_prompts(model.head.prompt_tokens)[0], dim=-1)
    assert torch.allclose(scores, F.softmax(100 * v @ t.T, dim=-1), atol=1e-6)
    cfg.M2CLIP.EVAL_SCORES = "fc"
    fc = build_model(cfg, inputs=model.checkpoint_inputs())
    fc.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert torch.allclose(fc.eval()(video), F.softmax(features["fc_logits"], dim=-1), atol=1e-6)


def test_contrastive_targets_and_double_softmax_flag():
    cfg, model = tiny(mlm=False)
    head = model.head
    video = F.normalize(torch.randn(3, 16), dim=-1)
    text = F.normalize(torch.randn(3, 16), dim=-1)
    same = torch.tensor([[1.0, 1, 0], [1, 1, 0], [0, 0, 1]])
    logits = model.backbone.logit_scale.exp() * video @ text.T
    target = torch.softmax(10 * same, dim=1)
    kl = lambda lg, tg: (tg * (tg.log() - torch.log_softmax(lg, dim=1))).sum() / 3  # noqa: E731
    with torch.no_grad():
        expected = (kl(logits, target) + kl(logits.T, target.T)) / 2
        assert torch.allclose(head.contrastive_loss(video, text, same), expected)
    # The release's quirk (cross-entropy of probabilities) is a flag, off by default.
    model.train()
    outputs = model(torch.randn(2, 3, cfg.DATA.NUM_FRAMES, 16, 16))
    targets, loss_fn = torch.tensor([0, 1]), get_loss_func("cross_entropy")(reduction="mean")
    plain = head.training_loss(outputs, targets, loss_fn)
    head.weights.XMODAL_CE_ON_PROBS = True
    quirk = head.training_loss(outputs, targets, loss_fn)
    head.weights.XMODAL_CE_ON_PROBS = False
    xmodal = outputs["logits"]
    delta = 0.5 * (F.cross_entropy(F.softmax(xmodal, -1), targets) - F.cross_entropy(xmodal, targets))
    assert torch.allclose(quirk - plain, delta, atol=1e-5)


def test_masked_prompts_mask_words_and_label_them_with_vocabulary_ids():
    cfg, model = tiny(mlm=True)
    head = model.head
    head.mask_rate = 1.0
    tokens, targets = head.masked_prompts(torch.tensor([1]))
    words = head.prompts[1].split()
    mask_id = tokenize("mask")[0, 1].item()
    assert tokens[0, 1: 1 + len(words)].eq(mask_id).all() and tokens[0, 1 + len(words)] == 49407
    assert targets[0, 1: 1 + len(words)].tolist() == [head.word_id[w.lower()] for w in words]
    assert targets[0, 0] == -100 and targets[0, 1 + len(words):].eq(-100).all()


@pytest.mark.parametrize("amp", [False, True])
def test_training_step_changes_only_adapters_and_trains_the_masked_lm(amp):
    cfg, model = tiny(mlm=True)
    cfg.TRAIN.ENABLE_AMP = amp
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainable = {model.published_key(k) for k, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("adapter" in k for k in trainable)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.0)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    loss_fn = get_loss_func("cross_entropy")(reduction="mean")
    video, labels = torch.randn(2, 3, cfg.DATA.NUM_FRAMES, 16, 16), torch.tensor([0, 2])
    for _ in range(2):  # the second step reaches the fc1s, which the zero-initialised convs shield at first
        loss = train_step(model, video, labels, loss_fn, optimizer, scaler, cfg, torch.device("cpu"))
        assert np.isfinite(loss)
    after = model.state_dict()
    changed = {k for k in after if not torch.equal(after[k], before[k])}
    # The last block's pre-MLP difference branch only touches patch tokens after the class token's
    # last attention: it cannot reach any output (true of the release too) and gets no gradient.
    dead = {k for k in trainable if k.startswith("visual.transformer.resblocks.1.adapter_pre_mlp.offset_adapter.")}
    assert len(dead) == 6
    assert changed == trainable - dead  # every other adapter moved (masked-LM head included); nothing frozen did
    assert any(k.startswith("mlm_adapter.") for k in changed)


def test_without_masked_lm_the_loss_has_no_mlm_term_and_the_mlm_head_gets_no_gradient():
    cfg, model = tiny(mlm=False)
    model.train()
    outputs = model(torch.randn(2, 3, cfg.DATA.NUM_FRAMES, 16, 16))
    loss = model.training_loss(outputs, torch.tensor([0, 1]), get_loss_func("cross_entropy")(reduction="mean"))
    loss.backward()
    assert torch.isfinite(loss)
    assert model.backbone.mlm_adapter.decoder.weight.grad is None
    assert model.backbone.visual.adapter_fc.weight.grad is not None


def test_mlm_vocabulary_file_and_prompt_vocabulary(tmp_path):
    path = tmp_path / "k400_mlm_lables.txt"
    path.write_text("a 0\nabseiling 1\nvideo 3\nof 2\n")
    assert read_mlm_vocab(str(path)) == ["a", "abseiling", "of", "video"]
    path.write_text("a 0\nb 0\n")
    with pytest.raises(ValueError, match="k400_mlm_lables.txt:2"):
        read_mlm_vocab(str(path))
    assert prompt_vocab(["A video of abseiling", "A video of air drumming"]) == \
        ["a", "abseiling", "air", "drumming", "of", "video"]


CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "configs",
                       "M2CLIP")


def _config_model(name: str):
    from m3a.config import load_config

    cfg = load_config(os.path.join(CONFIGS, name))
    prompts = [f"A video of class {i}" for i in range(cfg.MODEL.NUM_CLASSES)]
    with torch.device("meta"):
        return cfg, Recognizer(cfg, {"prompts": prompts, "mlm_vocab": []})


@pytest.mark.parametrize("config, name", [("K400_VITB16_8F.yaml", "k400"), ("SSV2_VITB16_8F.yaml", "ssv2")])
def test_recipe_configs_build_the_published_models(config, name):
    cfg, model = _config_model(config)
    ref = published(name)
    assert [[k, list(v.shape)] for k, v in model.state_dict().items()] == ref["state_dict"]
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == ref["trainable_params"]
    assert (cfg.DATA.NUM_FRAMES, cfg.DATA.TRAIN_CROP_SIZE, cfg.MODEL.HEAD_ACT) == (8, 224, "softmax")
    assert cfg.SOLVER.OPTIMIZING_METHOD == "adamw" and cfg.SOLVER.WARMUP_EPOCHS == 2.0
    assert cfg.SOLVER.LR_POLICY == "cosine_after_warmup" and cfg.SOLVER.WARMUP_START_LR == 0.0
    expected = {"k400": (2.8125e-4, 12, "dense", 16, True, 3, 4), "ssv2": (5e-4, 50, "tsn_rounded", 1, False, 1, 3)}[name]
    assert (cfg.SOLVER.BASE_LR, cfg.SOLVER.MAX_EPOCH, cfg.DATA.TEMPORAL_SAMPLER, cfg.DATA.SAMPLING_RATE,
            cfg.DATA.RANDOM_FLIP, cfg.TEST.NUM_ENSEMBLE_VIEWS, cfg.TEST.NUM_SPATIAL_CROPS) == expected
    data = cfg.DATA
    assert (data.INTERPOLATION, data.TEST_RESIZE, data.TEST_CROP_SIZE, cfg.TEST.CROP_OFFSETS) == (
        "bicubic", "short_side", 224, "even")
    augment = {"k400": ("", "short_side", "random", [224, 258]),
               "ssv2": ("rand-m7-n4-mstd0.5-inc1", "none", "random_resized", [224, 258])}[name]
    assert (data.RAND_AUGMENT, data.TRAIN_RESIZE, data.TRAIN_CROP, data.TRAIN_JITTER_SCALES) == augment
    assert data.RAND_AUGMENT_INTERPOLATION == {"k400": "bilinear", "ssv2": "bicubic"}[name]
    assert data.TARGET_FPS == {"k400": 30, "ssv2": 12}[name]
    assert data.RRC_SCALE == [0.08, 1.0] and data.RRC_RATIO == pytest.approx([3 / 4, 4 / 3])
    assert cfg.DATA.MEAN == [0.48145466, 0.4578275, 0.40821073] and cfg.DATA.LIST_FORMAT == "path_label"


def test_vit_l14_config_counts_follow_the_closed_forms():
    cfg, model = _config_model("K400_VITL14_8F.yaml")
    d, r, e, w, c, v = 1024, 384, 768, 768, 400, 520
    ted, t_adapter = 4 * d * r + 2 * d + 16 * r, 2 * e * (e // 2) + 5 * (e // 2) + e
    text_adapter, mlm, fc = 2 * w * r + r + w, w * w + 3 * w + v * w + v, d * c + c
    trainable = 24 * ted + t_adapter + fc + 2 * text_adapter + mlm
    mlm_block = 12 * w * w + 13 * w
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == trainable == 41_121_816
    assert sum(p.numel() for p in model.parameters()) == published("clip_vit_l14")["params"] + mlm_block + trainable
    assert len(model.backbone.visual.transformer.resblocks) == 24
    assert all(hasattr(b, "adapter_pre_mlp") for b in model.backbone.visual.transformer.resblocks)


def test_a_recipe_config_shrunk_to_tiny_trains_a_step():
    from m3a.config import load_config

    cfg = load_config(os.path.join(CONFIGS, "SSV2_VITB16_8F.yaml"))
    cfg.TRAIN.ENABLE_AMP, cfg.LOG_MODEL_INFO = False, False
    M2Clip.make_tiny(cfg)
    inputs = M2ClipHead.make_tiny(cfg)
    model = build_model(cfg, inputs=inputs).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    loss = train_step(model, torch.randn(2, 3, cfg.DATA.NUM_FRAMES, 16, 16), torch.tensor([1, 3]),
                      get_loss_func(cfg.MODEL.LOSS_FUNC)(reduction="mean"), optimizer,
                      torch.amp.GradScaler("cpu", enabled=False), cfg, torch.device("cpu"))
    assert np.isfinite(loss) and loss > 0


def test_recipe_optimizer_groups_halve_the_text_adapters_lr_and_do_not_decay_biases():
    from m3a.config import load_config
    from m3a.engine.optimizer import construct_optimizer, set_lr

    cfg = load_config(os.path.join(CONFIGS, "K400_VITB16_8F.yaml"))
    cfg.LOG_MODEL_INFO = False
    M2Clip.make_tiny(cfg)
    model = build_model(cfg, inputs=M2ClipHead.make_tiny(cfg))
    optimizer = construct_optimizer(model, cfg)
    assert isinstance(optimizer, torch.optim.AdamW)
    set_lr(optimizer, 1e-3)
    names = {id(p): model.published_key(k) for k, p in model.named_parameters()}
    seen = set()
    for group in optimizer.param_groups:
        for p in group["params"]:
            name = names[id(p)]
            seen.add(name)
            assert group["lr"] == (5e-4 if "textad_" in name else 1e-3), name
            if name == "mlm_adapter.transform.LayerNorm.bias":  # norms use BN.WEIGHT_DECAY (0.01)
                assert group["weight_decay"] == 0.01
            elif name.endswith(".bias"):
                assert group["weight_decay"] == 0.0, name
            elif p.ndim > 1:
                assert group["weight_decay"] == 0.01, name
    assert seen == {model.published_key(k) for k, p in model.named_parameters() if p.requires_grad}


def test_cached_prompt_embeddings_follow_weight_changes():
    cfg, model = tiny(mlm=False)
    model.eval()
    video = torch.randn(1, 3, cfg.DATA.NUM_FRAMES, 16, 16)
    with torch.no_grad():
        first = model(video)
        assert torch.equal(model(video), first)  # served from the cache
        state = model.state_dict()
        state["transformer.resblocks.1.adapter_pre_mlp.textad_fc2.bias"] = torch.randn(16)
        model.load_state_dict(state)
        fresh = F.softmax(100 * F.normalize(model.backbone.forward_features(video)["frames"].mean(1), dim=-1)
                          @ F.normalize(model.backbone.encode_prompts(model.head.prompt_tokens)[0], dim=-1).T, -1)
        assert torch.allclose(model(video), fresh, atol=1e-6) and not torch.allclose(fresh, first)
