"""Residual blocks of the video ResNets, with the published state-dict names.

Each block keeps its layers in a ``block`` ModuleDict: ``conv{i}`` / ``bn{i}``, the (2+1)D middle
layers ``conv{i}_middle`` / ``bn{i}_middle``, and the projection ``shortcut`` / ``shortcut_bn``.
"""
from typing import Callable, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import skip_init

Triple = Tuple[int, int, int]

class Conv3d(nn.Conv3d):
    """nn.Conv3d that runs in fp32 under CPU bf16 autocast when the input has more than one but
    fewer frames than the temporal kernel (e.g. a 3x1x1 conv on T = 2 in layer3 of an 8-frame
    R(2+1)D). For that case the oneDNN bf16 kernels of torch 2.13 on CPU return wrong weight
    gradients (relative errors up to 1e35 or inf, against 3e-3 for other inputs), which made
    bf16 training diverge to NaN. Same parameters and state-dict keys as nn.Conv3d."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The convolution; see the class docstring for the fp32 case."""
        short = 1 < x.shape[2] < self.kernel_size[0]
        if short and x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
            with torch.autocast("cpu", enabled=False):
                return super().forward(x.float())
        return super().forward(x)


def conv3d(*args, **kwargs) -> nn.Conv3d:
    """:class:`Conv3d` with uninitialised weights (the backbone initialises every conv
    afterwards)."""
    return skip_init(Conv3d, *args, **kwargs)


def factorised_width(dim_in: int, dim_out: int, kernel: Triple) -> int:
    """Middle width M = floor(kt*in*out*kh*kw / (in*kh*kw + kt*out)) of a (2+1)D convolution."""
    kt, kh, kw = kernel
    return (kt * dim_in * dim_out * kh * kw) // (dim_in * kh * kw + kt * dim_out)


