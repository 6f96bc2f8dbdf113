"""Stems of the video ResNets: the layers before ``layer1``, named as in the published layout."""
from typing import Callable, List, Tuple

import torch.nn as nn

from m3a.models.blocks import conv3d

# Width of the (2+1)D stem's middle layer at the published base width 64.
R2PLUS1D_STEM_MIDDLE = 45


def build_stem(
    arch: str, width: int, norm: Callable[[int], nn.Module]
) -> List[Tuple[str, nn.Module]]:
    """Return the stem of ``arch`` as ordered ``(name, module)`` pairs, 3 -> ``width`` channels.

    r2plus1d: ``conv1_middle`` 1x7x7 /(1,2,2) to 45 (scaled with ``width``) + BN + ReLU, then
    ``conv1`` 3x1x1 + BN + ReLU; r3d: ``conv1`` 3x7x7 /(1,2,2) + BN + ReLU; i3d: 5x7x7 and
    ir_csn: 3x7x7, each followed by a (1,3,3)/(1,2,2) max-pool.
    """
    if arch == "r2plus1d":
        mid = max(1, round(R2PLUS1D_STEM_MIDDLE * width / 64))
        return [
            ("conv1_middle", conv3d(3, mid, (1, 7, 7), (1, 2, 2), (0, 3, 3), bias=False)),
            ("bn1_middle", norm(mid)),
            ("relu1_middle", nn.ReLU(inplace=True)),
            ("conv1", conv3d(mid, width, (3, 1, 1), (1, 1, 1), (1, 0, 0), bias=False)),
            ("bn1", norm(width)),
            ("relu1", nn.ReLU(inplace=True)),
        ]
    if arch not in ("r3d", "i3d", "ir_csn"):
        raise ValueError(f"unknown MODEL.ARCH '{arch}'")
    kt = 5 if arch == "i3d" else 3
    layers = [
        ("conv1", conv3d(3, width, (kt, 7, 7), (1, 2, 2), (kt // 2, 3, 3), bias=False)),
        ("bn1", norm(width)),
        ("relu1", nn.ReLU(inplace=True)),
    ]
    if arch in ("i3d", "ir_csn"):
        layers.append(("maxpool1", nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1))))
    return layers
