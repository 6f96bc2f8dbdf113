"""Per-class AP boost: numbers vs scikit-learn, the plot and CSV, and the visualize tool."""
import csv
import os

import matplotlib.image as mpimg
import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from m3a.visualization.ap_boost import (
    BARS_PER_ROW,
    Predictions,
    boost_order,
    compute_ap_boost,
    load_predictions,
    plot_ap_boost,
    write_ap_boost_csv,
)
from tests.visualization.tiny_setup import load_tool


def _write_preds(path, scores, labels, paths):
    np.savez(path, scores=scores, labels=labels, paths=np.asarray(paths))


@pytest.fixture
def two_runs(tmp_path):
    rng = np.random.default_rng(0)
    videos, classes = 40, 12
    labels = (rng.random((videos, classes)) < 0.25).astype(np.float32)
    labels[:, 11] = 0  # a class without a positive video
    base = rng.random((videos, classes)).astype(np.float32)
    model = np.clip(base + 0.5 * labels * rng.random((videos, classes)), 0, 2).astype(np.float32)
    model[:, 3] = rng.random(videos)  # one class gets worse
    paths = [f"v{i}.mp4" for i in range(videos)]
    order = rng.permutation(videos)  # the baseline file lists the videos in another order
    _write_preds(tmp_path / "model.npz", model, labels, paths)
    _write_preds(tmp_path / "base.npz", base[order], labels[order], [paths[i] for i in order])
    names = [f"action_{i}" for i in range(classes)]
    (tmp_path / "names.txt").write_text("\n".join(names) + "\n")
    return tmp_path, model, base, labels, names


def test_boost_matches_sklearn(two_runs):
    folder, model, base, labels, _ = two_runs
    boost = compute_ap_boost(load_predictions(folder / "model.npz"), load_predictions(folder / "base.npz"))
    for c in range(11):
        want = average_precision_score(labels[:, c], model[:, c]) - average_precision_score(labels[:, c], base[:, c])
        assert boost.delta[c] == pytest.approx(want, abs=1e-6)
    assert np.isnan(boost.delta[11])
    order = boost_order(boost.delta)
    assert len(order) == 11 and np.all(np.diff(boost.delta[order]) <= 0)
    top = boost_order(boost.delta, top=3)
    assert top.tolist() == order[:3].tolist() + order[-3:].tolist()


def test_plot_and_csv(two_runs):
    folder, _, _, _, names = two_runs
    boost = compute_ap_boost(load_predictions(folder / "model.npz"), load_predictions(folder / "base.npz"))
    shown = plot_ap_boost(boost, names, str(folder / "boost.png"))
    img = mpimg.imread(folder / "boost.png")
    assert img.shape[0] == 450 and img.shape[1] >= 600 and img[..., :3].std() > 0.05
    write_ap_boost_csv(boost, names, str(folder / "boost.csv"))
    rows = list(csv.DictReader(open(folder / "boost.csv")))
    assert [int(r["class_index"]) for r in rows] == shown
    assert rows[0]["class_name"] == names[shown[0]]
    assert float(rows[0]["boost"]) == pytest.approx(boost.delta[shown[0]], abs=1e-6)


def test_mismatched_files_are_rejected(two_runs, tmp_path):
    folder, model, base, labels, _ = two_runs
    _write_preds(tmp_path / "other.npz", base[:10], labels[:10], [f"x{i}" for i in range(10)])
    with pytest.raises(ValueError, match="no video in common"):
        compute_ap_boost(load_predictions(folder / "model.npz"), load_predictions(tmp_path / "other.npz"))
    bad = labels.copy()
    bad[0, 0] = 1 - bad[0, 0]
    _write_preds(tmp_path / "bad.npz", base, bad, [f"v{i}.mp4" for i in range(len(base))])
    with pytest.raises(ValueError, match="disagree on the labels"):
        compute_ap_boost(load_predictions(folder / "model.npz"), load_predictions(tmp_path / "bad.npz"))


def test_videos_missing_from_one_run_are_left_out(two_runs, tmp_path):
    folder, model, base, labels, _ = two_runs
    paths = [f"v{i}.mp4" for i in range(len(base))]
    _write_preds(tmp_path / "part.npz", base[5:], labels[5:], paths[5:])  # 5 videos failed to decode
    boost = compute_ap_boost(load_predictions(folder / "model.npz"), load_predictions(tmp_path / "part.npz"))
    for c in range(11):
        want = (average_precision_score(labels[5:, c], model[5:, c])
                - average_precision_score(labels[5:, c], base[5:, c]))
        assert boost.delta[c] == pytest.approx(want, abs=1e-6)


