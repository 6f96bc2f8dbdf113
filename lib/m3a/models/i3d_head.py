"""The I3D classification head (``i3d``): one dropout + Linear classifier per input stream,
logits summed (late fusion with weights 1:1, as in EPAM-Net). Under MODEL.LOSS_FUNC
``stream_cross_entropy`` the training outputs are the streams' logits (B, S, N) and the loss is
the sum of their cross-entropies (EPAM-Net's two-stream loss).

The streams and their widths come from the backbone's ``stream_dims`` (one unnamed stream for
most backbones). Published keys: ``cls_head.fc_cls.*`` for one unnamed stream (the MMAction2
``I3DHead``), ``<stream>_cls_head.fc_cls.*`` per named stream (EPAM-Net's ``rgb_cls_head`` and
``pose_cls_head``). Dropout rate: MODEL.DROPOUT_RATE (defined by the FC head).

With several streams the head also gives each stream's own scores at test (the extra score sets
of :mod:`m3a.engine.extra_scores`): per-stream and fused metrics in one test run.
"""
from typing import Dict, List, Tuple

import torch
import torch.nn as nn
from fvcore.common.config import CfgNode

from m3a.config.errors import ConfigError
from m3a.models.build import HEAD_REGISTRY, component_classes, register
from m3a.models.heads import Head, as_positions, head_activation

# Standard deviation of the classifiers' initial weights (biases start at 0).
INIT_STD = 0.01


class StreamClassifier(nn.Module):
    """Dropout + Linear ``fc_cls`` over one stream's pooled features."""

    def __init__(self, in_dim: int, num_classes: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.fc_cls = nn.Linear(in_dim, num_classes)
        nn.init.normal_(self.fc_cls.weight, std=INIT_STD)
        nn.init.zeros_(self.fc_cls.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc_cls(self.dropout(x))


def module_name(stream: str) -> str:
    """``cls_head`` for an unnamed stream, ``<stream>_cls_head`` otherwise."""
    return f"{stream}_cls_head" if stream else "cls_head"


@register(HEAD_REGISTRY, "i3d")
class I3DHead(Head):
    """Per-stream logits summed: logits in training, MODEL.HEAD_ACT of the sum at eval.

    Input: the neck's (B, C) (or (B, P, C), averaged over P first), the streams' features
    concatenated in ``stream_dims`` order.
    """


    def __init__(self, cfg: CfgNode, in_dim: int, inputs: Dict[str, object]) -> None:
        super().__init__()
        self.streams = self.streams_of(cfg)
        for stream, dim in self.streams:
            self.add_module(module_name(stream),
                            StreamClassifier(dim, cfg.MODEL.NUM_CLASSES, cfg.MODEL.DROPOUT_RATE))
        self.act = head_activation(cfg.MODEL.HEAD_ACT, dim=-1)
        # Under the per-stream loss, training outputs are the streams' logits (B, S, N).
        self.per_stream_outputs = cfg.MODEL.LOSS_FUNC == "stream_cross_entropy"

    @staticmethod
    def streams_of(cfg: CfgNode) -> List[Tuple[str, int]]:
        """(name, width) of the backbone's streams."""
        return component_classes(cfg)[0].stream_dims(cfg)

    @classmethod
    def check_config(cls, cfg: CfgNode, in_dim: int) -> None:
        """The streams' widths add up to the backbone's output width."""
        if not 0.0 <= cfg.MODEL.DROPOUT_RATE < 1.0:
            raise ConfigError(f"MODEL.DROPOUT_RATE must be in [0, 1), got {cfg.MODEL.DROPOUT_RATE}")
        widths = [dim for _, dim in cls.streams_of(cfg)]
        if sum(widths) != in_dim:
            raise ConfigError(f"MODEL.HEAD i3d: the backbone's stream widths {widths} do not add "
                              f"up to its output width {in_dim}")

    def stream_logits(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Each stream's logits (B, NUM_CLASSES), by stream name."""
        x = as_positions(x).mean(dim=1)
        parts = torch.split(x, [dim for _, dim in self.streams], dim=1)
        return {stream: getattr(self, module_name(stream))(part)
                for (stream, _), part in zip(self.streams, parts)}

    def extra_score_names(self) -> List[str]:
        """The streams' names when there are several (EPAM-Net: ``rgb``, ``pose``), scored on
        their own at test; ``[]`` for one stream (its scores are the model's)."""
        return [stream for stream, _ in self.streams] if len(self.streams) > 1 else []

    def forward_with_extra_scores(self, x: torch.Tensor) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        """The scores of :meth:`forward` and each stream's scores alone (MODEL.HEAD_ACT of its
        logits (B, NUM_CLASSES), by stream name; only with several streams), from one pass of the
        stream classifiers. The model's scores are HEAD_ACT of the logits' sum; with softmax they
        equal softmax(sum of the log stream scores)."""
        logits = self.stream_logits(x)
        names = self.extra_score_names()
        return self._fuse(logits), {s: self.act(part) for s, part in logits.items() if s in names}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Summed logits in training (per-stream logits (B, S, N) under MODEL.LOSS_FUNC
        stream_cross_entropy); the activation of the summed logits at eval."""
        return self._fuse(self.stream_logits(x))

    def _fuse(self, logits: Dict[str, torch.Tensor]) -> torch.Tensor:
        """The head's output from the streams' logits (see :meth:`forward`)."""
        streams = torch.stack(list(logits.values()), dim=1)
        if self.training and self.per_stream_outputs:
            return streams
        fused = streams.sum(dim=1)
        return fused if self.training else self.act(fused)
