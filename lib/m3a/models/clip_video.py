"""The CLIP video encoder ``clip_video``: M2CLIP's image tower alone, for any pooled-feature head.

CLIP's image tower in OpenAI's key layout (``visual.*``), with M2CLIP's TED adapters in the last
``M2CLIP.VIS_ADAPTER_LAYERS`` blocks (at ``M2CLIP.VIS_ADAPTER_POS``) and the temporal adapter
``visual.t_adapter`` after the projection (the keys of the M2CLIP release's image tower), but
without the text tower and without M2CLIP's visual classifier. The architecture and adapter
keys are M2CLIP's (``M2CLIP.ARCH``, ``ADAPTER_WIDTH``, ``VIS_ADAPTER_*``, ``USE_DIFF``,
``T_ADAPTER_WIDTH``, ``CUSTOM``); ``CLIP_VIDEO.TRAIN`` chooses what trains: ``adapters`` (CLIP
frozen, the adapters train, as in M2CLIP) or ``all`` (the whole tower is fine-tuned).

Layout ``tokens`` with one token per frame: the frame's joint-space embedding after the
temporal adapter, (B, T, 1, E); the ``cls_token`` neck averages them into M2CLIP's video
embedding (B, E). OpenAI's release files load through ``load_checkpoint`` (layout
``openai_clip``: the text tower and the integer entries are dropped; the adapters stay as
initialised, the identity), and so do M2CLIP checkpoints (layout ``m2clip``: their image tower
with its adapters; text tower, masked-LM head and ``visual.adapter_fc`` dropped).
"""
from typing import Dict

import torch
import torch.nn as nn
from fvcore.common.config import CfgNode

from m3a.config.errors import ConfigError
from m3a.models.backbone import Backbone, Inputs
from m3a.models.build import BACKBONE_REGISTRY, register
from m3a.models.clip.model import VisionTransformer, is_openai_clip_state
from m3a.models.m2clip import (M2Clip, add_m2clip_config, check_clip_vision_config, clip_spec, temporal_adapter,
                               video_adapters)

# What trains (CLIP_VIDEO.TRAIN).
TRAIN_CHOICES = ("adapters", "all")
# Keys of an M2CLIP checkpoint's image tower that belong to its own classifier.
M2CLIP_CLASSIFIER = "visual.adapter_fc."
# Key prefixes of CLIP's text tower and M2CLIP's masked-LM head: a state dict with any of them is
# a CLIP or M2CLIP file, not a checkpoint of this backbone with a head.
CLIP_TEXT_SIDE = ("token_embedding.", "positional_embedding", "transformer.", "ln_final.", "text_projection",
                  "logit_scale", "mlm_adapter.")


@register(BACKBONE_REGISTRY, "clip_video")
class ClipVideo(Backbone):
    """Clips (B, 3, T, H, W) -> per-frame CLIP embeddings as tokens (B, T, 1, E)."""

    LAYOUT = "tokens"
    DEFAULT_NECK = "cls_token"
    state_prefix = ""

    def __init__(self, cfg: CfgNode) -> None:
        spec = clip_spec(cfg)
        super().__init__(spec.embed_dim, cfg.DATA.NUM_FRAMES)
        self.visual = VisionTransformer.from_spec(spec, video_adapters(cfg, spec))
        self.visual.t_adapter = temporal_adapter(cfg, spec)
        if cfg.CLIP_VIDEO.TRAIN == "adapters":
            for name, param in self.named_parameters():
                param.requires_grad_("adapter" in name)

    @classmethod
    def add_config(cls, cfg: CfgNode) -> None:
        """The M2CLIP.* keys (architecture and adapters) and CLIP_VIDEO.TRAIN."""
        add_m2clip_config(cfg)
        cfg.CLIP_VIDEO = CfgNode()
        # What trains: adapters (CLIP frozen, the TED and temporal adapters train) or all (fine-tune).
        cfg.CLIP_VIDEO.TRAIN = "adapters"

    @classmethod
    def check_config(cls, cfg: CfgNode) -> None:
        """Validate the image tower's M2CLIP.* keys, the crop sizes and CLIP_VIDEO.TRAIN (the text
        tower's, masked-LM head's and visual classifier's keys are M2CLIP's, not used here)."""
        check_clip_vision_config(cfg)
        if cfg.CLIP_VIDEO.TRAIN not in TRAIN_CHOICES:
            raise ConfigError(f"CLIP_VIDEO.TRAIN must be one of {', '.join(TRAIN_CHOICES)}, "
                              f"got '{cfg.CLIP_VIDEO.TRAIN}'")

    @classmethod
    def make_tiny(cls, cfg: CfgNode) -> None:
        """M2CLIP's tiny custom CLIP (width 16, 2 frames of 16 x 16)."""
        M2Clip.make_tiny(cfg)

    @classmethod
    def feature_dim(cls, cfg: CfgNode) -> int:
        """The joint embedding width (512 for ViT-B/16)."""
        return clip_spec(cfg).embed_dim

    def convert_state_dict(self, state: Dict[str, torch.Tensor]):
        """OpenAI's CLIP files (``openai_clip``) and M2CLIP checkpoints (``m2clip``), recognised by
        their text side: keep their image tower; other state dicts (ours: ``visual.*`` and the
        head's keys) are ``native``."""
        if not any(k.startswith(CLIP_TEXT_SIDE) for k in state):
            return state, "native"
        layout = "openai_clip" if is_openai_clip_state(state) and not any("adapter" in k for k in state) else "m2clip"
        kept = type(state)((k, v) for k, v in state.items()
                           if k.startswith("visual.") and not k.startswith(M2CLIP_CLASSIFIER))
        return kept, layout

    def forward_features(self, inputs: Inputs) -> torch.Tensor:
        """Clips (B, 3, T, H, W) -> (B, T, 1, E): every frame's embedding after the temporal adapter."""
        x = self.single_input(inputs, "clip_video")
        b, t = x.shape[0], x.shape[2]
        tokens = self.visual.tokens(x.transpose(1, 2).flatten(0, 1))
        frames = self.visual.t_adapter(self.visual.embed(tokens))
        return frames.unflatten(0, (b, t)).unsqueeze(2)

    def gradcam_layer(self) -> nn.Module:
        """The last visual block."""
        return self.visual.transformer.resblocks[-1]
