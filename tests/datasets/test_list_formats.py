"""List formats: each registered format's lines, its errors (file:line and text), the choice by config."""
import os

import pytest

from m3a.config import ConfigError, get_cfg, load_config
from m3a.datasets.list_formats import LIST_FORMAT_REGISTRY, list_format_names, read_list, resolve_list_format
from m3a.datasets.video_dataset import build_dataset
from m3a.datasets.video_list import ListFormatError, VideoEntry
from tests.datasets.conftest import small_cfg


def _cfg(num_classes=5, separator=","):
    cfg = get_cfg()
    cfg.MODEL.NUM_CLASSES = num_classes
    cfg.DATA.PATH_LABEL_SEPARATOR = separator
    return cfg


def _read(tmp_path, name, text, **cfg_args):
    path = tmp_path / "list.txt"
    path.write_text(text)
    return LIST_FORMAT_REGISTRY.get(name)(str(path), _cfg(**cfg_args))


def test_registered_names():
    assert list_format_names() == ["frame_folder", "mmit_csv", "path_label"]


def test_mmit_csv(tmp_path):
    got = _read(tmp_path, "mmit_csv", "a/x.mp4,3,1\n\nb/y.mp4,0\n")
    assert got == [VideoEntry("a/x.mp4", (3, 1)), VideoEntry("b/y.mp4", (0,))]
    assert _read(tmp_path, "mmit_csv", "a b.mp4;4;2\n", separator=";") == [VideoEntry("a b.mp4", (4, 2))]


def test_path_label_splits_on_the_last_whitespace(tmp_path):
    got = _read(tmp_path, "path_label", "dir with space/v.mp4 2\nk/abc.mp4\t4\n  c.mp4   0  \n")
    assert got == [VideoEntry("dir with space/v.mp4", (2,)), VideoEntry("k/abc.mp4", (4,)), VideoEntry("c.mp4", (0,))]


def test_frame_folder_single_and_multi_label(tmp_path):
    got = _read(tmp_path, "frame_folder", "ssv2/1234 47 3\n\nego/s1/rgb2\t120 0 4\n")
    assert got == [VideoEntry("ssv2/1234", (3,), 47), VideoEntry("ego/s1/rgb2", (0, 4), 120)]


@pytest.mark.parametrize(
    "name, line, message",
    [
        ("mmit_csv", "a.mp4", "expected 'path,label...'"),
        ("mmit_csv", "a.mp4,2,x", "labels must be integers"),
        ("mmit_csv", "a.mp4,5", "label 5 is outside [0, 5)"),
        ("path_label", "a.mp4", "expected 'path label...'"),
        ("path_label", "a.mp4 -1", "label -1 is outside"),
        ("path_label", "a.mp4 x", "labels must be integers"),
        ("frame_folder", "f/1 12", "expected 'path num_frames label [label...]'"),
        ("frame_folder", "f/1 zero 2", "num_frames must be a positive integer"),
        ("frame_folder", "f/1 0 2", "num_frames must be a positive integer"),
        ("frame_folder", "f/1 -3 2", "num_frames must be a positive integer"),
        ("frame_folder", "f/1 12 2 9", "label 9 is outside [0, 5)"),
        ("frame_folder", "f/1 12 2.5", "labels must be integers"),
    ],
)
def test_errors_name_file_line_and_text(tmp_path, name, line, message):
    good = {"mmit_csv": "ok.mp4,1", "path_label": "ok.mp4 1", "frame_folder": "ok 10 1"}[name]
    path = tmp_path / "val.txt"
    path.write_text(f"{good}\n\n{line}\n")
    with pytest.raises(ListFormatError) as err:
        LIST_FORMAT_REGISTRY.get(name)(str(path), _cfg())
    assert str(err.value).startswith(f"{path}:3: ") and message in str(err.value) and f"'{line}'" in str(err.value)


def test_missing_list_names_the_file(tmp_path):
    with pytest.raises(ListFormatError, match="list file not found: .*nope.txt"):
        read_list(str(tmp_path / "nope.txt"), _cfg(), "frame_folder")


def test_config_choice_and_its_validation():
    cfg = _cfg()
    assert resolve_list_format(cfg, "path_label") == "path_label"
    cfg.DATA.LIST_FORMAT = "frame_folder"
    assert resolve_list_format(cfg, "path_label") == "frame_folder"
    cfg.DATA.LIST_FORMAT = "tsm"
    with pytest.raises(ConfigError) as err:
        resolve_list_format(cfg, "mmit_csv")
    assert str(err.value) == (
        "DATA.LIST_FORMAT must be one of frame_folder, mmit_csv, path_label (or empty for the dataset's "
        "own format), got 'tsm'"
    )


def test_datasets_read_their_own_format_or_the_configured_one(tmp_path, video_dir):
    (tmp_path / "train-t.csv").write_text("frames_a 40 1 3\n")
    cfg = small_cfg(str(tmp_path), PATH_PREFIX=video_dir, INPUT_FORMAT="frames", LIST_FORMAT="frame_folder")
    ds = build_dataset("mmit", cfg, "train")
    assert ds.entries == [VideoEntry("frames_a", (1, 3), 40)] and ds.paths == [os.path.join(video_dir, "frames_a")]
    assert ds[0][1].tolist() == [0, 1, 0, 1, 0]
    (tmp_path / "train.csv").write_text("a.mp4 2\n")
    kinetics = small_cfg(str(tmp_path), PATH_PREFIX=video_dir, MULTI_LABEL=False)
    assert build_dataset("kinetics", kinetics, "train").entries == [VideoEntry("a.mp4", (2,))]
    kinetics.DATA.LIST_FORMAT = "mmit_csv"  # the same line read as path,label: no label
    with pytest.raises(ListFormatError, match="train.csv:1: expected 'path,label...'"):
        build_dataset("kinetics", kinetics, "train")
    kinetics.DATA.LIST_FORMAT = "csv"
    with pytest.raises(ConfigError, match="DATA.LIST_FORMAT must be one of frame_folder, mmit_csv, path_label"):
        build_dataset("kinetics", kinetics, "train")


def test_config_loading_rejects_unknown_format_and_sampler_naming_the_valid_ones():
    with pytest.raises(ConfigError, match="DATA.LIST_FORMAT must be one of '', frame_folder, mmit_csv, path_label, got 'tsm'"):
        load_config(None, ["DATA.LIST_FORMAT", "tsm"])
    with pytest.raises(ConfigError, match="DATA.TEMPORAL_SAMPLER must be one of dense, tsn, tsn_rounded, tsn_tsm, got 'uniform'"):
        load_config(None, ["DATA.TEMPORAL_SAMPLER", "uniform"])
    assert load_config(None, ["DATA.LIST_FORMAT", "frame_folder", "DATA.TEMPORAL_SAMPLER", "tsn"]).DATA.LIST_FORMAT == "frame_folder"
