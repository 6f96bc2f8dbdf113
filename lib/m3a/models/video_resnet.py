"""The video ResNet family (r2plus1d, r3d, i3d, ir_csn), registered as backbone ``video_resnet``.

Module names reproduce the published M3A state-dict layout at the top level of the model: stem
``conv1_middle``/``bn1_middle``/``conv1``/``bn1``, stages ``layer{1-4}.{b}.block.*``. The
architectures differ only by the entries of :data:`ARCHS`. Checkpoints in the torchvision /
VMZ-PyTorch VideoResNet layout (``stem.*``, ``layer1.0.conv1.0.0.weight``, ``downsample``,
``fc``) are mapped to ours by :meth:`VideoResNet.convert_state_dict`.

Config keys (added by :meth:`VideoResNet.add_config`): MODEL.ARCH, MODEL.DEPTH,
MODEL.BASE_WIDTH, MODEL.STAGE_BLOCKS, MODEL.SE_RATIO.
"""
import logging
import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
from fvcore.common.config import CfgNode

from m3a.config.errors import ConfigError
from m3a.models.backbone import Backbone, Inputs
from m3a.models.blocks import BasicBlock, Bottleneck, Triple
from m3a.models.build import BACKBONE_REGISTRY, register
from m3a.models.norm import get_norm
from m3a.models.stem import build_stem

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ArchSpec:
    """What distinguishes one video ResNet architecture from another."""

    conv_kind: str  # k x k x k convolutions of the blocks: 3d, 2plus1d or depthwise
    stem_kt: int  # temporal kernel of the stem
    stem_factorised: bool  # (2+1)D stem (conv1_middle + conv1)
    stem_max_pool: bool  # (1,3,3)/(1,2,2) max-pool after the stem
    temporal_stride: int  # T / T_final of the last feature map (published head pool T_final)
    inflated: bool = False  # i3d: 1x3x3 middle convs, 3x1x1 reduce in some blocks,
    #                          (1,2,2) bottleneck downsampling, temporal max-pool after layer1


ARCHS = {
    "r2plus1d": ArchSpec("2plus1d", 3, True, False, 8),
    "r3d": ArchSpec("3d", 3, False, False, 8),
    "i3d": ArchSpec("3d", 5, False, True, 2, inflated=True),
    "ir_csn": ArchSpec("depthwise", 3, False, True, 8),
}
# Residual blocks per stage for each published depth.
STAGE_BLOCKS = {
    18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3),
}
# Depths built from bottleneck blocks (the others use basic blocks).
BOTTLENECK_DEPTHS = (50, 101, 152)
# A bottleneck's output width is this multiple of its inner width.
BOTTLENECK_EXPANSION = 4


def stage_widths(depth: int, base_width: int) -> List[Tuple[int, int]]:
    """(output width, inner width) of the four stages."""
    expansion = BOTTLENECK_EXPANSION if depth in BOTTLENECK_DEPTHS else 1
    return [(base_width * 2**s * expansion, base_width * 2**s) for s in range(4)]


def _inflated_reduce(stage: int, idx: int) -> bool:
    """i3d bottlenecks: 3x1x1 first conv in every block of stage 1, every other one after."""
    return stage == 1 or (stage in (2, 3) and idx % 2 == 0) or (stage == 4 and idx % 2 == 1)


