"""M2CLIP (Wang et al., AAAI 2024): a frozen CLIP adapted to video by small trainable adapters.

The backbone ``m2clip`` holds the release's whole model at the top level of the state dict, with
its key names and order (480 keys for the Kinetics model, 720 for SSv2):

- ``visual.*``: CLIP's image tower with a TED adapter (:class:`TEDAdapter`) before the MLP branch
  of each of the last ``M2CLIP.VIS_ADAPTER_LAYERS`` blocks (``pre_mlp``, Kinetics) or before both
  branches (``pre_attn`` + ``pre_mlp``, SSv2); every block runs (24 for ViT-L/14);
  ``visual.t_adapter`` (a temporal adapter after the projection) and ``visual.adapter_fc`` (the
  visual classifier over the frame-averaged class token, after ``ln_post`` and dropout);
- the text tower: CLIP's 12 encoder blocks plus ``transformer.resblocks.12``, a copy of block 11
  used only as the cross-attention block of the masked-LM head; text adapters before the MLP
  (and attention) of the last ``M2CLIP.TEXT_ADAPTER_LAYERS`` of these 13 blocks;
- ``mlm_adapter``: the masked-LM prediction head (dense -> GELU -> LayerNorm -> decoder + bias).

Only parameters whose name contains ``adapter`` train (16,138,136 of 168,911,257 for the
Kinetics ViT-B/16 model); everything else, ``logit_scale`` included, is frozen. OpenAI's release
files (TorchScript archives or state dicts) load through ``load_checkpoint`` (layout
``openai_clip``: the integer entries are dropped, block 12 is filled with block 11).

Layout ``video_text``: ``forward_features`` returns ``{"frames": (B, T, E) frame embeddings,
"fc_logits": (B, C)}``; the ``video_text`` neck adds the clip embedding (the frames' mean) and
the ``m2clip`` head (:mod:`m3a.models.m2clip_head`) scores it against the class prompts.
"""
from typing import Dict, List

import torch
import torch.nn as nn
from fvcore.common.config import CfgNode

from m3a.config.errors import ConfigError
from m3a.models.backbone import Backbone, Inputs
from m3a.models.build import BACKBONE_REGISTRY, NECK_REGISTRY, register
from m3a.models.clip.adapters import TEDAdapter, TemporalAdapter, TextAdapter
from m3a.models.clip.layers import ADAPTER_SLOTS
from m3a.models.clip.model import CLIP_SPECS, ClipSpec, ClipTowers, convert_openai_state, is_openai_clip_state
from m3a.models.necks import Neck

# Blocks of CLIP's text encoder; M2CLIP appends one more (the masked-LM cross-attention block).
TEXT_ENCODER_LAYERS = 12


class PredictionTransform(nn.Module):
    """``mlm_adapter.transform``: dense -> GELU (erf) -> LayerNorm (eps 1e-12), BERT-style."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.dense = nn.Linear(width, width)
        self.LayerNorm = nn.LayerNorm(width, eps=1e-12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, L, W) -> (N, L, W)."""
        return self.LayerNorm(nn.functional.gelu(self.dense(x)))


