"""tools/build_frame_lists.py on annotation files in the official formats of SSv2, Jester and
EgoGesture, with real frame folders."""
import json
import os
import subprocess
import sys

import pytest
from PIL import Image

from m3a.prep import frame_lists as fl

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_tool(*args):
    """Run the tool in a fresh interpreter on this checkout's package."""
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "lib"))
    return subprocess.run([sys.executable, os.path.join(ROOT, "tools", "build_frame_lists.py"), *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=120)


def write_frames(folder, count, template="{:06d}.jpg", start=1):
    os.makedirs(folder, exist_ok=True)
    for i in range(start, start + count):
        Image.new("RGB", (8, 6), (i % 255, 0, 0)).save(os.path.join(folder, template.format(i)))


def read(path):
    with open(path) as f:
        return f.read().splitlines()


def test_ssv2_lists_number_classes_as_the_labels_file(tmp_path):
    ann = tmp_path / "ann"
    ann.mkdir()
    labels = {"Pushing something from left to right": "1", "Pushing something from right to left": "0",
              "Holding something next to something": "2"}
    (ann / "something-something-v2-labels.json").write_text(json.dumps(labels))
    train = [{"id": "11", "label": "pushing a cup from left to right",
              "template": "Pushing [something] from left to right", "placeholders": ["a cup"]},
             {"id": "12", "label": "holding pen next to cup",
              "template": "Holding [something] next to [something]", "placeholders": ["pen", "cup"]},
             {"id": "13", "label": "x", "template": "Pushing [something] from right to left", "placeholders": []}]
    val = [{"id": "21", "label": "y", "template": "Pushing [something] from right to left", "placeholders": []}]
    (ann / "something-something-v2-train.json").write_text(json.dumps(train))
    (ann / "something-something-v2-validation.json").write_text(json.dumps(val))
    frames = tmp_path / "frames"
    write_frames(frames / "11", 5)
    write_frames(frames / "12", 3)
    write_frames(frames / "21", 7)  # 13 has no frames
    proc = run_tool("ssv2", "--annotations", ann, "--frames-root", frames, "--out-dir", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    assert "train: 2 videos, 1 without frames" in proc.stdout
    assert read(tmp_path / "out" / "train.csv") == ["11 5 1", "12 3 2"]
    assert read(tmp_path / "out" / "val.csv") == ["21 7 0"] == read(tmp_path / "out" / "test.csv")
    assert read(tmp_path / "out" / "classes.txt") == [
        "Pushing something from right to left", "Pushing something from left to right",
        "Holding something next to something"]


def test_jester_lists_and_a_bad_line(tmp_path):
    ann = tmp_path / "ann"
    ann.mkdir()
    (ann / "jester-v1-labels.csv").write_text("Swiping Left\nSwiping Right\nNo gesture\n")
    (ann / "jester-v1-train.csv").write_text("34870;Swiping Right\n56557;No gesture\n")
    (ann / "jester-v1-validation.csv").write_text("9223;Swiping Left\n")
    frames = tmp_path / "frames"
    for video, n in (("34870", 37), ("56557", 2), ("9223", 30)):
        write_frames(frames / video, n, "{:05d}.jpg")
    out = tmp_path / "out"
    assert run_tool("jester", "--annotations", ann, "--frames-root", frames, "--out-dir", out).returncode == 0
    assert read(out / "train.csv") == ["34870 37 1", "56557 2 2"]
    assert read(out / "val.csv") == ["9223 30 0"]
    (ann / "jester-v1-validation.csv").write_text("9223;Swiping Left\n9224;Waving\n")
    proc = run_tool("jester", "--annotations", ann, "--frames-root", frames, "--out-dir", out)
    assert proc.returncode == 2
    expected = "jester-v1-validation.csv:2: expected 'id;label' with a known label, got '9224;Waving'"
    assert proc.stderr.strip().endswith(expected)


def make_egogesture(tmp_path):
    """Subject 3 (train) with two scenes, subject 1 (val), subject 2 (test)."""
    labels, frames = tmp_path / "labels", tmp_path / "frames"
    rows = {(3, "Scene1", "Group1.csv"): "5,10,19\n12,30,35\n",
            (3, "Scene2", "group2.csv"): "83,1,8\n7,,\n",  # a row without start is dropped
            (1, "Scene1", "Group1.csv"): "1,3,6\n",
            (2, "Scene1", "Group1.csv"): "2,2,9\n"}
    for (subject, scene, name), text in rows.items():
        folder = labels / f"Subject{subject:02d}" / scene
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
        group = name[5:-4]
        write_frames(frames / f"Subject{subject:02d}" / scene / "Color" / f"rgb{group}", 40)
    return labels, frames


def test_egogesture_gestures_become_folders_of_their_frames(tmp_path):
    labels, frames = make_egogesture(tmp_path)
    clips, out = tmp_path / "clips", tmp_path / "out"
    proc = run_tool("egogesture", "--labels-root", labels, "--frames-root", frames, "--clips-root", clips,
                    "--out-dir", out)
    assert proc.returncode == 2 and "Subject04: subject folder not found" in proc.stderr
    for subject in range(1, 51):
        os.makedirs(labels / f"Subject{subject:02d}", exist_ok=True)
    proc = run_tool("egogesture", "--labels-root", labels, "--frames-root", frames, "--clips-root", clips,
                    "--out-dir", out, "--published-splits")
    assert proc.returncode == 0, proc.stderr
    assert read(out / "train.csv") == [
        "Subject03/Scene1/rgb1/005_000010_000019 8 4",  # frames 10 .. 17 (end - 2), label class - 1
        "Subject03/Scene1/rgb1/012_000030_000035 4 11",
        "Subject03/Scene2/rgb2/083_000001_000008 6 82",
        "Subject01/Scene1/rgb1/001_000003_000006 2 0",  # a val subject: trained on, as published
    ]
    assert read(out / "val.csv") == read(out / "test.csv") == ["Subject02/Scene1/rgb1/002_000002_000009 6 1"]
    entries, missing = fl.egogesture_entries(str(labels), str(frames), str(clips), [3])
    assert missing == []
    assert [e.line() for e in entries] == [
        "Subject03/Scene1/rgb1/005_000010_000019 8 4",  # frames 10 .. 17 (end - 2), label class - 1
        "Subject03/Scene1/rgb1/012_000030_000035 4 11",
        "Subject03/Scene2/rgb2/083_000001_000008 6 82",
    ]
    first = clips / "Subject03" / "Scene1" / "rgb1" / "005_000010_000019"
    assert sorted(os.listdir(first)) == [f"{i:06d}.jpg" for i in range(1, 9)]
    assert os.path.realpath(first / "000001.jpg") == os.path.realpath(
        frames / "Subject03" / "Scene1" / "Color" / "rgb1" / "000010.jpg")
    assert fl.count_frames(str(first)) == 8
    entries, _ = fl.egogesture_entries(str(labels), str(frames), str(tmp_path / "all"), [3], published_frames=False)
    assert entries[0].num_frames == 10


def test_egogesture_published_and_official_subject_splits():
    published = fl.split_subjects(published=True)
    official = fl.split_subjects(published=False)
    assert sorted(published["train"]) == sorted(official["train"] + official["val"])
    assert published["val"] == published["test"] == official["test"]
    every = official["train"] + official["val"] + official["test"]
    assert sorted(every) == list(range(1, 51))


def test_egogesture_bad_row_names_file_and_line(tmp_path):
    labels, frames = make_egogesture(tmp_path)
    (labels / "Subject01" / "Scene1" / "Group1.csv").write_text("1,3,6\n4,five,9\n")
    with pytest.raises(fl.AnnotationError, match=r"Group1.csv:2: expected integers 'class,start,end', got '4,five,9'"):
        fl.egogesture_entries(str(labels), str(frames), str(tmp_path / "clips"), [1])
