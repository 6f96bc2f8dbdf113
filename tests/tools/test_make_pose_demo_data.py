"""tools/make_pose_demo_data.py: a small stick-figure data set the pose_rgb dataset reads."""
import importlib.util
import os

import numpy as np

from m3a.config import get_cfg, load_config
from m3a.datasets.pose import load_annotations
from m3a.datasets.video_dataset import build_dataset
from m3a.prep.pose_demo import CLASSES, _figure

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_tool():
    spec = importlib.util.spec_from_file_location(
        "make_pose_demo_data", os.path.join(ROOT, "tools", "make_pose_demo_data.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_classes_move_different_limbs():
    still = {c: _figure(c, 0.0) for c in range(len(CLASSES))}
    moved = {c: np.abs(_figure(c, 0.5) - still[c]).sum(axis=1) > 0.05 for c in range(len(CLASSES))}
    assert set(np.flatnonzero(moved[0])) == {7, 8, 9, 10}  # arms only
    assert {0, 11, 12, 13, 14} <= set(np.flatnonzero(moved[1])) and not moved[1][[15, 16]].any()
    assert {9, 10, 15, 16} <= set(np.flatnonzero(moved[2]))  # arms and feet
    assert set(np.flatnonzero(moved[3])) == {9, 10}  # hands
    for c in range(len(CLASSES)):  # mirror-symmetric: left joints mirror right ones
        j = _figure(c, 0.3)
        np.testing.assert_allclose(j[1::2][:8, 0], -j[2::2][:8, 0], atol=1e-9)


def test_writes_annotations_and_videos_the_dataset_reads(tmp_path, capsys):
    out = str(tmp_path / "demo")
    assert load_tool().main(["--out", out, "--samples-per-class", "4", "--size", "48"]) == 0
    assert "12 training and 4 validation samples" in capsys.readouterr().out
    anns = load_annotations(os.path.join(out, "pose_demo_2d.pkl"))
    assert [a["label"] for a in anns] == [0, 1, 2, 3] * 4
    assert all(os.path.isfile(os.path.join(out, a["frame_dir"] + ".mp4")) for a in anns)
    kp = np.concatenate([a["keypoint"].reshape(-1, 2) for a in anns])
    assert kp.min() >= 1 and kp.max() <= 47
    cfg = load_config(os.path.join(ROOT, "configs", "EPAM", "DEMO_EPAM.yaml"))
    cfg.DATA.PATH_TO_DATA_DIR = out
    (rgb, heatmaps), label, _, _ = build_dataset("pose_rgb", cfg, "val")[1]
    assert rgb.shape == (3, 4, 64, 64) and heatmaps.shape == (17, 12, 16, 16) and int(label) == 1
    assert get_cfg().POSE.ANN_FILE != cfg.POSE.ANN_FILE
