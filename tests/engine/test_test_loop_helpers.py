"""Class-name lookup, checkpoint choice and metric assembly of the test loop."""
import numpy as np
import pytest

from m3a.config import get_cfg
from m3a.engine.evaluation import compute_metrics
from m3a.engine.test_loop import resolve_test_checkpoint
from m3a.utils.class_names import load_class_names
from m3a.utils.metrics import labels_to_multi_hot, map_class, map_sample


def test_class_names_from_file_category_list_or_index(tmp_path):
    cfg = get_cfg()
    cfg.MODEL.NUM_CLASSES = 3
    cfg.DATA.PATH_TO_DATA_DIR = str(tmp_path)
    cfg.DATA.MMIT_VERSION = "x"
    assert load_class_names(cfg) == ["0", "1", "2"]
    (tmp_path / "categories-x.txt").write_text("playing+music,0\nrunning 1\n\nwaving\t2\n")
    assert load_class_names(cfg) == ["playing+music", "running", "waving"]
    names = tmp_path / "names.txt"
    names.write_text("a\nb\n")
    cfg.DATA.CLASS_NAMES_FILE = str(names)
    assert load_class_names(cfg) == ["a", "b", "2"]
    cfg.DATA.CLASS_NAMES_FILE = str(tmp_path / "nope.txt")
    with pytest.raises(FileNotFoundError, match="CLASS_NAMES_FILE"):
        load_class_names(cfg)


def test_checkpoint_choice(tmp_path):
    cfg = get_cfg()
    cfg.OUTPUT_DIR = str(tmp_path)
    with pytest.raises(FileNotFoundError, match="nothing to test"):
        resolve_test_checkpoint(cfg, None)
    assert resolve_test_checkpoint(cfg, object()) is None  # the model trained in this run
    cfg.TEST.CHECKPOINT_FILE_PATH = str(tmp_path / "missing.pyth")
    with pytest.raises(FileNotFoundError, match="TEST.CHECKPOINT_FILE_PATH"):
        resolve_test_checkpoint(cfg, object())


def test_metrics_for_multi_hot_and_index_labels():
    scores = np.array([[0.9, 0.1, 0.3], [0.2, 0.8, 0.7], [0.6, 0.5, 0.1]])
    labels = np.array([[1, 0, 0], [0, 0, 1], [0, 1, 1]], dtype=np.float32)
    got = compute_metrics(scores, labels)
    assert got["map_class"] == pytest.approx(map_class(scores, labels))
    assert got["map_sample"] == pytest.approx(map_sample(scores, labels))
    assert got["top1"] == pytest.approx(1 / 3) and got["top5"] == 1.0
    index_labels = np.array([0, 2, 0])
    np.testing.assert_array_equal(labels_to_multi_hot(index_labels, 3), [[1, 0, 0], [0, 0, 1], [1, 0, 0]])
    assert compute_metrics(scores, index_labels)["top1"] == pytest.approx(2 / 3)
