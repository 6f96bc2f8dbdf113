"""Mean class accuracy and the extra score sets a model adds to testing (m3a.engine.extra_scores)."""
import numpy as np
import pytest
import torch
import torch.nn as nn
from sklearn.metrics import balanced_accuracy_score

from m3a.engine import extra_scores
from m3a.engine.extra_scores import ExtraScores
from m3a.utils import metrics


def one_hot_scores(predicted, num_classes):
    scores = np.full((len(predicted), num_classes), 0.1, np.float32)
    scores[np.arange(len(predicted)), predicted] = 0.9
    return scores


def test_mean_class_accuracy_by_hand():
    labels = np.array([0, 0, 1, 2, 2, 2])
    scores = one_hot_scores([0, 1, 1, 2, 0, 2], 4)  # class 3 has no test video
    per_class = metrics.per_class_accuracy(scores, labels)
    np.testing.assert_allclose(per_class[:3], [0.5, 1.0, 2 / 3])
    assert np.isnan(per_class[3])
    assert metrics.mean_class_accuracy(scores, labels) == pytest.approx((0.5 + 1.0 + 2 / 3) / 3)
    assert metrics.topk_accuracy(scores, labels, 1) == pytest.approx(4 / 6)  # differs: classes weigh equally


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")  # the absent classes
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mean_class_accuracy_equals_sklearn_balanced_accuracy(seed):
    rng = np.random.RandomState(seed)
    labels = rng.choice([0, 1, 2, 4, 6], size=200, p=[0.5, 0.2, 0.15, 0.1, 0.05])  # 3 and 5 absent
    scores = torch.from_numpy(rng.rand(200, 7).astype(np.float32))
    scores[torch.arange(200)[:120], torch.from_numpy(labels[:120])] += 1.0  # better than chance
    expected = balanced_accuracy_score(labels, scores.argmax(1).numpy())  # leaves absent classes out
    assert metrics.mean_class_accuracy(scores, torch.from_numpy(labels)) == pytest.approx(expected, abs=1e-12)


def test_mean_class_accuracy_rejects_what_it_cannot_score():
    with pytest.raises(ValueError, match="one class index per video"):
        metrics.mean_class_accuracy(np.zeros((2, 3)), np.eye(3)[:2])
    with pytest.raises(ValueError, match=r"in \[0, 3\)"):
        metrics.mean_class_accuracy(np.zeros((2, 3)), np.array([0, 3]))
    assert metrics.mean_class_accuracy(np.zeros((0, 3)), np.zeros(0, np.int64)) == 0.0


class TwoSets(nn.Module):
    """Scores = sum of two fixed linear 'streams' (softmax); each stream scored alone as an extra set."""

    def __init__(self, names=("a", "b")):
        super().__init__()
        self.names = list(names)
        self.wa = nn.Linear(3, 4)
        self.wb = nn.Linear(3, 4)

    def streams(self, x):
        return self.wa(x), self.wb(x)

    def forward(self, x):
        a, b = self.streams(x)
        return torch.softmax(a + b, dim=-1)

    def extra_score_names(self):
        return self.names

    def forward_with_extra_scores(self, x):
        a, b = self.streams(x)
        return self(x), dict(zip(self.names, (torch.softmax(a, -1), torch.softmax(b, -1))))


@pytest.mark.parametrize("method", ["sum", "max"])
def test_sets_are_combined_over_views_and_failed_videos_left_out_like_the_main_scores(method):
    torch.manual_seed(0)
    model = TwoSets().eval()
    collector = ExtraScores(model, method)
    assert collector.names == ["a", "b"]
    x = torch.randn(3 * 2, 3)  # 3 videos x 2 views, view-major within a video
    ok = torch.tensor([True, False, True])
    with torch.no_grad():
        main = collector.forward(x)
        collector.keep(3, 2, ok)
    torch.testing.assert_close(main, model(x))
    combine = (lambda t: t.sum(1)) if method == "sum" else (lambda t: t.max(1).values)
    main_per_video = combine(main.reshape(3, 2, 4))[ok].numpy()
    gathered = collector.gather([np.array([5, 6, 7])[ok.numpy()]], [main_per_video], [np.array([0, 1, 2])[ok.numpy()]])
    with torch.no_grad():
        a, b = (torch.softmax(s, -1).reshape(3, 2, 4) for s in model.streams(x))
    sets = gathered[extra_scores.EXTRA_KEY]
    np.testing.assert_allclose(sets["a"], combine(a)[ok].numpy(), rtol=1e-6)
    np.testing.assert_allclose(sets["b"], combine(b)[ok].numpy(), rtol=1e-6)
    np.testing.assert_array_equal(gathered["scores"], main_per_video)
    assert gathered["indices"].tolist() == [5, 7] and gathered["labels"].tolist() == [0, 2]


