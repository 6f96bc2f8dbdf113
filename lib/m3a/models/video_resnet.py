"""The video ResNet family (r2plus1d, r3d, i3d, ir_csn) with an FC or M3A head: ``M3ANET``.

Module names reproduce the published state-dict layout: stem ``conv1_middle``/``bn1_middle``/
``conv1``/``bn1``, stages ``layer{1-4}.{b}.block.*``, FC head ``projection``, M3A head
``m3a_head.*`` (DESIGN.md section 2).
"""
from typing import List, Sequence, Tuple, Union

import torch
import torch.nn as nn
from fvcore.common.config import CfgNode

from m3a.models.blocks import CONV_KINDS, BasicBlock, Bottleneck
from m3a.models.build import MODEL_REGISTRY
from m3a.models.heads import head_activation, head_pool, head_pool_size
from m3a.models.m3a_head import M3AHead
from m3a.models.node_features import load_m3a_inputs
from m3a.models.norm import get_norm
from m3a.models.stem import build_stem

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


def _uses_temporal_conv(stage: int, idx: int) -> bool:
    """i3d bottlenecks: 3x1x1 first conv in every block of stage 1, every other one after."""
    return stage == 1 or (stage in (2, 3) and idx % 2 == 0) or (stage == 4 and idx % 2 == 1)


@MODEL_REGISTRY.register()
class M3ANET(nn.Module):
    """Video ResNet backbone H with the FC baseline head or the M3A relation head.

    ``forward(x)`` maps a clip batch (B, 3, T, H, W) to (B, NUM_CLASSES): logits in training,
    ``MODEL.HEAD_ACT`` scores at eval. ``forward_features(x)`` returns the last feature map
    (B, C, T', H', W'); ``pooled_features(x)`` the pooled clip features (B, C);
    ``m3a_head.node_embeddings(...)`` the relation learners' per-layer node embeddings.
    """

    def __init__(self, cfg: CfgNode) -> None:
        super().__init__()
        arch, depth, width = cfg.MODEL.ARCH, cfg.MODEL.DEPTH, cfg.MODEL.BASE_WIDTH
        self.arch, self.mode = arch, cfg.M3A.MODE
        norm = get_norm(cfg)
        self._stem_names = []
        for name, module in build_stem(arch, width, norm):
            self.add_module(name, module)
            self._stem_names.append(name)
        blocks = list(cfg.MODEL.STAGE_BLOCKS) or STAGE_BLOCKS[depth]
        dim_in = width
        widths = stage_widths(depth, width)
        for stage, ((dim_out, dim_inner), num) in enumerate(zip(widths, blocks), 1):
            layer = self._make_stage(cfg, stage, num, dim_in, dim_out, dim_inner, norm)
            self.add_module(f"layer{stage}", layer)
            dim_in = dim_out
            if stage == 1 and arch == "i3d":
                self.maxpool2 = nn.MaxPool3d((2, 1, 1), (2, 1, 1))
        self.feature_dim = dim_in
        self.pool_size = head_pool_size(arch, cfg.DATA.NUM_FRAMES)
        self._init_backbone_weights()
        if self.mode == "NONE":
            if cfg.MODEL.DROPOUT_RATE > 0:
                self.dropout = nn.Dropout(cfg.MODEL.DROPOUT_RATE)
            self.projection = nn.Linear(dim_in, cfg.MODEL.NUM_CLASSES)
            nn.init.normal_(self.projection.weight, std=0.01)
            nn.init.zeros_(self.projection.bias)
            self.act = head_activation(cfg.MODEL.HEAD_ACT, dim=-1)
        else:
            self.m3a_head = M3AHead(cfg, dim_in, self.pool_size, load_m3a_inputs(cfg))

    def _make_stage(
        self, cfg: CfgNode, stage: int, num: int, dim_in: int, dim_out: int, dim_inner: int, norm
    ) -> nn.Sequential:
        kind = CONV_KINDS[self.arch]
        bottleneck = cfg.MODEL.DEPTH in BOTTLENECK_DEPTHS
        down = (1, 2, 2) if bottleneck and self.arch == "i3d" else (2, 2, 2)
        layers = []
        for idx in range(num):
            stride = down if stage > 1 and idx == 0 else (1, 1, 1)
            if bottleneck:
                block = Bottleneck(
                    dim_in, dim_out, dim_inner, kind, stride, norm, cfg.MODEL.SE_RATIO,
                    temporal_conv=_uses_temporal_conv(stage, idx), i3d=self.arch == "i3d",
                )
            else:
                block = BasicBlock(dim_in, dim_out, kind, stride, norm, cfg.MODEL.SE_RATIO)
            layers.append(block)
            dim_in = dim_out
        return nn.Sequential(*layers)

    def _init_backbone_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @staticmethod
    def _as_tensor(x: Union[torch.Tensor, Sequence[torch.Tensor]]) -> torch.Tensor:
        if isinstance(x, (list, tuple)):
            if len(x) != 1:
                raise ValueError(f"M3ANET has one pathway, got {len(x)} inputs")
            x = x[0]
        return x

    def forward_features(self, x: Union[torch.Tensor, Sequence[torch.Tensor]]) -> torch.Tensor:
        """Last backbone feature map (B, C, T', H', W') of a clip batch (B, 3, T, H, W)."""
        x = self._as_tensor(x)
        for name in self._stem_names:
            x = getattr(self, name)(x)
        x = self.layer1(x)
        if self.arch == "i3d":
            x = self.maxpool2(x)
        return self.layer4(self.layer3(self.layer2(x)))

    def pooled_features(self, x: Union[torch.Tensor, Sequence[torch.Tensor]]) -> torch.Tensor:
        """Clip features X (B, C): head pooling of the last map, averaged over (T, H, W)."""
        return head_pool(self.forward_features(x), self.pool_size).mean(dim=(2, 3, 4))

    def forward(self, x: Union[torch.Tensor, Sequence[torch.Tensor]]) -> torch.Tensor:
        """Scores (B, NUM_CLASSES): logits in training, activated at eval."""
        feature_map = self.forward_features(x)
        if self.mode != "NONE":
            return self.m3a_head(feature_map)
        x = head_pool(feature_map, self.pool_size).permute(0, 2, 3, 4, 1)
        if hasattr(self, "dropout"):
            x = self.dropout(x)
        x = self.projection(x)
        if not self.training:
            x = self.act(x)
        return x.mean(dim=(1, 2, 3))
