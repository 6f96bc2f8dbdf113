"""Multi-label and single-label video metrics (DESIGN.md section 5), vectorised over classes.

Average precision follows scikit-learn's ``average_precision_score``: the precision at each
distinct score threshold, weighted by the recall gained there (tied scores form one threshold).
Equivalently, with P positives, AP = (1/P) * sum over the positives of
(positives scoring >= its score) / (items scoring >= its score). Each ranking is sorted once
(values only, in float32 when the scores are float32) and every positive's two counts are found
by binary search in it, so all rankings are handled together without a Python loop.
"""
from typing import Union

import numpy as np
import torch

ArrayLike = Union[np.ndarray, torch.Tensor]


def _scores(x: ArrayLike) -> np.ndarray:
    """Scores as float32 when they are float32 or narrower (exactly), else as float64."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        x = (x.float() if x.is_floating_point() and x.element_size() <= 4 else x.double()).numpy()
    x = np.asarray(x)
    if x.dtype in (np.float32, np.float16):
        return x.astype(np.float32, copy=False)
    return x.astype(np.float64, copy=False)


def _positives(x: ArrayLike) -> np.ndarray:
    """Binary labels as booleans (label > 0)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x) > 0


def _check(preds: ArrayLike, labels: ArrayLike) -> tuple:
    p, y = _scores(preds), _positives(labels)
    if p.ndim != 2 or p.shape != y.shape:
        raise ValueError(f"preds and labels must both be (videos, classes); got {p.shape} and {y.shape}")
    return p, y


def labels_to_multi_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Multi-hot (videos, classes) form of ``labels`` (class indices (V,) or already multi-hot)."""
    labels = np.asarray(labels)
    if labels.ndim == 2:
        return (labels > 0).astype(np.float32)
    out = np.zeros((len(labels), num_classes), dtype=np.float32)
    out[np.arange(len(labels)), labels.astype(np.int64)] = 1.0
    return out


def average_precision_rows(scores: np.ndarray, row: np.ndarray, col: np.ndarray) -> np.ndarray:
    """AP of every row of ``scores`` (r, n) whose positives are at ``(row[i], col[i])``; NaN for
    rows without a positive.

    Raises ValueError when a score is NaN or infinite (as scikit-learn does).
    """
    n = scores.shape[1]
    ordered = np.sort(scores, axis=1)
    if n and (np.isnan(ordered[:, -1]).any() or np.isinf(ordered[:, [0, -1]]).any()):
        raise ValueError("scores must be finite; found NaN or infinity")
    value, count = _positive_scores(scores, row, col)
    if value.shape[1] == 0:
        return np.full(len(scores), np.nan)
    # Items (all, and positives) scoring >= each positive: n (P) minus those scoring below it.
    at_least = n - _count_below(ordered, value)
    hits = count[:, None] - _count_below(np.sort(value, axis=1), value)  # the +inf padding sorts last
    real = np.arange(value.shape[1])[None, :] < count[:, None]
    precision = np.divide(hits, at_least, out=np.zeros(value.shape), where=real)
    with np.errstate(invalid="ignore", divide="ignore"):
        return precision.sum(axis=1) / np.where(count > 0, count, np.nan)


def _count_below(ordered: np.ndarray, value: np.ndarray) -> np.ndarray:
    """For every entry of ``value`` (r, m), the number of entries of the same row of the sorted
    ``ordered`` (r, n) that are smaller (a binary search per entry)."""
    return torch.searchsorted(torch.from_numpy(ordered), torch.from_numpy(value)).numpy()


def _positive_scores(scores: np.ndarray, row: np.ndarray, col: np.ndarray) -> tuple:
    """The scores of each row's positives, left-aligned in a (r, most positives) array padded
    with +inf, and the number of positives per row."""
    order = np.argsort(row, kind="stable")
    row, col = row[order], col[order]
    count = np.bincount(row, minlength=len(scores))
    value = np.full((len(scores), int(count.max(initial=0))), np.inf, dtype=scores.dtype)
    first = np.cumsum(count) - count
    value[row, np.arange(len(row)) - first[row]] = scores[row, col]
    return value, count


def _positive_cells(positive: np.ndarray) -> tuple:
    """(row, column) of every True entry of a 2-D boolean array, in row-major order."""
    flat = np.flatnonzero(positive)  # much faster than the 2-D np.nonzero
    return flat // positive.shape[1], flat % positive.shape[1]


def average_precision_columns(scores: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """AP of every column of ``scores`` (n, c) against boolean ``positive``; NaN where no positive."""
    video, label = _positive_cells(positive)
    columns = torch.from_numpy(scores).t().contiguous().numpy()  # torch transposes ~2x faster than numpy
    return average_precision_rows(columns, label, video)


def map_class(preds: ArrayLike, labels: ArrayLike) -> float:
    """Class-wise mAP: AP of each class over videos, averaged over classes with a positive."""
    p, y = _check(preds, labels)
    ap = average_precision_columns(p, y)
    return float(np.nanmean(ap)) if np.isfinite(ap).any() else 0.0


def map_sample(preds: ArrayLike, labels: ArrayLike) -> float:
    """Sample-wise mAP: AP of each video over classes, averaged over videos with a label."""
    p, y = _check(preds, labels)
    ap = average_precision_rows(p, *_positive_cells(y))
    return float(np.nanmean(ap)) if np.isfinite(ap).any() else 0.0


def classes_without_positives(labels: ArrayLike) -> int:
    """Number of classes (columns of the multi-hot ``labels``) without a positive video: the
    class-wise mAP leaves them out (their AP is undefined), as Charades' evaluation does."""
    return int((~_positives(labels)).all(axis=0).sum())


