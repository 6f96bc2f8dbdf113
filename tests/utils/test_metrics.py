"""Metrics agree with scikit-learn and with hand-computed values."""
import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score

from m3a.utils import metrics


def _random_case(seed, videos=60, classes=9, ties=False):
    rng = np.random.default_rng(seed)
    labels = (rng.random((videos, classes)) < 0.25).astype(np.int64)
    labels[:, 0] = 0  # a class without positives must be skipped by the class-wise mean
    labels[np.arange(videos), rng.integers(1, classes, videos)] = 1
    scores = rng.random((videos, classes))
    if ties:
        scores = np.round(scores, 1)
    return scores, labels


@pytest.mark.parametrize("ties", [False, True])
def test_map_class_matches_sklearn(ties):
    scores, labels = _random_case(0, ties=ties)
    expected = np.mean([average_precision_score(labels[:, c], scores[:, c])
                        for c in range(labels.shape[1]) if labels[:, c].any()])
    assert metrics.map_class(scores, labels) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("ties", [False, True])
def test_map_sample_matches_sklearn(ties):
    scores, labels = _random_case(1, ties=ties)
    expected = np.mean([average_precision_score(labels[i], scores[i]) for i in range(len(labels))])
    assert metrics.map_sample(scores, labels) == pytest.approx(expected, abs=1e-6)


def test_accepts_torch_tensors():
    scores, labels = _random_case(2)
    a = metrics.map_class(torch.from_numpy(scores), torch.from_numpy(labels))
    assert a == pytest.approx(metrics.map_class(scores, labels), abs=1e-6)


def test_hand_computed_ap():
    # ranking: pos, neg, pos -> AP = (1/1 + 2/3) / 2
    scores = np.array([[0.9], [0.5], [0.1]])
    labels = np.array([[1], [0], [1]])
    assert metrics.map_class(scores, labels) == pytest.approx((1 + 2 / 3) / 2)


def test_topk_multilabel_and_single_label():
    scores = np.array([[0.9, 0.8, 0.1, 0.0], [0.1, 0.2, 0.3, 0.9]])
    labels = np.array([[0, 1, 0, 0], [0, 1, 0, 0]])
    assert metrics.topk_accuracy(scores, labels, 1) == 0.0
    assert metrics.topk_accuracy(scores, labels, 2) == 0.5
    assert metrics.topk_accuracy(scores, labels, 4) == 1.0
    assert metrics.topk_accuracy(scores, np.array([0, 3]), 1) == 1.0


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="videos, classes"):
        metrics.map_class(np.zeros((3, 4)), np.zeros((3, 5)))
