"""Datasets: item contract, list formats, path resolution, bad lists and bad videos."""
import logging
import os

import pytest
import torch

from m3a.datasets.decoder import DecodeError, VideoReader
from m3a.datasets.transform import prepare_test_frames, cut_views
from m3a.datasets.video_dataset import DATASET_REGISTRY, build_dataset
from m3a.datasets.video_list import ListFormatError
from m3a.datasets.benchmark import plain_test_views
from tests.datasets.conftest import BROKEN, GOOD_VIDEOS, NUM_CLASSES, small_cfg, write_list

GOOD = sorted(GOOD_VIDEOS)


def _mmit(tmp_path, video_dir, rows, split="train", **data):
    write_list(os.path.join(tmp_path, f"{split}-t.csv"), rows)
    cfg = small_cfg(str(tmp_path), PATH_PREFIX=video_dir, **data)
    return build_dataset("mmit", cfg, split)


def test_registry_names():
    assert {"mmit", "charades", "kinetics"} <= set(name for name, _ in DATASET_REGISTRY)


def test_train_item_contract(tmp_path, video_dir):
    ds = _mmit(tmp_path, video_dir, {name: (i % NUM_CLASSES, 4) for i, name in enumerate(GOOD)})
    assert len(ds) == 4 and ds.paths[0] == os.path.join(video_dir, "a.mp4")
    assert ds.entries[1].labels == (1, 4)
    frames, label, index, meta = ds[1]
    assert frames.shape == (3, 4, 32, 32) and frames.dtype == torch.float32
    assert label.dtype == torch.float32 and label.tolist() == [0, 1, 0, 0, 1]
    assert index == 1 and meta == {"failed": []}
    val = _mmit(tmp_path, video_dir, {name: (0,) for name in GOOD}, split="val")
    frames, label, index, ok = val[2]  # validation reports a failure instead of replacing
    assert frames.shape == (3, 4, 32, 32) and ok is True


def test_val_clip_is_a_centre_crop_of_the_lower_jitter_scale(tmp_path, video_dir):
    ds = _mmit(tmp_path, video_dir, {"b.mp4": (0,)}, split="val", TRAIN_JITTER_SCALES=[96, 128], TRAIN_CROP_SIZE=96)
    torch.manual_seed(0)
    frames, *_ = ds[0]  # b.mp4 is 96 wide: short side kept, centre 96 x 96 box, no resampling
    torch.manual_seed(0)
    clip_start = torch.rand(()).item() * (2.0 - 8 / 30)
    with VideoReader(ds.paths[0]) as reader:
        raw = reader.decode_at(clip_start + torch.arange(4).double().numpy() * 2 / 30).gather()
    box = raw[:, 16:112].permute(3, 0, 1, 2).float()
    mean = torch.tensor(ds.cfg.DATA.MEAN).view(3, 1, 1, 1)
    std = torch.tensor(ds.cfg.DATA.STD).view(3, 1, 1, 1)
    torch.testing.assert_close(frames, (box / 255 - mean) / std, rtol=1e-5, atol=1e-5)


def test_multi_view_test_decodes_once_and_equals_view_by_view_decoding(tmp_path, video_dir):
    names = GOOD + ["vfr.mp4", "short.mp4", "odd.mp4"]
    ds = _mmit(tmp_path, video_dir, {n: (0,) for n in names}, split="test", NUM_FRAMES=8)
    ds.cfg.TEST.NUM_ENSEMBLE_VIEWS = 3
    data = ds.cfg.DATA
    for i, path in enumerate(ds.paths):
        views, label, index, ok = ds[i]
        assert ok is True and index == i
        assert views.shape == (9, 3, 8, 40, 40)
        with VideoReader(path) as reader:
            clips = ds.clips.test_clip_times(reader.duration)
        for c, times in enumerate(clips):
            with VideoReader(path) as reader:  # a separate decode per clip
                frames = reader.decode_at(times).gather()
            prepared = prepare_test_frames(frames, data.TEST_CROP_SIZE, data.MEAN, data.STD)
            separate = cut_views(prepared, [torch.arange(8)], data.TEST_CROP_SIZE, 3)
            assert torch.equal(views[c * 3 : c * 3 + 3], separate), (path, c)
        if os.path.basename(path) in ("a.mp4", "vfr.mp4"):  # and to a whole decode per view
            assert torch.equal(views, plain_test_views(path, ds.cfg)), path


def test_single_view_test(tmp_path, video_dir):
    ds = _mmit(tmp_path, video_dir, {"a.mp4": (2,)}, split="test")
    ds.cfg.TEST.NUM_ENSEMBLE_VIEWS = 1
    ds.cfg.TEST.NUM_SPATIAL_CROPS = 1
    views, _, _, ok = ds[0]
    assert ok and views.shape == (1, 3, 4, 40, 40)


