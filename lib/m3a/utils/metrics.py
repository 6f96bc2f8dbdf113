"""Multi-label and single-label video metrics (DESIGN.md section 5), vectorised over classes.

Average precision follows scikit-learn's ``average_precision_score``: the precision at each
distinct score threshold, weighted by the recall gained there (tied scores form one threshold).
"""
from typing import Union

import numpy as np
import torch

ArrayLike = Union[np.ndarray, torch.Tensor]


def _as_numpy(x: ArrayLike) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _check(preds: ArrayLike, labels: ArrayLike) -> tuple:
    p, y = _as_numpy(preds), _as_numpy(labels)
    if p.ndim != 2 or p.shape != y.shape:
        raise ValueError(f"preds and labels must both be (videos, classes); got {p.shape} and {y.shape}")
    return p, (y > 0).astype(np.float64)


def labels_to_multi_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Multi-hot (videos, classes) form of ``labels`` (class indices (V,) or already multi-hot)."""
    labels = np.asarray(labels)
    if labels.ndim == 2:
        return (labels > 0).astype(np.float32)
    out = np.zeros((len(labels), num_classes), dtype=np.float32)
    out[np.arange(len(labels)), labels.astype(np.int64)] = 1.0
    return out


def average_precision_columns(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """AP of every column of ``scores`` (n, c) against binary ``targets``; NaN where no positive."""
    n = scores.shape[0]
    order = np.argsort(-scores, axis=0, kind="stable")
    s = np.take_along_axis(scores, order, axis=0)
    y = np.take_along_axis(targets, order, axis=0)
    tp = np.cumsum(y, axis=0)
    rank = np.arange(1, n + 1, dtype=np.float64)[:, None]
    # A threshold ends where the next sorted score differs (or at the last row).
    group_end = np.ones_like(s, dtype=bool)
    group_end[:-1] = s[:-1] != s[1:]
    end_idx = np.where(group_end, np.arange(n)[:, None], n)
    end_idx = np.minimum.accumulate(end_idx[::-1], axis=0)[::-1]
    precision_at_end = np.take_along_axis(tp / rank, end_idx, axis=0)
    positives = y.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ap = (y * precision_at_end).sum(axis=0) / positives
    ap[positives == 0] = np.nan
    return ap


def map_class(preds: ArrayLike, labels: ArrayLike) -> float:
    """Class-wise mAP: AP of each class over videos, averaged over classes with a positive."""
    p, y = _check(preds, labels)
    ap = average_precision_columns(p, y)
    return float(np.nanmean(ap)) if np.isfinite(ap).any() else 0.0


def map_sample(preds: ArrayLike, labels: ArrayLike) -> float:
    """Sample-wise mAP: AP of each video over classes, averaged over videos with a label."""
    p, y = _check(preds, labels)
    ap = average_precision_columns(p.T, y.T)
    return float(np.nanmean(ap)) if np.isfinite(ap).any() else 0.0


def per_class_ap(preds: ArrayLike, labels: ArrayLike) -> np.ndarray:
    """AP of every class (NaN for classes without a positive video)."""
    p, y = _check(preds, labels)
    return average_precision_columns(p, y)


def topk_accuracy(preds: ArrayLike, labels: ArrayLike, k: int) -> float:
    """Fraction of videos with at least one true label among the ``k`` highest scores.

    ``labels`` is multi-hot (videos, classes) or a vector of class indices (single-label); with
    one label per video this is the usual top-k accuracy.
    """
    p = _as_numpy(preds)
    y = _as_numpy(labels)
    if y.ndim == 1:
        y = labels_to_multi_hot(y, p.shape[1])
    p, y = _check(p, y)
    k = min(k, p.shape[1])
    top = np.argpartition(-p, k - 1, axis=1)[:, :k]
    hit = np.take_along_axis(y, top, axis=1).max(axis=1)
    return float(hit.mean()) if len(hit) else 0.0
