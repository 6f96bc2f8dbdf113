"""tools/build_charades_lists.py on hand-made files in the official Charades layout: every labelled
video and every label is kept, bad files stop it with an error naming file:line."""
import os
import subprocess
import sys

import pytest

from m3a.prep import charades
from tests.tools.charades_files import (CLASSES, HEADER, TEST_LIST, TEST_ROWS, TRAIN_LIST, TRAIN_ROWS,
                                        write_annotations)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_tool(*args):
    """Run the tool in a fresh interpreter on this checkout's package."""
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "lib"))
    return subprocess.run([sys.executable, os.path.join(ROOT, "tools", "build_charades_lists.py"), *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=60)


def read(path):
    with open(path) as f:
        return f.read().splitlines()


def test_every_labelled_video_and_label_kept(tmp_path):
    ann = write_annotations(tmp_path / "Charades")
    proc = run_tool("--annotations", ann, "--out-dir", tmp_path / "data")
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "data"
    assert read(out / "train.csv") == TRAIN_LIST
    assert read(out / "test.csv") == TEST_LIST == read(out / "val.csv")
    assert read(out / "categories-charades.txt") == CLASSES
    lines = proc.stdout.splitlines()
    assert lines[0] == ("train: 3 videos, 6 labels from 7 action intervals; skipped 1 videos without actions; "
                        "1 of 5 classes have no video")
    assert lines[1] == ("test: 1 videos, 2 labels from 3 action intervals; skipped 1 videos without actions; "
                        "3 of 5 classes have no video")
    graph = f"python tools/gen_graph_adj.py --list {out / 'train.csv'} --num-classes 5"
    text = f"python tools/gen_text_lexicon.py --class-names {out / 'categories-charades.txt'}"
    assert any(line.strip().startswith(graph) for line in lines)
    assert any(line.strip().startswith(text) and "text-lexicon-charades.npz" in line for line in lines)


def test_video_dir_extension_and_version(tmp_path):
    ann = write_annotations(tmp_path / "ann")
    proc = run_tool("--annotations", ann, "--out-dir", tmp_path / "out", "--video-dir", "", "--ext", ".webm",
                    "--version", "ch1")
    assert proc.returncode == 0, proc.stderr
    assert read(tmp_path / "out" / "test.csv") == ["X0Y1Z.webm,2,4"]
    assert read(tmp_path / "out" / "categories-ch1.txt") == CLASSES
    proc = run_tool("--annotations", ann, "--out-dir", tmp_path / "out2", "--video-dir", "videos/480p")
    assert read(tmp_path / "out2" / "train.csv")[0] == "videos/480p/46GP8.mp4,0,2,3"


def test_read_split_counts_intervals_and_skipped_videos(tmp_path):
    ann = write_annotations(tmp_path)
    classes = charades.read_classes(os.path.join(ann, "Charades_v1_classes.txt"))
    assert charades.class_names(classes) == CLASSES
    train = charades.read_split(os.path.join(ann, "Charades_v1_train.csv"), classes)
    assert [(v.video_id, v.labels, v.intervals) for v in train.videos] == [
        ("46GP8", (0, 2, 3), 4), ("ZZ9QK", (0, 4), 2), ("A2B3C", (3,), 1)]
    assert train.without_actions == ["N11GT"]
    assert (train.num_labels, train.num_intervals) == (6, 7)


def _row(video_id, actions, script="A script, with a comma."):
    return f'{video_id},S1,Kitchen,6,7,Yes,"{script}",cup,"desc",{actions},10.0'


# (train rows, header, expected error after 'Charades_v1_train.csv:'); the two-line quoted script of
# TRAIN_ROWS[2] puts the row after it on line 6.
BAD_TRAIN = {
    "unknown class id": (TRAIN_ROWS[:3] + [_row("BAD01", "c001 1.0 2.0;c999 0.0 1.0")], HEADER,
                         "6: unknown class id 'c999' in action 'c999 0.0 1.0' (not in Charades_v1_classes.txt)"),
    "action without times": ([_row("BAD02", "c001 1.0")], HEADER, "2: action 'c001 1.0' is not 'cNNN start end'"),
    "times not numbers": ([_row("BAD03", "c001 a b")], HEADER,
                          "2: action 'c001 a b': start and end must be numbers"),
    "unquoted comma": (['BAD04,S1,Kitchen,6,7,Yes,Walks, then sits,,desc,c001 1 2,10.0'], HEADER,
                       "2: 12 fields, the header has 11 (is a free-text field missing its quotes?)"),
    "repeated video": ([_row("R1", "c001 1 2"), _row("R1", "c002 1 2")], HEADER, "3: video R1 is also on line 2"),
    "bad video id": ([_row("a,b", "c001 1 2").replace("a,b", '"a,b"', 1)], HEADER,
                     "2: video id must be letters, digits, '-' or '_', got 'a,b'"),
    "missing column": ([_row("V1", "c001 1 2")], HEADER.replace("actions", "action"),
                       "1: header has no column 'actions' (columns: id, subject"),
}


@pytest.mark.parametrize("case", sorted(BAD_TRAIN))
def test_bad_rows_are_one_line_errors_naming_file_and_line(tmp_path, case):
    rows, header, message = BAD_TRAIN[case]
    ann = write_annotations(tmp_path / "ann", train_rows=rows, header=header)
    out = tmp_path / "out"
    proc = run_tool("--annotations", ann, "--out-dir", out)
    assert proc.returncode == 2
    path = os.path.join(ann, "Charades_v1_train.csv")
    assert proc.stderr.startswith(f"error: {path}:{message}"), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not out.exists()  # nothing is written when a file is bad


def test_error_in_the_test_file_writes_nothing(tmp_path):
    ann = write_annotations(tmp_path / "ann", test_rows=TEST_ROWS + [_row("T9", "c005 0 1")])
    proc = run_tool("--annotations", ann, "--out-dir", tmp_path / "out")
    assert proc.returncode == 2
    assert "Charades_v1_test.csv:4: unknown class id 'c005'" in proc.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("text, message", [
    ("c000 Holding some clothes\nHolding a cup\n", ":2: expected 'cNNN class name', got 'Holding a cup'"),
    ("c000 a\nc001 b\nc000 c\n", ":3: class c000 is also on line 1"),
    ("c000 a\nc002 b\n", ":2: class ids must be c000 to c001; c001 is missing and c002 is present"),
    ("\n\n", ": no classes"),
])
def test_bad_classes_file(tmp_path, text, message):
    ann = write_annotations(tmp_path / "ann")
    classes = os.path.join(ann, "Charades_v1_classes.txt")
    with open(classes, "w") as f:
        f.write(text)
    proc = run_tool("--annotations", ann, "--out-dir", tmp_path / "out")
    assert proc.returncode == 2 and proc.stderr.startswith(f"error: {classes}{message}"), proc.stderr


def test_missing_file_and_help(tmp_path):
    proc = run_tool("--annotations", tmp_path / "nowhere", "--out-dir", tmp_path / "out")
    assert proc.returncode == 2
    assert proc.stderr == f"error: {tmp_path / 'nowhere' / 'Charades_v1_classes.txt'}: file not found\n"
    help_text = run_tool("--help").stdout
    for words in ("Charades_v1_classes.txt", "without any action are skipped", "--video-dir", "file:line"):
        assert words in help_text
