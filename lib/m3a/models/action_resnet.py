"""ACTION-Net, TSM and TSN on a 2D ResNet-50/101 (backbone ``action_resnet``).

The network runs 2D on the frames of a clip, ``(B * T, C, H, W)`` with the frames of one clip
contiguous (index ``b * T + t``), T = ``DATA.NUM_FRAMES`` fixed at build time. Module names
reproduce the published release (torchvision's ResNet names under ``base_model.``), so released
ACTION-Net and TSM state dicts load unchanged:

- ``ACTION.VARIANT action`` (ACTION-Net, CVPR 2021): the first 1x1 conv of the residual branch of
  every bottleneck (every second one when layer3 has >= 23 blocks, i.e. ResNet-101) is wrapped
  by :class:`ActionModule` (``layerX.Y.conv1.net`` is the original conv, ``conv1.action_*`` the
  module): a learnable depthwise temporal shift (initialised to TSM's 1/8 + 1/8 shift, trained and
  weight-decayed), then the sum of the STE, CE and ME excitation paths feeds the conv;
- ``tsm``: the same placement with TSM's fixed, parameter-free shift (``conv1.net``);
- ``tsn``: the plain ResNet (``conv1`` unwrapped).

The shortcut (``downsample``) always sees the unshifted input. Checkpoints in the torchvision
ImageNet layout (``conv1.weight``, ``layer1.0.conv1.weight``, ``fc.*``) and the other variants'
layouts are mapped by :meth:`ActionResNet.convert_state_dict`.

Config keys (added by :meth:`ActionResNet.add_config`): the ``ACTION`` section.
"""
import re
from collections import OrderedDict
from typing import Dict, List, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from fvcore.common.config import CfgNode

from m3a.config.errors import ConfigError
from m3a.models.backbone import Backbone, Inputs
from m3a.models.build import BACKBONE_REGISTRY, register

VARIANTS = ("action", "tsm", "tsn")
# Bottleneck blocks per stage of the published depths.
STAGE_BLOCKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}
# A bottleneck's output width is this multiple of its inner width.
EXPANSION = 4
# With this many blocks in layer3 or more, only every second block is wrapped (TSM's rule).
SPARSE_WRAP_BLOCKS = 23


def shift_kernel(channels: int, shift_div: int) -> torch.Tensor:
    """The depthwise Conv1d kernel (C, 1, 3) equal to TSM's shift with fold C // shift_div:
    channels [0, fold) take frame t+1, [fold, 2 fold) frame t-1, the rest frame t."""
    fold = channels // shift_div
    kernel = torch.zeros(channels, 1, 3)
    kernel[:fold, 0, 2] = 1.0
    kernel[fold:2 * fold, 0, 0] = 1.0
    kernel[2 * fold:, 0, 1] = 1.0
    return kernel


def temporal_shift(x: torch.Tensor, num_frames: int, shift_div: int) -> torch.Tensor:
    """TSM's fixed shift of frames ``x`` (B * T, C, H, W), zero-filled at the clip ends."""
    nt, c, h, w = x.shape
    fold = c // shift_div
    clips = x.reshape(nt // num_frames, num_frames, c, h, w)
    out = torch.zeros_like(clips)
    out[:, :-1, :fold] = clips[:, 1:, :fold]
    out[:, 1:, fold:2 * fold] = clips[:, :-1, fold:2 * fold]
    out[:, :, 2 * fold:] = clips[:, :, 2 * fold:]
    return out.reshape(nt, c, h, w)


class TemporalShift(nn.Module):
    """TSM: ``net(shift(x))`` with the fixed shift; ``net`` is the wrapped conv."""

    def __init__(self, net: nn.Conv2d, num_frames: int, shift_div: int) -> None:
        super().__init__()
        self.net = net
        self.num_frames, self.shift_div = num_frames, shift_div

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B * T, C, H, W) -> the conv's output on the shifted frames."""
        return self.net(temporal_shift(x, self.num_frames, self.shift_div))


