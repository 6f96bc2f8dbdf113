"""Tests of the tools/make_demo_data.py command line."""
import os
import subprocess
import sys

import pytest

from m3a.utils import lexicon
from m3a.datasets.video_list import read_video_list
from tests.visualization.tiny_setup import load_tool

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(ROOT, "tools", "make_demo_data.py")


@pytest.fixture(scope="module")
def tool():
    """The tool's module, loaded in-process."""
    return load_tool("make_demo_data")


def test_help_explains_the_options(tool, capsys):
    with pytest.raises(SystemExit) as exit_info:
        tool.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--out", "--videos", "--classes", "--seed", "--workers", "--duration", "--size"):
        assert option in text


@pytest.mark.parametrize("args, field", [(["--classes", "99"], "classes"),
                                         (["--videos", "2"], "videos"),
                                         (["--size", "65"], "short side"),
                                         (["--duration", "0.2"], "duration")])
def test_bad_arguments_give_a_one_line_error(tool, capsys, tmp_path, args, field):
    out = str(tmp_path / "demo")
    assert tool.main(["--out", out, *args]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert errors[-1].startswith("make_demo_data: error:") and field in errors[-1]
    assert not os.path.exists(os.path.join(out, ".complete"))


def test_script_generates_a_complete_small_set(tmp_path):
    out = str(tmp_path / "demo")
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "lib"))
    result = subprocess.run(
        [sys.executable, TOOL, "--out", out, "--videos", "8", "--classes", "2", "--duration", "1",
         "--size", "32", "--workers", "2", "--seed", "4"],
        capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "6 train, 1 val, 1 test videos, 2 classes" in result.stdout
    assert "demo videos" in result.stderr  # the progress bar
    assert os.path.isfile(os.path.join(out, ".complete"))
    entries = read_video_list(os.path.join(out, "train-demo.csv"), num_classes=2)
    assert len(entries) == 6
    assert all(os.path.isfile(os.path.join(out, e.path)) for e in entries)
    for kind in lexicon.KINDS:
        assert lexicon.lexicon_path(out, kind, "demo").endswith(".npz")


def test_motion_kind_writes_frame_folders(tool, capsys, tmp_path):
    out = str(tmp_path / "motion")
    assert tool.main(["--kind", "motion", "--out", out, "--clips-per-class", "4", "--frames", "8",
                      "--size", "32"]) == 0
    assert "12 train, 6 val, 6 test clips, 6 classes" in capsys.readouterr().out
    assert os.path.exists(os.path.join(out, ".complete"))
    assert tool.main(["--kind", "motion", "--out", out, "--frames", "4"]) == 2
    assert "at least 8 frames" in capsys.readouterr().err