class MaskedLMHead(nn.Module):
    """``mlm_adapter``: word logits (N, L, V) of text features; decoder without bias + ``bias``."""

    def __init__(self, width: int, vocab: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(vocab))
        self.transform = PredictionTransform(width)
        self.decoder = nn.Linear(width, vocab, bias=False)
        for linear in (self.transform.dense, self.decoder):
            nn.init.normal_(linear.weight, std=0.02)
        nn.init.zeros_(self.transform.dense.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, L, W) -> (N, L, V)."""
        return self.decoder(self.transform(x)) + self.bias


def clip_spec(cfg: CfgNode) -> ClipSpec:
    """The CLIP architecture of ``M2CLIP.ARCH`` (``custom``: the M2CLIP.CUSTOM sizes at
    DATA.TRAIN_CROP_SIZE)."""
    if cfg.M2CLIP.ARCH != "custom":
        return CLIP_SPECS[cfg.M2CLIP.ARCH]
    c = cfg.M2CLIP.CUSTOM
    return ClipSpec(c.EMBED_DIM, cfg.DATA.TRAIN_CROP_SIZE, c.VISION_LAYERS, c.VISION_WIDTH, c.PATCH_SIZE, 77, 49408,
                    c.TEXT_WIDTH, c.TEXT_HEADS, TEXT_ENCODER_LAYERS if c.TEXT_LAYERS == 0 else c.TEXT_LAYERS,
                    c.VISION_HEAD_WIDTH)


def _last_blocks(positions: List[str], layers: int, total: int, factory):
    """Adapter factories of block i: ``positions`` in the last ``layers`` of ``total`` blocks."""
    return lambda i: {slot: factory for slot in positions} if i >= total - layers else {}


def video_adapters(cfg: CfgNode, spec: ClipSpec):
    """Adapter factories of the visual blocks: TED adapters at ``M2CLIP.VIS_ADAPTER_POS`` of the
    last ``M2CLIP.VIS_ADAPTER_LAYERS`` blocks."""
    m = cfg.M2CLIP
    return _last_blocks(m.VIS_ADAPTER_POS, m.VIS_ADAPTER_LAYERS, spec.vision_layers,
                        lambda: TEDAdapter(spec.vision_width, m.ADAPTER_WIDTH, cfg.DATA.NUM_FRAMES,
                                           difference=m.USE_DIFF))


def temporal_adapter(cfg: CfgNode, spec: ClipSpec) -> TemporalAdapter:
    """The temporal adapter over the frame embeddings (``visual.t_adapter``)."""
    return TemporalAdapter(spec.embed_dim, cfg.M2CLIP.T_ADAPTER_WIDTH or spec.embed_dim // 2, cfg.DATA.NUM_FRAMES)


def add_m2clip_config(cfg: CfgNode) -> None:
    """The M2CLIP.* keys (shared by the m2clip backbone and head)."""
    if "M2CLIP" in cfg:
        return
    cfg.M2CLIP = CfgNode()
    # CLIP architecture: ViT-B/16, ViT-L/14 or custom (sizes in M2CLIP.CUSTOM; tests, demo).
    cfg.M2CLIP.ARCH = "ViT-B/16"
    # Bottleneck width of the TED adapters.
    cfg.M2CLIP.ADAPTER_WIDTH = 384
    # Where the TED adapters sit in a visual block: [pre_mlp] (Kinetics) or [pre_attn, pre_mlp] (SSv2).
    cfg.M2CLIP.VIS_ADAPTER_POS = ["pre_mlp"]
    # TED adapters in the last N visual blocks (12 = all of ViT-B/16; 24 = all of ViT-L/14).
    cfg.M2CLIP.VIS_ADAPTER_LAYERS = 12
    # The TED adapters' frame-difference (D) branch.
    cfg.M2CLIP.USE_DIFF = True
    # Bottleneck width of the post-projection temporal adapter (0 = embed_dim / 2).
    cfg.M2CLIP.T_ADAPTER_WIDTH = 0
    # Bottleneck width of the text adapters.
    cfg.M2CLIP.TEXT_ADAPTER_WIDTH = 384
    # Where text adapters sit in a text block: [pre_mlp] (Kinetics) or [pre_attn, pre_mlp] (SSv2).
    cfg.M2CLIP.TEXT_ADAPTER_POS = ["pre_mlp"]
    # Text adapters in the last N of the 13 text blocks (12 encoder blocks + the masked-LM block).
    cfg.M2CLIP.TEXT_ADAPTER_LAYERS = 2
    # Dropout before the visual classifier (visual.adapter_fc).
    cfg.M2CLIP.FC_DROPOUT = 0.5
    # Prompt of a class name ({} = the name).
    cfg.M2CLIP.PROMPT = "A video of {}"
    # Scale of the cosine similarities in the cross-modal classification and eval scores.
    cfg.M2CLIP.XMODAL_SCALE = 100.0
    # Eval scores: video_text (cross-modal, the published ranking) or fc (visual classifier).
    cfg.M2CLIP.EVAL_SCORES = "video_text"
    cfg.M2CLIP.LOSS = CfgNode()
    # Weight of the video-text contrastive loss (KL to soft same-class targets).
    cfg.M2CLIP.LOSS.W_CONTRAST = 0.5
    # Weight of the cross-modal classification loss over all class prompts.
    cfg.M2CLIP.LOSS.W_XMODAL = 0.5
    # Weight of the visual classifier's loss.
    cfg.M2CLIP.LOSS.W_FC = 1.0
    # Weight of the masked-LM loss (used when M2CLIP.MLM.ENABLE).
    cfg.M2CLIP.LOSS.W_MLM = 0.1
    # Temperature of the contrastive soft targets: softmax(T * same_class).
    cfg.M2CLIP.LOSS.KL_TARGET_TEMP = 10.0
    # The release's quirk: the cross-modal loss gets probabilities (a double softmax), not logits.
    cfg.M2CLIP.LOSS.XMODAL_CE_ON_PROBS = False
    cfg.M2CLIP.MLM = CfgNode()
    # Train the masked-LM head (the release's guard never let it run).
    cfg.M2CLIP.MLM.ENABLE = False
    # Fraction of prompt words replaced by "mask" (at least one).
    cfg.M2CLIP.MLM.MASK_RATE = 0.2
    # Word vocabulary of the masked-LM head, lines "word id" (the release's *_mlm_lables.txt);
    # "" = the sorted distinct lower-cased words of the class prompts.
    cfg.M2CLIP.MLM.VOCAB_FILE = ""
    # Output size of the masked-LM head (520 for Kinetics-400, 234 for SSv2; = the vocabulary).
    cfg.M2CLIP.MLM.VOCAB_SIZE = 520
    cfg.M2CLIP.CUSTOM = CfgNode()
    # Sizes of M2CLIP.ARCH custom: joint embedding, image tower width/blocks/patch/head width,
    # text tower width/heads/encoder blocks (0 = 12).
    cfg.M2CLIP.CUSTOM.EMBED_DIM = 64
    cfg.M2CLIP.CUSTOM.VISION_WIDTH = 64
    cfg.M2CLIP.CUSTOM.VISION_LAYERS = 2
    cfg.M2CLIP.CUSTOM.PATCH_SIZE = 16
    cfg.M2CLIP.CUSTOM.VISION_HEAD_WIDTH = 32
    cfg.M2CLIP.CUSTOM.TEXT_WIDTH = 64
    cfg.M2CLIP.CUSTOM.TEXT_HEADS = 2
    cfg.M2CLIP.CUSTOM.TEXT_LAYERS = 0


def check_clip_vision_config(cfg: CfgNode) -> None:
    """ConfigError for invalid M2CLIP.* values of the image tower (architecture, TED and temporal
    adapters) and crop sizes: the checks of every backbone built on it (m2clip, clip_video)."""
    m = cfg.M2CLIP
    if m.ARCH not in list(CLIP_SPECS) + ["custom"]:
        raise ConfigError(f"M2CLIP.ARCH must be one of {', '.join(CLIP_SPECS)}, custom; got '{m.ARCH}'")
    spec = clip_spec(cfg)
    _check_adapters(m, "VIS_ADAPTER_POS", "VIS_ADAPTER_LAYERS", spec.vision_layers, "ADAPTER_WIDTH")
    if m.T_ADAPTER_WIDTH < 0:
        raise ConfigError(f"M2CLIP.T_ADAPTER_WIDTH must be >= 0, got {m.T_ADAPTER_WIDTH}")
    for key in ("TRAIN_CROP_SIZE", "TEST_CROP_SIZE"):
        if cfg.DATA[key] != spec.image_resolution:
            raise ConfigError(f"DATA.{key} must be {spec.image_resolution} for M2CLIP.ARCH {m.ARCH}, "
                              f"got {cfg.DATA[key]}")


def check_m2clip_config(cfg: CfgNode) -> None:
    """ConfigError for invalid M2CLIP.* values: the image tower's (:func:`check_clip_vision_config`),
    the text tower's, the masked-LM head's and the visual classifier's."""
    check_clip_vision_config(cfg)
    m, spec = cfg.M2CLIP, clip_spec(cfg)
    _check_adapters(m, "TEXT_ADAPTER_POS", "TEXT_ADAPTER_LAYERS", spec.transformer_layers + 1, "TEXT_ADAPTER_WIDTH")
    if m.MLM.VOCAB_SIZE < 1 or not 0.0 <= m.FC_DROPOUT < 1.0:
        raise ConfigError("M2CLIP.MLM.VOCAB_SIZE must be >= 1 and M2CLIP.FC_DROPOUT in [0, 1); "
                          f"got {m.MLM.VOCAB_SIZE}, {m.FC_DROPOUT}")
    if spec.embed_dim != spec.transformer_width:
        raise ConfigError(f"M2CLIP needs the joint embedding width ({spec.embed_dim}) to equal the text width "
                          f"({spec.transformer_width}): the masked-LM block attends from text to frame embeddings")


