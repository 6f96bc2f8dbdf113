"""Collecting predictions over processes and turning them into the reported metrics."""
from typing import Dict, List

from fvcore.common.config import CfgNode

import numpy as np

from m3a.utils import distributed as du
from m3a.utils import metrics


def gather_predictions(
    indices: List[np.ndarray], scores: List[np.ndarray], labels: List[np.ndarray]
) -> Dict[str, np.ndarray]:
    """Concatenate this process's batches, gather all processes, keep each video index once.

    A DistributedSampler pads the data set so every process sees as many videos; the padded
    repeats share an index with the original and are dropped here. Rows come back sorted by index.
    """
    local = {
        "indices": np.concatenate(indices) if indices else np.zeros((0,), np.int64),
        "scores": np.concatenate(scores) if scores else None,
        "labels": np.concatenate(labels) if labels else None,
    }
    parts = [p for p in du.all_gather_objects(local) if p["scores"] is not None]
    if not parts:
        empty = np.zeros((0,), np.int64)
        return {"indices": empty, "scores": np.zeros((0, 0), np.float32), "labels": np.zeros((0,))}
    all_idx = np.concatenate([p["indices"] for p in parts]).astype(np.int64)
    all_scores = np.concatenate([p["scores"] for p in parts])
    all_labels = np.concatenate([p["labels"] for p in parts])
    unique_idx, first = np.unique(all_idx, return_index=True)
    return {"indices": unique_idx, "scores": all_scores[first], "labels": all_labels[first]}


def gather_failed(failed: List[np.ndarray]) -> np.ndarray:
    """Indices of the videos that failed to decode, from every process, each once (sorted)."""
    per_rank = [np.concatenate(f) if f else np.zeros(0, np.int64) for f in du.all_gather_objects(failed)]
    return np.unique(np.concatenate(per_rank)).astype(np.int64)


def require_decoded(num_scored: int, failed: np.ndarray, dataset) -> None:
    """DecodeError naming the list when not one of its videos could be decoded (a split of
    broken videos must not report mAP 0.0 as a result)."""
    if num_scored == 0:
        from m3a.datasets.decoder import DecodeError

        first = dataset.paths[int(failed[0])] if len(failed) else "(none)"
        raise DecodeError(f"{dataset.list_path}: none of its {len(dataset)} videos could be decoded "
                          f"({len(failed)} failed; first: {first})")


def compute_metrics(scores: np.ndarray, labels: np.ndarray) -> Dict[str, float]:
    """Class-wise and sample-wise mAP, top-1 and top-5 of per-video ``scores`` (V, N)."""
    if len(scores) == 0:
        return {"map_class": 0.0, "map_sample": 0.0, "top1": 0.0, "top5": 0.0}
    multi_hot = metrics.labels_to_multi_hot(labels, scores.shape[1])
    return {
        "map_class": metrics.map_class(scores, multi_hot),
        "map_sample": metrics.map_sample(scores, multi_hot),
        "top1": metrics.topk_accuracy(scores, multi_hot, 1),
        "top5": metrics.topk_accuracy(scores, multi_hot, 5),
    }


def class_coverage(scores: np.ndarray, labels: np.ndarray) -> Dict[str, int]:
    """``classes_without_positives``: classes no video of ``labels`` has, which the class-wise
    mAP leaves out (0 without videos)."""
    if len(scores) == 0:
        return {"classes_without_positives": 0}
    multi_hot = metrics.labels_to_multi_hot(labels, scores.shape[1])
    return {"classes_without_positives": metrics.classes_without_positives(multi_hot)}

def threshold_metrics(cfg: CfgNode, scores: np.ndarray, labels: np.ndarray, num_views: int = 1) -> Dict[str, float]:
    """Micro / macro precision, recall and F1 at ``TEST.THRESHOLD`` of per-video ``scores`` (V, N)
    combined over ``num_views`` views: a sum is turned back into the mean view score, a max is
    used as it is, so the threshold applies to a probability. Also ``threshold``."""
    out: Dict[str, float] = {"threshold": float(cfg.TEST.THRESHOLD)}
    if len(scores) == 0:
        return {**out, **{f"{m}_{a}": 0.0 for m in ("precision", "recall", "f1") for a in ("micro", "macro")}}
    probs = scores / num_views if cfg.DATA.ENSEMBLE_METHOD == "sum" else scores
    multi_hot = metrics.labels_to_multi_hot(labels, scores.shape[1])
    return {**out, **metrics.threshold_prf(probs, multi_hot, cfg.TEST.THRESHOLD)}


def prf_text(results: Dict[str, float]) -> str:
    """``P/R/F1@0.5 micro 0.81/0.70/0.75 macro 0.62/0.55/0.57`` of :func:`threshold_metrics`."""
    parts = [f"{avg} " + "/".join(f"{results[f'{m}_{avg}']:.4f}" for m in ("precision", "recall", "f1"))
             for avg in ("micro", "macro")]
    return f"P/R/F1@{results['threshold']:g} " + " ".join(parts)
