"""The motion-direction demo: the classes of a pair differ only in the order of their frames."""
import os

import numpy as np
import pytest
from PIL import Image

from m3a.prep.motion_demo import CLASSES, make_motion_dataset, plan_clips, render_clip


@pytest.mark.parametrize("first", [0, 2, 4])
def test_pair_partner_is_the_same_clip_played_backwards(first):
    a = render_clip(first, 12, 32, np.random.default_rng(7))
    b = render_clip(first + 1, 12, 32, np.random.default_rng(7))
    assert a.shape == (12, 32, 32, 3) and a.dtype == np.uint8
    assert np.array_equal(a[::-1], b) and not np.array_equal(a, b)


def test_objects_move_the_way_their_class_says():
    def centre(frame, axis):
        mask = np.abs(frame.astype(int) - np.median(frame, axis=(0, 1))).sum(-1) > 150
        return np.nonzero(mask)[axis].mean()

    clip = render_clip(0, 10, 64, np.random.default_rng(3))  # moving right: x grows
    assert centre(clip[-1], 1) - centre(clip[0], 1) > 15
    clip = render_clip(3, 10, 64, np.random.default_rng(3))  # moving up: y shrinks
    assert centre(clip[0], 0) - centre(clip[-1], 0) > 15


def test_plan_is_balanced_per_split():
    plan = plan_clips(20, seed=1)
    for split, per_class in (("train", 12), ("val", 3), ("test", 5)):
        labels = [label for s, label, _ in plan if s == split]
        assert np.bincount(labels).tolist() == [per_class] * len(CLASSES)
    assert len({seed for _, _, seed in plan}) == len(plan)
    with pytest.raises(ValueError, match="at least 4 clips per class"):
        plan_clips(3, 0)


def test_data_set_files(tmp_path):
    counts = make_motion_dataset(str(tmp_path), clips_per_class=4, frames=8, size=32, seed=2)
    assert counts == {"train": 12, "val": 6, "test": 6}
    lines = (tmp_path / "val.csv").read_text().splitlines()
    assert lines[0] == "frames/val/val-0000 8 0" and len(lines) == 6
    path, n, _ = lines[5].split()
    folder = tmp_path / path
    assert sorted(os.listdir(folder)) == [f"{i:06d}.jpg" for i in range(1, 9)] and n == "8"
    assert Image.open(folder / "000001.jpg").size == (32, 32)
    assert (tmp_path / "classes.txt").read_text().splitlines() == list(CLASSES)
    assert (tmp_path / ".complete").exists()
