"""Training losses, chosen by ``MODEL.LOSS_FUNC`` through :func:`get_loss_func`.

Every loss takes ``(logits (B, N), targets)`` and returns a scalar (``reduction="mean"``) or a
per-sample vector (``reduction="none"``). Multi-label losses take multi-hot float targets (B, N);
``cross_entropy`` takes class indices (B,); :func:`prepare_targets` converts between the two.
``stream_cross_entropy`` also takes per-stream logits (B, S, N): a head with one classifier per
input stream (``i3d`` on a multi-stream backbone) returns them in training under this loss.
"""
from typing import Callable, Dict

import torch
import torch.nn as nn
import torch.nn.functional as F


class SoftTargetCrossEntropy(nn.Module):
    """Cross-entropy against a target distribution: ``-sum_c t_c log softmax(x)_c``.

    Multi-hot targets are normalised per row to sum to 1 (uniform over the video's labels);
    rows without any label contribute 0.
    """

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        targets = targets.to(logits.dtype)
        total = targets.sum(dim=1, keepdim=True)
        targets = targets / total.clamp_min(torch.finfo(targets.dtype).tiny)
        loss = -(targets * F.log_softmax(logits, dim=1)).sum(dim=1)
        return _reduce(loss, self.reduction)


class WeightedLSEPLoss(nn.Module):
    """Weighted smooth log-sum-exp pairwise ranking loss (wLSEP), for multi-label training.

    For one video with scores ``f`` (logits), positive labels ``Y`` and negatives ``Ybar``::

        wLSEP(f, Y) = log(1 + sum_{u in Y, v in Ybar} w * exp(f_v - f_u)),
        w = 1 / (|Y| * |Ybar|)

    i.e. LSEP (Li et al., CVPR 2017) with every (positive, negative) pair weighted by the inverse
    number of pairs, so videos with many or few labels contribute on the same scale. A video
    without positives or without negatives has no pairs and a loss of 0. Computed in log space
    (``log(1 + S) = logsumexp([0, log S])``) so large score gaps do not overflow.
    """

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        pos = targets > 0
        neg = ~pos
        # diff[b, u, v] = f_v - f_u for positive u and negative v.
        diff = logits.unsqueeze(1) - logits.unsqueeze(2)
        pair = pos.unsqueeze(2) & neg.unsqueeze(1)
        num_pairs = pair.sum(dim=(1, 2)).to(logits.dtype)
        log_w = -torch.log(num_pairs.clamp_min(1.0))
        masked = diff.masked_fill(~pair, float("-inf")).flatten(1)
        log_sum = torch.logsumexp(masked, dim=1) + log_w
        loss = F.softplus(log_sum)  # log(1 + exp(log_sum)); exp(-inf) = 0 when no pairs
        return _reduce(loss, self.reduction)


class StreamCrossEntropy(nn.Module):
    """The sum over streams of each stream's softmax cross-entropy: logits (B, S, N) (or (B, N),
    one stream), class indices (B,). EPAM-Net trains with CE(RGB logits) + CE(pose logits)."""

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        streams = logits.unsqueeze(1) if logits.dim() == 2 else logits
        loss = sum(F.cross_entropy(streams[:, s], targets, reduction="none")
                   for s in range(streams.shape[1]))
        return _reduce(loss, self.reduction)


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"unknown reduction '{reduction}'")


LOSSES: Dict[str, Callable[..., nn.Module]] = {
    "bce_logit": nn.BCEWithLogitsLoss,
    "bce": nn.BCELoss,
    "cross_entropy": nn.CrossEntropyLoss,
    "soft_cross_entropy": SoftTargetCrossEntropy,
    "wlsep": WeightedLSEPLoss,
    "stream_cross_entropy": StreamCrossEntropy,
}

# Losses that take class indices (B,) rather than multi-hot targets (B, N).
INDEX_TARGET_LOSSES = frozenset({"cross_entropy", "stream_cross_entropy"})


def get_loss_func(name: str) -> Callable[..., nn.Module]:
    """Return the loss class registered as ``name`` (call it with ``reduction=...``)."""
    if name not in LOSSES:
        raise ValueError(f"unknown MODEL.LOSS_FUNC '{name}'; choose from {sorted(LOSSES)}")
    return LOSSES[name]


def prepare_targets(labels: torch.Tensor, num_classes: int, loss_name: str) -> torch.Tensor:
    """Convert ``labels`` to the target form ``loss_name`` expects.

    Class indices (B,) become one-hot floats for multi-label losses; multi-hot (B, N) targets
    become the index of their first label for ``cross_entropy``.
    """
    if loss_name in INDEX_TARGET_LOSSES:
        if labels.dim() == 2:
            return labels.argmax(dim=1)
        return labels.long()
    if labels.dim() == 1:
        return F.one_hot(labels.long(), num_classes).float()
    return labels.float()


def compute_loss(loss_fn: nn.Module, outputs: torch.Tensor, targets: torch.Tensor, loss_name: str) -> torch.Tensor:
    """Apply ``loss_fn``; ``bce`` gets probabilities (the sigmoid of the logits) in float32."""
    outputs = outputs.float()
    if loss_name == "bce":
        outputs = torch.sigmoid(outputs)
    return loss_fn(outputs, targets)