def _check_adapters(m: CfgNode, pos_key: str, layers_key: str, blocks: int, width_key: str) -> None:
    """One tower's adapters: distinct slots at ``pos_key``, ``layers_key`` in [0, ``blocks``],
    ``width_key`` >= 1."""
    bad = [p for p in m[pos_key] if p not in ADAPTER_SLOTS]
    if bad or len(set(m[pos_key])) != len(m[pos_key]):
        raise ConfigError(f"M2CLIP.{pos_key} must list distinct values of {', '.join(ADAPTER_SLOTS)}; got {m[pos_key]}")
    if not 0 <= m[layers_key] <= blocks:
        raise ConfigError(f"M2CLIP.{layers_key} must be in [0, {blocks}], got {m[layers_key]}")
    if m[width_key] < 1:
        raise ConfigError(f"M2CLIP.{width_key} must be >= 1, got {m[width_key]}")


@register(BACKBONE_REGISTRY, "m2clip")
class M2Clip(Backbone, ClipTowers):
    """CLIP with M2CLIP's adapters and heads' parameters, in the release's key layout."""

    LAYOUT = "video_text"
    DEFAULT_NECK = "video_text"
    state_prefix = ""

    def __init__(self, cfg: CfgNode) -> None:
        spec = clip_spec(cfg)
        super().__init__(spec.embed_dim, cfg.DATA.NUM_FRAMES)
        m = cfg.M2CLIP
        text_blocks = spec.transformer_layers + 1
        text = _last_blocks(m.TEXT_ADAPTER_POS, m.TEXT_ADAPTER_LAYERS, text_blocks,
                            lambda: TextAdapter(spec.transformer_width, m.TEXT_ADAPTER_WIDTH))
        self.build_towers(spec, video_adapters(cfg, spec), text, text_blocks)
        self.visual.t_adapter = temporal_adapter(cfg, spec)
        self.visual.adapter_fc = nn.Linear(spec.vision_width, cfg.MODEL.NUM_CLASSES)
        nn.init.normal_(self.visual.adapter_fc.weight, std=0.02)
        nn.init.zeros_(self.visual.adapter_fc.bias)
        self.visual.fc_dropout = nn.Dropout(m.FC_DROPOUT)
        self.mlm_adapter = MaskedLMHead(spec.transformer_width, m.MLM.VOCAB_SIZE)
        self._copy_mlm_block()
        for name, param in self.named_parameters():
            param.requires_grad_("adapter" in name)

    @classmethod
    def add_config(cls, cfg: CfgNode) -> None:
        """The M2CLIP.* keys (see :func:`add_m2clip_config`)."""
        add_m2clip_config(cfg)

    @classmethod
    def check_config(cls, cfg: CfgNode) -> None:
        """Validate the M2CLIP.* keys and the crop sizes."""
        check_m2clip_config(cfg)

    @classmethod
    def make_tiny(cls, cfg: CfgNode) -> None:
        """A custom CLIP of width 16 on 2 frames of 16 x 16 (4 x 4 patches)."""
        c = cfg.M2CLIP.CUSTOM
        cfg.M2CLIP.ARCH = "custom"
        c.EMBED_DIM, c.VISION_WIDTH, c.VISION_LAYERS, c.PATCH_SIZE, c.VISION_HEAD_WIDTH = 16, 16, 2, 4, 8
        c.TEXT_WIDTH, c.TEXT_HEADS, c.TEXT_LAYERS = 16, 2, 2
        cfg.M2CLIP.ADAPTER_WIDTH = cfg.M2CLIP.TEXT_ADAPTER_WIDTH = 8
        cfg.M2CLIP.VIS_ADAPTER_POS = cfg.M2CLIP.TEXT_ADAPTER_POS = ["pre_attn", "pre_mlp"]
        cfg.M2CLIP.VIS_ADAPTER_LAYERS, cfg.M2CLIP.TEXT_ADAPTER_LAYERS = 2, 3
        cfg.DATA.NUM_FRAMES, cfg.DATA.TRAIN_CROP_SIZE, cfg.DATA.TEST_CROP_SIZE = 2, 16, 16

    @classmethod
    def feature_dim(cls, cfg: CfgNode) -> int:
        """The joint embedding width."""
        return clip_spec(cfg).embed_dim

    def _copy_mlm_block(self) -> None:
        """Fill the masked-LM block (the last text block) with the last encoder block's weights."""
        blocks = self.transformer.resblocks
        source = blocks[self.spec.transformer_layers - 1].state_dict()
        target = blocks[self.spec.transformer_layers]
        with torch.no_grad():
            for name, value in target.state_dict(keep_vars=True).items():
                if "adapter" not in name:
                    value.copy_(source[name])

    def convert_state_dict(self, state: Dict[str, torch.Tensor]):
        """OpenAI's layout (layout ``openai_clip``): drop the integer entries, fill the masked-LM
        block with the last encoder block; other state dicts are ours (``native``)."""
        extra = f"transformer.resblocks.{self.spec.transformer_layers}."
        if not is_openai_clip_state(state) or any(k.startswith(extra) for k in state):
            return state, "native"
        state, _ = convert_openai_state(state)
        last = f"transformer.resblocks.{self.spec.transformer_layers - 1}."
        for key in [k for k in state if k.startswith(last)]:
            state[extra + key[len(last):]] = state[key]
        return state, "openai_clip"

    def forward_features(self, inputs: Inputs) -> Dict[str, torch.Tensor]:
        """Clips (B, 3, T, H, W) -> {"frames": (B, T, E), "fc_logits": (B, NUM_CLASSES)}."""
        x = self.single_input(inputs, "m2clip")
        b, t = x.shape[0], x.shape[2]
        tokens = self.visual.tokens(x.transpose(1, 2).flatten(0, 1))
        cls = tokens[:, 0].unflatten(0, (b, t)).mean(dim=1)
        fc_logits = self.visual.adapter_fc(self.visual.fc_dropout(self.visual.ln_post(cls)))
        frames = self.visual.t_adapter(self.visual.embed(tokens))
        return {"frames": frames.unflatten(0, (b, t)), "fc_logits": fc_logits}

    def encode_prompts(self, tokens: torch.Tensor):
        """Text embeddings (N, E) and the encoder's token features (N, 77, W) of prompts."""
        features = self.text_tokens(tokens)
        return self.project_text(features, tokens), features

    def mlm_logits(self, text_features: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """Masked-LM word logits (N, 77, V): the last text block cross-attends from the text
        features to the frame embeddings (N, T, E), then ln_final and ``mlm_adapter``."""
        block = self.transformer.resblocks[self.spec.transformer_layers]
        return self.mlm_adapter(self.ln_final(block(text_features, context=frames)))

    def gradcam_layer(self) -> nn.Module:
        """The last visual block."""
        return self.visual.transformer.resblocks[-1]


@register(NECK_REGISTRY, "video_text")
class VideoTextNeck(Neck):
    """Adds the clip embedding (B, E), the mean of the frame embeddings, to ``video_text``
    features (M2CLIP's average pooling)."""

    LAYOUTS = ("video_text",)

    def forward(self, x: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """{"frames", "fc_logits"} -> the same plus "video"."""
        return dict(x, video=x["frames"].mean(dim=1))
