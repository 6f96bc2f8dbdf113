"""Extra named score sets a model contributes to testing, and mean class accuracy.

The hook (ADDING_A_MODEL.md, "Extra score sets at test"): a model with a non-empty
``extra_score_names()`` is called at test through ``forward_with_extra_scores(x)``, which returns
its usual scores and a dict ``{name: (B, NUM_CLASSES) scores}`` (e.g. EPAM-Net's ``rgb`` and
``pose`` streams). Each set is combined over a video's views by ``DATA.ENSEMBLE_METHOD``, left
out for videos that failed to decode and gathered over the processes exactly like the main
scores, then scored with the same metrics. A model without the hook (or with no names) is
called as ``model(x)``, unchanged; one with sets is called outside its (D)DP wrapper, which
has nothing to do at eval.

Outputs (see :func:`summary_metrics`, :func:`prediction_arrays`, :func:`result_text`):
``test_metrics.json`` gets ``mean_class_accuracy`` for single-label data and ``extra_scores``
``{name: {metric: value}}``; ``test_predictions.npz`` gets ``scores_<name>`` (V, N) per set; the
result line gets ``mean class acc`` and ``<name>: top-1 .. top-5 ..`` per set.
"""
from typing import Dict, List

import numpy as np
import torch
import torch.nn as nn

from m3a.datasets.multiview import combine_views
from m3a.engine.evaluation import compute_metrics, gather_predictions
from m3a.utils import metrics
from m3a.utils.checkpoint import unwrap_model

# test_metrics.json key of the extra sets' metrics.
EXTRA_KEY = "extra_scores"
# test_predictions.npz key prefix of an extra set's scores.
NPZ_PREFIX = "scores_"


def extra_score_names(model: nn.Module) -> List[str]:
    """The names of the score sets ``model`` adds at test (``[]`` without the hook), checked:
    ValueError unless they are distinct identifiers."""
    own = getattr(unwrap_model(model), "extra_score_names", None)
    names = list(own()) if own is not None else []
    bad = [n for n in names if not (isinstance(n, str) and n.isidentifier())]
    if bad or len(set(names)) != len(names):
        raise ValueError(f"{type(unwrap_model(model)).__name__}.extra_score_names() must give distinct "
                         f"identifiers, got {names}")
    return names


def set_metrics(scores: np.ndarray, labels: np.ndarray) -> Dict[str, float]:
    """The test metrics of one score set: those of :func:`compute_metrics`, and
    ``mean_class_accuracy`` when ``labels`` are class indices (single-label)."""
    out = compute_metrics(scores, labels)
    if np.asarray(labels).ndim == 1:
        out["mean_class_accuracy"] = _mean_class_accuracy(scores, labels)
    return out


def _mean_class_accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mean class accuracy of single-label ``labels`` (0.0 without videos)."""
    return metrics.mean_class_accuracy(scores, labels) if len(scores) else 0.0


class ExtraScores:
    """Collects a model's extra score sets over the test batches of one process."""

    def __init__(self, model: nn.Module, ensemble_method: str) -> None:
        self.model, self.method = model, ensemble_method
        self.names = extra_score_names(model)
        self.parts: Dict[str, List[np.ndarray]] = {name: [] for name in self.names}
        self._batch: Dict[str, torch.Tensor] = {}

    def forward(self, inputs) -> torch.Tensor:
        """The model's scores of ``inputs``; the extra sets are kept for :meth:`keep`."""
        if not self.names:
            return self.model(inputs)
        scores, extra = unwrap_model(self.model).forward_with_extra_scores(inputs)
        if sorted(extra) != sorted(self.names):
            raise ValueError(f"forward_with_extra_scores gave the sets {sorted(extra)}, but "
                             f"extra_score_names() named {sorted(self.names)}")
        wrong = {name: tuple(s.shape) for name, s in extra.items() if s.shape != scores.shape}
        if wrong:  # the sets travel as further columns of the main scores (gather)
            raise ValueError(f"extra score sets must have the main scores' shape {tuple(scores.shape)}; "
                             f"got {wrong}")
        self._batch = extra
        return scores

    def keep(self, videos: int, views: int, ok: torch.Tensor) -> None:
        """Combine the last batch's sets over each video's views; keep the decoded videos'."""
        for name, scores in self._batch.items():
            per_video = combine_views(scores.float().reshape(videos, views, -1), self.method).cpu()
            self.parts[name].append(per_video[ok].numpy())
        self._batch = {}

    def gather(self, indices: List[np.ndarray], scores: List[np.ndarray], labels: List[np.ndarray]) -> Dict:
        """:func:`gather_predictions` of this process's batches of main ``scores``, with every
        set's (V, N) scores, rows in the same order, under ``EXTRA_KEY``; one gather over the
        processes for all of them (the sets travel as further columns of the main scores)."""
        if not self.names:
            return {**gather_predictions(indices, scores, labels), EXTRA_KEY: {}}
        joined = [np.concatenate(batch, axis=1) for batch in zip(scores, *(self.parts[n] for n in self.names))]
        gathered = gather_predictions(indices, joined, labels)
        main, *sets = (np.ascontiguousarray(s) for s in np.split(gathered["scores"], 1 + len(self.names), axis=1))
        return {**gathered, "scores": main, EXTRA_KEY: dict(zip(self.names, sets))}


def summary_metrics(results: Dict) -> Dict:
    """What the extras add to ``test_metrics.json``: ``mean_class_accuracy`` of the main scores
    (single-label data) and ``extra_scores`` {name: metrics} (when the model has sets)."""
    scores, labels = results["scores"], results["labels"]
    out: Dict = {}
    if np.asarray(labels).ndim == 1:
        out["mean_class_accuracy"] = _mean_class_accuracy(scores, labels)  # the rest is already computed
    extra = results.get(EXTRA_KEY) or {}
    if extra:
        out[EXTRA_KEY] = {name: set_metrics(s, labels) for name, s in extra.items()}
    return out


def prediction_arrays(results: Dict) -> Dict[str, np.ndarray]:
    """The extra sets' arrays for ``test_predictions.npz``: ``scores_<name>`` float32 (V, N)."""
    return {NPZ_PREFIX + name: s.astype(np.float32) for name, s in (results.get(EXTRA_KEY) or {}).items()}


def result_text(summary: Dict) -> str:
    """The result line's part for the extras, e.g.
    `` | mean class acc 0.7500 | rgb: top-1 0.5000 top-5 1.0000 | pose: top-1 0.7500 top-5 1.0000``
    (empty for multi-label data from a model without sets)."""
    parts: List[str] = []
    if "mean_class_accuracy" in summary:
        parts.append(f"mean class acc {summary['mean_class_accuracy']:.4f}")
    for name, m in (summary.get(EXTRA_KEY) or {}).items():
        mca = f" mean class acc {m['mean_class_accuracy']:.4f}" if "mean_class_accuracy" in m else ""
        parts.append(f"{name}: top-1 {m['top1']:.4f} top-5 {m['top5']:.4f}{mca}")
    return "".join(f" | {p}" for p in parts)