def add_conv(
    block: nn.ModuleDict, idx: int, kind: str, dim_in: int, dim_out: int, kernel: Triple,
    stride: Triple, norm: Callable[[int], nn.Module],
) -> None:
    """Register convolution ``conv{idx}`` of ``kind`` (3d, 2plus1d, depthwise) in ``block``.

    Padding keeps the size for odd kernels. A 2plus1d convolution becomes ``conv{idx}_middle``
    (1 x kh x kw) + ``bn{idx}_middle`` + ReLU + ``conv{idx}`` (kt x 1 x 1).
    """
    pad = tuple(k // 2 for k in kernel)
    if kind == "2plus1d":
        mid = factorised_width(dim_in, dim_out, kernel)
        block[f"conv{idx}_middle"] = conv3d(
            dim_in, mid, (1, kernel[1], kernel[2]), (1, stride[1], stride[2]),
            (0, pad[1], pad[2]), bias=False,
        )
        block[f"bn{idx}_middle"] = norm(mid)
        block[f"conv{idx}"] = conv3d(
            mid, dim_out, (kernel[0], 1, 1), (stride[0], 1, 1), (pad[0], 0, 0), bias=False
        )
    elif kind == "depthwise":
        if dim_in != dim_out:
            raise ValueError(f"a depthwise convolution needs equal widths, got {dim_in}->{dim_out}")
        block[f"conv{idx}"] = conv3d(
            dim_in, dim_out, kernel, stride, pad, groups=dim_in, bias=False
        )
    elif kind == "3d":
        block[f"conv{idx}"] = conv3d(dim_in, dim_out, kernel, stride, pad, bias=False)
    else:
        raise ValueError(f"unknown convolution kind '{kind}'")


def run_conv(block: nn.ModuleDict, idx: int, x: torch.Tensor) -> torch.Tensor:
    """Apply ``conv{idx}`` of ``block``, through its (2+1)D middle layers when it has them."""
    middle = f"conv{idx}_middle"
    if middle in block:
        x = F.relu(block[f"bn{idx}_middle"](block[middle](x)))
    return block[f"conv{idx}"](x)


def se_width(dim: int, ratio: float, divisor: int = 8) -> int:
    """Squeeze width: ``dim * ratio`` rounded to a multiple of ``divisor`` (at least one)."""
    width = dim * ratio
    rounded = max(divisor, int(width + divisor / 2) // divisor * divisor)
    return int(rounded + divisor if rounded < 0.9 * width else rounded)


class SqueezeExcitation(nn.Module):
    """Squeeze-excitation: global average pool, 1x1x1 conv, ReLU, 1x1x1 conv, sigmoid gate."""

    def __init__(self, dim: int, ratio: float) -> None:
        super().__init__()
        hidden = se_width(dim, ratio)
        self.fc1 = conv3d(dim, hidden, 1, bias=True)
        self.fc2 = conv3d(hidden, dim, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Rescale the channels of ``x`` by gates computed from its global average."""
        gate = F.adaptive_avg_pool3d(x, 1)
        gate = torch.sigmoid(self.fc2(F.relu(self.fc1(gate))))
        return x * gate


class _ResidualBlock(nn.Module):
    """Shared parts of the basic and bottleneck blocks: shortcut and optional SE."""

    def _add_shortcut(self, dim_in: int, dim_out: int, stride: Triple, norm) -> None:
        if dim_in != dim_out or stride != (1, 1, 1):
            self.block["shortcut"] = conv3d(dim_in, dim_out, 1, stride, bias=False)
            self.block["shortcut_bn"] = norm(dim_out)

    def _add_se(self, dim_out: int, se_ratio: float) -> None:
        if se_ratio > 0:
            self.se = SqueezeExcitation(dim_out, se_ratio)

    def _finish(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if hasattr(self, "se"):
            out = self.se(out)
        if "shortcut" in self.block:
            x = self.block["shortcut_bn"](self.block["shortcut"](x))
        return F.relu(out + x)


class BasicBlock(_ResidualBlock):
    """Two k x k x k convolutions (3d, (2+1)D or depthwise) with a residual connection."""

    def __init__(
        self, dim_in: int, dim_out: int, kind: str, stride: Triple,
        norm: Callable[[int], nn.Module], se_ratio: float = 0.0,
    ) -> None:
        super().__init__()
        self.block = nn.ModuleDict()
        add_conv(self.block, 1, kind, dim_in, dim_out, (3, 3, 3), stride, norm)
        self.block["bn1"] = norm(dim_out)
        add_conv(self.block, 2, kind, dim_out, dim_out, (3, 3, 3), (1, 1, 1), norm)
        self.block["bn2"] = norm(dim_out)
        self._add_shortcut(dim_in, dim_out, stride, norm)
        self._add_se(dim_out, se_ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual output relu(F(x) + shortcut(x))."""
        out = F.relu(self.block["bn1"](run_conv(self.block, 1, x)))
        out = self.block["bn2"](run_conv(self.block, 2, out))
        return self._finish(out, x)


class Bottleneck(_ResidualBlock):
    """1x1x1 (or 3x1x1) reduce, k x k x k (or 1x3x3) convolution, 1x1x1 expand, residual.

    ``first_kernel_t`` is the reduce conv's temporal kernel and ``mid_kernel`` the middle conv's
    kernel (the inflated i3d blocks use 3 in some blocks, and 1x3x3).
    """

    def __init__(
        self, dim_in: int, dim_out: int, dim_inner: int, kind: str, stride: Triple,
        norm: Callable[[int], nn.Module], se_ratio: float = 0.0, first_kernel_t: int = 1,
        mid_kernel: Triple = (3, 3, 3),
    ) -> None:
        super().__init__()
        self.block = nn.ModuleDict()
        first_kernel = (first_kernel_t, 1, 1)
        add_conv(self.block, 1, "3d", dim_in, dim_inner, first_kernel, (1, 1, 1), norm)
        self.block["bn1"] = norm(dim_inner)
        add_conv(self.block, 2, kind, dim_inner, dim_inner, mid_kernel, stride, norm)
        self.block["bn2"] = norm(dim_inner)
        add_conv(self.block, 3, "3d", dim_inner, dim_out, (1, 1, 1), (1, 1, 1), norm)
        self.block["bn3"] = norm(dim_out)
        self._add_shortcut(dim_in, dim_out, stride, norm)
        self._add_se(dim_out, se_ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual output relu(F(x) + shortcut(x))."""
        out = F.relu(self.block["bn1"](run_conv(self.block, 1, x)))
        out = F.relu(self.block["bn2"](run_conv(self.block, 2, out)))
        out = self.block["bn3"](run_conv(self.block, 3, out))
        return self._finish(out, x)