@register(BACKBONE_REGISTRY, "video_resnet")
class VideoResNet(Backbone):
    """Video ResNet H: clips (B, 3, T, H, W) -> last feature map (B, C, T/s, H/32, W/32)."""

    LAYOUT = "map3d"
    DEFAULT_NECK = "video_avgpool"

    def __init__(self, cfg: CfgNode) -> None:
        model = cfg.MODEL
        self.spec = ARCHS[model.ARCH]
        super().__init__(self.feature_dim(cfg), cfg.DATA.NUM_FRAMES)
        self.temporal_stride = self.spec.temporal_stride
        norm = get_norm(cfg)
        self._stem_names = []
        spec = self.spec
        for name, module in build_stem(
            model.BASE_WIDTH, norm, spec.stem_kt, spec.stem_factorised, spec.stem_max_pool
        ):
            self.add_module(name, module)
            self._stem_names.append(name)
        blocks = list(model.STAGE_BLOCKS) or STAGE_BLOCKS[model.DEPTH]
        bottleneck = model.DEPTH in BOTTLENECK_DEPTHS
        dim_in = model.BASE_WIDTH
        for stage, ((dim_out, dim_inner), num) in enumerate(
            zip(stage_widths(model.DEPTH, model.BASE_WIDTH), blocks), 1
        ):
            layer = self._make_stage(stage, num, dim_in, dim_out, dim_inner, bottleneck, norm,
                                     model.SE_RATIO)
            self.add_module(f"layer{stage}", layer)
            dim_in = dim_out
            if stage == 1 and spec.inflated:
                self.maxpool2 = nn.MaxPool3d((2, 1, 1), (2, 1, 1))
        self._init_weights()

    @classmethod
    def add_config(cls, cfg: CfgNode) -> None:
        """MODEL.ARCH, DEPTH, BASE_WIDTH, STAGE_BLOCKS, SE_RATIO (documented below)."""
        # Architecture: r2plus1d, r3d, i3d, ir_csn.
        cfg.MODEL.ARCH = "r2plus1d"
        # Depth: 18, 34 (basic blocks), 50, 101, 152 (bottlenecks).
        cfg.MODEL.DEPTH = 34
        # Channels of the first stage; 64 is the published width, smaller values make test/demo
        # models.
        cfg.MODEL.BASE_WIDTH = 64
        # Residual blocks per stage, overriding the depth's published counts ([] = published).
        cfg.MODEL.STAGE_BLOCKS = []
        # Squeeze-excitation reduction ratio inside residual blocks (0 disables SE).
        cfg.MODEL.SE_RATIO = 0.0

    @classmethod
    def check_config(cls, cfg: CfgNode) -> None:
        """Validate MODEL.ARCH / DEPTH / BASE_WIDTH / STAGE_BLOCKS / SE_RATIO."""
        model = cfg.MODEL
        if model.ARCH not in ARCHS:
            raise ConfigError(f"MODEL.ARCH must be one of {', '.join(ARCHS)}, got '{model.ARCH}'")
        if model.DEPTH not in STAGE_BLOCKS:
            raise ConfigError(f"MODEL.DEPTH must be one of {tuple(STAGE_BLOCKS)}, got {model.DEPTH}")
        if ARCHS[model.ARCH].conv_kind == "depthwise" and model.DEPTH not in BOTTLENECK_DEPTHS:
            raise ConfigError(
                f"MODEL.ARCH {model.ARCH} uses bottleneck blocks: MODEL.DEPTH must be 50, 101 or "
                f"152, got {model.DEPTH}"
            )
        if model.BASE_WIDTH < 1:
            raise ConfigError(f"MODEL.BASE_WIDTH must be >= 1, got {model.BASE_WIDTH}")
        blocks = list(model.STAGE_BLOCKS)
        if blocks and (len(blocks) != 4 or any(int(b) < 1 for b in blocks)):
            raise ConfigError(
                f"MODEL.STAGE_BLOCKS must be [] or 4 positive block counts, got {blocks}"
            )
        if model.SE_RATIO < 0:
            raise ConfigError(f"MODEL.SE_RATIO must be >= 0, got {model.SE_RATIO}")

    @classmethod
    def make_tiny(cls, cfg: CfgNode) -> None:
        """Base width 4, one block per stage, 4-frame 16-pixel clips."""
        cfg.MODEL.BASE_WIDTH, cfg.MODEL.STAGE_BLOCKS = 4, [1, 1, 1, 1]
        cfg.DATA.NUM_FRAMES, cfg.DATA.TRAIN_CROP_SIZE, cfg.DATA.TEST_CROP_SIZE = 4, 16, 16

    @classmethod
    def feature_dim(cls, cfg: CfgNode) -> int:
        """Width of layer4's output."""
        return stage_widths(cfg.MODEL.DEPTH, cfg.MODEL.BASE_WIDTH)[-1][0]

    def _make_stage(
        self, stage: int, num: int, dim_in: int, dim_out: int, dim_inner: int, bottleneck: bool,
        norm, se_ratio: float,
    ) -> nn.Sequential:
        spec = self.spec
        down: Triple = (1, 2, 2) if bottleneck and spec.inflated else (2, 2, 2)
        layers = []
        for idx in range(num):
            stride = down if stage > 1 and idx == 0 else (1, 1, 1)
            if bottleneck:
                block = Bottleneck(
                    dim_in, dim_out, dim_inner, spec.conv_kind, stride, norm, se_ratio,
                    first_kernel_t=3 if spec.inflated and _inflated_reduce(stage, idx) else 1,
                    mid_kernel=(1, 3, 3) if spec.inflated else (3, 3, 3),
                )
            else:
                block = BasicBlock(dim_in, dim_out, spec.conv_kind, stride, norm, se_ratio)
            layers.append(block)
            dim_in = dim_out
        return nn.Sequential(*layers)

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, inputs: Inputs) -> torch.Tensor:
        """Last feature map (B, C, T', H', W') of a clip batch (B, 3, T, H, W)."""
        x = self.single_input(inputs, "video_resnet")
        for name in self._stem_names:
            x = getattr(self, name)(x)
        x = self.layer1(x)
        if self.spec.inflated:
            x = self.maxpool2(x)
        return self.layer4(self.layer3(self.layer2(x)))

    def gradcam_layer(self) -> nn.Module:
        """``layer4``, whose output is the last feature map."""
        return self.layer4

    def convert_state_dict(
        self, state: Dict[str, torch.Tensor]
    ) -> Tuple[Dict[str, torch.Tensor], str]:
        """Map the torchvision / VMZ-PyTorch layout to ours (``torchvision``); files already in
        the published M3A layout are returned as they are (``m3a``)."""
        if any(k.startswith("stem.") or _TV_BLOCK.fullmatch(k) for k in state):
            return _map_torchvision(state), "torchvision"
        return state, "m3a"


