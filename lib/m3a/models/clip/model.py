"""CLIP ViT-B/16 and ViT-L/14 image and text encoders in OpenAI's state-dict layout.

:class:`CLIP` has exactly the keys of OpenAI's release files (302 for ViT-B/16, 446 for ViT-L/14,
in the same order): ``positional_embedding``, ``text_projection``, ``logit_scale``, the image
tower under ``visual.`` (all of its blocks run: 12 for B/16, 24 for L/14), the text tower under
``transformer.``, ``token_embedding``, ``ln_final``. Subclasses (M2CLIP) add adapters through the
``visual_adapters`` / ``text_adapters`` factories and extra text blocks via ``text_layers``.
:func:`convert_openai_state` drops the three integer entries that the release files carry.
"""
import math
from typing import Callable, Dict, NamedTuple, Optional, Tuple

import torch
import torch.nn as nn

from m3a.models.clip.layers import LayerNorm, Transformer, causal_mask

# Integer entries of OpenAI's TorchScript files that are not weights.
OPENAI_EXTRA_KEYS = ("input_resolution", "context_length", "vocab_size")


class ClipSpec(NamedTuple):
    """Hyper-parameters of one CLIP architecture (OpenAI's ``build_model`` arguments)."""

    embed_dim: int
    image_resolution: int
    vision_layers: int
    vision_width: int
    vision_patch_size: int
    context_length: int
    vocab_size: int
    transformer_width: int
    transformer_heads: int
    transformer_layers: int
    # Width of one attention head of the image tower (64 in every release).
    vision_head_width: int = 64

    @property
    def vision_heads(self) -> int:
        """Attention heads of the image tower (width / head width)."""
        return self.vision_width // self.vision_head_width


# The released architectures by name.
CLIP_SPECS: Dict[str, ClipSpec] = {
    "ViT-B/16": ClipSpec(512, 224, 12, 768, 16, 77, 49408, 512, 8, 12),
    "ViT-L/14": ClipSpec(768, 224, 24, 1024, 14, 77, 49408, 768, 12, 12),
}

AdapterFactories = Optional[Callable[[int], dict]]


class VisionTransformer(nn.Module):
    """Frames (N, 3, H, W) -> tokens (N, 1 + (H/p)(W/p), width) after the last block."""

    def __init__(self, resolution: int, patch: int, width: int, layers: int, heads: int, output_dim: int,
                 adapters: AdapterFactories = None) -> None:
        super().__init__()
        if resolution % patch:
            raise ValueError(f"image resolution {resolution} is not a multiple of the patch size {patch}")
        scale = width ** -0.5
        self.grid = resolution // patch
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn(self.grid ** 2 + 1, width))
        self.proj = nn.Parameter(scale * torch.randn(width, output_dim))
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch, stride=patch, bias=False)
        self.ln_pre = LayerNorm(width)
        self.transformer = Transformer(width, layers, heads, adapters)
        self.ln_post = LayerNorm(width)

    @classmethod
    def from_spec(cls, spec: ClipSpec, adapters: AdapterFactories = None) -> "VisionTransformer":
        """The image tower of the CLIP model ``spec`` describes, with ``adapters`` in its blocks."""
        return cls(spec.image_resolution, spec.vision_patch_size, spec.vision_width, spec.vision_layers,
                   spec.vision_heads, spec.embed_dim, adapters)

    def tokens(self, frames: torch.Tensor) -> torch.Tensor:
        """Tokens of the last block (class token first), before ``ln_post``."""
        x = self.conv1(frames).flatten(2).transpose(1, 2)
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        return self.transformer(self.ln_pre(x))

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """The joint-space embedding of tokens' class token: ln_post(x[:, 0]) @ proj."""
        return self.ln_post(tokens[:, 0]) @ self.proj

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """Image embeddings (N, output_dim) (OpenAI's ``encode_image``)."""
        return self.embed(self.tokens(frames))


