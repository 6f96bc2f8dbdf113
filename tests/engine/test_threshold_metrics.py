"""Precision / recall / F1 at TEST.THRESHOLD (micro and macro) against scikit-learn's
precision_recall_fscore_support(..., zero_division=0), including classes without positives."""
import json
import os

import numpy as np
import pytest
from sklearn.metrics import precision_recall_fscore_support

from m3a.engine.evaluation import prf_text, threshold_metrics
from m3a.engine.run import train_and_test
from m3a.engine.test_loop import METRICS_FILE, PREDICTIONS_FILE
from m3a.utils.logging import read_json_stats
from m3a.utils.metrics import threshold_prf
from tests.engine.conftest import tiny_cfg


def _sklearn(labels: np.ndarray, pred: np.ndarray) -> dict:
    out = {}
    for average in ("micro", "macro"):
        p, r, f, _ = precision_recall_fscore_support(labels, pred, average=average, zero_division=0)
        out.update({f"precision_{average}": p, f"recall_{average}": r, f"f1_{average}": f})
    return out


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.9])
def test_matches_sklearn_with_empty_and_never_predicted_classes(seed, threshold):
    rng = np.random.default_rng(seed)
    labels = (rng.random((30, 7)) < 0.3).astype(np.float32)
    labels[:, 2] = 0  # a class without positives
    labels[:, 5] = 0  # ... that is never predicted either
    scores = rng.random((30, 7)).astype(np.float32)
    scores[:, 5] = 0.0
    scores[:, 6] = 0.0  # a class with positives that is never predicted
    got = threshold_prf(scores, labels, threshold)
    expected = _sklearn(labels.astype(int), (scores >= threshold).astype(int))
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-12), key


def test_a_hand_worked_case():
    labels = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0]])
    scores = np.array([[0.9, 0.6, 0.1], [0.4, 0.7, 0.2], [0.2, 0.1, 0.8]])
    got = threshold_prf(scores, labels, 0.5)
    # class 0: tp 1 fn 1; class 1: tp 1 fp 1 fn 1; class 2: fp 1 (no positives). Pooled: tp 2, fp 2, fn 2.
    assert got["precision_micro"] == got["recall_micro"] == got["f1_micro"] == pytest.approx(0.5)
    assert got["precision_macro"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert got["recall_macro"] == pytest.approx((0.5 + 0.5 + 0) / 3)
    assert got["f1_macro"] == pytest.approx((2 / 3 + 0.5 + 0) / 3)


def test_view_sums_are_thresholded_as_mean_view_scores():
    cfg = tiny_cfg("", "")
    labels = np.array([[1, 0], [0, 1]])
    summed = np.array([[1.8, 1.2], [0.3, 2.4]])  # 3 views: means 0.6 0.4 / 0.1 0.8
    cfg.DATA.ENSEMBLE_METHOD, cfg.TEST.THRESHOLD = "sum", 0.5
    result = threshold_metrics(cfg, summed, labels, num_views=3)
    assert result["f1_micro"] == 1.0 and result["threshold"] == 0.5
    cfg.DATA.ENSEMBLE_METHOD = "max"  # a max is already a probability: 1.2 >= 0.5 is predicted
    assert threshold_metrics(cfg, summed, labels, num_views=3)["precision_micro"] == pytest.approx(2 / 3)
    # Class indices (single-label lists) are compared as one-hot rows.
    assert threshold_metrics(cfg, np.array([[0.7, 0.2], [0.6, 0.1]]), np.array([0, 1]))["recall_macro"] == 0.5
    assert prf_text(result) == "P/R/F1@0.5 micro 1.0000/1.0000/1.0000 macro 1.0000/1.0000/1.0000"


def test_test_metrics_and_val_stats_carry_them(tiny_data, tmp_path):
    out = str(tmp_path / "run")
    cfg = tiny_cfg(tiny_data, out)
    cfg.SOLVER.MAX_EPOCH, cfg.TRAIN.MAX_ITERS_PER_EPOCH, cfg.TEST.THRESHOLD = 1, 1, 0.45
    train_and_test(cfg)
    with open(os.path.join(out, METRICS_FILE)) as f:
        metrics = json.load(f)
    saved = np.load(os.path.join(out, PREDICTIONS_FILE))
    # DATA.ENSEMBLE_METHOD max: the stored per-video scores are probabilities as they are.
    expected = _sklearn(saved["labels"].astype(int), (saved["scores"] >= 0.45).astype(int))
    assert metrics["threshold"] == 0.45
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value, abs=1e-9), key
    line = [row for row in open(os.path.join(out, "stdout.log")) if "test results:" in row][-1]
    assert f"| {prf_text(metrics)} |" in line
    val = read_json_stats(out, "val_epoch")[0]
    assert val["threshold"] == 0.45 and set(expected) <= set(val)
