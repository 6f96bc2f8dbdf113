"""tools/ntu_skeletons_to_pickle.py on small hand-written NTU RGB+D .skeleton files."""
import importlib.util
import os

import numpy as np
import pytest

from m3a.datasets.pose import load_annotations
from m3a.prep.ntu_skeleton import KINECT_OF_COCO, SkeletonFormatError, read_skeleton

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Two 64-bit body ids that are one apart (equal once converted to float64).
BODY_A, BODY_B, BODY_C = "72057594037931101", "72057594037931102", "72057594037931555"


def load_tool():
    spec = importlib.util.spec_from_file_location(
        "ntu_skeletons_to_pickle", os.path.join(ROOT, "tools", "ntu_skeletons_to_pickle.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def joint_line(body: int, t: int, j: int, state: int = 2) -> str:
    """x y z depthX depthY colorX colorY orientation(4) state; colour = (1000 b + 10 t + j, 500 + j)."""
    color_x, color_y = 1000 * body + 10 * t + j, 500 + j
    return f"0.1 0.2 3.5 250.1 200.2 {color_x}.5 {color_y}.25 0 0 0 1 {state}"


def body_lines(body_id: str, body: int, t: int, states=None) -> list:
    states = states or {}
    return ([f"{body_id} 0 1 1 1 1 0 0.02 -0.1 2", "25"]
            + [joint_line(body, t, j, states.get(j, 2)) for j in range(25)])


def write_skeleton(folder, name, frames) -> str:
    """frames: per frame a list of (body_id, body number, {joint: tracking state})."""
    lines = [str(len(frames))]
    for t, bodies in enumerate(frames):
        lines.append(str(len(bodies)))
        for body_id, body, states in bodies:
            lines += body_lines(body_id, body, t, states)
    path = os.path.join(folder, name + ".skeleton")
    with open(path, "w") as f:
        f.write("\r\n".join(lines) + "\r\n")
    return path


@pytest.fixture
def skeletons(tmp_path):
    folder = tmp_path / "nturgb+d_skeletons"
    folder.mkdir()
    # A (3 frames) and B (2 frames) are kept; C (1 frame) is the third body and dropped.
    write_skeleton(folder, "S001C002P001R001A005", [
        [(BODY_A, 0, {3: 1})],  # head inferred: nose score 0.5
        [(BODY_A, 0, {}), (BODY_B, 1, {6: 0})],  # B's left wrist not tracked
        [(BODY_B, 1, {}), (BODY_C, 2, {})],
        [(BODY_A, 0, {})],
    ])
    write_skeleton(folder, "S002C001P003R002A060", [[(BODY_A, 0, {})], [(BODY_A, 0, {})]])
    write_skeleton(folder, "S002C003P003R002A061", [[(BODY_A, 0, {})]])  # not in NTU-60
    write_skeleton(folder, "S003C001P002R001A001", [[], []])  # no body: skipped
    return folder


def test_converts_to_the_annotation_pickle(skeletons, tmp_path, capsys):
    out = tmp_path / "ntu60_2d.pkl"
    assert load_tool().main(["--skeletons", str(skeletons), "--out", str(out)]) == 0
    assert "2 samples (xsub_train 1, xsub_val 1, xview_train 1, xview_val 1); 1 file(s) without a body" \
        in capsys.readouterr().out
    anns = {a["frame_dir"]: a for a in load_annotations(str(out))}
    assert set(anns) == {"S001C002P001R001A005", "S002C001P003R002A060"}
    ann = anns["S001C002P001R001A005"]
    assert (ann["label"], ann["total_frames"], ann["img_shape"]) == (4, 4, (1080, 1920))
    kp, score = ann["keypoint"], ann["keypoint_score"]
    assert kp.shape == (2, 4, 17, 2) and score.shape == (2, 4, 17) and kp.dtype == np.float32
    # COCO left shoulder (5) = Kinect ShoulderLeft (4): body 0, frame 3 -> (30 + 4.5, 504.25).
    assert tuple(kp[0, 3, 5]) == (34.5, 504.25) and score[0, 3, 5] == 1.0
    # COCO right ankle (16) = Kinect AnkleRight (18); nose (0) = Head (3), inferred at frame 0.
    assert tuple(kp[1, 2, 16]) == (1000 + 20 + 18.5, 518.25) and score[0, 0, 0] == 0.5
    assert tuple(kp[0, 0, 0]) == (3.5, 503.25)
    assert (kp[:, :, 1:5] == 0).all() and (score[:, :, 1:5] == 0).all()  # no eyes, no ears
    assert tuple(kp[1, 1, 9]) == (0, 0) and score[1, 1, 9] == 0  # untracked left wrist
    assert (kp[0, 2] == 0).all() and (kp[1, 0] == 0).all() and (kp[1, 3] == 0).all()  # absent
    assert not (kp == 2000 + 20.5).any()  # body C dropped
    assert [a["frame_dir"] for a in load_annotations(str(out), "xsub_train")] == ["S001C002P001R001A005"]
    assert [a["frame_dir"] for a in load_annotations(str(out), "xview_train")] == ["S001C002P001R001A005"]
    assert [a["frame_dir"] for a in load_annotations(str(out), "xview_val")] == ["S002C001P003R002A060"]


def test_ntu120_keeps_every_action_and_splits_by_setup(skeletons, tmp_path):
    out = tmp_path / "ntu120_2d.pkl"
    assert load_tool().main(["--skeletons", str(skeletons), "--out", str(out),
                             "--benchmark", "ntu120"]) == 0
    assert len(load_annotations(str(out))) == 3
    assert {a["frame_dir"] for a in load_annotations(str(out), "xset_train")} == {
        "S002C001P003R002A060", "S002C003P003R002A061"}


def test_mapping_covers_the_coco_limbs():
    assert KINECT_OF_COCO[5:] == (4, 8, 5, 9, 6, 10, 12, 16, 13, 17, 14, 18)


@pytest.mark.parametrize("cut, words", [
    (lambda lines: lines[:40], "ends before a joint line"),
    (lambda lines: lines[:4] + ["1 2 3"] + lines[5:], ":5: expected a joint line .12 number.s.., got '1 2 3'"),
    (lambda lines: lines[:2] + ["72057594037931101 0 1 1 1 1 0 0.02 -0.1 2", "24"] + lines[4:],
     ":4: expected 25 joints, got 24"),
])
def test_malformed_files_name_file_and_line(cut, words, skeletons, tmp_path, capsys):
    path = skeletons / "S001C002P001R001A005.skeleton"
    lines = path.read_text().splitlines()
    path.write_text("\r\n".join(cut(lines)))
    with pytest.raises(SkeletonFormatError, match=words):
        read_skeleton(str(path))
    assert load_tool().main(["--skeletons", str(skeletons), "--out", str(tmp_path / "x.pkl")]) == 2
    assert str(path) in capsys.readouterr().err and not (tmp_path / "x.pkl").exists()
