"""CLIP's transformer in OpenAI's state-dict layout, with optional adapter slots per block.

Key names follow OpenAI's release files: a block has ``attn.in_proj_weight`` / ``in_proj_bias``
(q, k, v stacked along dim 0) and ``attn.out_proj``, ``ln_1``, ``mlp.c_fc`` / ``mlp.c_proj``
(QuickGELU between them) and ``ln_2``; LayerNorms compute in float32. Adapters registered on a
block as ``adapter_pre_attn`` / ``adapter_pre_mlp`` run on the residual stream just before the
attention / MLP branch (``x = adapter(x); x = x + branch(norm(x))``). Everything is out of place,
so backward works in float32 as well as under autocast.
"""
from collections import OrderedDict
from typing import Callable, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

# Adapter slots of a residual block, in state-dict order.
ADAPTER_SLOTS = ("pre_attn", "pre_mlp")


class LayerNorm(nn.LayerNorm):
    """LayerNorm computed in float32 and cast back to the input dtype (as OpenAI's CLIP)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise ``x`` over its last dimension."""
        out = F.layer_norm(x.float(), self.normalized_shape, self.weight.float(), self.bias.float(), self.eps)
        return out.to(x.dtype)


class QuickGELU(nn.Module):
    """x * sigmoid(1.702 x), CLIP's activation."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the activation."""
        return x * torch.sigmoid(1.702 * x)


class Attention(nn.Module):
    """Multi-head attention with a fused q/k/v input projection (``in_proj_weight`` [3D, D])."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"attention width {width} is not divisible by {heads} heads")
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * width))
        self.out_proj = nn.Linear(width, width)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, query: torch.Tensor, context: Optional[torch.Tensor] = None,
                mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """(N, Lq, D) queries attending to ``context`` (N, Lk, D) (default: the queries);
        ``mask`` is added to the attention logits (e.g. -inf above the diagonal)."""
        width = query.shape[-1]
        w_q, w_kv = self.in_proj_weight.split([width, 2 * width])
        b_q, b_kv = self.in_proj_bias.split([width, 2 * width])
        q = F.linear(query, w_q, b_q)
        k, v = F.linear(query if context is None else context, w_kv, b_kv).chunk(2, dim=-1)
        q, k, v = (t.unflatten(-1, (self.heads, -1)).transpose(1, 2) for t in (q, k, v))
        if mask is not None:
            mask = mask.to(q.dtype)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out_proj(out.transpose(1, 2).flatten(2))


class ResidualAttentionBlock(nn.Module):
    """Pre-norm transformer block; ``adapter_pre_attn`` / ``adapter_pre_mlp`` when built with
    ``adapters`` = {slot: factory}."""

    def __init__(self, width: int, heads: int,
                 adapters: Optional[dict] = None) -> None:
        super().__init__()
        self.attn = Attention(width, heads)
        self.ln_1 = LayerNorm(width)
        self.mlp = nn.Sequential(OrderedDict([
            ("c_fc", nn.Linear(width, 4 * width)), ("gelu", QuickGELU()), ("c_proj", nn.Linear(4 * width, width)),
        ]))
        self.ln_2 = LayerNorm(width)
        for slot in ADAPTER_SLOTS:
            factory: Optional[Callable[[], nn.Module]] = (adapters or {}).get(slot)
            if factory is not None:
                self.add_module(f"adapter_{slot}", factory())

    def _adapt(self, slot: str, x: torch.Tensor) -> torch.Tensor:
        adapter = getattr(self, f"adapter_{slot}", None)
        return x if adapter is None else adapter(x)

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None,
                context: Optional[torch.Tensor] = None) -> torch.Tensor:
        """(N, L, D) -> (N, L, D); with ``context`` (N, Lk, D) the attention is cross-attention
        from ``x`` to ``context`` (both normalised by ``ln_1``)."""
        x = self._adapt("pre_attn", x)
        normed = self.ln_1(x)
        x = x + self.attn(normed, None if context is None else self.ln_1(context), mask)
        x = self._adapt("pre_mlp", x)
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    """``resblocks``: ``layers`` blocks; ``adapters(i)`` gives block i's adapter factories."""

    def __init__(self, width: int, layers: int, heads: int,
                 adapters: Optional[Callable[[int], dict]] = None) -> None:
        super().__init__()
        self.width, self.layers = width, layers
        self.resblocks = nn.Sequential(*[
            ResidualAttentionBlock(width, heads, adapters(i) if adapters else None) for i in range(layers)
        ])

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None,
                blocks: Optional[Sequence[int]] = None) -> torch.Tensor:
        """Run ``blocks`` (default: all, in order) on (N, L, D)."""
        for i in range(self.layers) if blocks is None else blocks:
            x = self.resblocks[i](x, mask)
        return x


def causal_mask(length: int, device: Optional[torch.device] = None) -> torch.Tensor:
    """(L, L) additive mask: -inf strictly above the diagonal."""
    return torch.full((length, length), float("-inf"), device=device).triu(1)
