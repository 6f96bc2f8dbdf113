"""Per-class AP boost of a model over a baseline, from two test_predictions.npz files."""
import csv
import dataclasses
import logging
import os
from typing import List, Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from m3a.utils.file_io import atomic_path  # noqa: E402
from m3a.utils.metrics import labels_to_multi_hot, per_class_ap  # noqa: E402

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class Predictions:
    """Scores (V, N), multi-hot labels (V, N) and video paths (V,) of one test run."""

    scores: np.ndarray
    labels: np.ndarray
    paths: np.ndarray


@dataclasses.dataclass
class APBoost:
    """Per-class AP of the model and of the baseline, and their difference (model - baseline)."""

    ap_model: np.ndarray
    ap_baseline: np.ndarray
    delta: np.ndarray


def load_predictions(path: str) -> Predictions:
    """Read ``scores``, ``labels`` (multi-hot or class indices) and ``paths`` from an npz file."""
    if not os.path.isfile(path):
        raise ValueError(f"predictions file not found: {path}")
    with np.load(path, allow_pickle=False) as data:
        missing = [k for k in ("scores", "labels") if k not in data]
        if missing:
            raise ValueError(f"{path}: missing array(s) {', '.join(missing)}")
        scores = np.asarray(data["scores"], dtype=np.float64)
        labels = np.asarray(data["labels"])
        paths = np.asarray(data["paths"]) if "paths" in data else np.arange(len(scores)).astype(str)
    if labels.ndim == 1 and scores.ndim == 2:  # single-label: class indices
        labels = labels_to_multi_hot(labels, scores.shape[1])
    if scores.ndim != 2 or labels.shape != scores.shape or len(paths) != len(scores):
        raise ValueError(f"{path}: scores {scores.shape}, labels {labels.shape} and paths {paths.shape} disagree")
    return Predictions(scores, labels.astype(np.float64), paths)


def _common_videos(model: Predictions, baseline: Predictions) -> tuple:
    """Both runs restricted to the videos they share, in the model's order.

    Test runs leave out videos that failed to decode, so the two files may differ by a few.
    """
    if np.array_equal(model.paths, baseline.paths):
        return model, baseline
    index = {p: i for i, p in enumerate(baseline.paths.tolist())}
    if len(index) != len(baseline.paths):
        raise ValueError("the baseline predictions list a video more than once")
    keep = np.array([p in index for p in model.paths.tolist()], dtype=bool)
    if not keep.any():
        raise ValueError("the two prediction files have no video in common")
    if not keep.all() or keep.sum() != len(baseline.paths):
        logger.warning("comparing the %d videos both runs scored (model %d, baseline %d)",
                       int(keep.sum()), len(model.paths), len(baseline.paths))
    order = np.array([index[p] for p in model.paths[keep].tolist()])
    model = Predictions(model.scores[keep], model.labels[keep], model.paths[keep])
    return model, Predictions(baseline.scores[order], baseline.labels[order], baseline.paths[order])


def compute_ap_boost(model: Predictions, baseline: Predictions) -> APBoost:
    """Per-class AP of both runs on the same videos and the boost (NaN where a class has no positive)."""
    if model.scores.shape[1] != baseline.scores.shape[1]:
        raise ValueError(f"class counts differ: {model.scores.shape[1]} vs {baseline.scores.shape[1]}")
    model, baseline = _common_videos(model, baseline)
    if not np.array_equal(model.labels, baseline.labels):
        raise ValueError("the two prediction files disagree on the labels of the same videos")
    ap_m = per_class_ap(model.scores, model.labels)
    ap_b = per_class_ap(baseline.scores, baseline.labels)
    return APBoost(ap_m, ap_b, ap_m - ap_b)


def boost_order(delta: np.ndarray, top: Optional[int] = None) -> np.ndarray:
    """Class indices sorted by boost, largest first, NaNs dropped; with ``top``, the ``top`` largest
    gains followed by the ``top`` largest drops."""
    valid = np.flatnonzero(np.isfinite(delta))
    order = valid[np.argsort(-delta[valid], kind="stable")]
    if top is not None and len(order) > 2 * top:
        order = np.concatenate([order[:top], order[-top:]])
    return order


# Bars per row of the AP-boost chart; more classes wrap onto further rows, so that the image is
# at most about MAX_WIDTH_IN inches (x 100 dpi) wide whatever the number of classes.
BARS_PER_ROW = 64
MAX_WIDTH_IN = 20.0


def plot_ap_boost(
    boost: APBoost,
    class_names: Sequence[str],
    out_png: str,
    top: Optional[int] = None,
    title: str = "Per-class AP boost over the baseline",
) -> List[int]:
    """Save a sorted bar chart of AP differences (in AP points x100) with class names; return the
    classes shown. Charts of more than BARS_PER_ROW classes wrap onto several rows (same scale)."""
    order = boost_order(boost.delta, top)
    if len(order) == 0:
        raise ValueError("no class has a positive video: nothing to plot")
    values = 100.0 * boost.delta[order]
    rows = -(-len(order) // BARS_PER_ROW)
    per_row = -(-len(order) // rows)
    width = min(MAX_WIDTH_IN, max(6.0, 0.28 * per_row + 1.5))
    fig, axes = plt.subplots(rows, 1, figsize=(width, 4.5 + 3.5 * (rows - 1)), dpi=100, squeeze=False)
    low, high = min(0.0, values.min()), max(0.0, values.max())
    pad = 0.05 * max(high - low, 1e-6)
    for r, ax in enumerate(axes[:, 0]):
        part = slice(r * per_row, (r + 1) * per_row)
        vals, idx = values[part], order[part]
        ax.bar(np.arange(len(vals)), vals, color=np.where(vals >= 0, "#2a9d8f", "#e76f51"))
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.set_xticks(np.arange(len(vals)))
        ax.set_xticklabels([class_names[i] for i in idx], rotation=90, fontsize=7)
        ax.set_xlim(-0.6, per_row - 0.4)
        ax.set_ylim(low - pad, high + pad)
        ax.set_ylabel("AP difference (points)")
    mean_gain = 100.0 * np.nanmean(boost.delta)
    n_valid = int(np.isfinite(boost.delta).sum())
    wrapped = f"; {len(order)} classes in {rows} rows, largest gain first" if rows > 1 else ""
    axes[0, 0].set_title(f"{title} (mean over {n_valid} classes {mean_gain:+.2f}{wrapped})", fontsize=10)
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return order.tolist()


def write_ap_boost_csv(boost: APBoost, class_names: Sequence[str], out_csv: str) -> None:
    """Write class, AP of model and baseline, and boost per class, sorted by boost."""
    with atomic_path(out_csv) as tmp:
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["class_index", "class_name", "ap_model", "ap_baseline", "boost"])
            for i in boost_order(boost.delta):
                writer.writerow([i, class_names[i], f"{boost.ap_model[i]:.6f}", f"{boost.ap_baseline[i]:.6f}",
                                 f"{boost.delta[i]:.6f}"])