def per_class_ap(preds: ArrayLike, labels: ArrayLike) -> np.ndarray:
    """AP of every class (NaN for classes without a positive video)."""
    p, y = _check(preds, labels)
    return average_precision_columns(p, y)


def per_class_accuracy(preds: ArrayLike, labels: ArrayLike) -> np.ndarray:
    """Recall of the top-1 prediction per class for single-label ``labels`` (a vector of class
    indices): the fraction of each class's videos whose highest score is that class. NaN for a
    class without a video in ``labels``."""
    p = _scores(preds)
    y = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if y.ndim != 1 or len(y) != len(p):
        raise ValueError(f"per-class accuracy needs one class index per video, got labels {y.shape} "
                         f"for scores {p.shape}")
    num_classes = p.shape[1]
    y = y.astype(np.int64)
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"class indices must be in [0, {num_classes}), got {y.min()}..{y.max()}")
    videos = np.bincount(y, minlength=num_classes).astype(np.float64)
    hits = np.bincount(y[p.argmax(axis=1) == y], minlength=num_classes).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(videos > 0, hits / videos, np.nan)


def mean_class_accuracy(preds: ArrayLike, labels: ArrayLike) -> float:
    """Mean over classes of the per-class top-1 recall (:func:`per_class_accuracy`), over the
    classes with at least one video in ``labels``: a class absent from the test set is left out
    of the mean (as ``sklearn.metrics.balanced_accuracy_score`` does), not counted as 0. 0.0
    when there are no videos."""
    per_class = per_class_accuracy(preds, labels)
    present = per_class[~np.isnan(per_class)]
    return float(present.mean()) if len(present) else 0.0


def topk_accuracy(preds: ArrayLike, labels: ArrayLike, k: int) -> float:
    """Fraction of videos with at least one true label among the ``k`` highest scores.

    ``labels`` is multi-hot (videos, classes) or a vector of class indices (single-label); with
    one label per video this is the usual top-k accuracy.
    """
    p = _scores(preds)
    y = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if y.ndim == 1:
        y = labels_to_multi_hot(y, p.shape[1])
    p, y = _check(p, y)
    k = min(k, p.shape[1])
    top = np.argpartition(-p, k - 1, axis=1)[:, :k]
    hit = np.take_along_axis(y, top, axis=1).max(axis=1)
    return float(hit.mean()) if len(hit) else 0.0


def threshold_prf(probs: ArrayLike, labels: ArrayLike, threshold: float) -> dict:
    """Precision, recall and F1 of the decisions ``probs >= threshold`` against multi-hot
    ``labels`` (videos, classes), micro- (pooled counts) and macro-averaged (mean over every class).

    As scikit-learn's ``precision_recall_fscore_support(..., zero_division=0)``: a ratio with a
    zero denominator is 0 (precision of a class never predicted, recall of a class without
    positives, F1 of a class with neither), and such classes still count in the macro mean.
    Keys: ``precision_micro``, ``recall_micro``, ``f1_micro``, ``precision_macro``,
    ``recall_macro``, ``f1_macro``.
    """
    p, y = _check(probs, labels)
    pred = p >= threshold
    tp = (pred & y).sum(axis=0).astype(np.float64)
    fp = (pred & ~y).sum(axis=0).astype(np.float64)
    fn = (~pred & y).sum(axis=0).astype(np.float64)

    def ratio(num, den):
        return np.divide(num, den, out=np.zeros_like(num, dtype=np.float64), where=den > 0)

    out = {}
    for name, (t, f_p, f_n) in (("micro", (tp.sum(keepdims=True), fp.sum(keepdims=True), fn.sum(keepdims=True))),
                                ("macro", (tp, fp, fn))):
        out[f"precision_{name}"] = float(ratio(t, t + f_p).mean()) if len(t) else 0.0
        out[f"recall_{name}"] = float(ratio(t, t + f_n).mean()) if len(t) else 0.0
        out[f"f1_{name}"] = float(ratio(2 * t, 2 * t + f_p + f_n).mean()) if len(t) else 0.0
    return out
