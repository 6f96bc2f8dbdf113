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


def _sklearn_per_class(scores, labels):
    return np.array([average_precision_score(labels[:, c], scores[:, c]) if labels[:, c].any() else np.nan
                     for c in range(labels.shape[1])])


@pytest.mark.parametrize("decimals", [1, 2, None], ids=["ties_1_decimal", "ties_2_decimals", "no_ties"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_per_class_and_per_sample_ap_equal_sklearn_on_larger_data_with_ties(decimals, dtype):
    rng = np.random.default_rng(7)
    labels = (rng.random((400, 30)) < 0.1).astype(np.float32)
    labels[:, 3] = 0  # no positive: NaN, left out of the class-wise mean
    labels[:, 4] = 1  # every video positive: AP 1
    labels[np.arange(400), rng.integers(5, 30, 400)] = 1
    scores = rng.normal(size=(400, 30)) + 1.5 * labels  # mixed signs, like logits
    if decimals is not None:
        scores = np.round(scores, decimals)
    scores = scores.astype(dtype)
    expected = _sklearn_per_class(scores, labels)
    got = metrics.per_class_ap(scores, labels)
    assert np.isnan(got[3]) and got[4] == pytest.approx(1.0)
    np.testing.assert_allclose(got, expected, atol=1e-6, equal_nan=True)
    assert metrics.map_class(scores, labels) == pytest.approx(np.nanmean(expected), abs=1e-6)
    per_video = [average_precision_score(labels[i], scores[i]) for i in range(len(labels))]
    assert metrics.map_sample(scores, labels) == pytest.approx(np.mean(per_video), abs=1e-6)


def test_torch_inputs_of_any_float_width_match_sklearn():
    scores, labels = _random_case(3, videos=200, classes=12, ties=True)
    for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        t = torch.from_numpy(scores).to(dtype)
        expected = np.nanmean(_sklearn_per_class(t.double().numpy(), labels))
        assert metrics.map_class(t, torch.from_numpy(labels)) == pytest.approx(expected, abs=1e-6), dtype


def test_float64_scores_one_ulp_apart_are_not_a_tie():
    low = 0.5
    high = np.nextafter(low, 1.0)  # equal once rounded to float32
    scores = np.array([[low], [high]])
    assert metrics.map_class(scores, np.array([[0], [1]])) == 1.0  # the positive ranks first
    assert metrics.map_class(scores.astype(np.float32), np.array([[0], [1]])) == 0.5  # a tie in float32


def test_all_scores_tied_give_the_positive_rate():
    labels = np.array([[1], [0], [1], [0], [0]])
    assert metrics.map_class(np.full((5, 1), 0.3), labels) == pytest.approx(2 / 5)


def test_no_videos_or_no_positives_give_zero():
    assert metrics.map_class(np.zeros((0, 4)), np.zeros((0, 4))) == 0.0
    assert metrics.map_sample(np.zeros((0, 4)), np.zeros((0, 4))) == 0.0
    assert metrics.map_class(np.random.rand(5, 3), np.zeros((5, 3))) == 0.0
    assert np.isnan(metrics.per_class_ap(np.random.rand(5, 3), np.zeros((5, 3)))).all()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_scores_are_an_error(bad):
    scores, labels = _random_case(4)
    scores[5, 2] = bad
    for fn in (metrics.map_class, metrics.map_sample):
        with pytest.raises(ValueError, match="finite"):
            fn(scores, labels)
