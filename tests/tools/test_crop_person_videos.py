"""tools/crop_person_videos.py: one person box per video, every frame cut to it and resized."""
import importlib.util
import os
import pickle

import av
import numpy as np

from m3a.prep.person_crop import video_box
from m3a.utils.video_writer import write_h264

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_tool():
    spec = importlib.util.spec_from_file_location(
        "crop_person_videos", os.path.join(ROOT, "tools", "crop_person_videos.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_box_is_scaled_to_the_stored_video_size():
    kp = np.zeros((1, 2, 17, 2), np.float32)
    kp[0, 0, 0], kp[0, 1, 3] = (800, 300), (1000, 700)  # tight box 200 x 400 px in 1080 x 1920
    # padded square: centre (900, 500), half-side 250 -> (650, 250, 1150, 750); video at half size
    assert video_box(kp, (1080, 1920), (540, 960)) == (325, 125, 575, 375)


def test_crops_every_frame_to_the_persons(tmp_path, capsys):
    videos, out = tmp_path / "videos", tmp_path / "cropped"
    videos.mkdir()
    frames = []
    for i in range(12):  # dark frames, bright around the persons' box (x 62..82, y 29..56)
        frame = np.full((96, 128, 3), 20, np.uint8)
        frame[25:60, 58:86] = 200 + i
        frames.append(frame)
    write_h264(str(videos / "S001C001P001R001A001_rgb.mp4"), frames, 30, 128, 96, options={"crf": "0"})
    kp = np.zeros((2, 12, 17, 2), np.float32)
    kp[0, :, 0] = (960 + 60, 360 + 60)  # persons in x 960..1200, y 360..600 of 1080 x 1920:
    kp[1, :, 5] = (960 + 180, 360 + 180)  # padded box (930, 330, 1230, 630) -> (62, 29, 82, 56)
    kp[1, 3, 6] = (960, 360)
    kp[0, 7, 9] = (1200, 600)
    ann = {"frame_dir": "S001C001P001R001A001", "label": 0, "img_shape": (1080, 1920),
           "keypoint": kp, "keypoint_score": np.ones((2, 12, 17), np.float32)}
    missing = dict(ann, frame_dir="S001C001P001R001A002")
    with open(tmp_path / "ann.pkl", "wb") as f:
        pickle.dump({"split": {}, "annotations": [ann, missing]}, f)
    tool = load_tool()
    args = ["--ann", str(tmp_path / "ann.pkl"), "--videos", str(videos), "--out", str(out),
            "--template", "{}_rgb.mp4", "--size", "32"]
    assert tool.main(args) == 1
    captured = capsys.readouterr()
    assert "1 videos cropped, 0 already there, 1 failed" in captured.out
    assert "S001C001P001R001A002_rgb.mp4" in captured.err
    assert "S001C001P001R001A002_rgb.mp4" in (out / "failed.txt").read_text()
    with av.open(str(out / "S001C001P001R001A001_rgb.mp4")) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert video_box(kp, (1080, 1920), (96, 128)) == (62, 29, 82, 56)
    assert len(decoded) == 12 and decoded[0].shape == (32, 32, 3)
    assert all(f[4:-4, 4:-4].mean() > 180 for f in decoded)  # the bright person fills the crop
    assert tool.main(args) == 1 and "0 videos cropped, 1 already there" in capsys.readouterr().out
    two = str(tmp_path / "two")
    assert tool.main([a if a != str(out) else two for a in args] + ["--workers", "2"]) == 1
    assert "1 videos cropped, 0 already there, 1 failed" in capsys.readouterr().out
    with av.open(os.path.join(two, "S001C001P001R001A001_rgb.mp4")) as container:
        again = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert all(np.array_equal(a, b) for a, b in zip(again, decoded)) and len(again) == 12
