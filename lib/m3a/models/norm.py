"""Normalisation layers of the backbone: plain, frozen and synchronised batch norm."""
from functools import partial
from typing import Callable

import torch.nn as nn
from fvcore.common.config import CfgNode


class FrozenBatchNorm3d(nn.BatchNorm3d):
    """BatchNorm3d with fixed statistics and affine parameters (same state-dict keys).

    It always normalises with its running statistics and never updates them, even when the model
    is in training mode; its weight and bias do not require gradients.
    """

    def __init__(self, num_features: int, **kwargs) -> None:
        super().__init__(num_features, **kwargs)
        self.weight.requires_grad_(False)
        self.bias.requires_grad_(False)

    def train(self, mode: bool = True) -> "FrozenBatchNorm3d":
        """Stay in eval mode whatever ``mode`` asks."""
        return super().train(False)


def get_norm(cfg: CfgNode) -> Callable[[int], nn.Module]:
    """Return a constructor ``norm(num_features)`` for the backbone's BN layers.

    ``BN.FREEZE_PARAMS`` gives FrozenBatchNorm3d; ``BN.NORM_TYPE sync_batchnorm`` is applied
    after construction by :func:`convert_sync_batchnorm`.
    """
    cls = FrozenBatchNorm3d if cfg.BN.FREEZE_PARAMS else nn.BatchNorm3d
    return partial(cls, eps=cfg.BN.EPSILON, momentum=cfg.BN.MOMENTUM)


def convert_sync_batchnorm(model: nn.Module) -> nn.Module:
    """Replace every BatchNorm2d / BatchNorm3d of ``model`` by SyncBatchNorm (FrozenBatchNorm3d
    stays); parameters that do not require gradients keep not requiring them."""
    for name, child in model.named_children():
        if type(child) in (nn.BatchNorm2d, nn.BatchNorm3d):
            sync = nn.SyncBatchNorm(
                child.num_features, child.eps, child.momentum, child.affine,
                child.track_running_stats,
            )
            sync.load_state_dict(child.state_dict())
            sync.train(child.training)
            if child.affine:
                sync.weight.requires_grad_(child.weight.requires_grad)
                sync.bias.requires_grad_(child.bias.requires_grad)
            setattr(model, name, sync)
        else:
            convert_sync_batchnorm(child)
    return model
