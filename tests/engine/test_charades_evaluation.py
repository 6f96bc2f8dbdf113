"""The Charades evaluation as the field computes it: views of a test video combined by max, then the
AP of every class over the test videos, averaged over the classes that have a positive."""
import json
import logging

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score

from m3a.config import get_cfg
from m3a.datasets.multiview import combine_views
from m3a.engine.evaluation import class_coverage
from m3a.engine.test_loop import _log_classes_left_out, write_test_outputs
from m3a.utils import metrics


def official_charades_map(scores: np.ndarray, labels: np.ndarray) -> float:
    """Charades' own class-wise mAP, written out from its definition: videos without any label get
    the lowest score for every class; per class, rank the videos by score and average the
    precision at each positive; classes without a positive are left out of the mean."""
    scores = np.where(labels.any(axis=1, keepdims=True), scores, -np.inf)
    aps = []
    for c in range(labels.shape[1]):
        order = np.argsort(-scores[:, c], kind="stable")
        hits = labels[order, c] > 0
        if not hits.any():
            continue
        precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
        aps.append(precision[hits].mean())
    return float(np.mean(aps))


def _views_case(seed=0, videos=40, views=6, classes=7):
    rng = np.random.default_rng(seed)
    labels = (rng.random((videos, classes)) < 0.3).astype(np.int64)
    labels[:, 5] = 0  # two classes without a test video
    labels[:, 6] = 0
    labels[np.arange(videos), rng.integers(0, 5, videos)] = 1
    view_scores = rng.random((videos, views, classes)).astype(np.float32)
    return view_scores, labels


def test_multiview_max_class_map_equals_sklearn_over_classes_with_positives():
    view_scores, labels = _views_case()
    scores = combine_views(torch.from_numpy(view_scores), "max").numpy()
    np.testing.assert_array_equal(scores, view_scores.max(axis=1))
    expected = np.mean([average_precision_score(labels[:, c], scores[:, c]) for c in range(5)])
    assert metrics.map_class(scores, labels) == pytest.approx(expected, abs=1e-6)
    assert metrics.map_class(scores, labels) == pytest.approx(official_charades_map(scores, labels), abs=1e-6)
    assert metrics.classes_without_positives(labels) == 2
    assert class_coverage(scores, labels) == {"classes_without_positives": 2}
    assert class_coverage(np.zeros((0, 7)), np.zeros((0, 7))) == {"classes_without_positives": 0}


def test_hand_made_max_ensemble():
    # 3 videos x 2 views x 2 classes; max over views: [[0.9, 0.2], [0.4, 0.8], [0.6, 0.1]].
    views = torch.tensor([[[0.1, 0.2], [0.9, 0.1]], [[0.4, 0.8], [0.3, 0.7]], [[0.6, 0.0], [0.5, 0.1]]])
    labels = np.array([[1, 0], [0, 1], [0, 1]])
    scores = combine_views(views, "max").numpy()
    # class 0: ranking v0+ v2- v1- -> AP 1; class 1: v1+ v0- v2+ -> (1/1 + 2/3) / 2
    assert metrics.map_class(scores, labels) == pytest.approx((1 + (1 + 2 / 3) / 2) / 2)
    # sum: [[1.0, 0.3], [0.7, 1.5], [1.1, 0.1]]; class 0 ranks v2- first: AP 1/2; class 1 as before.
    summed = combine_views(views, "sum").numpy()
    assert metrics.map_class(summed, labels) == pytest.approx((0.5 + (1 + 2 / 3) / 2) / 2)


def test_videos_without_labels_dropped_give_the_official_number():
    """The Charades list tool skips videos without actions: the official evaluation ranks them last
    for every class, which is the same as leaving them out; kept as all-negative rows, our
    class-wise mAP would count them as negatives and come out lower."""
    view_scores, labels = _views_case(seed=3)
    scores = view_scores.max(axis=1)
    unlabelled = np.zeros_like(labels[:6])
    unlabelled_scores = np.full((6, labels.shape[1]), 0.99, np.float32)  # confident false alarms
    all_scores = np.concatenate([scores, unlabelled_scores])
    all_labels = np.concatenate([labels, unlabelled])
    official = official_charades_map(all_scores, all_labels)
    assert metrics.map_class(scores, labels) == pytest.approx(official, abs=1e-6)
    assert metrics.map_class(all_scores, all_labels) < official - 0.05


def test_test_outputs_count_and_log_the_classes_left_out(tmp_path, caplog):
    cfg = get_cfg()
    cfg.OUTPUT_DIR = str(tmp_path)
    cfg.MODEL.NUM_CLASSES = 7
    cfg.DATA.PATH_TO_DATA_DIR = str(tmp_path)
    cfg.DATA.ENSEMBLE_METHOD = "max"
    view_scores, labels = _views_case(seed=5, videos=12)
    scores = view_scores.max(axis=1)
    results = {"scores": scores, "labels": labels.astype(np.float32), "indices": np.arange(12),
               "failed": np.zeros(0, np.int64), "num_views": 6}
    summary = write_test_outputs(cfg, results, [f"v{i}.mp4" for i in range(12)], "ck.pyth", 3)
    saved = json.loads((tmp_path / "test_metrics.json").read_text())
    assert saved["classes_without_positives"] == summary["classes_without_positives"] == 2
    assert saved["map_class"] == pytest.approx(official_charades_map(scores, labels), abs=1e-6)
    rows = (tmp_path / "per_class_ap.csv").read_text().splitlines()[1:]
    assert [r.split(",")[2] for r in rows[5:]] == ["", ""]
    with caplog.at_level(logging.INFO, logger="m3a.engine.test_loop"):
        _log_classes_left_out(2, 7)
        _log_classes_left_out(0, 7)
    assert [r.getMessage() for r in caplog.records] == [
        "class-wise mAP is the mean over the 5 of 7 classes with a positive test video; "
        "2 classes without one are left out"]