def test_main_scores_and_all_sets_are_gathered_in_one_exchange(monkeypatch):
    """The sets ride with the main scores: one all-gather of indices, labels and scores, rows
    matched across processes' padded repeats, whatever the number of sets."""
    from m3a.utils import distributed as du

    exchanges = []
    real = du.all_gather_objects
    monkeypatch.setattr(du, "all_gather_objects", lambda obj: exchanges.append(obj) or real(obj))
    collector = ExtraScores(TwoSets(("a", "b")).eval(), "sum")
    collector.parts = {"a": [np.full((2, 4), 1.0), np.full((1, 4), 2.0)], "b": [np.full((2, 4), 3.0), np.full((1, 4), 4.0)]}
    main = [np.full((2, 4), 5.0), np.full((1, 4), 6.0)]
    gathered = collector.gather([np.array([4, 1]), np.array([4])], main, [np.array([0, 1]), np.array([0])])
    assert len(exchanges) == 1
    assert gathered["indices"].tolist() == [1, 4] and gathered["labels"].tolist() == [1, 0]
    assert gathered["scores"][:, 0].tolist() == [5.0, 5.0]
    sets = gathered[extra_scores.EXTRA_KEY]
    assert sets["a"].tolist() == [[1.0] * 4] * 2 and sets["b"].tolist() == [[3.0] * 4] * 2


def test_a_model_without_the_hook_is_called_as_usual():
    model = nn.Linear(3, 4)
    collector = ExtraScores(model, "sum")
    x = torch.randn(2, 3)
    torch.testing.assert_close(collector.forward(x), model(x))
    collector.keep(2, 1, torch.ones(2, dtype=torch.bool))
    gathered = collector.gather([np.arange(2)], [np.ones((2, 4))], [np.arange(2)])
    assert collector.names == [] and gathered[extra_scores.EXTRA_KEY] == {} and gathered["scores"].shape == (2, 4)
    # Wrapped (e.g. DataParallel) models are looked through.
    assert ExtraScores(nn.DataParallel(TwoSets()), "sum").names == ["a", "b"]


@pytest.mark.parametrize("names", [["a", "a"], ["a b", "c"], [""]])
def test_bad_set_names_are_refused(names):
    with pytest.raises(ValueError, match="distinct identifiers"):
        ExtraScores(TwoSets(names), "sum")


def test_sets_other_than_the_named_ones_are_an_error():
    model = TwoSets()
    model.names = ["a", "c"]
    collector = ExtraScores(model, "sum")
    model.names = ["a", "b"]  # forward now gives a, b
    with pytest.raises(ValueError, match=r"gave the sets \['a', 'b'\].*named \['a', 'c'\]"):
        collector.forward(torch.randn(1, 3))


def test_summary_npz_arrays_and_result_text():
    labels = np.array([0, 1, 1, 2])
    results = {"scores": one_hot_scores([0, 1, 2, 2], 3), "labels": labels,
               extra_scores.EXTRA_KEY: {"rgb": one_hot_scores([1, 1, 1, 1], 3),
                                        "pose": one_hot_scores([0, 1, 1, 2], 3)}}
    summary = extra_scores.summary_metrics(results)
    assert summary["mean_class_accuracy"] == pytest.approx((1 + 0.5 + 1) / 3)
    rgb, pose = summary[extra_scores.EXTRA_KEY]["rgb"], summary[extra_scores.EXTRA_KEY]["pose"]
    assert rgb["top1"] == 0.5 and rgb["mean_class_accuracy"] == pytest.approx(1 / 3)
    assert pose["top1"] == 1.0 and pose["mean_class_accuracy"] == 1.0 and pose["top5"] == 1.0
    assert {"map_class", "map_sample"} <= set(pose)
    arrays = extra_scores.prediction_arrays(results)
    assert sorted(arrays) == ["scores_pose", "scores_rgb"] and arrays["scores_rgb"].dtype == np.float32
    assert extra_scores.result_text(summary) == (
        " | mean class acc 0.8333 | rgb: top-1 0.5000 top-5 1.0000 mean class acc 0.3333"
        " | pose: top-1 1.0000 top-5 1.0000 mean class acc 1.0000")
    # Multi-label data without sets adds nothing.
    multi = {"scores": results["scores"], "labels": np.eye(3)[[0, 1, 1, 2]]}
    assert extra_scores.summary_metrics(multi) == {} and extra_scores.result_text({}) == ""


def test_a_set_of_another_shape_is_an_error():
    class Narrow(TwoSets):
        def forward_with_extra_scores(self, x):
            scores, sets = super().forward_with_extra_scores(x)
            return scores, {**sets, "b": sets["b"][:, :3]}

    with pytest.raises(ValueError, match=r"main scores' shape \(2, 4\); got \{'b': \(2, 3\)\}"):
        ExtraScores(Narrow(), "sum").forward(torch.randn(2, 3))
