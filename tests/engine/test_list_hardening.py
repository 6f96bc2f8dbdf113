"""Lists that could mislead (issue: duplicated lines scored twice, splits of broken videos scored
as 0.0, byte-order marks and binary files): each is reported, and scores count every video once."""
import logging
import os
import shutil

import pytest
import torch

from m3a.datasets.decoder import DecodeError
from m3a.datasets.video_dataset import build_dataset
from m3a.datasets.video_list import ListFormatError, read_video_list
from m3a.engine import test_loop
from m3a.engine.train_loop import eval_epoch
from m3a.models import build_model
from m3a.utils.logging import read_json_stats
from tests.datasets.conftest import write_list
from tests.engine.conftest import VERSION, tiny_cfg


def _copy_with_lists(tiny_data, tmp_path, **lists):
    """A copy of the tiny data folder whose lists are replaced by ``lists`` (split -> lines)."""
    data = str(tmp_path / "data")
    shutil.copytree(tiny_data, data)
    for split, lines in lists.items():
        with open(os.path.join(data, f"{split}-{VERSION}.csv"), "w") as f:
            f.write("".join(line + "\n" for line in lines))
    return data


def test_byte_order_mark_is_dropped(tmp_path):
    path = tmp_path / "list.csv"
    path.write_bytes("\ufeffv0.mp4,1\nv1.mp4,2\n".encode("utf-8"))
    entries = read_video_list(str(path), ",", 4, True)
    assert [e.path for e in entries] == ["v0.mp4", "v1.mp4"]


def test_binary_list_names_the_file_and_line(tmp_path):
    path = tmp_path / "list.csv"
    path.write_bytes(b"v0.mp4,1\n\x89PNG\r\n\x1a\n\xff\xfe\x00")
    with pytest.raises(ListFormatError, match=rf"{path}:2: not UTF-8 text"):
        read_video_list(str(path), ",", 4, True)


def test_duplicated_test_lines_are_scored_once(tiny_data, tmp_path, caplog):
    lines = ["v1.mp4,1", "v3.mp4,0,1", "v1.mp4,1", "v5.mp4,2", "v1.mp4,1", "v6.mp4,1,3"]
    data = _copy_with_lists(tiny_data, tmp_path, test=lines)
    cfg = tiny_cfg(data, str(tmp_path / "out"))
    with caplog.at_level(logging.WARNING):
        dataset = build_dataset("mmit", cfg, "test")
    assert [os.path.basename(p) for p in dataset.paths] == ["v1.mp4", "v3.mp4", "v5.mp4", "v6.mp4"]
    assert "2 line(s) repeat a video listed before (e.g. v1.mp4); each video is scored once" in caplog.text
    cfg.DATA.ALLOW_DUPLICATE_VIDEOS = True
    assert len(build_dataset("mmit", cfg, "test")) == 6
    cfg.DATA.ALLOW_DUPLICATE_VIDEOS = False
    assert len(build_dataset("mmit", cfg, "train")) == 8  # training keeps repeats (oversampling)


def test_duplicates_with_different_labels_are_an_error(tiny_data, tmp_path):
    data = _copy_with_lists(tiny_data, tmp_path, test=["v1.mp4,1", "v1.mp4,2"])
    with pytest.raises(ListFormatError, match=r"'v1.mp4' is listed twice with different labels \(\[1\] and \[2\]\)"):
        build_dataset("mmit", tiny_cfg(data, str(tmp_path / "out")), "test")


def _break(data, *names):
    for name in names:
        with open(os.path.join(data, name), "wb") as f:
            f.write(b"not a video at all" * 10)


def test_a_test_split_of_broken_videos_is_an_error(tiny_data, tmp_path):
    data = _copy_with_lists(tiny_data, tmp_path, test=["v1.mp4,1", "v3.mp4,0"])
    _break(data, "v1.mp4", "v3.mp4")
    cfg = tiny_cfg(data, str(tmp_path / "out"))
    cfg.TRAIN.ENABLE = False
    model = build_model(cfg)
    with pytest.raises(DecodeError, match=r"test-tiny.csv: none of its 2 videos could be decoded \(2 failed; first: "):
        test_loop.test(cfg, model)
    assert not os.path.exists(os.path.join(cfg.OUTPUT_DIR, "test_metrics.json"))


def test_validation_never_replaces_a_video_and_counts_failures(tiny_data, tmp_path):
    from m3a.datasets.loader import construct_loader

    data = _copy_with_lists(tiny_data, tmp_path, val=["v0.mp4,0", "v2.mp4,2,3", "v4.mp4,3"])
    _break(data, "v2.mp4")
    cfg = tiny_cfg(data, str(tmp_path / "out"))
    dataset = build_dataset("mmit", cfg, "val")
    assert dataset[1][3] is False and dataset[1][2] == 1 and dataset[0][3] is True
    loader = construct_loader(cfg, "val")
    eval_epoch(loader, build_model(cfg), 0, cfg, torch.device("cpu"))
    stats = [s for s in read_json_stats(cfg.OUTPUT_DIR) if s["_type"] == "val_epoch"][-1]
    assert stats["num_videos"] == 2 and stats["failed_videos"] == 1
    _break(data, "v0.mp4", "v4.mp4")
    with pytest.raises(DecodeError, match="val-tiny.csv: none of its 3 videos could be decoded"):
        eval_epoch(construct_loader(cfg, "val"), build_model(cfg), 0, cfg, torch.device("cpu"))