class ClipTowers:
    """The two towers of CLIP as a mixin of an ``nn.Module`` (so that a registered backbone can
    hold them at the top level of its state dict): :meth:`build_towers` registers them in OpenAI's
    order; ``text_layers`` blocks in the text tower (the first ``spec.transformer_layers`` form the
    text encoder)."""

    def build_towers(self, spec: ClipSpec, visual_adapters: AdapterFactories = None,
                     text_adapters: AdapterFactories = None, text_layers: Optional[int] = None) -> None:
        """Register OpenAI's parameters and modules on ``self`` (initialised as OpenAI does)."""
        self.spec = spec
        width = spec.transformer_width
        self.positional_embedding = nn.Parameter(torch.empty(spec.context_length, width))
        self.text_projection = nn.Parameter(torch.empty(width, spec.embed_dim))
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        self.visual = VisionTransformer.from_spec(spec, visual_adapters)
        self.transformer = Transformer(width, text_layers or spec.transformer_layers, spec.transformer_heads,
                                       text_adapters)
        self.token_embedding = nn.Embedding(spec.vocab_size, width)
        self.ln_final = LayerNorm(width)
        self._init_text()

    def _init_text(self) -> None:
        """OpenAI's initialisation of the text tower (the weights are replaced by a release)."""
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        width, layers = self.transformer.width, self.spec.transformer_layers
        proj_std, attn_std, fc_std = (width ** -0.5) * ((2 * layers) ** -0.5), width ** -0.5, (2 * width) ** -0.5
        for block in self.transformer.resblocks:
            nn.init.normal_(block.attn.in_proj_weight, std=attn_std)
            nn.init.normal_(block.attn.out_proj.weight, std=proj_std)
            nn.init.normal_(block.mlp.c_fc.weight, std=fc_std)
            nn.init.normal_(block.mlp.c_proj.weight, std=proj_std)
        nn.init.normal_(self.text_projection, std=width ** -0.5)

    def encode_image(self, frames: torch.Tensor) -> torch.Tensor:
        """Image embeddings (N, embed_dim) of frames (N, 3, H, W)."""
        return self.visual(frames)

    def text_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token features (N, 77, width) of the text encoder's last block, before ``ln_final``."""
        x = self.token_embedding(tokens) + self.positional_embedding
        mask = causal_mask(tokens.shape[1], x.device)
        return self.transformer(x, mask, blocks=range(self.spec.transformer_layers))

    def project_text(self, features: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Text embeddings: ln_final of the end-of-text token's features @ text_projection."""
        eot = features[torch.arange(features.shape[0], device=features.device), tokens.argmax(dim=-1)]
        return self.ln_final(eot) @ self.text_projection

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """Text embeddings (N, embed_dim) of token ids (N, 77) (OpenAI's ``encode_text``)."""
        return self.project_text(self.text_tokens(tokens), tokens)


class CLIP(ClipTowers, nn.Module):
    """OpenAI's CLIP (image and text encoders) with exactly the release's keys."""

    def __init__(self, spec: ClipSpec) -> None:
        nn.Module.__init__(self)
        self.build_towers(spec)


def convert_openai_state(state: Dict[str, torch.Tensor]) -> Tuple[Dict[str, torch.Tensor], list]:
    """OpenAI's state dict without its integer entries; return it and the dropped keys."""
    dropped = [k for k in OPENAI_EXTRA_KEYS if k in state]
    return type(state)((k, v) for k, v in state.items() if k not in OPENAI_EXTRA_KEYS), dropped


def is_openai_clip_state(state: Dict[str, torch.Tensor]) -> bool:
    """True for a state dict in OpenAI CLIP's layout (a whole model, not adapters only)."""
    return "visual.conv1.weight" in state and "token_embedding.weight" in state


# Width of one attention head in every OpenAI release (heads = width / 64, as OpenAI's build_model).
OPENAI_HEAD_WIDTH = 64


def _count_blocks(state: Dict[str, torch.Tensor], prefix: str) -> int:
    """Number of residual blocks ``<prefix><i>.`` in ``state``."""
    return len({k[len(prefix):].split(".")[0] for k in state if k.startswith(prefix)})


def spec_of_state(state: Dict[str, torch.Tensor]) -> ClipSpec:
    """The architecture of an OpenAI-layout CLIP state dict, read off its shapes as OpenAI's
    ``build_model`` does (attention heads: width / 64); ValueError naming a missing key."""
    need = ("visual.conv1.weight", "visual.positional_embedding", "text_projection", "positional_embedding",
            "token_embedding.weight", "ln_final.weight")
    absent = [k for k in need if k not in state]
    if absent:
        raise ValueError(f"not a CLIP ViT state dict in OpenAI's layout: no {', '.join(absent)}")
    conv = state["visual.conv1.weight"]
    vision_width, patch = conv.shape[0], conv.shape[-1]
    grid = round((state["visual.positional_embedding"].shape[0] - 1) ** 0.5)
    text_width = state["ln_final.weight"].shape[0]
    return ClipSpec(
        embed_dim=state["text_projection"].shape[1], image_resolution=patch * grid,
        vision_layers=_count_blocks(state, "visual.transformer.resblocks."), vision_width=vision_width,
        vision_patch_size=patch, context_length=state["positional_embedding"].shape[0],
        vocab_size=state["token_embedding.weight"].shape[0], transformer_width=text_width,
        transformer_heads=max(1, text_width // OPENAI_HEAD_WIDTH),
        transformer_layers=_count_blocks(state, "transformer.resblocks."),
        vision_head_width=min(vision_width, OPENAI_HEAD_WIDTH),
    )
