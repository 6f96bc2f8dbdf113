"""Stems of the video ResNets: the layers before ``layer1``, named as in the published layout."""
from typing import Callable, List, Tuple

import torch.nn as nn

from m3a.models.blocks import conv3d

# Width of the (2+1)D stem's middle layer at the published base width 64.
R2PLUS1D_STEM_MIDDLE = 45


def build_stem(
    width: int, norm: Callable[[int], nn.Module], temporal_kernel: int, factorised: bool,
    max_pool: bool,
) -> List[Tuple[str, nn.Module]]:
    """Return a video ResNet stem as ordered ``(name, module)`` pairs, 3 -> ``width`` channels.

    ``factorised`` ((2+1)D): ``conv1_middle`` 1x7x7 /(1,2,2) to 45 channels (scaled with
    ``width``) + BN + ReLU, then ``conv1`` kt x1x1 + BN + ReLU. Otherwise ``conv1`` kt x7x7
    /(1,2,2) + BN + ReLU. ``max_pool`` adds a (1,3,3)/(1,2,2) max-pool.
    """
    kt = temporal_kernel
    if factorised:
        mid = max(1, round(R2PLUS1D_STEM_MIDDLE * width / 64))
        layers = [
            ("conv1_middle", conv3d(3, mid, (1, 7, 7), (1, 2, 2), (0, 3, 3), bias=False)),
            ("bn1_middle", norm(mid)),
            ("relu1_middle", nn.ReLU(inplace=True)),
            ("conv1", conv3d(mid, width, (kt, 1, 1), (1, 1, 1), (kt // 2, 0, 0), bias=False)),
        ]
    else:
        layers = [("conv1", conv3d(3, width, (kt, 7, 7), (1, 2, 2), (kt // 2, 3, 3), bias=False))]
    layers += [("bn1", norm(width)), ("relu1", nn.ReLU(inplace=True))]
    if max_pool:
        layers.append(("maxpool1", nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1))))
    return layers
