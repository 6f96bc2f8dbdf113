"""The lists tools/build_charades_lists.py writes load through the real ``charades`` dataset and
decode real videos laid out as the Charades download (Charades_v1_480/<id>.mp4)."""
import os
import runpy
import sys

import pytest

from m3a.datasets.video_dataset import build_dataset
from m3a.utils.class_names import load_class_names
from m3a.utils.synthetic_video import write_video
from tests.datasets.conftest import small_cfg
from tests.tools.charades_files import CLASSES, write_annotations

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VIDEOS = ("46GP8", "ZZ9QK", "A2B3C", "X0Y1Z")


def run_tool(*args):
    """Run tools/build_charades_lists.py as __main__ in this process; return its exit status."""
    argv = sys.argv
    sys.argv = ["build_charades_lists.py", *map(str, args)]
    try:
        runpy.run_path(os.path.join(ROOT, "tools", "build_charades_lists.py"), run_name="__main__")
    except SystemExit as done:
        return done.code
    finally:
        sys.argv = argv


@pytest.fixture(scope="module")
def charades_dir(tmp_path_factory):
    """A data folder made by the tool, with one short real video per labelled Charades id."""
    root = tmp_path_factory.mktemp("charades")
    ann = write_annotations(root / "Charades")
    assert run_tool("--annotations", ann, "--out-dir", root) == 0
    for i, video in enumerate(VIDEOS):
        write_video(str(root / "Charades_v1_480" / f"{video}.mp4"), num_frames=30, height=48, width=64, seed=i)
    return str(root)


def _cfg(data_dir):
    cfg = small_cfg(data_dir)
    cfg.MODEL.NUM_CLASSES = len(CLASSES)
    cfg.DATA.MMIT_VERSION = "charades"
    return cfg


def test_tool_lists_load_with_their_labels(charades_dir):
    cfg = _cfg(charades_dir)
    train = build_dataset("charades", cfg, "train")
    assert train.paths == [os.path.join(charades_dir, "Charades_v1_480", f"{v}.mp4") for v in VIDEOS[:3]]
    assert [train.label(i).tolist() for i in range(len(train))] == [
        [1, 0, 1, 1, 0], [1, 0, 0, 0, 1], [0, 0, 0, 1, 0]]
    frames, label, _, meta = train[0]
    assert frames.shape == (3, 4, 32, 32) and meta["failed"] == []
    clip, label, _, ok = build_dataset("charades", cfg, "val")[0]
    assert ok and clip.shape == (3, 4, 32, 32) and label.tolist() == [0, 0, 1, 0, 1]
    test = build_dataset("charades", cfg, "test")
    assert test.paths == [os.path.join(charades_dir, "Charades_v1_480", "X0Y1Z.mp4")]
    views, label, _, ok = test[0]  # 2 clips x 3 crops
    assert ok and views.shape == (6, 3, 4, 40, 40) and label.tolist() == [0, 0, 1, 0, 1]
    assert load_class_names(cfg) == CLASSES


def test_lists_are_read_with_the_charades_class_count(charades_dir):
    cfg = _cfg(charades_dir)
    cfg.MODEL.NUM_CLASSES = 4  # label 4 of the lists is then out of range: the list is wrong for the config
    with pytest.raises(ValueError, match=r"train\.csv:2: label 4 is outside \[0, 4\)"):
        build_dataset("charades", cfg, "train")