# ---------------------------------------------------------------------------------------------
# The torchvision / VMZ-PyTorch VideoResNet layout
# ---------------------------------------------------------------------------------------------
_TV_BLOCK = re.compile(r"(layer\d+\.\d+)\.(conv\d|downsample)\.(.+)")
_TV_CONV = {"0.0": "conv{i}_middle", "0.1": "bn{i}_middle", "0.3": "conv{i}", "0": "conv{i}",
            "1": "bn{i}"}


def _map_torchvision_block(key: str) -> Optional[str]:
    match = _TV_BLOCK.fullmatch(key)
    if not match:
        return None
    prefix, part, rest = match.groups()
    if part == "downsample":
        idx, _, leaf = rest.partition(".")
        name = {"0": "shortcut", "1": "shortcut_bn"}.get(idx)
        return f"{prefix}.block.{name}.{leaf}" if name else None
    i = part[-1]
    for sub, template in _TV_CONV.items():
        if rest.startswith(sub + ".") and rest.count(".") == sub.count(".") + 1:
            return f"{prefix}.block.{template.format(i=i)}.{rest[len(sub) + 1:]}"
    return None


def _map_torchvision(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Our names for a torchvision-layout state dict; its classifier ``fc`` becomes the FC
    head's ``projection``."""
    two_conv_stem = "stem.3.weight" in state
    stem = ({"0": "conv1_middle", "1": "bn1_middle", "3": "conv1", "4": "bn1"} if two_conv_stem
            else {"0": "conv1", "1": "bn1"})
    mapped = OrderedDict()
    for key, value in state.items():
        new = None
        if key.startswith("stem."):
            idx, _, leaf = key[5:].partition(".")
            new = f"{stem[idx]}.{leaf}" if idx in stem else None
        elif key.startswith("fc."):
            new = "projection." + key[3:]
        else:
            new = _map_torchvision_block(key)
        if new is None:
            logger.warning("checkpoint key %s has no counterpart in our layout; ignored", key)
            continue
        mapped[new] = value
    return mapped