def test_visualize_apboost_tool(two_runs, capsys):
    folder, _, _, _, _ = two_runs
    tool = load_tool("visualize")
    rc = tool.main(["apboost", "--pred", str(folder / "model.npz"), "--baseline", str(folder / "base.npz"),
                    "--class-names", str(folder / "names.txt"), "--top", "4", "--out", str(folder / "out"),
                    "--tensorboard", str(folder / "tb")])
    assert rc == 0
    assert "8 classes shown" in capsys.readouterr().out
    assert mpimg.imread(folder / "out" / "ap_boost.png").shape[1] >= 600
    assert len(list(csv.DictReader(open(folder / "out" / "ap_boost.csv")))) == 11
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(folder / "tb"))
    rc = tool.main(["apboost", "--pred", str(folder / "nope.npz"), "--baseline", str(folder / "base.npz"),
                    "--out", str(folder / "out")])
    assert rc == 1 and "predictions file not found" in capsys.readouterr().err


def test_apboost_between_two_real_test_runs(tiny, tmp_path, capsys):
    """Two tiny checkpoints tested by the engine's multi-view test on the demo test list, then compared."""
    from m3a.config import load_config
    from m3a.engine.test_loop import test as run_test

    files = {}
    for variant in ("graph", "fc"):
        out = tmp_path / variant
        cfg = load_config(tiny[f"{variant}_cfg"], [
            "TRAIN.ENABLE", "False", "TEST.CHECKPOINT_FILE_PATH", tiny[f"{variant}_ckpt"], "OUTPUT_DIR", str(out),
            "DATA_LOADER.NUM_WORKERS", "0", "TEST.BATCH_SIZE", "2", "TEST.NUM_ENSEMBLE_VIEWS", "1",
            "TEST.NUM_SPATIAL_CROPS", "1"])
        run_test(cfg)
        files[variant] = out / "test_predictions.npz"
    tool = load_tool("visualize")
    rc = tool.main(["apboost", "--pred", str(files["graph"]), "--baseline", str(files["fc"]),
                    "--cfg", tiny["graph_cfg"], "--out", str(tmp_path / "boost")])
    assert rc == 0, capsys.readouterr().err
    model, base = load_predictions(files["graph"]), load_predictions(files["fc"])
    assert model.scores.shape == (4, 4) and list(model.paths) == list(base.paths)
    rows = list(csv.DictReader(open(tmp_path / "boost" / "ap_boost.csv")))
    names = open(tiny["class_names"]).read().split("\n")
    for row in rows:
        c = int(row["class_index"])
        want = (average_precision_score(model.labels[:, c], model.scores[:, c])
                - average_precision_score(base.labels[:, c], base.scores[:, c]))
        assert float(row["boost"]) == pytest.approx(want, abs=1e-5) and row["class_name"] == names[c]
    assert mpimg.imread(tmp_path / "boost" / "ap_boost.png")[..., :3].std() > 0.05


def test_many_classes_wrap_onto_rows_of_capped_width(tmp_path):
    """313 classes (M-MiT v1) without --top: every class is drawn, in rows at most 2,000 px wide."""
    rng = np.random.default_rng(1)
    videos, classes = 200, 313
    labels = (rng.random((videos, classes)) < 0.05).astype(np.float32)
    labels[0] = 1  # every class has a positive video
    model = Predictions(rng.random((videos, classes)) + 0.3 * labels, labels, np.arange(videos).astype(str))
    base = Predictions(rng.random((videos, classes)), labels, model.paths)
    boost = compute_ap_boost(model, base)
    names = [f"class number {i}" for i in range(classes)]
    shown = plot_ap_boost(boost, names, str(tmp_path / "boost.png"))
    assert sorted(shown) == list(range(classes))
    img = mpimg.imread(tmp_path / "boost.png")
    rows = -(-classes // BARS_PER_ROW)
    assert rows == 5 and img.shape[1] <= 2000 and img.shape[0] == round(100 * (4.5 + 3.5 * (rows - 1)))
    few = plot_ap_boost(boost, names, str(tmp_path / "few.png"), top=5)
    assert len(few) == 10 and mpimg.imread(tmp_path / "few.png").shape[:2] == (450, 600)
