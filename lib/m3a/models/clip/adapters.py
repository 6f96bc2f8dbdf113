"""M2CLIP's adapters (published key names): TED adapter, post-projection temporal adapter and
text adapter. All are out of place (the release updated tensors in place, which breaks backward
outside mixed precision).

- :class:`TEDAdapter` (the release's ``Adapter2``): Temporal Enhancement (a depthwise temporal
  conv over every token's track, class token included) plus temporal Difference (frame
  differences of the patch tokens, depthwise 3 x 3 spatial conv). Zero-initialised convs and fc
  biases make it exactly the identity at init.
- :class:`TemporalAdapter` (``visual.t_adapter``, the release's ``Adapter1``): a depthwise
  temporal conv over per-frame embeddings; identity at init.
- :class:`TextAdapter`: x + fc2(GELU(fc1(x))); the release keeps PyTorch's default weight init,
  so it is *not* the identity at init (faithful).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def _zero_conv(conv: nn.Module) -> nn.Module:
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


class DifferenceBranch(nn.Module):
    """The D branch (``offset_adapter``): patch-token differences to the previous frame (0 for
    the first frame) -> fc1 -> depthwise (1, 3, 3) conv per frame -> fc2."""

    def __init__(self, dim: int, width: int, kernel: int = 3) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, width)
        self.conv = _zero_conv(nn.Conv3d(width, width, (1, kernel, kernel), padding=(0, kernel // 2, kernel // 2),
                                         groups=width))
        self.fc2 = nn.Linear(width, dim)
        nn.init.zeros_(self.fc1.bias)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, patches: torch.Tensor, frames: int) -> torch.Tensor:
        """(B*T, P, D) patch tokens (P = H*W, square grid) -> (B*T, P, D)."""
        bt, p, _ = patches.shape
        side = math.isqrt(int(p))  # int(): p is a tensor while fvcore traces the model
        x = patches.unflatten(0, (bt // frames, frames))
        delta = x - torch.cat([x[:, :1], x[:, :-1]], dim=1)
        h = self.fc1(delta).unflatten(2, (side, side)).permute(0, 4, 1, 2, 3)
        h = self.conv(h).permute(0, 2, 3, 4, 1).reshape(bt, p, -1)
        return self.fc2(h)


def _add_temporal_bottleneck(module: nn.Module, dim: int, width: int, kernel: int) -> None:
    """Give ``module`` the layers of a temporal bottleneck: ``fc1`` (dim -> width), a zero-
    initialised depthwise temporal ``conv`` and ``fc2`` (width -> dim), biases zero."""
    module.fc1 = nn.Linear(dim, width)
    module.conv = _zero_conv(nn.Conv1d(width, width, kernel, padding=kernel // 2, groups=width))
    module.fc2 = nn.Linear(width, dim)
    nn.init.zeros_(module.fc1.bias)
    nn.init.zeros_(module.fc2.bias)


class TEDAdapter(nn.Module):
    """TED adapter on (B*T, L, D) tokens (class token first, frames b-major): x + TE(x) on all
    tokens, + D(x) on the patch tokens."""

    def __init__(self, dim: int, width: int, frames: int, kernel: int = 3, difference: bool = True) -> None:
        super().__init__()
        self.frames = frames
        _add_temporal_bottleneck(self, dim, width, kernel)
        if difference:
            self.offset_adapter = DifferenceBranch(dim, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B*T, L, D) -> (B*T, L, D)."""
        bt, length, _ = x.shape
        b = bt // self.frames
        h = self.fc1(x).unflatten(0, (b, self.frames))  # (B, T, L, r)
        h = h.permute(0, 2, 3, 1).flatten(0, 1)  # (B*L, r, T)
        h = self.conv(h).unflatten(0, (b, length)).permute(0, 3, 1, 2).flatten(0, 1)
        out = x + self.fc2(h)
        if hasattr(self, "offset_adapter"):
            offset = self.offset_adapter(x[:, 1:], self.frames)
            out = out + F.pad(offset, (0, 0, 1, 0))
        return out


class TemporalAdapter(nn.Module):
    """``visual.t_adapter``: z + fc2(conv_t(fc1(z))) on per-frame embeddings (B*T, E)."""

    def __init__(self, dim: int, width: int, frames: int, kernel: int = 3) -> None:
        super().__init__()
        self.frames = frames
        _add_temporal_bottleneck(self, dim, width, kernel)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(B*T, E) -> (B*T, E)."""
        h = self.fc1(z).unflatten(0, (-1, self.frames)).transpose(1, 2)  # (B, r, T)
        h = self.conv(h).transpose(1, 2).flatten(0, 1)
        return z + self.fc2(h)


class TextAdapter(nn.Module):
    """x + textad_fc2(GELU(textad_fc1(x))) (exact-erf GELU; default Linear weight init)."""

    def __init__(self, dim: int, width: int) -> None:
        super().__init__()
        self.textad_fc1 = nn.Linear(dim, width)
        self.textad_fc2 = nn.Linear(width, dim)
        nn.init.zeros_(self.textad_fc1.bias)
        nn.init.zeros_(self.textad_fc2.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, L, D) -> (N, L, D)."""
        return x + self.textad_fc2(F.gelu(self.textad_fc1(x)))