class ActionModule(nn.Module):
    """ACTION-Net's module around ``net``: ``net(P1 + P2 + P3)`` where, with ``xs`` the frames
    after the learnable shift, ``Pi = xs + xs * Mi`` and the gates are

    - M1 (STE): sigmoid(Conv3d 3x3x3 of the channel mean of ``xs``), one per pixel and frame;
    - M2 (CE): sigmoid(expand(relu(Conv1d_t(squeeze(avgpool(xs)))))), one per channel and frame;
    - M3 (ME): sigmoid(expand(avgpool(d))) with f = bn(squeeze(xs)), d[t] = dwconv(f)[t+1] - f[t]
      and d[T-1] = 0 (so the last frame's gate is 0.5).

    squeeze/expand are bias-free 1x1 convs C <-> C // reduction.
    """

    def __init__(self, net: nn.Conv2d, num_frames: int, shift_div: int, reduction: int) -> None:
        super().__init__()
        c = net.in_channels
        r = c // reduction
        self.num_frames = num_frames
        self.net = net
        self.action_shift = nn.Conv1d(c, c, 3, padding=1, groups=c, bias=False)
        self.action_p1_conv1 = nn.Conv3d(1, 1, 3, padding=1, bias=False)
        self.action_p2_squeeze = nn.Conv2d(c, r, 1, bias=False)
        self.action_p2_conv1 = nn.Conv1d(r, r, 3, padding=1, bias=False)
        self.action_p2_expand = nn.Conv2d(r, c, 1, bias=False)
        self.action_p3_squeeze = nn.Conv2d(c, r, 1, bias=False)
        self.action_p3_bn1 = nn.BatchNorm2d(r)
        self.action_p3_conv1 = nn.Conv2d(r, r, 3, padding=1, groups=r, bias=False)
        self.action_p3_expand = nn.Conv2d(r, c, 1, bias=False)
        with torch.no_grad():
            self.action_shift.weight.copy_(shift_kernel(c, shift_div))

    def shift(self, x: torch.Tensor) -> torch.Tensor:
        """The learnable shift: the depthwise Conv1d along time at every pixel."""
        nt, c, h, w = x.shape
        n, t = nt // self.num_frames, self.num_frames
        seq = x.reshape(n, t, c, h, w).permute(0, 3, 4, 2, 1).reshape(n * h * w, c, t)
        seq = self.action_shift(seq)
        return seq.reshape(n, h, w, c, t).permute(0, 4, 3, 1, 2).reshape(nt, c, h, w)

    def gates(self, xs: torch.Tensor) -> List[torch.Tensor]:
        """[M1, M2, M3] of the shifted frames ``xs`` (B * T, C, H, W), each broadcastable to it."""
        nt, c, h, w = xs.shape
        n, t = nt // self.num_frames, self.num_frames
        # STE: a 3D conv over the channel mean.
        mean = xs.reshape(n, t, c, h, w).mean(dim=2, keepdim=True).transpose(1, 2)
        m1 = self.action_p1_conv1(mean).transpose(1, 2).reshape(nt, 1, h, w).sigmoid()
        # CE: squeeze, temporal conv, expand.
        s = self.action_p2_squeeze(F.adaptive_avg_pool2d(xs, 1))
        r = s.shape[1]
        s = F.relu(self.action_p2_conv1(s.reshape(n, t, r).transpose(1, 2)))
        m2 = self.action_p2_expand(s.transpose(1, 2).reshape(nt, r, 1, 1)).sigmoid()
        # ME: difference of the next frame's depthwise-convolved features and this frame's.
        f = self.action_p3_bn1(self.action_p3_squeeze(xs))
        g = self.action_p3_conv1(f).reshape(n, t, r, h, w)
        diff = g[:, 1:] - f.reshape(n, t, r, h, w)[:, :-1]
        diff = F.pad(diff, (0, 0, 0, 0, 0, 0, 0, 1)).reshape(nt, r, h, w)
        m3 = self.action_p3_expand(F.adaptive_avg_pool2d(diff, 1)).sigmoid()
        return [m1, m2, m3]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B * T, C, H, W) -> ``net(P1 + P2 + P3)``."""
        xs = self.shift(x)
        m1, m2, m3 = self.gates(xs)
        return self.net((xs + xs * m1) + (xs + xs * m2) + (xs + xs * m3))


class Bottleneck(nn.Module):
    """torchvision's ResNet v1.5 bottleneck (stride in ``conv2``), same names."""

    def __init__(self, dim_in: int, inner: int, stride: int) -> None:
        super().__init__()
        dim_out = inner * EXPANSION
        self.conv1 = nn.Conv2d(dim_in, inner, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(inner)
        self.conv2 = nn.Conv2d(inner, inner, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(inner)
        self.conv3 = nn.Conv2d(inner, dim_out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(dim_out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or dim_in != dim_out:
            self.downsample = nn.Sequential(
                nn.Conv2d(dim_in, dim_out, 1, stride=stride, bias=False), nn.BatchNorm2d(dim_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual branch (conv1 possibly wrapped) plus the unshifted shortcut."""
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


def resnet_trunk(blocks: Tuple[int, ...], width: int) -> "OrderedDict[str, nn.Module]":
    """torchvision's ResNet without ``avgpool``/``fc``: stem ``conv1``, ``bn1``, ``relu``,
    ``maxpool`` and ``layer1``-``layer4``, initialised as torchvision does."""
    trunk = OrderedDict(
        conv1=nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False),
        bn1=nn.BatchNorm2d(width), relu=nn.ReLU(inplace=True),
        maxpool=nn.MaxPool2d(3, stride=2, padding=1),
    )
    dim_in = width
    for stage, num in enumerate(blocks):
        inner = width * 2**stage
        trunk[f"layer{stage + 1}"] = nn.Sequential(*[
            Bottleneck(dim_in if i == 0 else inner * EXPANSION, inner, 2 if stage > 0 and i == 0 else 1)
            for i in range(num)
        ])
        dim_in = inner * EXPANSION
    for part in trunk.values():
        for m in part.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
    return trunk


def wrapped_blocks(blocks: Tuple[int, ...]) -> List[Tuple[int, int]]:
    """(stage, index) of the blocks whose conv1 is wrapped: all, or every second one when
    layer3 has >= SPARSE_WRAP_BLOCKS blocks."""
    step = 2 if blocks[2] >= SPARSE_WRAP_BLOCKS else 1
    return [(s + 1, i) for s, num in enumerate(blocks) for i in range(0, num, step)]


@register(BACKBONE_REGISTRY, "action_resnet")
class ActionResNet(Backbone):
    """Clips (B, 3, T, H, W) -> per-frame maps (B * T, C, H / 32, W / 32) of a 2D ResNet with
    ACTION modules, TSM shifts or neither (``ACTION.VARIANT``)."""

    LAYOUT = "frames2d"
    DEFAULT_NECK = "segment_consensus"
    state_prefix = "base_model."

    def __init__(self, cfg: CfgNode) -> None:
        super().__init__(self.feature_dim(cfg), cfg.DATA.NUM_FRAMES)
        a = cfg.ACTION
        self.variant = a.VARIANT
        self.partial_bn = a.PARTIAL_BN
        for name, module in resnet_trunk(self.stage_blocks(cfg), a.BASE_WIDTH).items():
            self.add_module(name, module)
        self.wrapped = [] if a.VARIANT == "tsn" else wrapped_blocks(self.stage_blocks(cfg))
        for stage, idx in self.wrapped:
            block = getattr(self, f"layer{stage}")[idx]
            if a.VARIANT == "action":
                block.conv1 = ActionModule(block.conv1, self.num_frames, a.SHIFT_DIV, a.REDUCTION)
            else:
                block.conv1 = TemporalShift(block.conv1, self.num_frames, a.SHIFT_DIV)
        if self.partial_bn:
            for bn in self._partial_bn_frozen():
                bn.weight.requires_grad_(False)
                bn.bias.requires_grad_(False)

    @classmethod
    def add_config(cls, cfg: CfgNode) -> None:
        """The ACTION section (documented below)."""
        cfg.ACTION = CfgNode()
        # action (ACTION-Net: learnable shift + STE/CE/ME), tsm (TSM's fixed shift) or tsn (no
        # temporal modelling); all three are the same ResNet with the same key names.
        cfg.ACTION.VARIANT = "action"
        # ResNet depth: 50 or 101.
        cfg.ACTION.DEPTH = 50
        # Channels of the stem (64 published; smaller values make test/demo models).
        cfg.ACTION.BASE_WIDTH = 64
        # Blocks per stage, overriding the depth's published counts ([] = published).
        cfg.ACTION.STAGE_BLOCKS = []
        # The shift moves C // SHIFT_DIV channels forward and as many backward in time.
        cfg.ACTION.SHIFT_DIV = 8
        # Channel reduction of the CE and ME paths (r = C // REDUCTION).
        cfg.ACTION.REDUCTION = 16
        # TSM's partial BN: in training, every BatchNorm but the first (base_model.bn1) keeps its
        # statistics and affine parameters fixed. Off in the published ACTION-Net recipes.
        cfg.ACTION.PARTIAL_BN = False

    @classmethod
    def check_config(cls, cfg: CfgNode) -> None:
        """Validate the ACTION keys (the reduced width of every wrapped conv must be >= 1)."""
        a = cfg.ACTION
        if a.VARIANT not in VARIANTS:
            raise ConfigError(f"ACTION.VARIANT must be one of {', '.join(VARIANTS)}, got '{a.VARIANT}'")
        if a.DEPTH not in STAGE_BLOCKS:
            raise ConfigError(f"ACTION.DEPTH must be one of {tuple(STAGE_BLOCKS)}, got {a.DEPTH}")
        blocks = list(a.STAGE_BLOCKS)
        if blocks and (len(blocks) != 4 or any(int(b) < 1 for b in blocks)):
            raise ConfigError(f"ACTION.STAGE_BLOCKS must be [] or 4 positive block counts, got {blocks}")
        if a.SHIFT_DIV < 2:
            raise ConfigError(f"ACTION.SHIFT_DIV must be >= 2, got {a.SHIFT_DIV}")
        if a.BASE_WIDTH < 1 or (a.VARIANT == "action" and a.BASE_WIDTH // a.REDUCTION < 1):
            raise ConfigError(
                f"ACTION.BASE_WIDTH {a.BASE_WIDTH} with ACTION.REDUCTION {a.REDUCTION} leaves no "
                "channel in the excitation paths; need BASE_WIDTH >= REDUCTION >= 1"
            )
        if a.VARIANT != "tsn" and cfg.DATA.NUM_FRAMES < 2:
            raise ConfigError(f"ACTION.VARIANT {a.VARIANT} needs DATA.NUM_FRAMES >= 2, got {cfg.DATA.NUM_FRAMES}")

    @classmethod
    def make_tiny(cls, cfg: CfgNode) -> None:
        """Stem width 8, one block per stage, reduction 4, 2-frame 32-pixel clips."""
        cfg.ACTION.BASE_WIDTH, cfg.ACTION.STAGE_BLOCKS, cfg.ACTION.REDUCTION = 8, [1, 1, 1, 1], 4
        cfg.DATA.NUM_FRAMES, cfg.DATA.TRAIN_CROP_SIZE, cfg.DATA.TEST_CROP_SIZE = 2, 32, 32

    @staticmethod
    def stage_blocks(cfg: CfgNode) -> Tuple[int, ...]:
        """Blocks per stage: ACTION.STAGE_BLOCKS, or the depth's published counts."""
        return tuple(int(b) for b in cfg.ACTION.STAGE_BLOCKS) or STAGE_BLOCKS[cfg.ACTION.DEPTH]

    @classmethod
    def feature_dim(cls, cfg: CfgNode) -> int:
        """Width of layer4's output (2048 for the published width)."""
        return cfg.ACTION.BASE_WIDTH * 8 * EXPANSION

    def forward_features(self, inputs: Inputs) -> torch.Tensor:
        """Per-frame maps (B * T, C, H', W') of a clip batch (B, 3, T, H, W)."""
        x = self.single_input(inputs, "action_resnet")
        b, c, t, h, w = x.shape
        if t != self.num_frames:
            raise ValueError(f"action_resnet was built for {self.num_frames} frames per clip, got {t}")
        x = x.transpose(1, 2).reshape(b * t, c, h, w)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def gradcam_layer(self) -> nn.Module:
        """``layer4``, whose output is the last feature map."""
        return self.layer4

    def _partial_bn_frozen(self) -> List[nn.Module]:
        """Every batch norm but the first, in module order (TSM's partial BN); SyncBatchNorm
        (BN.NORM_TYPE sync_batchnorm) included."""
        return [m for m in self.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)][1:]

    def train(self, mode: bool = True) -> "ActionResNet":
        """With ACTION.PARTIAL_BN, the BatchNorms after the first stay in eval mode."""
        super().train(mode)
        if mode and self.partial_bn:
            for bn in self._partial_bn_frozen():
                bn.eval()
        return self

    def convert_state_dict(
        self, state: Dict[str, torch.Tensor]
    ) -> Tuple[Dict[str, torch.Tensor], str]:
        """Map torchvision ImageNet files (``torchvision``: classifier ``fc`` dropped) and the
        other variants' layouts (``tsn``: plain ``conv1``; ``tsm`` / ``action``: ``conv1.net``)
        to this variant's names; a file of this variant's own layout is ``native``."""
        if not any(k.startswith(self.state_prefix) for k in state):
            state = OrderedDict((self.state_prefix + k, v) for k, v in state.items()
                                if not k.startswith("fc."))
            layout = "torchvision"
        elif any(".action_" in k for k in state):
            layout = "action"
        elif any(_WRAPPED_CONV.match(k) for k in state):
            layout = "tsm"
        else:
            layout = "tsn"
        mapped = OrderedDict((self._our_conv1(k), v) for k, v in state.items())
        if layout == self.variant or (layout == "tsn" and not self.wrapped):
            layout = "native"
        return mapped, layout

    def _our_conv1(self, key: str) -> str:
        """``key`` with a block's conv1 named as this model names it (``conv1.net`` when wrapped)."""
        match = _BLOCK_CONV1.match(key)
        if not match:
            return key
        stage, idx, leaf = int(match.group(1)), int(match.group(2)), match.group(3)
        if leaf.startswith("net."):
            leaf = leaf[4:]
        elif leaf.startswith("action_"):
            return key
        inner = "conv1.net." if (stage, idx) in self.wrapped else "conv1."
        return f"{self.state_prefix}layer{stage}.{idx}.{inner}{leaf}"


# A block's first conv: base_model.layerX.Y.conv1.<leaf>.
_BLOCK_CONV1 = re.compile(r"base_model\.layer(\d)\.(\d+)\.conv1\.(.+)")
_WRAPPED_CONV = re.compile(r"base_model\.layer\d\.\d+\.conv1\.net\.weight")