def test_kinetics_single_label_and_path_resolution(tmp_path, video_dir):
    os.symlink(video_dir, os.path.join(tmp_path, "clips"))
    write_list(os.path.join(tmp_path, "train.csv"), {"clips/a.mp4": (3,), "clips/c.mp4": (1,)}, separator=" ")
    cfg = small_cfg(str(tmp_path), MULTI_LABEL=False)
    ds = build_dataset("kinetics", cfg, "train")
    assert ds.paths == [os.path.join(tmp_path, "clips/a.mp4"), os.path.join(tmp_path, "clips/c.mp4")]
    frames, label, index, meta = ds[0]
    assert label.dtype == torch.int64 and label.item() == 3 and label.shape == ()
    assert meta["failed"] == []


def test_charades_multi_label_and_absolute_paths(tmp_path, video_dir):
    write_list(os.path.join(tmp_path, "val.csv"), {os.path.join(video_dir, "d.mp4"): (0, 2, 3)})
    cfg = small_cfg(str(tmp_path), PATH_PREFIX="/nonexistent")
    ds = build_dataset("charades", cfg, "val")
    assert ds.paths == [os.path.join(video_dir, "d.mp4")]
    assert ds[0][1].tolist() == [1, 0, 1, 1, 0]
    cfg.DATA.MULTI_LABEL = False
    with pytest.raises(ValueError, match="MULTI_LABEL"):
        build_dataset("charades", cfg, "val")


def test_multi_label_list_with_single_label_config_fails_at_start(tmp_path, video_dir):
    with pytest.raises(ValueError, match=r"train-t.csv: entry 2 \('b.mp4'\) has 2 labels but DATA.MULTI_LABEL is False"):
        _mmit(tmp_path, video_dir, {"a.mp4": (0,), "b.mp4": (1, 2)}, MULTI_LABEL=False)


def test_frame_folder_dataset(tmp_path, video_dir):
    ds = _mmit(tmp_path, video_dir, {"frames_a": (1,)}, split="test", INPUT_FORMAT="frames", FRAMES_FPS=10)
    views, _, _, ok = ds[0]
    assert ok and views.shape == (6, 3, 4, 40, 40)
    train = _mmit(tmp_path, video_dir, {"frames_a": (1,)}, INPUT_FORMAT="frames", FRAMES_FPS=10)
    assert train[0][0].shape == (3, 4, 32, 32)


@pytest.mark.parametrize(
    "line, message",
    [
        ("a.mp4", "train-t.csv:2: expected"),
        ("a.mp4,x", "train-t.csv:2: labels must be integers"),
        ("a.mp4,5", "train-t.csv:2: label 5 is outside"),
        ("a.mp4,-1", "train-t.csv:2: label -1 is outside"),
    ],
)
def test_bad_list_fails_at_construction(tmp_path, video_dir, line, message):
    with open(os.path.join(tmp_path, "train-t.csv"), "w") as f:
        f.write(f"b.mp4,1\n{line}\n")
    with pytest.raises(ListFormatError, match=message):
        build_dataset("mmit", small_cfg(str(tmp_path), PATH_PREFIX=video_dir), "train")


@pytest.mark.parametrize("broken", BROKEN)
def test_training_replaces_broken_video_and_reports_it(tmp_path, video_dir, broken, caplog):
    ds = _mmit(tmp_path, video_dir, {broken: (0,), "a.mp4": (1,), "b.mp4": (2,)})
    torch.manual_seed(0)
    with caplog.at_level(logging.WARNING):
        frames, label, index, meta = ds[0]
    assert index in (1, 2) and frames.shape == (3, 4, 32, 32)
    assert label.argmax().item() == index  # the label of the video actually returned
    assert meta["failed"] == [os.path.join(video_dir, broken)]
    assert any(broken in record.getMessage() for record in caplog.records)


def test_training_gives_up_after_num_retries(tmp_path, video_dir):
    ds = _mmit(tmp_path, video_dir, {b: (0,) for b in BROKEN}, NUM_RETRIES=3)
    with pytest.raises(DecodeError, match="4 videos in a row"):
        ds[0]


@pytest.mark.parametrize("broken", BROKEN)
def test_testing_marks_broken_video_not_ok(tmp_path, video_dir, broken, caplog):
    ds = _mmit(tmp_path, video_dir, {"a.mp4": (1,), broken: (3,)}, split="test")
    with caplog.at_level(logging.WARNING):
        views, label, index, ok = ds[1]
    assert ok is False and index == 1 and label.argmax().item() == 3
    assert views.shape == (6, 3, 4, 40, 40) and not views.any()
    assert any(broken in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize("name", ["short.mp4", "odd.mp4", "vfr.mp4"])
def test_short_odd_and_vfr_videos_work_in_training(tmp_path, video_dir, name, caplog):
    ds = _mmit(tmp_path, video_dir, {name: (0,), "a.mp4": (1,)})
    with caplog.at_level(logging.WARNING):
        frames, _, index, meta = ds[0]
    # No decoding warning (records of other loggers, e.g. a thread left by an earlier test, aside).
    warnings = [r for r in caplog.records if r.name.startswith("m3a.datasets") and r.levelno >= logging.WARNING]
    assert index == 0 and meta["failed"] == [] and not warnings
    assert frames.shape == (3, 4, 32, 32) and torch.isfinite(frames).all()
